//! The body parser through the real gateway and through an axum app, on loopback.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

#[path = "../examples/axum_reuse.rs"]
mod axum_reuse;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::server::{ServerSettings, serve};
use portcullis::{Body, Config, Gateway};
use tokio::net::TcpListener;
use tower::service_fn;

const MIB: usize = 1024 * 1024;

/// What the upstream received, request by request.
type Seen = Arc<Mutex<Vec<Bytes>>>;

async fn recording_upstream() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let svc = service_fn(move |req: Request<portcullis::Body>| {
        let log = log.clone();
        async move {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            log.lock().unwrap().push(body);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    tokio::spawn(serve(
        listener,
        svc,
        ServerSettings::default(),
        std::future::pending(),
    ));
    (addr, seen)
}

async fn gateway(upstream: SocketAddr) -> SocketAddr {
    let toml = format!(
        r#"
        [log]
        access_log = false
        [[routes]]
        path = "/json"
        upstream = "http://{upstream}"
        auth = "public"
        body = "json"
        [[routes]]
        path = "/form"
        upstream = "http://{upstream}"
        auth = "public"
        body = "form"
        [[routes]]
        path = "/any"
        upstream = "http://{upstream}"
        auth = "public"
        body = "any"
        "#
    );
    let config = Config::parse(&toml, "test").unwrap();
    let gateway = Gateway::from_config(&config, &HashMap::<String, String>::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    addr
}

async fn axum_app() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let demo = axum_reuse::demo().unwrap();
    tokio::spawn(async move { axum::serve(listener, demo.app).await });
    addr
}

fn axum_token() -> String {
    let demo = axum_reuse::demo().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let request = portcullis::jwt::TokenRequest {
        subject: "alice".into(),
        ttl: Duration::from_secs(60),
        ..Default::default()
    };
    demo.issuer.issue(request, now).unwrap().token
}

/// A JSON document of exactly `len` bytes: `{"a":"xxx…"}`.
fn json_of_len(len: usize) -> Bytes {
    let pad = len - r#"{"a":""}"#.len();
    Bytes::from(format!(r#"{{"a":"{}"}}"#, "x".repeat(pad)))
}

/// Sends `body` with a Content-Length, or chunked in 16 KiB pieces.
async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: Bytes,
    chunked: bool,
) -> (StatusCode, String) {
    post_with(addr, path, content_type, body, chunked, None).await
}

/// Like [`post`], with a bearer token.
async fn post_with(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: Bytes,
    chunked: bool,
    token: Option<&str>,
) -> (StatusCode, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let body = if chunked {
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = body
            .chunks(16 * 1024)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        Body::new(StreamBody::new(futures_util::stream::iter(chunks)))
    } else {
        Body::from(body)
    };
    let mut req =
        Request::post(format!("http://{addr}{path}")).header("content-type", content_type);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(body).unwrap();
    let res = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn json_limit_boundary_with_content_length_and_chunked() {
    let (upstream, seen) = recording_upstream().await;
    let gw = gateway(upstream).await;
    for chunked in [false, true] {
        let (status, _) = post(gw, "/json", "application/json", json_of_len(MIB), chunked).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "exactly the limit passes (chunked: {chunked})"
        );
        let (status, body) = post(
            gw,
            "/json",
            "application/json",
            json_of_len(MIB + 1),
            chunked,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "one byte more is 413 (chunked: {chunked})"
        );
        assert!(body.contains("payload_too_large"), "{body}");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "only the bodies within the limit were forwarded"
    );
}

#[tokio::test]
async fn form_limit_boundary() {
    let (upstream, seen) = recording_upstream().await;
    let gw = gateway(upstream).await;
    let form = |len: usize| Bytes::from(format!("a={}", "b".repeat(len - 2)));
    let ct = "application/x-www-form-urlencoded";
    assert_eq!(
        post(gw, "/form", ct, form(56 * 1024), true).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(gw, "/form", ct, form(56 * 1024 + 1), true).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        post(gw, "/form", ct, form(56 * 1024 + 1), false).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_100_mib_body_is_refused_without_buffering_it() {
    let (upstream, seen) = recording_upstream().await;
    let gw = gateway(upstream).await;
    let before = rss_kib();
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let chunks = futures_util::stream::iter(
        (0..1600).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let req = Request::post(format!("http://{gw}/json"))
        .header("content-type", "application/json")
        .body(Body::new(StreamBody::new(chunks)))
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 24,
        "memory grew by {grown_mib} MiB for a 100 MiB body"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn the_original_bytes_reach_the_upstream() {
    let (upstream, seen) = recording_upstream().await;
    let gw = gateway(upstream).await;
    let raw = Bytes::from_static(b"{ \"b\" : 1,\n  \"a\":\"\\u00e9t\xc3\xa9\", \"n\": 1.50 }\n");
    assert_eq!(
        post(gw, "/json", "application/json", raw.clone(), true)
            .await
            .0,
        StatusCode::OK
    );
    let form = Bytes::from_static(b"z=1&a=%41+b&a=2");
    assert_eq!(
        post(
            gw,
            "/any",
            "application/x-www-form-urlencoded",
            form.clone(),
            false
        )
        .await
        .0,
        StatusCode::OK
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], raw);
    assert_eq!(seen[1], form);
}

/// The checks every body parser deployment must pass, gateway or axum.
async fn malformed_bodies_are_refused(addr: SocketAddr, json_path: &str, token: Option<&str>) {
    let json = "application/json";
    let (status, body) = post_with(
        addr,
        json_path,
        json,
        Bytes::from_static(b"{\n\"a\": @}"),
        false,
        token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("line 2 column"), "{body}");
    let deep = "[".repeat(10_000) + &"]".repeat(10_000);
    assert_eq!(
        post_with(addr, json_path, json, Bytes::from(deep), false, token)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let dup = Bytes::from_static(br#"{"user":"a","user":"admin"}"#);
    assert_eq!(
        post_with(addr, json_path, json, dup, false, token).await.0,
        StatusCode::BAD_REQUEST
    );
    let latin1 = "application/json; charset=latin1";
    assert_eq!(
        post_with(
            addr,
            json_path,
            latin1,
            Bytes::from_static(b"{}"),
            false,
            token
        )
        .await
        .0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let big = Bytes::from(vec![b' '; 2 * MIB]);
    assert_eq!(
        post_with(addr, json_path, json, big, false, token).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_by_the_gateway() {
    let (upstream, seen) = recording_upstream().await;
    let gw = gateway(upstream).await;
    malformed_bodies_are_refused(gw, "/json", None).await;
    let form = "application/x-www-form-urlencoded";
    assert_eq!(
        post(gw, "/form", form, Bytes::from_static(b"a=%ZZ"), false)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            gw,
            "/any",
            "text/plain",
            Bytes::from_static(b"\xff\xfe"),
            false
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(gw, "/json", "text/xml", Bytes::from_static(b"<a/>"), false)
            .await
            .0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing malformed was forwarded"
    );
}

#[tokio::test]
async fn an_axum_app_using_the_layer_passes_the_same_checks() {
    let app = axum_app().await;
    let token = axum_token();
    malformed_bodies_are_refused(app, "/orders", Some(&token)).await;
    let order = Bytes::from_static(br#"{"item":"tea"}"#);
    let (status, body) = post_with(
        app,
        "/orders",
        "application/json",
        order.clone(),
        false,
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["kind"], "json", "the handler read the parsed body");
    assert_eq!(body["received"]["item"], "tea");
    assert_eq!(
        body["user"], "alice",
        "the handler read the verified claims"
    );

    // The guard runs before the body parser: no token, no body read, 401.
    let (status, _) = post(
        app,
        "/orders",
        "application/json",
        Bytes::from_static(b"{oops"),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // And an unknown path is still a 404, not a 401 (route_layer).
    let (status, _) = post(app, "/nowhere", "application/json", order, false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
