//! The module's error types. Their `Display` texts never contain key material
//! or token contents: they may end up in logs and, for [`VerifyError`], in a
//! `WWW-Authenticate` header.

use std::fmt;

use super::Algorithm;

/// Why a key set could not be built (or a key generated). Raised at start-up;
/// the message names the `kid` and the rule, never the material.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A key has an empty `kid`.
    EmptyKid,
    /// A `kid` contains control characters (it is echoed in token headers).
    InvalidKid(String),
    /// Two keys share one `kid`.
    DuplicateKid(String),
    /// An HMAC secret is shorter than the hash output (RFC 7518 §3.2).
    HmacSecretTooShort {
        /// The key's id.
        kid: String,
        /// The HMAC algorithm it was declared for.
        algorithm: Algorithm,
        /// The minimum length in bytes.
        min_bytes: usize,
    },
    /// An HMAC algorithm was given a PEM key instead of a raw secret.
    HmacNeedsSecret {
        /// The key's id.
        kid: String,
    },
    /// An asymmetric algorithm was given a raw secret instead of a PEM key.
    AsymmetricNeedsPem {
        /// The key's id.
        kid: String,
        /// The declared algorithm.
        algorithm: Algorithm,
    },
    /// An RSA key is shorter than 2048 bits (RFC 7518 §3.3).
    RsaKeyTooSmall {
        /// The key's id.
        kid: String,
        /// The modulus length found.
        bits: usize,
    },
    /// The PEM does not hold a key usable with the declared algorithm.
    InvalidPem {
        /// The key's id.
        kid: String,
        /// The declared algorithm.
        algorithm: Algorithm,
        /// What was wrong, in fixed words.
        reason: &'static str,
    },
    /// The signing `kid` names no key in the set.
    UnknownSigningKid(String),
    /// The signing `kid` names a verify-only (public) key.
    SigningKeyIsPublic(String),
    /// The sign-and-verify self test failed (e.g. no crypto backend).
    SelfTestFailed {
        /// The key's id.
        kid: String,
        /// The declared algorithm.
        algorithm: Algorithm,
    },
    /// Key generation does not support this algorithm.
    UnsupportedAlgorithm(Algorithm),
    /// The crypto library failed to generate or encode a key.
    Generation,
}

/// Why a token was rejected. Every variant maps to a fixed, input-free
/// description (RFC 6750 §3) through [`VerifyError::description`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed JWS compact token: size, segments, base64url, JSON.
    Malformed,
    /// The header is not acceptable: `crit`, `b64`, `enc` or `zip` present.
    UnsupportedHeader,
    /// The `typ` header is not `at+jwt` while an access token is required.
    Type,
    /// No configured key matches the `kid` (or no `kid` and several keys).
    UnknownKey,
    /// The `alg` header is not exactly the algorithm bound to the key.
    Algorithm,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed (with leeway).
    Expired,
    /// `nbf` is in the future (with leeway).
    NotYetValid,
    /// `iat` is in the future (with leeway): we are our own issuer.
    IssuedInFuture,
    /// `iss` is not byte-for-byte the configured issuer.
    Issuer,
    /// `aud` does not contain the configured audience.
    Audience,
    /// A registered claim is missing or has the wrong type; names the claim.
    Claims(&'static str),
}

/// Why a token could not be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The key set has no signing key.
    NoSigningKey,
    /// An extra claim would overwrite a registered one; names the claim.
    ReservedClaim(String),
    /// A claim value is not acceptable (empty `sub`, control characters);
    /// names the claim.
    InvalidClaim(&'static str),
    /// The lifetime is zero or overflows the clock.
    InvalidTtl,
    /// The token would exceed the verifier's maximum token length.
    TooLarge,
    /// Signing failed in the crypto library.
    Crypto,
}

