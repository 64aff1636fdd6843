//! The token endpoint, the JWKS and the revocation endpoint, black-box (issue 3;
//! SECURITY_CASES §4-5): a real gateway on loopback, every answer checked on the wire
//! (status, headers, exact JSON), and issued tokens re-verified with an independent
//! JOSE implementation (jwt-compact) using keys re-imported from the published JWKS.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test that cannot set up should fail loudly"
)]

mod auth_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use auth_support::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use jwt_compact::AlgorithmExt;
use jwt_compact::jwk::JsonWebKey;
use portcullis::config::ProcessSecrets;
use portcullis::jwt::{Algorithm, generate_key};
use portcullis::{Config, Gateway};
use rsa::pkcs8::EncodePublicKey;
use serde_json::{Value, json};

/// A client whose id and secret both need RFC 6749 §2.3.1 form-encoding in Basic.
const SVC_ID: &str = "svc:1";
const SVC_SECRET: &str = "s+cret%:pä$$ wörd";
const REPORTING_SECRET: &str = "reporting-secret";
const CAROL_PASSWORD: &str = "carol's argon2 password";

/// bcrypt (cost 4) of a client secret, computed once per test binary.
fn client_hashes() -> &'static (String, String) {
    static HASHES: OnceLock<(String, String)> = OnceLock::new();
    HASHES.get_or_init(|| {
        (
            bcrypt::hash(SVC_SECRET, 4).unwrap(),
            bcrypt::hash(REPORTING_SECRET, 4).unwrap(),
        )
    })
}

/// argon2id of carol's password through the crate's own hasher, once per binary.
fn carol_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| portcullis::token::hash_password(CAROL_PASSWORD.as_bytes()).unwrap())
}

/// The gateway of these tests; `token_extra` goes into `[token]` (the rate limit is off
/// unless it says otherwise).
fn config(token_extra: &str) -> String {
    let (svc, reporting) = client_hashes();
    let carol = carol_hash();
    let token_extra = if token_extra.is_empty() {
        "rate_per_minute = 0"
    } else {
        token_extra
    };
    format!(
        r#"
[log]
access_log = false

[jwt]
issuer = "{ISS}"
audience = "{AUD}"
ttl = "1h"
realm = "{REALM}"
signing_key = "k1"

[[jwt.keys]]
kid = "k1"
algorithm = "HS256"
secret = "{SECRET}"

[token]
realm = "{TOKEN_REALM}"
{token_extra}

[[users]]
username = "alice"
password_hash = '{ALICE_HASH}'
claims = {{ user_id = 101, role = "admin" }}
scope = "read write"

[[users]]
username = "bob"
password_hash = '{BOB_HASH}'
scope = "read"
ttl = "10m"

[[users]]
username = "carol"
password_hash = '{carol}'

[[clients]]
client_id = "{SVC_ID}"
secret_hash = '{svc}'
scope = "read"
claims = {{ tier = "gold" }}

[[clients]]
client_id = "reporting"
secret_hash = '{reporting}'
scope = "read metrics"
"#
    )
}

async fn setup() -> SocketAddr {
    start(&config("")).await
}

/// application/x-www-form-urlencoded encoding of one value (RFC 6749 Appendix B).
fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: id and secret form-encoded first.
fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", STANDARD.encode(raw))
}

fn login(user: &str, password: &str) -> String {
    format!(
        "grant_type=password&username={}&password={}",
        form_encode(user),
        form_encode(password)
    )
}

/// Asserts an RFC 6749 §5.1 success and returns the body.
fn assert_issued(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none());
    body
}

/// Checks the registered claims every issued token carries, and returns the claims.
fn assert_registered(token: &str, sub: &str, ttl: i64) -> Value {
    let header = segment(token, 0);
    assert_eq!(
        header,
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"}),
        "RFC 9068 header"
    );
    let claims = segment(token, 1);
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["sub"], sub);
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 5, "iat {iat} is not now");
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + ttl);
    assert!(!claims["jti"].as_str().unwrap().is_empty());
    claims
}

// === password grant ===

