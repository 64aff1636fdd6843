//! Private-key identities: an Ed25519 public key is the user's name.
//!
//! An [`Identity`] is a public key checked once, where it enters: 32 bytes of canonical
//! base64url, a point on the curve in its canonical encoding, and not of small order.
//! Small-order keys are refused because one signature under such a key verifies for
//! many messages (SECURITY_CASES §9 row 140); non-canonical encodings because two
//! spellings of one key would be two identities. Signatures are checked with
//! [`verify_strict`](ed25519_dalek::VerifyingKey::verify_strict), which also refuses
//! `S ≥ L` (malleated signatures) and small-order or non-canonical `R`.
//!
//! [`IdentityPolicy`] says which identities get tokens and with what: open enrolment
//! (any valid key) or an allow-list, each listed identity with its own scope and claims.
//! The key-file helpers ([`encode_private_key`], [`decode_private_key`]) serve the
//! `portcullis identity` commands and the example client.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value};

/// The DER prefix of an RFC 8410 PKCS#8 v1 Ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A valid Ed25519 public key: canonical, on the curve, not of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    bytes: [u8; 32],
    key: VerifyingKey,
}

/// Why a string is not an [`Identity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidIdentity {
    /// Not canonical base64url (no padding) of exactly 32 bytes: a malformed parameter.
    Malformed,
    /// 32 bytes, but not the canonical encoding of a curve point.
    NotAPoint,
    /// A point of small order (the identity point, or one of order 2, 4 or 8).
    SmallOrder,
}

/// What an identity's tokens carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdentityGrant {
    /// The scopes the identity may be granted (all of them when it asks for none).
    pub scope: Vec<String>,
    /// Claims added to its tokens.
    pub claims: Map<String, Value>,
}

/// Which identities get tokens, and what their tokens carry.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    open: bool,
    default: IdentityGrant,
    listed: HashMap<[u8; 32], IdentityGrant>,
}

/// A key file that is neither PKCS#8 PEM, nor 32 raw bytes, nor base64url of 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidKeyFile;

// === impl Identity ===

impl Identity {
    /// Parses the base64url (no padding) text of a 32-byte public key.
    pub fn parse(text: &str) -> Result<Self, InvalidIdentity> {
        if text.len() != 43 {
            return Err(InvalidIdentity::Malformed);
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(InvalidIdentity::Malformed)?;
        Self::from_bytes(&bytes)
    }

    /// Checks a raw 32-byte public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, InvalidIdentity> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| InvalidIdentity::NotAPoint)?;
        if key.is_weak() {
            return Err(InvalidIdentity::SmallOrder);
        }
        // Decompression reduces y modulo p and ignores the sign of x = 0: re-encode to
        // refuse every spelling but the canonical one.
        if key.to_edwards().compress().to_bytes() != *bytes {
            return Err(InvalidIdentity::NotAPoint);
        }
        Ok(Self { bytes: *bytes, key })
    }

    /// The 32 bytes of the key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// True if `signature` is a valid strict Ed25519 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.bytes))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

// === impl InvalidIdentity ===

impl fmt::Display for InvalidIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => {
                "an identity is the base64url (no padding) of a 32-byte Ed25519 public key"
            }
            Self::NotAPoint => "not the canonical encoding of an Ed25519 public key",
            Self::SmallOrder => "a small-order Ed25519 public key cannot be an identity",
        })
    }
}

impl std::error::Error for InvalidIdentity {}

// === impl IdentityPolicy ===

impl IdentityPolicy {
    /// Open enrolment: every valid key gets a token carrying `default`.
    pub fn open(default: IdentityGrant) -> Self {
        Self {
            open: true,
            default,
            listed: HashMap::new(),
        }
    }

    /// Only listed identities get tokens.
    pub fn allowlist() -> Self {
        Self {
            open: false,
            default: IdentityGrant::default(),
            listed: HashMap::new(),
        }
    }

    /// Lists `identity` with its own grant (in open mode: instead of the default).
    pub fn with_identity(mut self, identity: Identity, grant: IdentityGrant) -> Self {
        self.listed.insert(identity.bytes, grant);
        self
    }

    /// What `identity`'s token carries, or `None` if it gets no token.
    pub fn grant(&self, identity: &Identity) -> Option<&IdentityGrant> {
        match self.listed.get(&identity.bytes) {
            Some(grant) => Some(grant),
            None if self.open => Some(&self.default),
            None => None,
        }
    }
}

// === key files ===

/// The PKCS#8 (RFC 8410) PEM of an Ed25519 private key, as OpenSSL writes it.
pub fn encode_private_key(seed: &[u8; 32]) -> String {
    let mut der = PKCS8_PREFIX.to_vec();
    der.extend_from_slice(seed);
    pem::encode(&pem::Pem::new("PRIVATE KEY", der))
}

