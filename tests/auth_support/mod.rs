//! Shared by `tests/token.rs` and `tests/guard.rs`: a recording upstream, the gateway
//! started in-process from TOML on `127.0.0.1:0`, a client whose every step is bounded
//! by [`WAIT`], and a test-side JWS signer for hand-made attack tokens (HS256 through
//! aws-lc-rs, never through the crate's own signer).
//!
//! Readiness never comes from a sleep: every listener is bound before its task is
//! spawned, so its address accepts connections as soon as a builder returns.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test that cannot set up should fail loudly"
)]
#![allow(
    dead_code,
    reason = "each test crate uses a different part of the support module"
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::{Config, Gateway};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest any single network step may take before the test fails instead of hanging.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The HS256 secret of the gateway's signing key `k1` (over 32 bytes).
pub(crate) const SECRET: &str = "auth-tests-hs256-secret-0123456789abcdefghij";
/// The configured `jwt.issuer`.
pub(crate) const ISS: &str = "https://gw.example";
/// The configured `jwt.audience`.
pub(crate) const AUD: &str = "orders-api";
/// The configured `jwt.realm` (Bearer challenges).
pub(crate) const REALM: &str = "gw";
/// The configured `token.realm` (Basic challenges of `invalid_client`).
pub(crate) const TOKEN_REALM: &str = "gw-token";

/// SECURITY_CASES §12.2: bcrypt `$2b$` cost 4 known answers (fast to verify).
pub(crate) const ALICE_PASSWORD: &str = "Kk4DQuMMfZL9o";
pub(crate) const ALICE_HASH: &str = "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm";
pub(crate) const BOB_PASSWORD: &str = "9IeRXmnGxMYbs";
pub(crate) const BOB_HASH: &str = "$2b$04$pQ7gRO7e6wx/936oXhNjrOUNOHL1D0h1N2IDbJZYs.1ppzSof6SPy";

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// === the gateway ===

/// Parses `toml` and builds the gateway, with no secret from the environment.
pub(crate) fn build(toml: &str) -> Gateway {
    let config = Config::parse(toml, "test").unwrap_or_else(|e| panic!("{e}\n{toml}"));
    Gateway::from_config(&config, &HashMap::<String, String>::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Serves `gateway` on `127.0.0.1:0` until the test's runtime ends; returns its address.
pub(crate) async fn serve(gateway: Gateway) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    addr
}

/// [`build`] then [`serve`].
pub(crate) async fn start(toml: &str) -> SocketAddr {
    serve(build(toml)).await
}

// === the recording upstream ===

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The method.
    pub(crate) method: Method,
    /// Path and query as received.
    pub(crate) target: String,
    /// Every header, repeated ones included.
    pub(crate) headers: HeaderMap,
}

/// A loopback HTTP/1.1 upstream that records every request and answers `200 upstream`.
#[derive(Clone)]
pub(crate) struct Upstream {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Binds and starts it.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let record = record.clone();
                        async move {
                            record.lock().unwrap().push(Seen {
                                method: req.method().clone(),
                                target: req
                                    .uri()
                                    .path_and_query()
                                    .map_or_else(String::new, |pq| pq.as_str().to_owned()),
                                headers: req.headers().clone(),
                            });
                            let _ = req.into_body().collect().await;
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                                b"upstream",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, log }
    }

    /// `http://127.0.0.1:port`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests arrived.
    pub(crate) fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Every request so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// The last request; fails the test if there is none.
    pub(crate) fn last(&self) -> Seen {
        self.log
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("the upstream received no request"))
    }
}

// === the client ===

/// A response with its whole body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The status.
    pub(crate) status: StatusCode,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Bytes,
}

impl Reply {
    /// The single value of header `name` as text, or `None`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        assert!(values.next().is_none(), "{name} appears more than once");
        Some(first.to_str().unwrap())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The headers without the per-response ones (`x-request-id`, `date`), as a sorted
    /// list, for byte-for-byte comparisons of two answers.
    pub(crate) fn stable_headers(&self) -> Vec<(String, Vec<u8>)> {
        let mut list: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .filter(|(name, _)| *name != "x-request-id" && *name != "date")
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        list.sort();
        list
    }
}

