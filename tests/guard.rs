//! The JWT guard, black-box (issue 4; SECURITY_CASES §1-3 and §6): a real gateway on
//! loopback in front of a recording upstream, fed hand-made attack tokens. Every
//! refusal is checked on the wire (status, `WWW-Authenticate`, JSON body) and for its
//! side effects: the upstream was not called, and the validated-token cache did not grow.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

mod auth_support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use portcullis::gateway::auth_parts;
use portcullis::{Body, Claims, Config, Gateway, JwtGuardLayer};
use rsa::pkcs8::EncodePublicKey;
use serde_json::{Value, json};
use tower::{ServiceBuilder, service_fn};

/// The fixed `error_description`s of `invalid_token` (jwt::VerifyError and the guard).
const MALFORMED: &str = "The access token is malformed";
const UNSUPPORTED: &str = "The access token uses an unsupported header";
const NOT_ACCESS: &str = "The token is not an access token";
const UNKNOWN_KEY: &str = "The access token is signed with an unknown key";
const ALGORITHM: &str = "The access token uses an unexpected algorithm";
const SIGNATURE: &str = "The access token signature is invalid";
const EXPIRED: &str = "The access token expired";
const NOT_YET: &str = "The access token is not yet valid";
const FUTURE_IAT: &str = "The access token is issued in the future";
const ISSUER: &str = "The access token has an unexpected issuer";
const AUDIENCE: &str = "The access token is not meant for this audience";
const CLAIMS: &str = "The access token has invalid claims";
const REVOKED: &str = "The access token was revoked";
const UNFORWARDABLE: &str = "The access token has a claim that cannot be forwarded";

/// `jwt.leeway` of the main gateway, in seconds.
const LEEWAY: i64 = 30;

/// RFC 7515 A.2 RSA modulus (SECURITY_CASES §11.2), e = 65537.
const RFC7515_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
/// SECURITY_CASES §12: HS256 MACed with the A.2 public key's SPKI PEM.
const V_ALGCONF: &str = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.c8Tg3ipPrf5_HrYg61gCx0plq6GU74R-LeYmADiLgfs";
/// RFC 7515 A.5, `alg: none`.
const RFC7515_A5_NONE: &str = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";
/// SECURITY_CASES §12 V-FIVEPART (JWE-shaped).
const V_FIVEPART: &str =
    "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA";

/// The SPKI PEM (with its trailing newline) of the RFC 7515 A.2 public key.
fn a2_public_pem() -> String {
    let n = URL_SAFE_NO_PAD.decode(RFC7515_A2_N).unwrap();
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from(65537u32),
    )
    .unwrap();
    key.to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap()
}

/// The gateway of these tests: HS256 signing key `k1`, the RFC 7515 A.2 RSA public key
/// as verify-only key `rsa`, one password user, and a route per behaviour.
fn config(upstream: &str, leeway: &str) -> String {
    let pem = a2_public_pem();
    format!(
        r#"
[log]
access_log = false

[jwt]
issuer = "{ISS}"
audience = "{AUD}"
leeway = "{leeway}"
realm = "{REALM}"
signing_key = "k1"

[[jwt.keys]]
kid = "k1"
algorithm = "HS256"
secret = "{SECRET}"

[[jwt.keys]]
kid = "rsa"
algorithm = "RS256"
public_key = '''
{pem}'''

[token]
rate_per_minute = 0

[[users]]
username = "alice"
password_hash = "{ALICE_HASH}"
scope = "read"

[[routes]]
path = "/api"
upstream = "{upstream}"
forward_claims = {{ sub = "X-User-Id", role = "X-User-Role", user_id = "X-User-Num" }}

[[routes]]
path = "/public"
upstream = "{upstream}"
auth = "public"

[[routes]]
path = "/admin"
upstream = "{upstream}"
require = {{ role = ["admin", "ops"], scope = ["read", "write"] }}

[[routes]]
path = "/opt"
upstream = "{upstream}"
auth = "optional"

[[routes]]
path = "/fwd"
upstream = "{upstream}"
forward_token = true

[[routes]]
path = "/cookie"
upstream = "{upstream}"
cookie = "access_token"
"#
    )
}

/// A gateway built from [`config`] with a 30 s leeway, and its upstream.
async fn setup() -> (std::net::SocketAddr, Upstream) {
    let upstream = Upstream::start().await;
    let gw = start(&config(&upstream.url(), "30s")).await;
    (gw, upstream)
}

/// Replaces the last character of the signature with one that has the same meaningful
/// bits but non-zero padding bits (SECURITY_CASES row 30c).
fn non_canonical_tail(token: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *token.as_bytes().last().unwrap();
    let idx = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(idx % 4, 0, "a 32-byte signature leaves two zero pad bits");
    let mut out = token[..token.len() - 1].to_owned();
    out.push(ALPHABET[idx + 1] as char);
    out
}

