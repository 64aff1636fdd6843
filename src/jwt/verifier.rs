//! Token verification: strict parsing, key chosen by `kid`, algorithm fixed by
//! the key, signature checked with jsonwebtoken's low-level `crypto::verify`,
//! then the registered claims.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::VerifyError;
use super::claims::Claims;
use super::keys::{KeyEntry, KeySet};
use super::parse::{self, Segments};

/// Longest token accepted by default: the `Authorization` header limit.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8192;

/// Which `typ` header values are required, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequiredTyp {
    /// RFC 9068 §4: `at+jwt` or `application/at+jwt`, case-insensitively.
    /// Keeps ID tokens and other JWTs from being used as access tokens.
    AccessToken,
}

/// What a token must satisfy beyond its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// The exact `iss` (byte-for-byte, RFC 9068 §4).
    pub issuer: String,
    /// The audience that must appear in `aud`.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`. Keep it small: we verify
    /// our own tokens.
    pub leeway: Duration,
    /// When set, the `typ` header must match.
    pub required_typ: Option<RequiredTyp>,
    /// Tokens longer than this are refused before any decoding.
    pub max_token_len: usize,
}

/// Verifies access tokens against a [`KeySet`] and a [`Validation`]. Cheap to
/// clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct Verifier {
    inner: Arc<VerifierInner>,
}

#[derive(Debug)]
struct VerifierInner {
    keys: KeySet,
    validation: Validation,
    leeway: i64,
}

// === impl Validation ===

impl Validation {
    /// Secure defaults: 30 s leeway, `typ` must be `at+jwt`, 8 KiB tokens.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Validation {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            required_typ: Some(RequiredTyp::AccessToken),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Sets the clock leeway.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets or clears the `typ` requirement (clear it only for a partner
    /// issuer that does not follow RFC 9068).
    pub fn with_required_typ(mut self, typ: Option<RequiredTyp>) -> Self {
        self.required_typ = typ;
        self
    }

    /// Sets the maximum token length.
    pub fn with_max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }
}

// === impl Verifier ===

impl Verifier {
    /// Binds keys and rules; all per-token work happens in
    /// [`verify`](Self::verify).
    pub fn new(keys: KeySet, validation: Validation) -> Self {
        let leeway = i64::try_from(validation.leeway.as_secs()).unwrap_or(i64::MAX);
        Verifier {
            inner: Arc::new(VerifierInner {
                keys,
                validation,
                leeway,
            }),
        }
    }

    /// The keys this verifier trusts.
    pub fn keys(&self) -> &KeySet {
        &self.inner.keys
    }

    /// The rules this verifier applies.
    pub fn validation(&self) -> &Validation {
        &self.inner.validation
    }

