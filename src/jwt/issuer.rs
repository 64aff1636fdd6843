//! Token issuance: RFC 9068 access tokens signed with the key set's signing
//! key.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::SignError;
use super::claims::{MAX_NUMERIC_DATE, REGISTERED_CLAIMS};
use super::keys::KeySet;
use super::parse::b64_encode;
use super::verifier::DEFAULT_MAX_TOKEN_LEN;

/// What to put in a token; the issuer adds `iss`, `aud`, `iat`, `nbf`, `exp`
/// and `jti`.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// The `sub` claim: non-empty, no control characters.
    pub subject: String,
    /// Lifetime; whole seconds, at least one.
    pub ttl: Duration,
    /// Space-delimited scopes, if any.
    pub scope: Option<String>,
    /// The OAuth client, if any.
    pub client_id: Option<String>,
    /// Further claims (e.g. `role`); may not reuse a registered name.
    pub extra: Map<String, Value>,
}

/// A signed token and what the token endpoint answers about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Seconds until expiry, for the `expires_in` field (RFC 6749 §5.1).
    pub expires_in: u64,
    /// The token id, for revocation.
    pub jti: String,
    /// Expiry, unix seconds.
    pub exp: i64,
}

/// Signs access tokens. Cheap to clone: one `Arc`.
///
/// The header (`alg`, `typ: at+jwt`, `kid`) is fixed per signing key and
/// encoded once. RS* signing re-parses the private key on every call (about
/// 1 ms): prefer EdDSA, ES256 or HMAC when issuance throughput matters.
#[derive(Clone, Debug)]
pub struct Issuer {
    inner: Arc<IssuerInner>,
}

#[derive(Debug)]
struct IssuerInner {
    keys: KeySet,
    issuer: String,
    audience: String,
    header_b64: String,
    max_token_len: usize,
}

#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

// === impl Issuer ===

impl Issuer {
    /// Fails with [`SignError::NoSigningKey`] when `keys` has no signing key,
    /// so a misconfiguration shows at start-up.
    pub fn new(keys: KeySet, issuer: String, audience: String) -> Result<Issuer, SignError> {
        let entry = keys.signing_entry().ok_or(SignError::NoSigningKey)?;
        let header = json!({
            "alg": entry.algorithm.as_str(),
            "typ": "at+jwt",
            "kid": &*entry.kid,
        });
        let header_b64 = b64_encode(header.to_string());
        Ok(Issuer {
            inner: Arc::new(IssuerInner {
                keys,
                issuer,
                audience,
                header_b64,
                max_token_len: DEFAULT_MAX_TOKEN_LEN,
            }),
        })
    }

    /// Refuses to mint tokens longer than `len` (match the verifier's
    /// `max_token_len`, or the token could never be used).
    pub fn with_max_token_len(self, len: usize) -> Self {
        let inner = &self.inner;
        Issuer {
            inner: Arc::new(IssuerInner {
                keys: inner.keys.clone(),
                issuer: inner.issuer.clone(),
                audience: inner.audience.clone(),
                header_b64: inner.header_b64.clone(),
                max_token_len: len,
            }),
        }
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        self.inner.keys.signing_kid().unwrap_or_default()
    }