// === impl KeyError ===

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::EmptyKid => f.write_str("a JWT key has an empty kid"),
            KeyError::InvalidKid(kid) => {
                write!(f, "JWT key kid {kid:?} contains control characters")
            }
            KeyError::DuplicateKid(kid) => write!(f, "JWT key kid {kid:?} is used twice"),
            KeyError::HmacSecretTooShort {
                kid,
                algorithm,
                min_bytes,
            } => write!(
                f,
                "JWT key {kid:?}: an {algorithm} secret must be at least {min_bytes} bytes (RFC 7518 §3.2); use random bytes, not a password"
            ),
            KeyError::HmacNeedsSecret { kid } => write!(
                f,
                "JWT key {kid:?}: an HMAC algorithm needs a raw secret, not a PEM key"
            ),
            KeyError::AsymmetricNeedsPem { kid, algorithm } => write!(
                f,
                "JWT key {kid:?}: {algorithm} needs a PEM private or public key, not a secret"
            ),
            KeyError::RsaKeyTooSmall { kid, bits } => write!(
                f,
                "JWT key {kid:?}: RSA key has {bits} bits; at least 2048 are required"
            ),
            KeyError::InvalidPem {
                kid,
                algorithm,
                reason,
            } => write!(f, "JWT key {kid:?}: not a valid {algorithm} key: {reason}"),
            KeyError::UnknownSigningKid(kid) => {
                write!(f, "signing key {kid:?} is not among the configured keys")
            }
            KeyError::SigningKeyIsPublic(kid) => write!(
                f,
                "signing key {kid:?} is a public (verify-only) key; signing needs a private key or secret"
            ),
            KeyError::SelfTestFailed { kid, algorithm } => write!(
                f,
                "JWT key {kid:?}: {algorithm} sign/verify self test failed (crypto backend missing or key unusable)"
            ),
            KeyError::UnsupportedAlgorithm(alg) => {
                write!(f, "cannot generate a key for {alg}")
            }
            KeyError::Generation => f.write_str("key generation failed in the crypto library"),
        }
    }
}

impl std::error::Error for KeyError {}

// === impl VerifyError ===

impl VerifyError {
    /// A fixed text for `error_description` (RFC 6750 §3): printable ASCII
    /// without `"` or `\`, and never any part of the token.
    pub const fn description(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "The access token is malformed",
            VerifyError::UnsupportedHeader => "The access token uses an unsupported header",
            VerifyError::Type => "The token is not an access token",
            VerifyError::UnknownKey => "The access token is signed with an unknown key",
            VerifyError::Algorithm => "The access token uses an unexpected algorithm",
            VerifyError::Signature => "The access token signature is invalid",
            VerifyError::Expired => "The access token expired",
            VerifyError::NotYetValid => "The access token is not yet valid",
            VerifyError::IssuedInFuture => "The access token is issued in the future",
            VerifyError::Issuer => "The access token has an unexpected issuer",
            VerifyError::Audience => "The access token is not meant for this audience",
            VerifyError::Claims(_) => "The access token has invalid claims",
        }
    }

    /// True when the only problem is expiry, so a client knows to refresh.
    pub const fn is_expired(&self) -> bool {
        matches!(self, VerifyError::Expired)
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The claim name is one of our own static strings, never input.
            VerifyError::Claims(name) => write!(f, "{} ({name})", self.description()),
            _ => f.write_str(self.description()),
        }
    }
}

impl std::error::Error for VerifyError {}

// === impl SignError ===

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::NoSigningKey => f.write_str("no signing key is configured"),
            SignError::ReservedClaim(name) => write!(
                f,
                "claim {name:?} is registered and set by the issuer; it cannot be an extra claim"
            ),
            SignError::InvalidClaim(name) => {
                write!(f, "claim {name:?} is empty or contains control characters")
            }
            SignError::InvalidTtl => f.write_str("token lifetime must be at least one second"),
            SignError::TooLarge => f.write_str("the token would exceed the maximum token length"),
            SignError::Crypto => f.write_str("signing failed in the crypto library"),
        }
    }
}

impl std::error::Error for SignError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_description_is_the_rfc_6750_text() {
        assert_eq!(
            VerifyError::Expired.description(),
            "The access token expired"
        );
        assert!(VerifyError::Expired.is_expired());
        assert!(!VerifyError::Signature.is_expired());
    }

    #[test]
    fn descriptions_are_header_safe() {
        let all = [
            VerifyError::Malformed,
            VerifyError::UnsupportedHeader,
            VerifyError::Type,
            VerifyError::UnknownKey,
            VerifyError::Algorithm,
            VerifyError::Signature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::IssuedInFuture,
            VerifyError::Issuer,
            VerifyError::Audience,
            VerifyError::Claims("sub"),
        ];
        for e in all {
            // RFC 6750 §3: %x20-21 / %x23-5B / %x5D-7E
            assert!(
                e.description()
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
                "{e:?}"
            );
        }
    }
}