/// A valid token whose signature contains `-` or `_`, rewritten in the standard base64
/// alphabet (`+`, `/`): the same bytes, not the canonical encoding.
fn standard_alphabet() -> String {
    loop {
        let t = token("alice");
        let (input, sig) = t.rsplit_once('.').unwrap();
        if sig.contains(['-', '_']) {
            return format!("{input}.{}", sig.replace('-', "+").replace('_', "/"));
        }
    }
}

/// Every hand-made token the guard must refuse with 401 `invalid_token`, with the
/// reason it must give (so each is refused for the intended reason).
fn attack_tokens() -> Vec<(String, String, &'static str)> {
    let now = now();
    let key = SECRET.as_bytes();
    let good = good_claims("alice", now);
    let with = |changes: Value| {
        let mut claims = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        jws(&at_header("k1"), &claims, key)
    };
    let payload = b64(good.to_string());
    let pem = a2_public_pem();
    // The PEM really is the key of V-ALGCONF: same bytes, same MAC.
    assert_eq!(pem.len(), 451);
    let (algconf_input, algconf_sig) = V_ALGCONF.rsplit_once('.').unwrap();
    assert_eq!(hs256(pem.as_bytes(), algconf_input), algconf_sig);

    let valid = token("alice");
    let (valid_input, valid_sig) = valid.rsplit_once('.').unwrap();
    let valid_header = valid.split('.').next().unwrap();
    let tampered_payload = b64(good_claims("admin", now).to_string());
    let attacker = b"attacker-chosen-hmac-key-0123456789abcdef";

    let mut cases: Vec<(String, String, &'static str)> = Vec::new();
    let mut add = |name: &str, token: String, why: &'static str| {
        cases.push((name.to_owned(), token, why));
    };

    // Row 2-4: alg none, in every case, with and without a signature.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}).to_string());
        // An empty signature segment is refused before the algorithm is looked at.
        add(
            &format!("alg {alg}"),
            format!("{header}.{payload}."),
            MALFORMED,
        );
        add(
            &format!("alg {alg} with a signature"),
            format!("{header}.{payload}.{}", b64(b"garbage-signature")),
            ALGORITHM,
        );
    }
    add("RFC 7515 A.5", RFC7515_A5_NONE.to_owned(), MALFORMED);
    // Row 5: the RS256 key's PEM used as an HS256 secret, with and without the newline.
    for (name, secret) in [
        ("alg confusion, PEM", pem.as_str()),
        ("alg confusion, PEM without newline", pem.trim_end()),
    ] {
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa"});
        add(name, jws(&header, &good, secret.as_bytes()), ALGORITHM);
    }
    // The verbatim vector has no `typ`, so it fails that check first; the two above
    // carry `typ: at+jwt` and reach the algorithm check.
    add("V-ALGCONF", V_ALGCONF.to_owned(), NOT_ACCESS);
    // Row 6: another allowed algorithm than the kid's own.
    let header = b64(json!({"alg": "ES256", "typ": "at+jwt", "kid": "k1"}).to_string());
    add(
        "ES256 on the HS256 kid",
        format!("{header}.{payload}.{}", b64([7u8; 64])),
        ALGORITHM,
    );
    // Row 9-12: kid games.
    let kid = |kid: Value, secret: &[u8]| {
        jws(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
            &good,
            secret,
        )
    };
    add("unknown kid", kid(json!("k2"), key), UNKNOWN_KEY);
    add(
        "kid traversal",
        kid(json!("../../../../../../../dev/null"), b""),
        UNKNOWN_KEY,
    );
    add(
        "kid injection",
        kid(json!("x' UNION SELECT 'secret"), b"secret"),
        UNKNOWN_KEY,
    );
    add("kid as a number", kid(json!(1), key), UNKNOWN_KEY);
    add(
        "no kid with two keys",
        jws(&json!({"alg": "HS256", "typ": "at+jwt"}), &good, key),
        UNKNOWN_KEY,
    );
    add(
        "kid with a quote and CR LF",
        kid(json!("a\"b\r\nX-Injected: y"), key),
        UNKNOWN_KEY,
    );
    add("5 KB kid", kid(json!("k".repeat(5000)), key), UNKNOWN_KEY);
    add("empty HMAC key", kid(json!("k1"), b""), SIGNATURE);
    // Row 13-15: keys named by the token are never fetched or trusted.
    add(
        "jku to the attacker",
        jws(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1", "jku": "https://attacker.example/jwks.json"}),
            &good,
            attacker,
        ),
        SIGNATURE,
    );
    add(
        "embedded jwk",
        jws(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1",
                    "jwk": {"kty": "oct", "k": b64(attacker)}}),
            &good,
            attacker,
        ),
        SIGNATURE,
    );
    // Row 33-34: stripped signature, tampered payload.
    add("signature stripped", format!("{valid_input}."), MALFORMED);
    add(
        "tampered payload",
        format!("{valid_header}.{tampered_payload}.{valid_sig}"),
        SIGNATURE,
    );
    // Row 30: non-canonical base64url.
    add("padded", format!("{valid}="), MALFORMED);
    add("non-zero pad bits", non_canonical_tail(&valid), MALFORMED);
    add("standard alphabet", standard_alphabet(), MALFORMED);
    // Row 31: segment counts.
    add("two segments", valid_input.to_owned(), MALFORMED);
    add("four segments", format!("{valid}.{valid_sig}"), MALFORMED);
    add("five segments (JWE)", V_FIVEPART.to_owned(), MALFORMED);
    add(
        "empty header segment",
        format!(".{payload}.{valid_sig}"),
        MALFORMED,
    );
    // Row 26: 9 KiB, under the 16 KiB head limit but over the verifier's token limit.
    add(
        "9 KiB token",
        with(json!({"pad": "a".repeat(9 * 1024)})),
        MALFORMED,
    );
    // Row 21-22: issuer and audience, byte-exact.
    add(
        "other issuer",
        with(json!({"iss": "https://other"})),
        ISSUER,
    );
    add(
        "issuer with a trailing slash",
        with(json!({"iss": format!("{ISS}/")})),
        ISSUER,
    );
    add("issuer missing", with(json!({"iss": null})), ISSUER);
    add(
        "other audience",
        with(json!({"aud": "other-api"})),
        AUDIENCE,
    );
    add("audience missing", with(json!({"aud": null})), AUDIENCE);
    add("audience empty list", with(json!({"aud": []})), AUDIENCE);
    add(
        "audience near miss",
        with(json!({"aud": format!("{AUD}/")})),
        AUDIENCE,
    );
    // Row 16-20: time claims.
    add(
        "expired beyond the leeway",
        with(json!({"exp": now - LEEWAY - 5, "iat": now - 700, "nbf": now - 700})),
        EXPIRED,
    );
    add(
        "nbf beyond the leeway",
        with(json!({"nbf": now + LEEWAY + 5})),
        NOT_YET,
    );
    add(
        "iat in the future",
        with(json!({"iat": now + 3600, "exp": now + 7200})),
        FUTURE_IAT,
    );
    add("exp missing", with(json!({"exp": null})), CLAIMS);
    add(
        "exp as a string",
        with(json!({"exp": (now + 600).to_string()})),
        CLAIMS,
    );
    add(
        "exp as 2^64",
        with(json!({"exp": 18_446_744_073_709_551_615u64})),
        CLAIMS,
    );
    add("exp negative", with(json!({"exp": -1})), CLAIMS);
    add("exp true", with(json!({"exp": true})), CLAIMS);
    add("exp an object", with(json!({"exp": {}})), CLAIMS);
    let huge_exp =
        format!(r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":1e400,"jti":"huge"}}"#);
    add(
        "exp 1e400",
        jws_raw(&at_header("k1").to_string(), &huge_exp, key),
        MALFORMED,
    );
    // Row 23: sub.
    add("sub missing", with(json!({"sub": null})), CLAIMS);
    add("sub empty", with(json!({"sub": ""})), CLAIMS);
    add("sub a number", with(json!({"sub": 123})), CLAIMS);
    // Row 24: typ.
    add(
        "typ JWT",
        jws(
            &json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}),
            &good,
            key,
        ),
        NOT_ACCESS,
    );
    add(
        "typ missing",
        jws(&json!({"alg": "HS256", "kid": "k1"}), &good, key),
        NOT_ACCESS,
    );
    // Row 35: crit.
    add(
        "crit",
        jws(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1",
                    "crit": ["http://example.invalid/UNDEFINED"],
                    "http://example.invalid/UNDEFINED": true}),
            &good,
            key,
        ),
        UNSUPPORTED,
    );
    add(
        "empty crit",
        jws(
            &json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1", "crit": []}),
            &good,
            key,
        ),
        UNSUPPORTED,
    );
    // Row 28-29: duplicate names, correctly MACed.
    let dup_payload = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","sub":"admin","exp":{},"jti":"dup"}}"#,
        now + 600
    );
    add(
        "duplicate claim",
        jws_raw(&at_header("k1").to_string(), &dup_payload, key),
        MALFORMED,
    );
    add(
        "duplicate header parameter",
        jws_raw(
            r#"{"alg":"HS256","alg":"none","typ":"at+jwt","kid":"k1"}"#,
            &good.to_string(),
            key,
        ),
        MALFORMED,
    );
    // Row 27: deep nesting.
    let deep = format!(
        r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"alice","exp":{},"a":{}{}}}"#,
        now + 600,
        "[".repeat(2000),
        "]".repeat(2000)
    );
    add(
        "deeply nested payload",
        jws_raw(&at_header("k1").to_string(), &deep, key),
        MALFORMED,
    );
    cases
}