#[tokio::test]
async fn password_grant_with_a_form_body_issues_an_rfc9068_token() {
    let gw = setup().await;
    let reply = post_form(gw, "/token", &login("alice", ALICE_PASSWORD), &[]).await;
    let body = assert_issued(&reply);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().unwrap();
    let claims = assert_registered(token, "alice", 3600);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["user_id"], 101, "configured claims, numbers kept");
    assert_eq!(claims["role"], "admin");
    assert!(claims.get("client_id").is_none());

    // Every token has its own jti.
    let again = post_form(gw, "/token", &login("alice", ALICE_PASSWORD), &[]).await;
    let again = assert_issued(&again)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(segment(&again, 1)["jti"], claims["jti"]);
}

#[tokio::test]
async fn password_grant_with_a_json_body() {
    let gw = setup().await;
    let reply = post_json(
        gw,
        "/token",
        &json!({"grant_type": "password", "username": "bob", "password": BOB_PASSWORD}),
    )
    .await;
    let body = assert_issued(&reply);
    assert_eq!(body["expires_in"], 600, "the per-user ttl");
    assert_eq!(body["scope"], "read");
    let claims = assert_registered(body["access_token"].as_str().unwrap(), "bob", 600);
    assert_eq!(claims["scope"], "read");
}

#[tokio::test]
async fn argon2_user_logs_in_and_unknown_parameters_are_ignored() {
    let gw = setup().await;
    let form = format!("{}&foo=bar", login("carol", CAROL_PASSWORD));
    let body = assert_issued(&post_form(gw, "/token", &form, &[]).await);
    assert!(body.get("scope").is_none(), "carol may be granted no scope");
    let claims = assert_registered(body["access_token"].as_str().unwrap(), "carol", 3600);
    assert!(claims.get("scope").is_none());
    assert!(claims.get("foo").is_none());
}