/// The 32-byte seed of a key file: PKCS#8 PEM, 32 raw bytes, or base64url text of them.
pub fn decode_private_key(bytes: &[u8]) -> Result<[u8; 32], InvalidKeyFile> {
    if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
        return Ok(seed);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| InvalidKeyFile)?
        .trim();
    if text.starts_with("-----BEGIN") {
        let pem = pem::parse(text).map_err(|_| InvalidKeyFile)?;
        let der = pem.contents();
        if pem.tag() != "PRIVATE KEY" || der.len() != 48 || der[..16] != PKCS8_PREFIX {
            return Err(InvalidKeyFile);
        }
        return der[16..].try_into().map_err(|_| InvalidKeyFile);
    }
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(InvalidKeyFile)
}

impl fmt::Display for InvalidKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an Ed25519 key: expected a PKCS#8 PEM, 32 raw bytes or their base64url")
    }
}

impl std::error::Error for InvalidKeyFile {}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    /// RFC 8032 §7.1 TEST 1.
    const TEST1_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const TEST1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    #[test]
    fn rfc8032_test1_key_is_an_identity_and_its_signature_verifies() {
        let id = Identity::from_bytes(&key(TEST1_PUBLIC)).unwrap();
        assert_eq!(
            id.to_string(),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        assert_eq!(Identity::parse(&id.to_string()).unwrap(), id);
        let sig: [u8; 64] = hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b").try_into().unwrap();
        assert!(id.verify(b"", &sig));
        assert!(!id.verify(b"x", &sig));
    }

    #[test]
    fn s_plus_l_signature_is_refused() {
        let id = Identity::from_bytes(&key(TEST1_PUBLIC)).unwrap();
        // V-ED-SPLUSL-RAW: TEST 1 with S replaced by S + L.
        let sig: [u8; 64] = hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901554c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b").try_into().unwrap();
        assert!(!id.verify(b"", &sig));
    }

    #[test]
    fn small_order_and_non_canonical_keys_are_not_identities() {
        let small = key("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa");
        assert_eq!(
            Identity::from_bytes(&small),
            Err(InvalidIdentity::SmallOrder)
        );
        assert_eq!(
            Identity::from_bytes(&[0; 32]),
            Err(InvalidIdentity::SmallOrder)
        );
        // The identity point, (0, 1).
        let mut one = [0; 32];
        one[0] = 1;
        assert_eq!(Identity::from_bytes(&one), Err(InvalidIdentity::SmallOrder));
        // (0, -1) with the sign bit set: non-canonical and small order.
        let noncanon = key("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
        assert!(Identity::from_bytes(&noncanon).is_err());
        // Every y in [p, 2^255) is a non-canonical spelling of y - p, with either sign.
        for k in 0..19u8 {
            for sign in [0, 0x80] {
                let mut bytes = [0xff; 32];
                bytes[0] = 0xed + k;
                bytes[31] = 0x7f | sign;
                assert!(Identity::from_bytes(&bytes).is_err(), "y = p + {k}");
            }
        }
    }

    #[test]
    fn malformed_text_is_malformed() {
        for text in [
            "",
            "abc",
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURp", // non-zero pad bits
        ] {
            assert_eq!(
                Identity::parse(text),
                Err(InvalidIdentity::Malformed),
                "{text}"
            );
        }
    }

    #[test]
    fn policy_open_gives_the_default_and_allowlist_only_listed() {
        let a = Identity::from_bytes(&key(TEST1_PUBLIC)).unwrap();
        let b = Identity::from_bytes(&SigningKey::from_bytes(&[7; 32]).verifying_key().to_bytes())
            .unwrap();
        let special = IdentityGrant {
            scope: vec!["admin".into()],
            claims: Map::new(),
        };
        let open = IdentityPolicy::open(IdentityGrant {
            scope: vec!["read".into()],
            claims: Map::new(),
        })
        .with_identity(a, special.clone());
        assert_eq!(open.grant(&a), Some(&special));
        assert_eq!(open.grant(&b).unwrap().scope, ["read"]);
        let closed = IdentityPolicy::allowlist().with_identity(a, special.clone());
        assert_eq!(closed.grant(&a), Some(&special));
        assert_eq!(closed.grant(&b), None);
    }

    #[test]
    fn key_files_round_trip_in_every_format() {
        let seed = key(TEST1_SECRET);
        let pem = encode_private_key(&seed);
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(decode_private_key(pem.as_bytes()).unwrap(), seed);
        assert_eq!(decode_private_key(&seed).unwrap(), seed);
        let text = format!("{}\n", URL_SAFE_NO_PAD.encode(seed));
        assert_eq!(decode_private_key(text.as_bytes()).unwrap(), seed);
        assert!(decode_private_key(b"nonsense").is_err());
        let signing = SigningKey::from_bytes(&seed);
        assert_eq!(
            hex(TEST1_PUBLIC),
            signing.verifying_key().to_bytes().to_vec()
        );
        let sig = signing.sign(b"m").to_bytes();
        assert!(
            Identity::from_bytes(&key(TEST1_PUBLIC))
                .unwrap()
                .verify(b"m", &sig)
        );
    }
}