/// Sends `req` on a fresh HTTP/1.1 client and collects the answer, failing after [`WAIT`].
pub(crate) async fn send(req: Request<Full<Bytes>>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = tokio::time::timeout(WAIT, client.request(req))
        .await
        .unwrap_or_else(|_| panic!("no response head in time"))
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .unwrap_or_else(|_| panic!("the response body did not end in time"))
        .unwrap()
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET http://addr{path}` with these headers (repeated names are sent repeated).
pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req.body(Full::default()).unwrap()).await
}

/// `GET` with `Authorization: Bearer token`.
pub(crate) async fn get_bearer(addr: SocketAddr, path: &str, token: &str) -> Reply {
    get(addr, path, &[("authorization", &format!("Bearer {token}"))]).await
}

/// `POST http://addr{path}` with a form body and these headers.
pub(crate) async fn post_form(
    addr: SocketAddr,
    path: &str,
    form: &str,
    headers: &[(&str, &str)],
) -> Reply {
    post(
        addr,
        path,
        "application/x-www-form-urlencoded",
        form.as_bytes(),
        headers,
    )
    .await
}

/// `POST http://addr{path}` with a JSON body.
pub(crate) async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    post(
        addr,
        path,
        "application/json",
        body.to_string().as_bytes(),
        &[],
    )
    .await
}

/// `POST` with a body of this media type.
pub(crate) async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Reply {
    let mut req =
        Request::post(format!("http://{addr}{path}")).header("content-type", content_type);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await
}

/// Writes `request` on a fresh TCP connection and returns everything answered until the
/// server closes it (or [`WAIT`] passes).
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    // The server may answer and close before it has read everything.
    let _ = tokio::time::timeout(WAIT, stream.write_all(request)).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Asserts the RFC 6750 `invalid_token` answer, exactly as the gateway words it.
pub(crate) fn assert_invalid_token(reply: &Reply, description: &str, case: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{case}: {}",
        reply.text()
    );
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
            )
            .as_str()
        ),
        "{case}"
    );
    assert_eq!(
        reply.json(),
        json!({"error": "invalid_token", "error_description": description}),
        "{case}"
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{case}");
}

/// Asserts an RFC 6749 §5.2 token endpoint error: status, JSON body and the headers.
pub(crate) fn assert_oauth_error(reply: &Reply, status: u16, error: &str, description: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"error": error, "error_description": description})
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
}

// === hand-made tokens ===

/// base64url without padding.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes segment `i` of a compact JWS as JSON.
pub(crate) fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// HMAC-SHA256 of `input` under `key`, base64url.
pub(crate) fn hs256(key: &[u8], input: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
}

/// A compact JWS of these exact header and payload bytes, HS256-MACed with `key`.
pub(crate) fn jws_raw(header: &str, payload: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = hs256(key, &input);
    format!("{input}.{sig}")
}

/// A compact JWS of `header` and `claims`, HS256-MACed with `key`.
pub(crate) fn jws(header: &Value, claims: &Value, key: &[u8]) -> String {
    jws_raw(&header.to_string(), &claims.to_string(), key)
}

/// The header the gateway's own tokens carry for key `kid`.
pub(crate) fn at_header(kid: &str) -> Value {
    json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})
}

/// Claims that pass every check at `now`: right `iss`/`aud`, valid for 10 minutes.
pub(crate) fn good_claims(sub: &str, now: i64) -> Value {
    json!({
        "iss": ISS,
        "aud": AUD,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": format!("jti-{sub}-{now}-{}", unique()),
    })
}

/// A valid token for `sub` signed with the gateway's HS256 secret, with `extra` claims
/// merged in (a `null` value removes a claim).
pub(crate) fn token_with(sub: &str, extra: &Value) -> String {
    let mut claims = good_claims(sub, now());
    if let (Value::Object(map), Value::Object(extra)) = (&mut claims, extra) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    jws(&at_header("k1"), &claims, SECRET.as_bytes())
}

/// A valid token for `sub`.
pub(crate) fn token(sub: &str) -> String {
    token_with(sub, &json!({}))
}

/// A process-wide counter, so every minted `jti` is distinct.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