#[tokio::test]
async fn scope_is_narrowed_defaulted_or_refused() {
    let gw = setup().await;
    let narrowed = post_form(
        gw,
        "/token",
        &format!("{}&scope=read", login("alice", ALICE_PASSWORD)),
        &[],
    )
    .await;
    let body = assert_issued(&narrowed);
    assert_eq!(body["scope"], "read");
    assert_eq!(
        segment(body["access_token"].as_str().unwrap(), 1)["scope"],
        "read"
    );

    // RFC 6749 §3.2: an empty parameter is treated as omitted.
    let empty = post_form(
        gw,
        "/token",
        &format!("{}&scope=", login("alice", ALICE_PASSWORD)),
        &[],
    )
    .await;
    assert_eq!(assert_issued(&empty)["scope"], "read write");

    for scope in ["admin", "read%20admin", "read%22x"] {
        let reply = post_form(
            gw,
            "/token",
            &format!("{}&scope={scope}", login("alice", ALICE_PASSWORD)),
            &[],
        )
        .await;
        assert_oauth_error(
            &reply,
            400,
            "invalid_scope",
            "The requested scope is not allowed",
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_byte_identical() {
    let gw = setup().await;
    let wrong = post_form(gw, "/token", &login("alice", "wrong-Secret-4242"), &[]).await;
    let unknown = post_form(
        gw,
        "/token",
        &login("mallory-4242", "wrong-Secret-4242"),
        &[],
    )
    .await;
    assert_oauth_error(&wrong, 400, "invalid_grant", "Invalid username or password");
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body, "bodies differ");
    assert_eq!(wrong.stable_headers(), unknown.stable_headers());
    for reply in [&wrong, &unknown] {
        let text = reply.text();
        assert!(!text.contains("4242"), "input echoed: {text}");
    }
}

#[tokio::test]
async fn missing_unknown_and_repeated_parameters() {
    let gw = setup().await;
    let cases = [
        (
            "username=alice&password=x".to_owned(),
            "invalid_request",
            "The grant_type parameter is missing",
        ),
        (
            "grant_type=&username=alice&password=x".to_owned(),
            "invalid_request",
            "The grant_type parameter is missing",
        ),
        (
            "grant_type=foo".to_owned(),
            "unsupported_grant_type",
            "This grant type is not supported",
        ),
        (
            "grant_type=refresh_token&refresh_token=abc".to_owned(),
            "unsupported_grant_type",
            "This grant type is not supported",
        ),
        (
            "grant_type=password&grant_type=client_credentials".to_owned(),
            "invalid_request",
            "A parameter is repeated",
        ),
        (
            format!("{}&username=admin", login("alice", ALICE_PASSWORD)),
            "invalid_request",
            "A parameter is repeated",
        ),
        (
            "grant_type=password&username=alice".to_owned(),
            "invalid_request",
            "The username and password parameters are required",
        ),
        (
            "grant_type=password&password=x".to_owned(),
            "invalid_request",
            "The username and password parameters are required",
        ),
    ];
    for (form, error, description) in cases {
        let reply = post_form(gw, "/token", &form, &[]).await;
        assert_eq!(reply.json()["error"], error, "{form}");
        assert_oauth_error(&reply, 400, error, description);
    }
    let reply = post_json(gw, "/token", &json!({"grant_type": 1})).await;
    assert_oauth_error(&reply, 400, "invalid_request", "Parameters must be strings");
}

#[tokio::test]
async fn a_password_over_1_kib_is_invalid_request() {
    let gw = setup().await;
    let long = "p".repeat(1025);
    let reply = post_form(gw, "/token", &login("alice", &long), &[]).await;
    assert_oauth_error(&reply, 400, "invalid_request", "The password is too long");
    // Exactly 1 KiB is checked (and wrong), not refused for its length.
    let reply = post_form(gw, "/token", &login("alice", &long[..1024]), &[]).await;
    assert_oauth_error(&reply, 400, "invalid_grant", "Invalid username or password");
}

#[tokio::test]
async fn a_bcrypt_user_with_a_password_over_72_bytes_is_invalid_grant() {
    let gw = setup().await;
    // The real password followed by padding: a truncating bcrypt would see only the
    // first 72 bytes; here the first 13 are right and the rest must count.
    for extra in [59, 60, 100] {
        let password = format!("{ALICE_PASSWORD}{}", "x".repeat(extra));
        let reply = post_form(gw, "/token", &login("alice", &password), &[]).await;
        assert_oauth_error(&reply, 400, "invalid_grant", "Invalid username or password");
    }
}

#[tokio::test]
async fn credentials_in_the_query_string_are_invalid_request() {
    let gw = setup().await;
    for query in [
        "password=x",
        "client_secret=x",
        "username=alice",
        "grant_type=password",
    ] {
        let path = format!("/token?{query}");
        let reply = post_form(gw, &path, &login("alice", ALICE_PASSWORD), &[]).await;
        assert_oauth_error(
            &reply,
            400,
            "invalid_request",
            "Token parameters must not be sent in the URL",
        );
    }
}

#[tokio::test]
async fn get_token_is_405_with_allow() {
    let gw = setup().await;
    let reply = get(
        gw,
        &format!("/token?{}", login("alice", ALICE_PASSWORD)),
        &[],
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
    assert_eq!(
        reply.json(),
        json!({"error": "method_not_allowed",
               "error_description": "This endpoint does not accept this method"})
    );
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let gw = start(&config("rate_per_minute = 1\nrate_burst = 2")).await;
    for _ in 0..2 {
        let reply = post_form(gw, "/token", "grant_type=foo", &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    }
    let reply = post_form(gw, "/token", &login("alice", ALICE_PASSWORD), &[]).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        reply.json(),
        json!({"error": "too_many_requests", "error_description": "Too many requests; retry later"})
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

// === client credentials ===

#[tokio::test]
async fn client_credentials_with_basic_form_encoded_id_and_secret() {
    let gw = setup().await;
    let auth = basic(SVC_ID, SVC_SECRET);
    let reply = post_form(
        gw,
        "/token",
        "grant_type=client_credentials",
        &[("authorization", &auth)],
    )
    .await;
    let body = assert_issued(&reply);
    assert_eq!(body["scope"], "read");
    let claims = assert_registered(body["access_token"].as_str().unwrap(), SVC_ID, 3600);
    assert_eq!(claims["client_id"], SVC_ID);
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["tier"], "gold");
}

#[tokio::test]
async fn client_credentials_with_body_fields() {
    let gw = setup().await;
    let form = format!(
        "grant_type=client_credentials&client_id=reporting&client_secret={}&scope=metrics",
        form_encode(REPORTING_SECRET)
    );
    let body = assert_issued(&post_form(gw, "/token", &form, &[]).await);
    assert_eq!(body["scope"], "metrics");
    let claims = assert_registered(body["access_token"].as_str().unwrap(), "reporting", 3600);
    assert_eq!(claims["client_id"], "reporting");
}

#[tokio::test]
async fn basic_and_body_credentials_together_are_invalid_request() {
    let gw = setup().await;
    let auth = basic("reporting", REPORTING_SECRET);
    for form in [
        format!(
            "grant_type=client_credentials&client_id=reporting&client_secret={}",
            form_encode(REPORTING_SECRET)
        ),
        "grant_type=client_credentials&client_secret=x".to_owned(),
    ] {
        let reply = post_form(gw, "/token", &form, &[("authorization", &auth)]).await;
        assert_oauth_error(
            &reply,
            400,
            "invalid_request",
            "Use one client authentication method",
        );
    }
}

#[tokio::test]
async fn wrong_secret_and_unknown_client_get_identical_invalid_client() {
    let gw = setup().await;
    let form = "grant_type=client_credentials";
    let wrong = post_form(
        gw,
        "/token",
        form,
        &[("authorization", &basic("reporting", "not-the-secret"))],
    )
    .await;
    let unknown = post_form(
        gw,
        "/token",
        form,
        &[("authorization", &basic("nobody", "not-the-secret"))],
    )
    .await;
    let bad_base64 = post_form(gw, "/token", form, &[("authorization", "Basic !!!")]).await;
    let no_colon = post_form(
        gw,
        "/token",
        form,
        &[(
            "authorization",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        )],
    )
    .await;
    let post_wrong = post_form(
        gw,
        "/token",
        "grant_type=client_credentials&client_id=reporting&client_secret=nope",
        &[],
    )
    .await;
    let none = post_form(gw, "/token", form, &[]).await;
    for (name, reply) in [
        ("wrong secret", &wrong),
        ("unknown client", &unknown),
        ("Basic without a colon", &no_colon),
        ("Basic, not base64", &bad_base64),
        ("client_secret_post, wrong secret", &post_wrong),
        ("no client authentication", &none),
    ] {
        assert_oauth_error(reply, 401, "invalid_client", "Client authentication failed");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(format!("Basic realm=\"{TOKEN_REALM}\"").as_str()),
            "{name}"
        );
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.stable_headers(), unknown.stable_headers());
}

// === JWKS and keys ===

/// A unique temporary file holding `text`; removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "portcullis-token-test-{}-{}-{name}",
            std::process::id(),
            unique()
        ));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A gateway with an ES256 key (PEM from a `file:`), an EdDSA key (literal PEM) and an
/// HS256 key; `signing` names the signer.
fn keys_config(es256_file: &TempFile, eddsa_pem: &str, signing: &str) -> String {
    format!(
        r#"
[log]
access_log = false

[jwt]
issuer = "{ISS}"
audience = "{AUD}"
signing_key = "{signing}"

[[jwt.keys]]
kid = "es"
algorithm = "ES256"
private_key = "file:{}"

[[jwt.keys]]
kid = "ed"
algorithm = "EdDSA"
private_key = '''
{eddsa_pem}'''

[[jwt.keys]]
kid = "hs"
algorithm = "HS256"
secret = "{SECRET}"

[token]
grants = ["client_credentials"]
rate_per_minute = 0

[[clients]]
client_id = "reporting"
secret_hash = '{}'
scope = "read"
"#,
        es256_file.0.display(),
        client_hashes().1
    )
}

async fn issue_for_reporting(gw: SocketAddr) -> String {
    let reply = post_form(
        gw,
        "/token",
        "grant_type=client_credentials",
        &[("authorization", &basic("reporting", REPORTING_SECRET))],
    )
    .await;
    assert_issued(&reply)["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn jwk<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {jwks}"))
}