/// Why `reply` is not the exact 401 `invalid_token` answer with description `why`, if
/// it is not (so one run lists every wrong case).
fn refusal_problem(reply: &Reply, why: &str) -> Option<String> {
    let expected = (
        StatusCode::UNAUTHORIZED,
        Some(format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""
        )),
        Some(json!({"error": "invalid_token", "error_description": why})),
    );
    let got = (
        reply.status,
        reply.header("www-authenticate").map(str::to_owned),
        serde_json::from_slice::<Value>(&reply.body).ok(),
    );
    (got != expected).then(|| format!("got {got:?}, expected {expected:?}"))
}

// === no or malformed credentials ===

#[tokio::test]
async fn no_token_is_401_with_a_bare_bearer_challenge() {
    let (gw, upstream) = setup().await;
    let reply = get(gw, "/api/orders", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer realm=\"{REALM}\"").as_str()),
        "RFC 6750 §3.1: no error attribute without credentials"
    );
    assert_eq!(
        reply.json(),
        json!({"error": "unauthorized", "error_description": "A bearer token is required"})
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn another_scheme_is_answered_like_no_token() {
    let (gw, upstream) = setup().await;
    for value in ["Basic dXNlcjpwYXNz", "Token abc", "Digest"] {
        let reply = get(gw, "/api/orders", &[("authorization", value)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(format!("Bearer realm=\"{REALM}\"").as_str()),
            "{value}"
        );
        assert_eq!(reply.json()["error"], "unauthorized", "{value}");
    }
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn malformed_authorization_is_400_invalid_request() {
    let (gw, upstream) = setup().await;
    let valid = token("alice");
    let second = format!("Bearer {valid}");
    // Cached now: its syntax is not checked again, but a token that only begins with
    // it is a different one, and is.
    assert_eq!(
        get(gw, "/api/orders", &[("authorization", &second)])
            .await
            .status,
        StatusCode::OK
    );
    let cached_and_more = [format!("Bearer {valid},"), format!("Bearer {valid} x")];
    let json_serialization =
        r#"Bearer {"protected":"eyJhbGciOiJIUzI1NiJ9","payload":"e30","signature":"AAAA"}"#;
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer  ")],
        vec![("authorization", "Bearer a b")],
        vec![("authorization", "Bearer a,b")],
        vec![("authorization", "Bearer a;b")],
        vec![("authorization", json_serialization)],
        vec![("authorization", &second), ("authorization", &second)],
        vec![("authorization", &cached_and_more[0])],
        vec![("authorization", &cached_and_more[1])],
    ];
    let description = "The Authorization header is not a single bearer token";
    for headers in cases {
        let reply = get(gw, "/api/orders", &headers).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{headers:?}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{description}\""
                )
                .as_str()
            ),
            "{headers:?}"
        );
        assert_eq!(
            reply.json(),
            json!({"error": "invalid_request", "error_description": description}),
            "{headers:?}"
        );
    }
    assert_eq!(upstream.count(), 1, "only the valid request");
}

