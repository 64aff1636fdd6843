//! Private-key identities, black-box: a real gateway on loopback hands out Ed25519
//! challenges and trades signed ones for tokens (SECURITY_CASES §9, rows 132-144).

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

#[path = "../examples/identity_client.rs"]
mod identity_client;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis::server::{ServerSettings, serve};
use portcullis::{Body, Config, Gateway};
use serde_json::Value;
use tokio::net::TcpListener;
use tower::service_fn;

const WAIT: Duration = Duration::from_secs(10);
const GRANT: &str = "urn:portcullis:params:oauth:grant-type:ed25519-challenge";

/// RFC 8032 §7.1 TEST 1 (SECURITY_CASES §11.7).
const TEST1_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const TEST1_ID: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// A small-order point (ed25519-speccheck cases 0 and 1).
const SMALL_ORDER: &str = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa";

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An upstream that answers with the identity headers the gateway set.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = service_fn(|req: Request<Body>| async move {
        let h = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let body = serde_json::json!({"user": h("x-user-id"), "role": h("x-user-role")});
        Ok::<_, Infallible>(Response::new(Body::from(body.to_string())))
    });
    tokio::spawn(serve(
        listener,
        svc,
        ServerSettings::default(),
        std::future::pending(),
    ));
    addr
}

/// The gateway of these tests, with `identities` as its `[token.identities]` body.
fn config(upstream: SocketAddr, identities: &str) -> String {
    format!(
        r#"
        [log]
        access_log = false
        [jwt]
        signing_key = "k"
        [[jwt.keys]]
        kid = "k"
        algorithm = "HS256"
        secret = "identity-tests-jwt-secret-0123456789abcdef"
        [token]
        grants = ["challenge"]
        rate_per_minute = 0
        [token.identities]
        secret = "identity-tests-challenge-secret-0123456789"
        {identities}
        [[routes]]
        path = "/api"
        upstream = "http://{upstream}"
        require = {{ scope = ["read"] }}
        forward_claims = {{ sub = "X-User-Id", role = "X-User-Role" }}
        "#
    )
}

const OPEN: &str = r#"
        mode = "open"
        scope = "read"
        claims = { role = "user" }
        rate_per_minute = 0
"#;