    /// Verifies `token` at time `now` (unix seconds) and returns its claims.
    ///
    /// In order: length; compact shape and canonical base64url; a strict JSON
    /// header; no `crit`/`b64`/`enc`/`zip`; `typ` if required; the key by
    /// exact `kid` (or the only key when there is no `kid`); `alg` equal to
    /// the key's algorithm; the signature; then a strict JSON payload, the
    /// claim types, `exp`/`nbf`/`iat`, `iss` and `aud`. `jku`, `x5u`, `jwk`
    /// and `x5c` are ignored, never fetched or trusted.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, VerifyError> {
        let (segments, key) = self.verify_signature(token)?;
        let payload = parse::b64_decode(segments.payload).ok_or(VerifyError::Malformed)?;
        let map = parse::json_object(&payload).ok_or(VerifyError::Malformed)?;
        let claims = Claims::from_payload(map, key.kid.clone(), self.inner.leeway)?;
        claims.check_time(now)?;
        let v = &self.inner.validation;
        if claims.iss.as_deref() != Some(v.issuer.as_str()) {
            return Err(VerifyError::Issuer);
        }
        if !claims.aud.contains(&v.audience) {
            return Err(VerifyError::Audience);
        }
        Ok(Arc::new(claims))
    }

    /// Everything up to and including the signature check; the payload is
    /// not decoded. Split out so tests can check RFC signatures on tokens
    /// that have long expired.
    fn verify_signature<'t>(
        &self,
        token: &'t str,
    ) -> Result<(Segments<'t>, &KeyEntry), VerifyError> {
        let v = &self.inner.validation;
        if token.len() > v.max_token_len {
            return Err(VerifyError::Malformed);
        }
        let segments = parse::split_compact(token).ok_or(VerifyError::Malformed)?;
        let header_bytes = parse::b64_decode(segments.header).ok_or(VerifyError::Malformed)?;
        let header = parse::json_object(&header_bytes).ok_or(VerifyError::Malformed)?;

        // RFC 7515 §4.1.11: we understand no extension, so any `crit` makes
        // the JWS invalid; `b64` (RFC 7797) and JWE parameters likewise.
        if ["crit", "b64", "enc", "zip"]
            .iter()
            .any(|h| header.contains_key(*h))
        {
            return Err(VerifyError::UnsupportedHeader);
        }
        if let Some(RequiredTyp::AccessToken) = v.required_typ {
            let ok = match header.get("typ") {
                Some(Value::String(t)) => {
                    t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
                }
                _ => false,
            };
            if !ok {
                return Err(VerifyError::Type);
            }
        }
        let key = match header.get("kid") {
            Some(Value::String(kid)) => self.inner.keys.find(kid),
            Some(_) => return Err(VerifyError::UnknownKey),
            None => self.inner.keys.only_key(),
        }
        .ok_or(VerifyError::UnknownKey)?;
        // The key decides the algorithm; the header must agree exactly.
        match header.get("alg") {
            Some(Value::String(alg)) if alg == key.algorithm.as_str() => {}
            _ => return Err(VerifyError::Algorithm),
        }
        // Strict decode first (canonical form); crypto::verify decodes again.
        parse::b64_decode(segments.signature).ok_or(VerifyError::Malformed)?;
        match jsonwebtoken::crypto::verify(
            segments.signature,
            segments.signing_input.as_bytes(),
            &key.decoding,
            key.algorithm.to_jsonwebtoken(),
        ) {
            Ok(true) => Ok((segments, key)),
            _ => Err(VerifyError::Signature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Algorithm, KeyMaterial, KeySpec};
    use super::*;
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    /// Before the RFC 7515 A tokens expired (2011-03-22).
    const RFC_NOW: i64 = 1_300_000_000;

    fn one(spec: KeySpec) -> Verifier {
        Verifier::new(
            KeySet::new(vec![spec], None).unwrap(),
            Validation::new("joe", "api").with_required_typ(None),
        )
    }

    fn sig_only(v: &Verifier, token: &str) -> Result<(), VerifyError> {
        v.verify_signature(token).map(|_| ())
    }

    /// Signs `header` and `payload` JSON with the A.1 key (HS256).
    fn hs_token(header: &Value, payload: &Value) -> String {
        raw_hs_token(
            header.to_string().as_bytes(),
            payload.to_string().as_bytes(),
        )
    }

    fn raw_hs_token(header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            parse::b64_encode(header),
            parse::b64_encode(payload)
        );
        let key = EncodingKey::from_secret(&b64d(RFC7515_A1_K));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{input}.{sig}")
    }

    fn good_claims() -> Value {
        json!({"iss": "joe", "aud": "api", "sub": "alice", "exp": NOW + 60, "iat": NOW})
    }

    fn hs_header() -> Value {
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "a1"})
    }

    fn a1_verifier() -> Verifier {
        Verifier::new(
            KeySet::new(vec![a1_spec("a1")], None).unwrap(),
            Validation::new("joe", "api"),
        )
    }

    // --- RFC known answers (signature level) ---

    #[test]
    fn rfc7515_a1_a2_a3_and_rfc8037_a4_signatures_verify() {
        sig_only(&one(a1_spec("a1")), RFC7515_A1).unwrap();
        sig_only(&one(a2_spec("a2")), RFC7515_A2).unwrap();
        sig_only(&one(a3_spec("a3")), RFC7515_A3).unwrap();
        sig_only(&one(ed_spec("ed")), RFC8037_A4).unwrap();
    }

    #[test]
    fn rfc7520_rs256_and_hs256_verify_by_kid() {
        let set = KeySet::new(
            vec![
                public_spec(
                    RFC7520_RS_KID,
                    Algorithm::RS256,
                    &rsa_public_der(&b64d(RFC7520_N), &[1, 0, 1]),
                ),
                KeySpec {
                    kid: RFC7520_HS_KID.into(),
                    algorithm: Algorithm::HS256,
                    material: KeyMaterial::Secret(b64d(RFC7520_HS_K)),
                },
            ],
            None,
        )
        .unwrap();
        let v = Verifier::new(set, Validation::new("x", "y").with_required_typ(None));
        sig_only(&v, RFC7520_RS256).unwrap();
        sig_only(&v, RFC7520_HS256).unwrap();
    }

    #[test]
    fn rfc_a1_is_rejected_as_expired_at_the_claims_step() {
        // Expired (2011) and no sub: the full verify refuses it.
        let v = one(a1_spec("a1"));
        assert_eq!(v.verify(RFC7515_A1, NOW), Err(VerifyError::Claims("sub")));
    }

    #[test]
    fn es256_high_s_signature_verifies_so_state_must_key_on_jti() {
        // V-ES256-HIGHS: ECDSA is malleable; documented, not a rejection.
        let t = with_a1_payload(V_ES256_HEADER, V_ES256_HIGHS_SIG);
        sig_only(&one(a3_spec("a3")), &t).unwrap();
        assert_ne!(t, RFC7515_A3);
    }

    // --- size and shape ---

    #[test]
    fn token_longer_than_max_is_rejected_before_decoding() {
        let v = Verifier::new(
            KeySet::new(vec![a1_spec("a1")], None).unwrap(),
            Validation::new("joe", "api").with_max_token_len(100),
        );
        let t = hs_token(&hs_header(), &good_claims());
        assert!(t.len() > 100);
        assert_eq!(v.verify(&t, NOW), Err(VerifyError::Malformed));
        // Garbage of that size is refused for size, not parsed.
        assert_eq!(v.verify(&"é".repeat(60), NOW), Err(VerifyError::Malformed));
        assert_eq!(
            a1_verifier().verify(&"a".repeat(9000), NOW),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn segment_count_and_alphabet_are_strict() {
        let v = one(a1_spec("a1"));
        let strip2 = format!("{V_STRIP_HEADER}.{A1_PAYLOAD}");
        let four = format!("{RFC7515_A1}.AAAA");
        let padded = format!("{RFC7515_A1}=");
        let spaced = RFC7515_A1.replacen('.', ". ", 1);
        for t in [
            strip2.as_str(),
            four.as_str(),
            V_FIVEPART,
            V_JSONSER,
            padded.as_str(),
            spaced.as_str(),
            &with_a1_payload(V_STRIP_HEADER, V_STDALPHA_SIG),
            "",
            "..",
        ] {
            assert_eq!(sig_only(&v, t), Err(VerifyError::Malformed), "{t}");
        }
    }

    #[test]
    fn v_strip_empty_signature_is_rejected() {
        let t = format!("{V_STRIP_HEADER}.{A1_PAYLOAD}.");
        assert_eq!(
            sig_only(&one(a1_spec("a1")), &t),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn v_noncanon_signature_with_nonzero_pad_bits_is_rejected() {
        let t = with_a1_payload(V_STRIP_HEADER, V_NONCANON_SIG);
        assert_eq!(
            sig_only(&one(a1_spec("a1")), &t),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn header_and_payload_must_be_json_objects_without_bom() {
        let v = a1_verifier();
        let claims = good_claims().to_string();
        let hdr = hs_header().to_string();
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"[]".to_vec(), claims.clone().into_bytes()),
            (hdr.clone().into_bytes(), b"\"x\"".to_vec()),
            (hdr.clone().into_bytes(), b"1".to_vec()),
            (
                [b"\xEF\xBB\xBF", hdr.as_bytes()].concat(),
                claims.clone().into_bytes(),
            ),
            (
                hdr.clone().into_bytes(),
                [b"\xEF\xBB\xBF", claims.as_bytes()].concat(),
            ),
            (hdr.clone().into_bytes(), b"{\"sub\":\"\xff\"}".to_vec()),
            (hdr.clone().into_bytes(), br#"{"sub":"\ud800"}"#.to_vec()),
        ];
        for (h, p) in cases {
            assert_eq!(
                v.verify(&raw_hs_token(&h, &p), NOW),
                Err(VerifyError::Malformed)
            );
        }
    }

    #[test]
    fn payload_nested_10000_levels_is_rejected_without_overflow() {
        let mut payload = good_claims().to_string();
        payload.pop();
        payload.push_str(&format!(
            ",\"deep\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        ));
        let v = Verifier::new(
            KeySet::new(vec![a1_spec("a1")], None).unwrap(),
            Validation::new("joe", "api").with_max_token_len(1 << 20),
        );
        let t = raw_hs_token(hs_header().to_string().as_bytes(), payload.as_bytes());
        assert_eq!(v.verify(&t, NOW), Err(VerifyError::Malformed));
    }

    #[test]
    fn v_dupkey_payload_is_rejected() {
        // Correctly MACed with the A.1 key: only the strict parser stops it.
        let v = one(a1_spec("a1"));
        sig_only(&v, V_DUPKEY_PAYLOAD).unwrap();
        assert_eq!(
            v.verify(V_DUPKEY_PAYLOAD, RFC_NOW),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn v_dupkey_hdr_is_rejected() {
        let t = with_a1_payload(V_DUPKEY_HDR_HEADER, V_DUPKEY_HDR_SIG);
        assert_eq!(
            sig_only(&one(a1_spec("a1")), &t),
            Err(VerifyError::Malformed)
        );
    }

    // --- alg, kid, crit ---

    #[test]
    fn alg_none_in_every_spelling_is_rejected() {
        let v = one(a1_spec("a1"));
        assert_eq!(sig_only(&v, RFC7515_A5_NONE), Err(VerifyError::Malformed));
        for h in V_NONE_HEADERS {
            // With the empty signature of the vectors, and with a garbage one.
            let empty = format!("{h}.{A1_PAYLOAD}.");
            assert_eq!(sig_only(&v, &empty), Err(VerifyError::Malformed));
            let garbage = with_a1_payload(h, "AAAA");
            assert_eq!(sig_only(&v, &garbage), Err(VerifyError::Algorithm), "{h}");
        }
        let none = with_a1_payload("eyJhbGciOiJub25lIn0", "AAAA");
        assert_eq!(sig_only(&v, &none), Err(VerifyError::Algorithm));
    }

    #[test]
    fn alg_must_match_case_exactly() {
        let v = a1_verifier();
        let t = hs_token(
            &json!({"alg": "hs256", "typ": "at+jwt", "kid": "a1"}),
            &good_claims(),
        );
        assert_eq!(v.verify(&t, NOW), Err(VerifyError::Algorithm));
        let t = hs_token(&json!({"typ": "at+jwt", "kid": "a1"}), &good_claims());
        assert_eq!(v.verify(&t, NOW), Err(VerifyError::Algorithm));
        let t = hs_token(
            &json!({"alg": ["HS256"], "typ": "at+jwt", "kid": "a1"}),
            &good_claims(),
        );
        assert_eq!(v.verify(&t, NOW), Err(VerifyError::Algorithm));
    }

    #[test]
    fn v_algconf_rsa_public_key_as_hmac_secret_is_rejected() {
        let v = one(a2_spec("a2"));
        assert_eq!(sig_only(&v, V_ALGCONF), Err(VerifyError::Algorithm));
    }

    #[test]
    fn allow_listed_alg_not_bound_to_the_kid_is_rejected() {
        // Row 6: ES256 header with the kid of the EdDSA key.
        let v = Verifier::new(
            rfc_keyset(),
            Validation::new("joe", "api").with_required_typ(None),
        );
        let hdr = parse::b64_encode(br#"{"alg":"ES256","kid":"ed"}"#);
        let t = format!(
            "{hdr}.{A1_PAYLOAD}.{}",
            RFC7515_A3.rsplit('.').next().unwrap()
        );
        assert_eq!(sig_only(&v, &t), Err(VerifyError::Algorithm));
    }

    #[test]
    fn v_kid_trav_and_v_kid_sqli_are_unknown_keys() {
        let v = one(a1_spec("a1"));
        let trav = with_a1_payload(V_KID_TRAV_HEADER, V_KID_TRAV_SIG);
        let sqli = with_a1_payload(V_KID_SQLI_HEADER, V_KID_SQLI_SIG);
        assert_eq!(sig_only(&v, &trav), Err(VerifyError::UnknownKey));
        assert_eq!(sig_only(&v, &sqli), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn kid_must_be_an_exact_string() {
        let v = a1_verifier();
        for kid in [
            json!("A1"),
            json!("a1 "),
            json!(1),
            json!(["a1"]),
            json!({"k": "a1"}),
            json!(null),
            json!("a1\u{0}"),
        ] {
            let t = hs_token(
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
                &good_claims(),
            );
            assert_eq!(v.verify(&t, NOW), Err(VerifyError::UnknownKey), "{kid}");
        }
        let long = "k".repeat(10_000);
        let t = hs_token(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": long}),
            &good_claims(),
        );
        assert!(v.verify(&t, NOW).is_err());
    }

    #[test]
    fn missing_kid_uses_the_key_only_when_there_is_exactly_one() {
        let hdr = json!({"alg": "HS256", "typ": "at+jwt"});
        let t = hs_token(&hdr, &good_claims());
        a1_verifier().verify(&t, NOW).unwrap();
        let two = Verifier::new(
            KeySet::new(vec![a1_spec("a1"), a3_spec("a3")], None).unwrap(),
            Validation::new("joe", "api"),
        );
        assert_eq!(two.verify(&t, NOW), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn crit_and_b64_headers_are_rejected() {
        let v = one(a1_spec("a1"));
        let crit = with_a1_payload(V_CRIT_HS256_HEADER, V_CRIT_HS256_SIG);
        assert_eq!(sig_only(&v, &crit), Err(VerifyError::UnsupportedHeader));
        assert_eq!(sig_only(&v, RFC7515_E_CRIT), Err(VerifyError::Malformed));
        let av = a1_verifier();
        for extra in [
            json!({"crit": []}),
            json!({"crit": ["alg"]}),
            json!({"b64": false, "crit": ["b64"]}),
            json!({"b64": true}),
        ] {
            let mut h = hs_header();
            for (k, val) in extra.as_object().unwrap() {
                h[k] = val.clone();
            }
            assert_eq!(
                av.verify(&hs_token(&h, &good_claims()), NOW),
                Err(VerifyError::UnsupportedHeader)
            );
        }
    }

    #[test]
    fn jku_x5u_jwk_x5c_are_ignored_not_trusted() {
        let v = a1_verifier();
        let mut h = hs_header();
        h["jku"] = json!("https://attacker.example/jwks.json");
        h["x5u"] = json!("https://attacker.example/cert");
        h["x5c"] = json!(["MIIB"]);
        h["jwk"] = json!({"kty": "oct", "k": "AAAA"});
        // Signed with the configured key: accepted, the URLs play no part.
        v.verify(&hs_token(&h, &good_claims()), NOW).unwrap();
        // Signed with the key embedded in `jwk`: rejected.
        let input = format!(
            "{}.{}",
            parse::b64_encode(h.to_string()),
            parse::b64_encode(good_claims().to_string())
        );
        let key = EncodingKey::from_secret(&[0, 0, 0]);
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .unwrap();
        assert_eq!(
            v.verify(&format!("{input}.{sig}"), NOW),
            Err(VerifyError::Signature)
        );
    }

    // --- signatures ---

    #[test]
    fn v_emptykey_is_rejected() {
        let t = with_a1_payload(V_EMPTYKEY_HEADER, V_EMPTYKEY_SIG);
        assert_eq!(
            sig_only(&one(a1_spec("a1")), &t),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let v = a1_verifier();
        let t = hs_token(&hs_header(), &good_claims());
        let mut parts: Vec<&str> = t.split('.').collect();
        let mut evil = good_claims();
        evil["sub"] = json!("admin");
        let evil = parse::b64_encode(evil.to_string());
        parts[1] = &evil;
        assert_eq!(v.verify(&parts.join("."), NOW), Err(VerifyError::Signature));
        // And the RFC A.1 signature over a changed payload.
        let changed = RFC7515_A1.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Gi", 1);
        assert_eq!(
            sig_only(&one(a1_spec("a1")), &changed),
            Err(VerifyError::Signature)
        );
    }

    #[test]
    fn v_es256_zero_and_der_signatures_are_rejected() {
        let v = one(a3_spec("a3"));
        let zero = with_a1_payload(V_ES256_HEADER, V_ES256_ZERO_SIG);
        let der = with_a1_payload(V_ES256_HEADER, V_ES256_DER_SIG);
        assert_eq!(sig_only(&v, &zero), Err(VerifyError::Signature));
        assert_eq!(sig_only(&v, &der), Err(VerifyError::Signature));
    }

    #[test]
    fn v_ed_s_plus_l_is_rejected() {
        assert_eq!(
            sig_only(&one(ed_spec("ed")), V_ED_SPLUSL),
            Err(VerifyError::Signature)
        );
    }

    // --- claims ---

    fn verify_claims(claims: Value) -> Result<Arc<Claims>, VerifyError> {
        a1_verifier().verify(&hs_token(&hs_header(), &claims), NOW)
    }

    #[test]
    fn baseline_token_is_accepted() {
        let c = verify_claims(good_claims()).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.kid(), "a1");
    }

    #[test]
    fn exp_is_required_and_must_be_an_integer_number() {
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify_claims(c), Err(VerifyError::Claims("exp")));
        for bad in [
            json!("1893456000"),
            json!(true),
            json!(null),
            json!({}),
            json!(-1),
            json!(18446744073709551616.0),
            json!(1.5),
        ] {
            let mut c = good_claims();
            c["exp"] = bad.clone();
            assert_eq!(verify_claims(c), Err(VerifyError::Claims("exp")), "{bad}");
        }
        // 1e400 is not even valid JSON for serde_json: malformed.
        let payload = br#"{"iss":"joe","aud":"api","sub":"a","exp":1e400}"#;
        let t = raw_hs_token(hs_header().to_string().as_bytes(), payload);
        assert_eq!(a1_verifier().verify(&t, NOW), Err(VerifyError::Malformed));
    }

    #[test]
    fn nbf_and_iat_of_wrong_type_are_rejected() {
        for name in ["nbf", "iat"] {
            let mut c = good_claims();
            c[name] = json!("1");
            assert!(matches!(verify_claims(c), Err(VerifyError::Claims(_))));
        }
    }

    #[test]
    fn expired_token_reports_expired() {
        let mut c = good_claims();
        c["exp"] = json!(NOW - 31);
        let err = verify_claims(c).unwrap_err();
        assert!(err.is_expired());
        assert_eq!(err.description(), "The access token expired");
        let mut c = good_claims();
        c["exp"] = json!(NOW - 29);
        verify_claims(c).unwrap();
    }

    #[test]
    fn nbf_and_iat_in_the_future_are_rejected() {
        let mut c = good_claims();
        c["nbf"] = json!(NOW + 31);
        assert_eq!(verify_claims(c), Err(VerifyError::NotYetValid));
        let mut c = good_claims();
        c["iat"] = json!(NOW + 3600);
        assert_eq!(verify_claims(c), Err(VerifyError::IssuedInFuture));
    }

    #[test]
    fn iss_is_compared_byte_for_byte() {
        for iss in [
            json!("joe/"),
            json!("Joe"),
            json!(" joe"),
            json!("joe "),
            json!("jоe"),
            json!(null),
        ] {
            let mut c = good_claims();
            c["iss"] = iss.clone();
            assert!(verify_claims(c).is_err(), "{iss}");
        }
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("iss");
        assert_eq!(verify_claims(c), Err(VerifyError::Issuer));
    }

    #[test]
    fn aud_must_contain_the_audience_exactly() {
        for (aud, ok) in [
            (json!("https://other-api"), false),
            (json!([]), false),
            (json!("api/"), false),
            (json!(["other", "api"]), true),
            (json!("api"), true),
        ] {
            let mut c = good_claims();
            c["aud"] = aud.clone();
            assert_eq!(verify_claims(c).is_ok(), ok, "{aud}");
        }
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(verify_claims(c), Err(VerifyError::Audience));
    }

    #[test]
    fn sub_is_required() {
        let mut c = good_claims();
        c["sub"] = json!("");
        assert_eq!(verify_claims(c), Err(VerifyError::Claims("sub")));
    }

    #[test]
    fn typ_must_be_at_jwt_when_required() {
        let v = a1_verifier();
        for (typ, ok) in [
            (Some(json!("at+jwt")), true),
            (Some(json!("AT+JWT")), true),
            (Some(json!("application/at+jwt")), true),
            (Some(json!("Application/AT+JWT")), true),
            (Some(json!("JWT")), false),
            (Some(json!("at+jwt ")), false),
            (Some(json!(1)), false),
            (None, false),
        ] {
            let mut h = json!({"alg": "HS256", "kid": "a1"});
            if let Some(t) = &typ {
                h["typ"] = t.clone();
            }
            let r = v.verify(&hs_token(&h, &good_claims()), NOW);
            assert_eq!(r.is_ok(), ok, "{typ:?}");
            if !ok {
                assert_eq!(r, Err(VerifyError::Type));
            }
        }
    }
}