#[tokio::test]
async fn query_string_token_is_not_accepted() {
    let (gw, upstream) = setup().await;
    let path = format!("/api/orders?access_token={}", token("alice"));
    let reply = get(gw, &path, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer realm=\"{REALM}\"").as_str())
    );
    assert_eq!(upstream.count(), 0);
}

/// SECURITY_CASES rows 59–60: a token in the URL is never used, and never forwarded.
#[tokio::test]
async fn a_token_in_the_url_is_refused_next_to_a_header_token_and_on_optional_routes() {
    let (gw, upstream) = setup().await;
    let t = token("alice");
    let description = "Access tokens are not accepted in the URL";
    let expected = format!(
        "Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{description}\""
    );
    for (path, bearer) in [
        (format!("/api/orders?access_token={t}"), true),
        (format!("/api/orders?page=2&access_token={t}"), true),
        (format!("/opt/x?access_token={t}"), false),
    ] {
        let reply = if bearer {
            get_bearer(gw, &path, &t).await
        } else {
            get(gw, &path, &[]).await
        };
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(expected.as_str()),
            "{path}"
        );
    }
    assert_eq!(
        upstream.count(),
        0,
        "the URL token never reached the upstream"
    );
    // A parameter that merely contains the name is not a token.
    let reply = get_bearer(gw, "/api/orders?my_access_token=1", &t).await;
    assert_eq!(reply.status, StatusCode::OK);
}

// === invalid tokens ===