    /// Issues a token valid from `now` (unix seconds) for `req.ttl`.
    pub fn issue(&self, req: TokenRequest, now: i64) -> Result<IssuedToken, SignError> {
        let inner = &*self.inner;
        let entry = inner.keys.signing_entry().ok_or(SignError::NoSigningKey)?;
        let enc = entry.encoding.as_ref().ok_or(SignError::NoSigningKey)?;

        if req.subject.is_empty() || has_control(&req.subject) {
            return Err(SignError::InvalidClaim("sub"));
        }
        if req.scope.as_deref().is_some_and(has_control) {
            return Err(SignError::InvalidClaim("scope"));
        }
        if req.client_id.as_deref().is_some_and(has_control) {
            return Err(SignError::InvalidClaim("client_id"));
        }
        check_extra_claims(&req.extra)?;

        let ttl = i64::try_from(req.ttl.as_secs()).map_err(|_| SignError::InvalidTtl)?;
        if ttl < 1 || now < 0 {
            return Err(SignError::InvalidTtl);
        }
        let exp = now
            .checked_add(ttl)
            .filter(|e| *e <= MAX_NUMERIC_DATE)
            .ok_or(SignError::InvalidTtl)?;
        let jti = new_jti()?;

        let payload = Payload {
            iss: &inner.issuer,
            aud: &inner.audience,
            sub: &req.subject,
            iat: now,
            nbf: now,
            exp,
            jti: &jti,
            scope: req.scope.as_deref(),
            client_id: req.client_id.as_deref(),
            extra: &req.extra,
        };
        let json = serde_json::to_vec(&payload).map_err(|_| SignError::Crypto)?;
        let mut token = String::with_capacity(inner.header_b64.len() + json.len() * 4 / 3 + 400);
        token.push_str(&inner.header_b64);
        token.push('.');
        token.push_str(&b64_encode(&json));
        // Check the size before signing, which may cost a millisecond.
        if token.len() + 1 + signature_b64_len(entry.algorithm) > inner.max_token_len {
            return Err(SignError::TooLarge);
        }
        let sig =
            jsonwebtoken::crypto::sign(token.as_bytes(), enc, entry.algorithm.to_jsonwebtoken())
                .map_err(|_| SignError::Crypto)?;
        token.push('.');
        token.push_str(&sig);
        if token.len() > inner.max_token_len {
            return Err(SignError::TooLarge);
        }
        Ok(IssuedToken {
            token,
            expires_in: ttl.unsigned_abs(),
            jti,
            exp,
        })
    }
}

/// Checks extra claims before issuing (and in config validation): no
/// registered claim name, no control characters in any string or key.
pub fn check_extra_claims(extra: &Map<String, Value>) -> Result<(), SignError> {
    if let Some(name) = extra
        .keys()
        .find(|k| REGISTERED_CLAIMS.contains(&k.as_str()))
    {
        return Err(SignError::ReservedClaim(name.clone()));
    }
    for (k, v) in extra {
        if has_control(k) || !value_is_clean(v) {
            return Err(SignError::InvalidClaim("extra"));
        }
    }
    Ok(())
}

/// CR, LF, NUL and every other control character would split or corrupt the
/// headers the gateway builds from claims (CWE-113).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn value_is_clean(v: &Value) -> bool {
    match v {
        Value::String(s) => !has_control(s),
        Value::Array(items) => items.iter().all(value_is_clean),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| !has_control(k) && value_is_clean(v)),
        _ => true,
    }
}

/// 128 random bits, base64url (22 characters).
fn new_jti() -> Result<String, SignError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| SignError::Crypto)?;
    Ok(b64_encode(bytes))
}