/// Starts a gateway from `toml` on a port of its own; it stops with the test's runtime.
async fn start(toml: &str) -> SocketAddr {
    let config = Config::parse(toml, "test").unwrap();
    let gateway = Gateway::from_config(&config, &HashMap::<String, String>::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    addr
}

async fn open_gateway() -> SocketAddr {
    start(&config(upstream().await, OPEN)).await
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Value) {
    let response = tokio::time::timeout(WAIT, client().request(request))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn get_challenge(gw: SocketAddr, id: &str) -> (StatusCode, HeaderMap, Value) {
    let uri = format!("http://{gw}/token/challenge?id={id}");
    send(Request::get(uri).body(Full::default()).unwrap()).await
}

/// A challenge for `key`'s identity, and the identity.
async fn challenge_for(gw: SocketAddr, key: &SigningKey) -> (String, String) {
    let id = b64(key.verifying_key().as_bytes());
    let (status, _, body) = get_challenge(gw, &id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["challenge"].as_str().unwrap().to_owned(), id)
}

fn sign(key: &SigningKey, challenge: &str) -> String {
    b64(&key.sign(challenge.as_bytes()).to_bytes())
}

async fn redeem(
    gw: SocketAddr,
    id: &str,
    challenge: &str,
    signature: &str,
) -> (StatusCode, HeaderMap, Value) {
    let form = format!("grant_type={GRANT}&id={id}&challenge={challenge}&signature={signature}");
    let request = Request::post(format!("http://{gw}/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::from(form))
        .unwrap();
    send(request).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[track_caller]
fn assert_error(answer: &(StatusCode, HeaderMap, Value), code: &str) {
    assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.2);
    assert_eq!(answer.2["error"], code, "{}", answer.2);
    assert_eq!(answer.1[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn the_whole_flow_gives_a_token_whose_subject_is_the_identity() {
    let gw = open_gateway().await;
    let key = key(1);
    let id = b64(key.verifying_key().as_bytes());
    let (status, headers, body) = get_challenge(gw, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["expires_in"], 120);
    let challenge = body["challenge"].as_str().unwrap();
    assert!(
        challenge.starts_with("portcullis-challenge.v1."),
        "{challenge}"
    );

    let (status, headers, body) = redeem(gw, &id, challenge, &sign(&key, challenge)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["role"], "user");

    let request = Request::get(format!("http://{gw}/api/hello"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], id.as_str(), "the upstream sees the identity");
    assert_eq!(body["role"], "user");
}

#[tokio::test]
async fn the_short_grant_name_and_a_json_body_work_too() {
    let gw = open_gateway().await;
    let key = key(2);
    let (challenge, id) = challenge_for(gw, &key).await;
    let body = serde_json::json!({
        "grant_type": "challenge", "id": id, "challenge": challenge,
        "signature": sign(&key, &challenge),
    });
    let request = Request::post(format!("http://{gw}/token"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::from(body.to_string()))
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_challenge_is_redeemed_once_sequentially() {
    let gw = open_gateway().await;
    let key = key(3);
    let (challenge, id) = challenge_for(gw, &key).await;
    let signature = sign(&key, &challenge);
    assert_eq!(
        redeem(gw, &id, &challenge, &signature).await.0,
        StatusCode::OK
    );
    let again = redeem(gw, &id, &challenge, &signature).await;
    assert_error(&again, "invalid_grant");
}

#[tokio::test]
async fn twenty_concurrent_redemptions_of_one_challenge_yield_one_token() {
    let gw = open_gateway().await;
    let key = key(4);
    let (challenge, id) = challenge_for(gw, &key).await;
    let signature = sign(&key, &challenge);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (id, challenge, signature) = (id.clone(), challenge.clone(), signature.clone());
            tokio::spawn(async move { redeem(gw, &id, &challenge, &signature).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        let answer = task.await.unwrap();
        if answer.0 == StatusCode::OK {
            ok += 1;
        } else {
            assert_error(&answer, "invalid_grant");
        }
    }
    assert_eq!(ok, 1, "exactly one token from one challenge");
}

#[tokio::test]
async fn a_challenge_is_expired_from_its_expiry_second_on() {
    let identities = OPEN.replace("mode", "challenge_ttl = \"1s\"\n        mode");
    let gw = start(&config(upstream().await, &identities)).await;
    let key = key(5);
    let (challenge, id) = challenge_for(gw, &key).await;
    let exp_field = challenge.split('.').nth(3).unwrap();
    let exp = i64::from_be_bytes(
        URL_SAFE_NO_PAD
            .decode(exp_field)
            .unwrap()
            .try_into()
            .unwrap(),
    );
    // Wait for the wall clock to reach exactly `exp` (at most 1 s here), then redeem
    // at once: `now == exp` already counts as expired.
    let exp_at = UNIX_EPOCH + Duration::from_secs(exp as u64);
    if let Ok(left) = exp_at.duration_since(SystemTime::now()) {
        assert!(left <= Duration::from_secs(2));
        tokio::time::sleep(left).await;
    }
    let answer = redeem(gw, &id, &challenge, &sign(&key, &challenge)).await;
    assert!(
        unix_now() <= exp + 1,
        "the test ran too slowly to probe the boundary"
    );
    assert_error(&answer, "invalid_grant");
    assert_eq!(answer.2["error_description"], "The challenge expired");
}

#[tokio::test]
async fn a_challenge_for_another_identity_is_refused_both_ways() {
    let gw = open_gateway().await;
    let (alice, bob) = (key(6), key(7));
    let (challenge, alice_id) = challenge_for(gw, &alice).await;
    let bob_id = b64(bob.verifying_key().as_bytes());
    // Bob signs Alice's challenge and presents himself.
    let answer = redeem(gw, &bob_id, &challenge, &sign(&bob, &challenge)).await;
    assert_error(&answer, "invalid_grant");
    // Bob's signature, presented as Alice.
    let answer = redeem(gw, &alice_id, &challenge, &sign(&bob, &challenge)).await;
    assert_error(&answer, "invalid_grant");
    // Neither attempt burned Alice's challenge.
    let answer = redeem(gw, &alice_id, &challenge, &sign(&alice, &challenge)).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.2);
}

/// Replaces the character at `at` with another base64url character.
fn flip(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn a_tampered_challenge_is_refused_even_when_signed() {
    let gw = open_gateway().await;
    let key = key(8);
    let (challenge, id) = challenge_for(gw, &key).await;
    let tag_at = challenge.len() - 20;
    let exp_at = "portcullis-challenge.v1.".len() + 43 + 1 + 5;
    for tampered in [flip(&challenge, tag_at), flip(&challenge, exp_at)] {
        assert_ne!(tampered, challenge);
        // The user signs the tampered text: only the MAC can catch it.
        let answer = redeem(gw, &id, &tampered, &sign(&key, &tampered)).await;
        assert_error(&answer, "invalid_grant");
    }
    let forged = challenge.replace("portcullis-challenge.v1.", "portcullis-challenge.v2.");
    let answer = redeem(gw, &id, &forged, &sign(&key, &forged)).await;
    assert_error(&answer, "invalid_grant");
}

#[tokio::test]
async fn the_rfc8032_test1_key_is_an_identity() {
    let gw = open_gateway().await;
    let key = SigningKey::from_bytes(&hex(TEST1_SECRET).try_into().unwrap());
    let (challenge, id) = challenge_for(gw, &key).await;
    assert_eq!(id, TEST1_ID);
    let (status, _, body) = redeem(gw, &id, &challenge, &sign(&key, &challenge)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["sub"],
        TEST1_ID
    );
}

/// S + L, with S the little-endian scalar in the second half of the signature.
fn add_l(signature: &[u8; 64]) -> [u8; 64] {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = *signature;
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(signature[32 + i]) + u16::from(L[i]) + carry;
        out[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    out
}

#[tokio::test]
async fn a_malleated_s_plus_l_signature_is_refused_and_burns_nothing() {
    // The construction matches V-ED-SPLUSL-RAW (TEST 1 over the empty message).
    let test1 = hex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    let raw = hex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901554c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b",
    );
    assert_eq!(add_l(&test1.try_into().unwrap()).to_vec(), raw);

    let gw = open_gateway().await;
    let key = SigningKey::from_bytes(&hex(TEST1_SECRET).try_into().unwrap());
    let (challenge, id) = challenge_for(gw, &key).await;
    let good = key.sign(challenge.as_bytes()).to_bytes();
    let malleated = b64(&add_l(&good));
    let answer = redeem(gw, &id, &challenge, &malleated).await;
    assert_error(&answer, "invalid_grant");
    assert_eq!(
        redeem(gw, &id, &challenge, &b64(&good)).await.0,
        StatusCode::OK
    );
    let answer = redeem(gw, &id, &challenge, &malleated).await;
    assert_error(&answer, "invalid_grant");
}

#[tokio::test]
async fn small_order_keys_are_refused_at_the_challenge_and_at_the_grant() {
    let gw = open_gateway().await;
    let (valid_challenge, _) = challenge_for(gw, &key(9)).await;
    for small in [hex(SMALL_ORDER), vec![0; 32]] {
        let id = b64(&small);
        let answer = get_challenge(gw, &id).await;
        assert_error(&answer, "invalid_request");
        // Speccheck case 0's signature: small-order R and S = 0, which verifies under
        // a small-order key for many messages in lax verifiers.
        let mut sig = hex(SMALL_ORDER);
        sig[31] = 0x7a;
        sig.extend([0; 32]);
        let answer = redeem(gw, &id, &valid_challenge, &b64(&sig)).await;
        assert_error(&answer, "invalid_grant");
    }
}

#[tokio::test]
async fn malformed_parameters_are_invalid_requests() {
    let gw = open_gateway().await;
    let key = key(10);
    let (challenge, id) = challenge_for(gw, &key).await;
    let sig = key.sign(challenge.as_bytes()).to_bytes();
    for bad in [
        b64(&sig[..63]),
        b64(&[&sig[..], &[0]].concat()),
        format!("{}!", &b64(&sig)[1..]),
    ] {
        let answer = redeem(gw, &id, &challenge, &bad).await;
        assert_error(&answer, "invalid_request");
    }
    let answer = redeem(gw, "not-a-key", &challenge, &b64(&sig)).await;
    assert_error(&answer, "invalid_request");
    for query in ["", "id=", "id=abc", &format!("id={id}&id={id}")] {
        let uri = format!("http://{gw}/token/challenge?{query}");
        let answer = send(Request::get(uri).body(Full::default()).unwrap()).await;
        assert_error(&answer, "invalid_request");
    }
    // The challenge survived all of that.
    let answer = redeem(gw, &id, &challenge, &b64(&sig)).await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.2);
}

#[tokio::test]
async fn the_challenge_endpoint_is_rate_limited_per_client() {
    let identities = OPEN.replace(
        "rate_per_minute = 0",
        "rate_per_minute = 1\n        rate_burst = 2",
    );
    let gw = start(&config(upstream().await, &identities)).await;
    let id = b64(key(11).verifying_key().as_bytes());
    for _ in 0..2 {
        assert_eq!(get_challenge(gw, &id).await.0, StatusCode::OK);
    }
    let (status, headers, body) = get_challenge(gw, &id).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn an_allow_list_gives_its_own_claims_and_challenges_to_all() {
    let listed = key(12);
    let listed_id = b64(listed.verifying_key().as_bytes());
    let identities = format!(
        r#"
        mode = "allowlist"
        [[token.identities.allow]]
        id = "{listed_id}"
        scope = "read write"
        claims = {{ role = "admin" }}
        "#
    );
    let gw = start(&config(upstream().await, &identities)).await;
    let (challenge, id) = challenge_for(gw, &listed).await;
    let (status, _, body) = redeem(gw, &id, &challenge, &sign(&listed, &challenge)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["role"], "admin");

    // An unknown identity gets a challenge all the same (no enumeration), and is
    // refused only at the token endpoint.
    let stranger = key(13);
    let (known_status, _, known) = get_challenge(gw, &listed_id).await;
    let (challenge, id) = challenge_for(gw, &stranger).await;
    assert_eq!(known_status, StatusCode::OK);
    assert_eq!(known["challenge"].as_str().unwrap().len(), challenge.len());
    let answer = redeem(gw, &id, &challenge, &sign(&stranger, &challenge)).await;
    assert_error(&answer, "invalid_grant");
}

#[tokio::test]
async fn identity_config_errors_name_the_key_and_line() {
    let err = |toml: &str| {
        let config = Config::parse(toml, "t.toml").unwrap();
        Gateway::from_config(&config, &HashMap::<String, String>::new())
            .err()
            .unwrap()
    };
    let base = "[jwt]\nsigning_key = \"k\"\n[[jwt.keys]]\nkid = \"k\"\nalgorithm = \"HS256\"\nsecret = \"identity-tests-jwt-secret-0123456789abcdef\"\n";
    let e = err(&format!(
        "{base}[token]\ngrants = [\"challenge\"]\n[token.identities]\nmode = \"open\"\nsecret = \"short\"\n"
    ));
    assert_eq!(
        (e.key.as_str(), e.line),
        ("token.identities.secret", Some(11)),
        "{e}"
    );
    let e = err(&format!(
        "{base}[token]\ngrants = [\"challenge\"]\n[token.identities]\nmode = \"allowlist\"\n[[token.identities.allow]]\nid = \"{}\"\n",
        b64(&hex(SMALL_ORDER))
    ));
    assert_eq!(e.key, "token.identities.allow[0].id", "{e}");
    assert_eq!(e.line, Some(12), "{e}");
    let e = err(&format!(
        "{base}[token]\ngrants = [\"password\", \"challenge\"]\n"
    ));
    assert_eq!(e.key, "token.grants[1]", "{e}");
    let e = err(&format!("{base}[token.identities]\nmode = \"open\"\n"));
    assert_eq!(e.key, "token.identities", "{e}");
}

#[tokio::test]
async fn the_example_client_runs_the_whole_flow() {
    let gw = open_gateway().await;
    let key = key(14);
    let token = tokio::time::timeout(WAIT, identity_client::run(gw, &key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claims(&token)["sub"],
        b64(key.verifying_key().as_bytes()).as_str()
    );
}

#[tokio::test]
async fn the_cli_makes_a_key_and_trades_it_for_a_token() {
    let gw = open_gateway().await;
    let dir = std::env::temp_dir().join(format!("portcullis-identity-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("me.key");
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .args(args)
                .output()
                .unwrap()
        })
    };
    let new = vec![
        "identity".into(),
        "new".into(),
        "--out".into(),
        file.display().to_string(),
    ];
    let out = tokio::time::timeout(WAIT, run(new.clone()))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(id.len(), 43, "{id}");
    let pem = std::fs::read(&file).unwrap();
    assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = tokio::time::timeout(WAIT, run(new)).await.unwrap().unwrap();
    assert!(
        !again.status.success(),
        "an existing key is never overwritten"
    );

    let token = vec![
        "identity".into(),
        "token".into(),
        "--gateway".into(),
        format!("http://{gw}"),
        "--key".into(),
        file.display().to_string(),
    ];
    let out = tokio::time::timeout(WAIT, run(token))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(claims(token.trim())["sub"], id.as_str());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_refused_scope_does_not_burn_the_challenge() {
    let gw = open_gateway().await;
    let key = key(42);
    let (challenge, id) = challenge_for(gw, &key).await;
    let signature = sign(&key, &challenge);
    let form = format!(
        "grant_type={GRANT}&id={id}&challenge={challenge}&signature={signature}&scope=admin"
    );
    let request = Request::post(format!("http://{gw}/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::from(form))
        .unwrap();
    assert_error(&send(request).await, "invalid_scope");
    let answer = redeem(gw, &id, &challenge, &signature).await;
    assert_eq!(
        answer.0,
        StatusCode::OK,
        "the challenge is still good: {}",
        answer.2
    );
}