#[tokio::test]
async fn expired_token_says_the_access_token_expired() {
    let (gw, upstream) = setup().await;
    let now = now();
    let expired = token_with(
        "alice",
        &json!({"iat": now - 3600, "nbf": now - 3600, "exp": now - 600}),
    );
    let reply = get_bearer(gw, "/api/orders", &expired).await;
    assert_invalid_token(&reply, EXPIRED, "expired");
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn attack_tokens_are_refused_and_never_reach_the_upstream() {
    let (gw, upstream) = setup().await;
    let mut wrong = Vec::new();
    for (name, attack, why) in attack_tokens() {
        let reply = get_bearer(gw, "/api/orders", &attack).await;
        if let Some(problem) = refusal_problem(&reply, why) {
            wrong.push(format!("{name}: {problem}"));
        }
        assert_eq!(upstream.count(), 0, "{name} reached the upstream");
        assert!(
            !reply.text().contains(attack.as_str()) && !reply.text().contains("dev/null"),
            "{name}: the answer reflects the token"
        );
    }
    assert!(wrong.is_empty(), "wrong refusals:\n{}", wrong.join("\n"));
    // The gateway still serves valid tokens after the barrage.
    let reply = get_bearer(gw, "/api/orders", &token("alice")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(upstream.count(), 1);
    assert_eq!(upstream.last().headers["x-user-id"], "alice");
}

#[tokio::test]
async fn attack_tokens_never_grow_the_cache() {
    // The same guard the gateway builds, from the same config, but assembled by hand so
    // that the cache can be observed.
    let upstream = Upstream::start().await;
    let config = Config::parse(&config(&upstream.url(), "30s"), "test").unwrap();
    let parts = auth_parts(&config, &HashMap::<String, String>::new())
        .unwrap()
        .unwrap();
    let cache = parts.authenticator.cache().clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |_req: Request<Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Body::from("inner"))) }
    });
    let guard = JwtGuardLayer::new(parts.authenticator.clone()).with_realm(REALM);
    let gateway = Gateway::builder()
        .access_log(false)
        .route("/api", ServiceBuilder::new().layer(guard).service(inner))
        .build();
    let gw = serve(gateway).await;

    let mut wrong = Vec::new();
    for (name, attack, why) in attack_tokens() {
        let reply = get_bearer(gw, "/api/x", &attack).await;
        if let Some(problem) = refusal_problem(&reply, why) {
            wrong.push(format!("{name}: {problem}"));
        }
        assert_eq!(cache.entry_count(), 0, "{name} was cached");
    }
    assert!(wrong.is_empty(), "wrong refusals:\n{}", wrong.join("\n"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let valid = token("alice");
    for _ in 0..3 {
        let reply = get_bearer(gw, "/api/x", &valid).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(cache.entry_count(), 1, "one valid token, one entry");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses >= 1), (2, true), "{stats:?}");
}