/// Upper bound of the encoded signature length per algorithm.
fn signature_b64_len(alg: super::Algorithm) -> usize {
    use super::Algorithm as A;
    let bytes: usize = match alg {
        A::HS256 => 32,
        A::HS384 | A::ES384 => 48 * 2,
        A::HS512 | A::ES256 | A::EdDSA => 64,
        A::RS256 | A::RS384 | A::RS512 | A::PS256 => 1024, // up to 8192-bit keys
    };
    bytes.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Algorithm, KeySet, RequiredTyp, Validation, Verifier, VerifyError};
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn issuer_for(alg: Algorithm) -> (Issuer, Verifier) {
        let keys = KeySet::new(vec![private_spec(alg)], Some(alg.as_str())).unwrap();
        let issuer = Issuer::new(keys.clone(), "portcullis".into(), "api".into()).unwrap();
        let verifier = Verifier::new(
            keys,
            Validation::new("portcullis", "api").with_required_typ(Some(RequiredTyp::AccessToken)),
        );
        (issuer, verifier)
    }

    fn request() -> TokenRequest {
        let mut extra = Map::new();
        extra.insert("role".into(), json!("admin"));
        extra.insert("user_id".into(), json!(101));
        TokenRequest {
            subject: "alice".into(),
            ttl: Duration::from_secs(3600),
            scope: Some("read write".into()),
            client_id: Some("cli".into()),
            extra,
        }
    }

    #[test]
    fn issued_tokens_verify_for_all_ten_algorithms() {
        for alg in Algorithm::ALL {
            let (issuer, verifier) = issuer_for(alg);
            let t = issuer.issue(request(), NOW).unwrap();
            let c = verifier.verify(&t.token, NOW + 10).unwrap();
            assert_eq!(c.sub, "alice", "{alg}");
            assert_eq!(c.aud, ["api"]);
            assert_eq!(c.iss.as_deref(), Some("portcullis"));
            assert_eq!((c.iat, c.nbf, c.exp), (Some(NOW), Some(NOW), NOW + 3600));
            assert_eq!(c.jti.as_deref(), Some(t.jti.as_str()));
            assert_eq!(c.get("role").unwrap().as_ref(), &json!("admin"));
            assert_eq!(c.scopes().collect::<Vec<_>>(), ["read", "write"]);
            assert_eq!(c.client_id.as_deref(), Some("cli"));
            assert_eq!(c.kid(), alg.as_str());
            assert_eq!((t.expires_in, t.exp), (3600, NOW + 3600));
            assert_eq!(
                verifier.verify(&t.token, NOW + 3600 + 30),
                Err(VerifyError::Expired)
            );
        }
    }

    #[test]
    fn header_is_alg_typ_kid() {
        let (issuer, _) = issuer_for(Algorithm::ES256);
        let t = issuer.issue(request(), NOW).unwrap();
        let header = t.token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&b64d(header)).unwrap();
        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "ES256"})
        );
    }

    #[test]
    fn jti_is_unique_and_128_bits() {
        let (issuer, _) = issuer_for(Algorithm::HS256);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let t = issuer.issue(request(), NOW).unwrap();
            assert_eq!(b64d(&t.jti).len(), 16);
            assert!(seen.insert(t.jti));
        }
    }

    #[test]
    fn registered_names_in_extra_are_refused() {
        for name in REGISTERED_CLAIMS {
            let mut extra = Map::new();
            extra.insert(name.into(), json!("x"));
            assert_eq!(
                check_extra_claims(&extra),
                Err(SignError::ReservedClaim(name.into()))
            );
            let (issuer, _) = issuer_for(Algorithm::HS256);
            let req = TokenRequest { extra, ..request() };
            assert_eq!(
                issuer.issue(req, NOW).unwrap_err(),
                SignError::ReservedClaim(name.into())
            );
        }
    }

    #[test]
    fn control_characters_are_refused_in_sub_and_string_claims() {
        let (issuer, _) = issuer_for(Algorithm::HS256);
        for bad in ["alice\r\nX-Admin: true", "alice\u{0}", "a\nb", ""] {
            let req = TokenRequest {
                subject: bad.into(),
                ..request()
            };
            assert_eq!(
                issuer.issue(req, NOW).unwrap_err(),
                SignError::InvalidClaim("sub")
            );
        }
        let req = TokenRequest {
            scope: Some("read\r\n".into()),
            ..request()
        };
        assert_eq!(
            issuer.issue(req, NOW).unwrap_err(),
            SignError::InvalidClaim("scope")
        );
        let req = TokenRequest {
            client_id: Some("c\u{0}".into()),
            ..request()
        };
        assert_eq!(
            issuer.issue(req, NOW).unwrap_err(),
            SignError::InvalidClaim("client_id")
        );
        for v in [json!("a\rb"), json!(["ok", "a\nb"]), json!({"k": "\u{0}"})] {
            let mut extra = Map::new();
            extra.insert("name".into(), v);
            let req = TokenRequest { extra, ..request() };
            assert_eq!(
                issuer.issue(req, NOW).unwrap_err(),
                SignError::InvalidClaim("extra")
            );
        }
    }

    #[test]
    fn zero_or_huge_ttl_is_refused() {
        let (issuer, _) = issuer_for(Algorithm::HS256);
        for ttl in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(u64::MAX),
        ] {
            let req = TokenRequest { ttl, ..request() };
            assert_eq!(issuer.issue(req, NOW).unwrap_err(), SignError::InvalidTtl);
        }
    }

    #[test]
    fn oversized_tokens_are_refused() {
        let (issuer, _) = issuer_for(Algorithm::HS256);
        let mut extra = Map::new();
        extra.insert("blob".into(), json!("x".repeat(9000)));
        let req = TokenRequest { extra, ..request() };
        assert_eq!(issuer.issue(req, NOW).unwrap_err(), SignError::TooLarge);
    }

    #[test]
    fn issuer_needs_a_signing_key() {
        let keys = KeySet::new(vec![private_spec(Algorithm::HS256)], None).unwrap();
        assert_eq!(
            Issuer::new(keys, "i".into(), "a".into()).unwrap_err(),
            SignError::NoSigningKey
        );
    }

    // --- cross-check with an independent JOSE implementation (jwt-compact) ---

    mod independent {
        use super::*;
        use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPublicKey};
        use jwt_compact::{AlgorithmExt, Token, UntrustedToken};

        type Any = serde_json::Map<String, Value>;

        fn check_common(token: &Token<Any>) {
            let c = &token.claims().custom;
            assert_eq!(c["sub"], "alice");
            assert_eq!(c["aud"], "api");
            assert_eq!(c["iss"], "portcullis");
            assert_eq!(c["role"], "admin");
            assert_eq!(token.header().token_type.as_deref(), Some("at+jwt"));
        }

        fn issue(alg: Algorithm) -> String {
            issuer_for(alg).0.issue(request(), NOW).unwrap().token
        }

        fn jwk_param(alg: Algorithm, name: &str) -> Vec<u8> {
            let keys = KeySet::new(vec![private_spec(alg)], None).unwrap();
            b64d(keys.jwks()["keys"][0][name].as_str().unwrap())
        }

        #[test]
        fn hs256_verifies_with_jwt_compact() {
            let t = issue(Algorithm::HS256);
            let secret: Vec<u8> = (0..32).collect();
            let key = Hs256Key::new(secret);
            let untrusted = UntrustedToken::new(&t).unwrap();
            let token: Token<Any> = Hs256.validator(&key).validate(&untrusted).unwrap();
            check_common(&token);
        }

        #[test]
        fn es256_verifies_with_jwt_compact() {
            let t = issue(Algorithm::ES256);
            // Key taken from our JWKS: cross-checks the JWKS as well.
            let (x, y) = (
                jwk_param(Algorithm::ES256, "x"),
                jwk_param(Algorithm::ES256, "y"),
            );
            let point = [&[4u8][..], &x, &y].concat();
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
            let untrusted = UntrustedToken::new(&t).unwrap();
            let token: Token<Any> = Es256.validator(&key).validate(&untrusted).unwrap();
            check_common(&token);
        }

        #[test]
        fn rs256_verifies_with_jwt_compact() {
            let t = issue(Algorithm::RS256);
            let n = rsa::BigUint::from_bytes_be(&jwk_param(Algorithm::RS256, "n"));
            let e = rsa::BigUint::from_bytes_be(&jwk_param(Algorithm::RS256, "e"));
            let key = RsaPublicKey::new(n, e).unwrap();
            let untrusted = UntrustedToken::new(&t).unwrap();
            let token: Token<Any> = Rsa::rs256().validator(&key).validate(&untrusted).unwrap();
            check_common(&token);
        }

        #[test]
        fn eddsa_verifies_with_jwt_compact() {
            let t = issue(Algorithm::EdDSA);
            let x = jwk_param(Algorithm::EdDSA, "x");
            let key = ed25519_compact::PublicKey::from_slice(&x).unwrap();
            let untrusted = UntrustedToken::new(&t).unwrap();
            let token: Token<Any> = Ed25519.validator(&key).validate(&untrusted).unwrap();
            check_common(&token);
        }

        #[test]
        fn public_pem_matches_jwks_key() {
            // The generated public PEM is accepted and yields the same JWK.
            let pem = public_pem(Algorithm::EdDSA);
            let keys = KeySet::new(
                vec![super::super::super::KeySpec {
                    kid: "p".into(),
                    algorithm: Algorithm::EdDSA,
                    material: super::super::super::KeyMaterial::PublicPem(pem.into_bytes()),
                }],
                None,
            )
            .unwrap();
            assert_eq!(
                b64d(keys.jwks()["keys"][0]["x"].as_str().unwrap()),
                jwk_param(Algorithm::EdDSA, "x")
            );
        }
    }
}