#[tokio::test]
async fn jwks_publishes_public_keys_only_and_they_verify_issued_tokens() {
    let es = generate_key(Algorithm::ES256).unwrap();
    let ed = generate_key(Algorithm::EdDSA).unwrap();
    let es_file = TempFile::new("es256.pem", &es.private_pem);
    // `file:` is read from the real file system (ProcessSecrets reads no variable here).
    let from_files = |text: String| {
        let config = Config::parse(&text, "keys.toml").unwrap();
        Gateway::from_config(&config, &ProcessSecrets).unwrap()
    };
    let es_gw = serve(from_files(keys_config(&es_file, &ed.private_pem, "es"))).await;
    let ed_gw = serve(from_files(keys_config(&es_file, &ed.private_pem, "ed"))).await;

    let reply = get(es_gw, "/.well-known/jwks.json", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let cache_control = reply.header("cache-control").unwrap();
    assert!(cache_control.contains("max-age="), "{cache_control}");
    let jwks = reply.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the HMAC key is never published: {jwks}");
    for key in keys {
        assert_eq!(key["use"], "sig");
        for private in ["d", "k", "p", "q"] {
            assert!(key.get(private).is_none(), "{private} published: {key}");
        }
    }
    assert!(!reply.text().contains(&b64(SECRET)) && !reply.text().contains(SECRET));
    let es_jwk = jwk(&jwks, "es");
    assert_eq!(
        (&es_jwk["kty"], &es_jwk["crv"], &es_jwk["alg"]),
        (&json!("EC"), &json!("P-256"), &json!("ES256"))
    );
    let ed_jwk = jwk(&jwks, "ed");
    assert_eq!(
        (&ed_jwk["kty"], &ed_jwk["crv"], &ed_jwk["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );

    // ES256: re-import the JWK and verify with jwt-compact.
    let token = issue_for_reporting(es_gw).await;
    assert_eq!(
        segment(&token, 0),
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "es"})
    );
    let key: JsonWebKey<'_> = serde_json::from_value(es_jwk.clone()).unwrap();
    let key = p256::ecdsa::VerifyingKey::try_from(&key).unwrap();
    let untrusted = jwt_compact::UntrustedToken::new(&token).unwrap();
    let verified = jwt_compact::alg::Es256
        .validator::<Value>(&key)
        .validate(&untrusted)
        .unwrap();
    assert_eq!(verified.claims().custom["sub"], "reporting");
    assert_eq!(verified.claims().custom["iss"], ISS);

    // EdDSA, from the other gateway's JWKS (the same keys).
    let token = issue_for_reporting(ed_gw).await;
    assert_eq!(
        segment(&token, 0),
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed"})
    );
    let jwks = get(ed_gw, "/.well-known/jwks.json", &[]).await.json();
    let key: JsonWebKey<'_> = serde_json::from_value(jwk(&jwks, "ed").clone()).unwrap();
    let key = ed25519_compact::PublicKey::try_from(&key).unwrap();
    let untrusted = jwt_compact::UntrustedToken::new(&token).unwrap();
    let verified = jwt_compact::alg::Ed25519
        .validator::<Value>(&key)
        .validate(&untrusted)
        .unwrap();
    assert_eq!(verified.claims().custom["client_id"], "reporting");

    // And a tampered copy does not verify there either.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = b64(json!({"sub": "admin"}).to_string());
    parts[1] = &forged;
    let forged = parts.join(".");
    let untrusted = jwt_compact::UntrustedToken::new(&forged).unwrap();
    assert!(
        jwt_compact::alg::Ed25519
            .validator::<Value>(&key)
            .validate(&untrusted)
            .is_err()
    );
}

/// Config text with one `[[jwt.keys]]` entry at a known line, and the error it gives.
fn start_up_error(key_entry: &str) -> (portcullis::config::ConfigError, usize) {
    let text = format!(
        "[log]\naccess_log = false\n\n[jwt]\nsigning_key = \"k1\"\n\n[[jwt.keys]]\n{key_entry}\n"
    );
    let line = text.lines().position(|l| l == "[[jwt.keys]]").unwrap() + 1;
    let config = Config::parse(&text, "weak.toml").unwrap();
    let error = match Gateway::from_config(&config, &HashMap::<String, String>::new()) {
        Ok(_) => panic!("the gateway started with\n{text}"),
        Err(e) => e,
    };
    (error, line)
}

#[test]
fn a_weak_hmac_secret_fails_to_start_naming_the_key_and_line() {
    for (algorithm, secret, min) in [
        ("HS256", "your-256-bit-secret", 32),
        ("HS256", "0123456789abcdef0123456789abcde", 32),
        (
            "HS384",
            "0123456789abcdef0123456789abcdef0123456789abcde",
            48,
        ),
        ("HS512", "changeme", 64),
    ] {
        let (error, line) = start_up_error(&format!(
            "kid = \"k1\"\nalgorithm = \"{algorithm}\"\nsecret = \"{secret}\""
        ));
        assert_eq!(error.key, "jwt.keys[0]", "{error}");
        assert_eq!(
            error.line,
            Some(line),
            "the line of the [[jwt.keys]] entry: {error}"
        );
        assert!(
            error.message.contains(&format!("at least {min} bytes")),
            "{error}"
        );
        assert!(error.to_string().starts_with("weak.toml:"), "{error}");
        assert!(
            !error.to_string().contains(secret),
            "the secret is echoed: {error}"
        );
    }
}

#[test]
fn a_short_rsa_key_fails_to_start_naming_the_key_and_line() {
    // A 1024-bit modulus (the top half of a 2048-bit one, made odd).
    let mut n = URL_SAFE_NO_PAD
        .decode("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ")
        .unwrap();
    n.truncate(128);
    n[127] |= 1;
    let pem = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from(65537u32),
    )
    .unwrap()
    .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
    .unwrap();
    let (error, line) = start_up_error(&format!(
        "kid = \"old-rsa\"\nalgorithm = \"RS256\"\npublic_key = '''\n{pem}'''\n\n[[jwt.keys]]\nkid = \"k1\"\nalgorithm = \"HS256\"\nsecret = \"{SECRET}\""
    ));
    assert_eq!(error.key, "jwt.keys[0]", "{error}");
    assert_eq!(
        error.line,
        Some(line),
        "the line of the [[jwt.keys]] entry: {error}"
    );
    assert!(error.message.contains("1024 bits"), "{error}");
    assert!(error.message.contains("2048"), "{error}");
}

// === revocation endpoint ===

#[tokio::test]
async fn the_revocation_endpoint_answers_per_rfc7009() {
    let gw = setup().await;
    let reply = post_form(gw, "/token/revoke", "token=", &[]).await;
    assert_oauth_error(
        &reply,
        400,
        "invalid_request",
        "The token parameter is required",
    );

    // A forged or unknown token: 200 and nothing to do (RFC 7009 §2.2).
    let forged = jws(
        &at_header("k1"),
        &good_claims("alice", now()),
        b"not-the-key",
    );
    let reply = post_form(gw, "/token/revoke", &format!("token={forged}"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({}));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));

    // JSON bodies work too.
    let issued = post_form(gw, "/token", &login("alice", ALICE_PASSWORD), &[]).await;
    let token = assert_issued(&issued)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = post_json(gw, "/token/revoke", &json!({"token": token})).await;
    assert_eq!(reply.status, StatusCode::OK);

    let reply = get(gw, "/token/revoke", &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
}

#[tokio::test]
async fn bodies_that_are_neither_form_nor_json_are_invalid_request() {
    let gw = setup().await;
    let description = "The request must have an application/x-www-form-urlencoded or JSON body";
    for content_type in [
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        let reply = post(gw, "/token", content_type, b"grant_type=password", &[]).await;
        assert_oauth_error(&reply, 400, "invalid_request", description);
    }
    let reply = send(
        http::Request::post(format!("http://{gw}/token"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"grant_type=password",
            )))
            .unwrap(),
    )
    .await;
    assert_oauth_error(&reply, 400, "invalid_request", description);
    let reply = post(gw, "/token", "application/json", b"[1]", &[]).await;
    assert_oauth_error(&reply, 400, "invalid_request", description);
    // A repeated JSON member is refused like a repeated form parameter (RFC 6749 §3.2).
    let repeated = br#"{"grant_type":"password","grant_type":"client_credentials"}"#;
    let reply = post(gw, "/token", "application/json", repeated, &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
}

/// SECURITY_CASES row 84 (RFC 6749 §5.2 and its example): every token endpoint error
/// is JSON with `Cache-Control: no-store` and `Pragma: no-cache`. The body parser in
/// front of the endpoint answers its own errors without `Pragma`.
#[tokio::test]
async fn body_parser_errors_on_the_token_endpoint_are_uncacheable_too() {
    let gw = setup().await;
    let form = "application/x-www-form-urlencoded";
    let cases: [(&str, &str, Vec<u8>, u16); 5] = [
        (
            "malformed percent-escape",
            form,
            b"grant_type=password&username=alice&password=a%ZZ".to_vec(),
            400,
        ),
        (
            "repeated JSON member",
            "application/json",
            br#"{"grant_type":"password","grant_type":"client_credentials"}"#.to_vec(),
            400,
        ),
        ("malformed JSON", "application/json", b"{bad".to_vec(), 400),
        ("over 8 KiB", form, "a=b&".repeat(3000).into_bytes(), 413),
        (
            "latin1 charset",
            "application/x-www-form-urlencoded; charset=latin1",
            b"grant_type=password".to_vec(),
            415,
        ),
    ];
    let mut missing = Vec::new();
    for (name, content_type, body, status) in cases {
        let reply = post(gw, "/token", content_type, &body, &[]).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{name}"
        );
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{name}");
        if reply.header("pragma") != Some("no-cache") {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "no Pragma: no-cache on: {missing:?}");
}