#[tokio::test]
async fn a_token_over_the_head_limit_is_431() {
    let (gw, upstream) = setup().await;
    let huge = token_with("alice", &json!({"pad": "a".repeat(20 * 1024)}));
    let request = format!(
        "GET /api/orders HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {huge}\r\nconnection: close\r\n\r\n"
    );
    let answer = raw(gw, request.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431 "),
        "{}",
        answer.lines().next().unwrap_or_default()
    );
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn claims_that_cannot_be_header_values_are_refused() {
    let (gw, upstream) = setup().await;
    // Minted with a test-side signer: the gateway's issuer refuses control characters.
    for (name, claims) in [
        (
            "CR LF in a forwarded claim",
            json!({"role": "user\r\nX-Admin: true"}),
        ),
        ("LF in sub", json!({"sub": "alice\nX-Admin: true"})),
        ("NUL in a forwarded claim", json!({"role": "user\u{0}"})),
        ("non-ASCII", json!({"role": "Zoë"})),
        (
            "comma inside an array element",
            json!({"role": ["user, admin"]}),
        ),
        ("an object", json!({"role": {"name": "admin"}})),
    ] {
        let reply = get_bearer(gw, "/api/orders", &token_with("alice", &claims)).await;
        assert_invalid_token(&reply, UNFORWARDABLE, name);
    }
    assert_eq!(upstream.count(), 0);
    // The same claims on a route that forwards none of them are harmless.
    let reply = get_bearer(gw, "/fwd/x", &token_with("alice", &json!({"role": "Zoë"}))).await;
    assert_eq!(reply.status, StatusCode::OK);
}

// === valid tokens ===

#[tokio::test]
async fn tokens_inside_the_leeway_and_spec_variants_are_accepted() {
    let (gw, upstream) = setup().await;
    let now = now();
    let cases = [
        (
            "exp passed, within the leeway",
            token_with(
                "alice",
                &json!({"exp": now - LEEWAY + 5, "iat": now - 600, "nbf": now - 600}),
            ),
        ),
        (
            "nbf ahead, within the leeway",
            token_with("alice", &json!({"nbf": now + LEEWAY - 5})),
        ),
        (
            "aud list containing ours",
            token_with("alice", &json!({"aud": ["other", AUD]})),
        ),
        (
            "typ application/at+jwt",
            jws(
                &json!({"alg": "HS256", "typ": "application/at+jwt", "kid": "k1"}),
                &good_claims("alice", now),
                SECRET.as_bytes(),
            ),
        ),
        (
            "typ AT+JWT",
            jws(
                &json!({"alg": "HS256", "typ": "AT+JWT", "kid": "k1"}),
                &good_claims("alice", now),
                SECRET.as_bytes(),
            ),
        ),
    ];
    for (i, (name, t)) in cases.iter().enumerate() {
        let reply = get_bearer(gw, "/api/orders", t).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        assert_eq!(upstream.count(), i + 1, "{name}");
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let t = token("alice");
    for scheme in ["bearer", "BEARER"] {
        let reply = get(
            gw,
            "/api/orders",
            &[("authorization", &format!("{scheme} {t}"))],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let upstream = Upstream::start().await;
    let gw = start(&config(&upstream.url(), "0s")).await;
    let exp = now() + 2;
    let short = token_with("alice", &json!({"exp": exp}));
    let reply = get_bearer(gw, "/api/orders", &short).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(upstream.count(), 1);

    // Sleep until the clock reaches exp (at most ~2 s).
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let wait = (exp * 1000 - now_ms + 50).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;

    let reply = get_bearer(gw, "/api/orders", &short).await;
    assert_invalid_token(&reply, EXPIRED, "expired while cached");
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_others_still_pass() {
    let (gw, upstream) = setup().await;
    let login = format!("grant_type=password&username=alice&password={ALICE_PASSWORD}");
    let first = post_form(gw, "/token", &login, &[]).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = post_form(gw, "/token", &login, &[]).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);

    // Used once, so it is in the cache when revoked.
    assert_eq!(
        get_bearer(gw, "/api/a", &first).await.status,
        StatusCode::OK
    );
    let reply = post_form(gw, "/token/revoke", &format!("token={first}"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({}));
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    let reply = get_bearer(gw, "/api/b", &first).await;
    assert_invalid_token(&reply, REVOKED, "revoked");
    assert_eq!(upstream.count(), 1);

    let reply = get_bearer(gw, "/api/c", &second).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.count(), 2);
    assert_eq!(upstream.last().target, "/api/c");
}

#[tokio::test]
async fn a_token_of_a_removed_key_is_refused_after_restart() {
    let upstream = Upstream::start().await;
    let with_rsa = config(&upstream.url(), "30s");
    // k1 signs; a second HMAC key k0 exists in the first deployment only.
    let old_secret = "the-old-key-that-is-being-rotated-out-0123456789";
    let with_old = with_rsa.replacen(
        "[[jwt.keys]]",
        &format!("[[jwt.keys]]\nkid = \"k0\"\nalgorithm = \"HS256\"\nsecret = \"{old_secret}\"\n\n[[jwt.keys]]"),
        1,
    );
    let old_token = jws(
        &at_header("k0"),
        &good_claims("alice", now()),
        old_secret.as_bytes(),
    );
    let before = start(&with_old).await;
    assert_eq!(
        get_bearer(before, "/api/x", &old_token).await.status,
        StatusCode::OK
    );
    let after = start(&with_rsa).await;
    let reply = get_bearer(after, "/api/x", &old_token).await;
    assert_invalid_token(&reply, UNKNOWN_KEY, "removed key");
    assert_eq!(upstream.count(), 1);
}

// === claims to headers ===

#[tokio::test]
async fn client_identity_headers_never_reach_the_upstream_on_a_guarded_route() {
    let (gw, upstream) = setup().await;
    let t = token_with("alice", &json!({"role": ["user", "ops"], "user_id": 101}));
    let reply = get(
        gw,
        "/api/orders",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("X-User-Id", "admin"),
            ("x-user-id", "admin2"),
            ("X-USER-ID", ""),
            ("X_User_Id", "admin3"),
            ("X-User_Id", "admin4"),
            ("x-user-role", "superuser"),
            ("X-User-Num", "0"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = upstream.last();
    let ids: Vec<_> = seen.headers.get_all("x-user-id").iter().collect();
    assert_eq!(ids, ["alice"], "exactly one X-User-Id, the token's sub");
    let roles: Vec<_> = seen.headers.get_all("x-user-role").iter().collect();
    assert_eq!(roles, ["user,ops"], "arrays are comma-joined");
    let nums: Vec<_> = seen.headers.get_all("x-user-num").iter().collect();
    assert_eq!(nums, ["101"], "numbers as JSON numbers");
    for name in ["x_user_id", "x-user_id"] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert!(
        !seen.headers.contains_key("authorization"),
        "forward_token defaults to false"
    );
}

#[tokio::test]
async fn client_identity_headers_are_stripped_on_public_routes() {
    let (gw, upstream) = setup().await;
    let reply = get(
        gw,
        "/public/page",
        &[
            ("X-User-Id", "admin"),
            ("X_User_Id", "admin"),
            ("x-user-role", "admin"),
            ("X-User-Num", "1"),
            ("x-other", "kept"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = upstream.last();
    for name in ["x-user-id", "x_user_id", "x-user-role", "x-user-num"] {
        assert!(
            !seen.headers.contains_key(name),
            "{name} reached the upstream"
        );
    }
    assert_eq!(seen.headers["x-other"], "kept");
}

#[tokio::test]
async fn connection_header_cannot_remove_the_gateways_identity_header() {
    let (gw, upstream) = setup().await;
    let t = token("alice");
    let reply = get(
        gw,
        "/api/orders",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("connection", "keep-alive, X-User-Id"),
            ("x-user-id", "admin"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen = upstream.last();
    let ids: Vec<_> = seen.headers.get_all("x-user-id").iter().collect();
    assert_eq!(ids, ["alice"]);
    let connection = seen
        .headers
        .get_all("connection")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        !connection.contains("x-user-id"),
        "the client's Connection list was forwarded: {connection}"
    );

    // What a client's Connection names is removed before the guard runs (hygiene is
    // the outer layer), so listing Authorization there removes the token itself.
    let reply = get(
        gw,
        "/api/orders",
        &[
            ("authorization", &format!("Bearer {t}")),
            ("connection", "Authorization"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(upstream.count(), 1);
}

// === route options ===

#[tokio::test]
async fn require_role_any_of_and_scope_all_of() {
    let (gw, upstream) = setup().await;
    let forbidden = [
        ("no role", json!({"scope": "read write"})),
        ("other role", json!({"role": "user", "scope": "read write"})),
        (
            "one scope missing",
            json!({"role": "admin", "scope": "read"}),
        ),
        (
            "scope prefix",
            json!({"role": "admin", "scope": "read writer"}),
        ),
        (
            "role list without a match",
            json!({"role": ["user", "guest"], "scope": "read write"}),
        ),
    ];
    for (name, claims) in forbidden {
        let reply = get_bearer(gw, "/admin/x", &token_with("alice", &claims)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"read write\""
                )
                .as_str()
            ),
            "{name}"
        );
        assert_eq!(
            reply.json(),
            json!({"error": "insufficient_scope",
                   "error_description": "The access token lacks a required role or scope"}),
            "{name}"
        );
    }
    assert_eq!(upstream.count(), 0);
    let allowed = [
        ("admin", json!({"role": "admin", "scope": "read write"})),
        (
            "ops, more scopes",
            json!({"role": "ops", "scope": "write extra read"}),
        ),
        (
            "role list with a match",
            json!({"role": ["user", "ops"], "scope": "read write"}),
        ),
    ];
    for (i, (name, claims)) in allowed.iter().enumerate() {
        let reply = get_bearer(gw, "/admin/x", &token_with("alice", claims)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {}", reply.text());
        assert_eq!(upstream.count(), i + 1);
    }
    // Authorisation is per route and per request: the same cached token is refused.
    let read_only = token_with("alice", &json!({"role": "admin", "scope": "read"}));
    assert_eq!(
        get_bearer(gw, "/api/x", &read_only).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_bearer(gw, "/admin/x", &read_only).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn forward_token_false_strips_authorization_and_true_keeps_it() {
    let (gw, upstream) = setup().await;
    let t = token("alice");
    let bearer = format!("Bearer {t}");
    assert_eq!(get_bearer(gw, "/api/x", &t).await.status, StatusCode::OK);
    assert!(!upstream.last().headers.contains_key("authorization"));
    assert_eq!(get_bearer(gw, "/fwd/x", &t).await.status, StatusCode::OK);
    let kept: Vec<_> = upstream
        .last()
        .headers
        .get_all("authorization")
        .iter()
        .cloned()
        .collect();
    assert_eq!(kept, [bearer.as_str()]);
}

#[tokio::test]
async fn optional_auth_passes_without_a_token_and_refuses_a_bad_one() {
    let (gw, upstream) = setup().await;
    let reply = get(gw, "/opt/x", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.count(), 1);

    let forged = jws(&at_header("k1"), &good_claims("admin", now()), b"wrong-key");
    let reply = get_bearer(gw, "/opt/x", &forged).await;
    assert_invalid_token(&reply, SIGNATURE, "optional route, forged token");
    assert_eq!(upstream.count(), 1);

    let reply = get_bearer(gw, "/opt/x", &token("alice")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(upstream.count(), 2);
}

#[tokio::test]
async fn cookie_route_reads_the_token_from_the_cookie() {
    let (gw, upstream) = setup().await;
    let t = token("alice");
    let cookie = format!("theme=dark; access_token={t}");
    let reply = get(gw, "/cookie/x", &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(upstream.count(), 1);

    let forged = jws(&at_header("k1"), &good_claims("alice", now()), b"wrong-key");
    let reply = get(
        gw,
        "/cookie/x",
        &[("cookie", &format!("access_token={forged}"))],
    )
    .await;
    assert_invalid_token(&reply, SIGNATURE, "forged cookie");

    // A route without `cookie` ignores it.
    let reply = get(gw, "/api/x", &[("cookie", &cookie)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer realm=\"{REALM}\"").as_str())
    );
    assert_eq!(upstream.count(), 1);
}

// === reuse outside the gateway ===

#[tokio::test]
async fn jwt_guard_layer_in_an_axum_router_exposes_the_claims() {
    use axum::Extension;
    use axum::routing::get as axum_get;

    let upstream = Upstream::start().await;
    let config = Config::parse(&config(&upstream.url(), "30s"), "test").unwrap();
    let parts = auth_parts(&config, &HashMap::<String, String>::new())
        .unwrap()
        .unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/me",
            axum_get(move |Extension(claims): Extension<Arc<Claims>>| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(claims.sub.clone());
                    format!("{} {}", claims.sub, claims.get("role").unwrap())
                }
            }),
        )
        .route_layer(JwtGuardLayer::new(parts.authenticator.clone()).with_realm(REALM));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let t = token_with("alice", &json!({"role": "admin"}));
    let reply = get_bearer(addr, "/me", &t).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "alice \"admin\"");

    let reply = get(addr, "/me", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(format!("Bearer realm=\"{REALM}\"").as_str())
    );
    let reply = get_bearer(addr, "/me", &format!("{t}=")).await;
    assert_invalid_token(&reply, MALFORMED, "axum, padded");
    assert_eq!(*seen.lock().unwrap(), ["alice"]);
    // route_layer: unknown paths stay 404 rather than 401.
    assert_eq!(get(addr, "/nope", &[]).await.status, StatusCode::NOT_FOUND);
}

// === the cache is keyed on the whole token, authorisation on the jti ===

#[tokio::test]
async fn variants_of_a_cached_token_do_not_ride_on_its_entry() {
    let (gw, upstream) = setup().await;
    let t = token("alice");
    assert_eq!(get_bearer(gw, "/api/x", &t).await.status, StatusCode::OK);
    let (input, sig) = t.rsplit_once('.').unwrap();
    let header = t.split('.').next().unwrap();
    let admin = b64(good_claims("admin", now()).to_string());
    for (name, variant, why) in [
        ("padded", format!("{t}="), MALFORMED),
        ("non-zero pad bits", non_canonical_tail(&t), MALFORMED),
        (
            "other signature",
            format!("{input}.{}", b64([0u8; 32])),
            SIGNATURE,
        ),
        (
            "other payload, same signature",
            format!("{header}.{admin}.{sig}"),
            SIGNATURE,
        ),
    ] {
        let reply = get_bearer(gw, "/api/x", &variant).await;
        assert_invalid_token(&reply, why, name);
    }
    assert_eq!(upstream.count(), 1);
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_identity() {
    let (gw, upstream) = setup().await;
    // Same header segment, same length: a prefix-keyed cache would mix them up.
    let alice = token("alice");
    let bobby = token("bobby");
    assert_eq!(alice.split('.').next(), bobby.split('.').next());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (user, t) = if i % 2 == 0 {
            ("alice", alice.clone())
        } else {
            ("bobby", bobby.clone())
        };
        tasks.spawn(async move {
            let reply = get_bearer(gw, &format!("/api/{user}/{i}"), &t).await;
            assert_eq!(reply.status, StatusCode::OK, "{user} {i}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let seen = upstream.seen();
    assert_eq!(seen.len(), 40);
    for request in seen {
        let user = request.target.split('/').nth(2).unwrap().to_owned();
        let ids: Vec<_> = request.headers.get_all("x-user-id").iter().collect();
        assert_eq!(ids, [user.as_str()], "{}", request.target);
    }
}

#[tokio::test]
async fn revocation_holds_for_a_malleated_es256_signature() {
    // ECDSA signatures are malleable: (r, n - s) verifies too (SECURITY_CASES row 40),
    // so a second token string exists for the same claims. Revocation must key on the
    // jti, not on the token string.
    let upstream = Upstream::start().await;
    let key = portcullis::jwt::generate_key(portcullis::jwt::Algorithm::ES256).unwrap();
    let text = format!(
        r#"
[log]
access_log = false
[jwt]
issuer = "{ISS}"
audience = "{AUD}"
realm = "{REALM}"
signing_key = "es"
[[jwt.keys]]
kid = "es"
algorithm = "ES256"
private_key = '''
{}'''
[token]
rate_per_minute = 0
[[users]]
username = "alice"
password_hash = "{ALICE_HASH}"
[[routes]]
path = "/api"
upstream = "{}"
forward_claims = {{ sub = "X-User-Id" }}
"#,
        key.private_pem,
        upstream.url()
    );
    let gw = start(&text).await;
    let login = format!("grant_type=password&username=alice&password={ALICE_PASSWORD}");
    let t = post_form(gw, "/token", &login, &[]).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (input, sig) = t.rsplit_once('.').unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(r, -s).unwrap();
    let twin = format!("{input}.{}", b64(flipped.to_bytes()));
    assert_ne!(twin, t);

    assert_eq!(get_bearer(gw, "/api/x", &t).await.status, StatusCode::OK);
    let reply = get_bearer(gw, "/api/x", &twin).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the malleated twin verifies: {}",
        reply.text()
    );
    assert_eq!(upstream.count(), 2);

    let reply = post_form(gw, "/token/revoke", &format!("token={t}"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    for (name, token) in [("original", &t), ("malleated twin", &twin)] {
        let reply = get_bearer(gw, "/api/x", token).await;
        assert_invalid_token(&reply, REVOKED, name);
    }
    assert_eq!(upstream.count(), 2);
}
