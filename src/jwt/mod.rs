//! JSON Web Tokens: keys, issuance, verification and a cache of verified
//! tokens. Knows nothing of HTTP; `guard/` and `token/` adapt it.
//!
//! - [`KeySet`]: the configured keys, each bound to one `kid` and one
//!   [`Algorithm`], validated and exercised once at start-up; its
//!   [`jwks`](KeySet::jwks) is published at `/.well-known/jwks.json`.
//! - [`Issuer`]: signs RFC 9068 access tokens (`typ: at+jwt`).
//! - [`Verifier`]: parses strictly (canonical base64url, no duplicate JSON
//!   names), lets the key (never the header) decide the algorithm, checks the
//!   signature, then `exp`/`nbf`/`iat`, `iss`, `aud` and `sub`. Every failure
//!   is a [`VerifyError`] with a fixed, input-free description.
//! - [`TokenCache`]: verified tokens keyed by the whole token string, so a
//!   signature is checked once per token rather than once per request.
//! - [`RevocationStore`]: the seam for sharing revoked `jti`s between
//!   instances; [`MemoryRevocationStore`] is the in-process default.
//!
//! Typical wiring: `KeySet::new` → `Verifier::new` + `Issuer::new` at
//! start-up; per request, `cache.get_or_verify(token, now, ||
//! verifier.verify(token, now))`, then a revocation check on `claims.jti`.
//! [`Authenticator`] does the first two for the guard.
//!
//! ```
//! use std::time::Duration;
//! use portcullis::jwt::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = generate_key(Algorithm::EdDSA)?;
//! let spec = KeySpec { kid: "k1".into(), algorithm: Algorithm::EdDSA, material: KeyMaterial::PrivatePem(key.private_pem.into_bytes()) };
//! let keys = KeySet::new(vec![spec], Some("k1"))?;
//! let now = 1_800_000_000;
//! let request = TokenRequest { subject: "alice".into(), ttl: Duration::from_secs(600), ..Default::default() };
//! let token = Issuer::new(keys.clone(), "me".into(), "api".into())?.issue(request, now)?.token;
//!
//! let verifier = Verifier::new(keys.clone(), Validation::new("me", "api"));
//! assert_eq!(verifier.verify(&token, now)?.sub, "alice");
//! assert!(verifier.verify(&token, now + 3600).unwrap_err().is_expired());
//! assert_eq!(keys.jwks()["keys"][0]["kid"], "k1");
//! # Ok(()) }
//! ```

mod algorithm;
mod authenticator;
mod cache;
mod claims;
mod error;
mod generate;
mod issuer;
mod keys;
mod parse;
mod revocation;
mod verifier;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod test_vectors;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use authenticator::{Authenticator, RevokeError};
pub use cache::{CacheStats, TokenCache};
pub use claims::{Claims, REGISTERED_CLAIMS};
pub use error::{KeyError, SignError, VerifyError};
pub use generate::{GeneratedKey, RsaKeySize, generate_key, generate_rsa_key};
pub use issuer::{IssuedToken, Issuer, TokenRequest, check_extra_claims};
pub use keys::{KeyMaterial, KeySet, KeySpec};
pub use revocation::{MemoryRevocationStore, RevocationError, RevocationStore, StoreFuture};
pub use verifier::{DEFAULT_MAX_TOKEN_LEN, RequiredTyp, Validation, Verifier};

#[cfg(test)]
mod tests {
    use super::*;

    fn shared<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn runtime_types_are_shareable_across_threads() {
        shared::<KeySet>();
        shared::<Verifier>();
        shared::<Issuer>();
        shared::<TokenCache>();
        shared::<MemoryRevocationStore>();
        shared::<std::sync::Arc<Claims>>();
        shared::<std::sync::Arc<dyn RevocationStore>>();
        shared::<VerifyError>();
    }
}
