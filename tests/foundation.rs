//! The foundation, black-box: a real gateway, real upstreams and a real client on
//! loopback. Covers routing, path and query joining, header hygiene, request ids,
//! streaming, WebSocket tunnels, upstream failures, graceful shutdown and the CLI.

#![expect(
    clippy::unwrap_used,
    reason = "a test that cannot set up should fail loudly"
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis::server::{ServerSettings, serve};
use portcullis::{Body, Config, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tower::service_fn;

const WAIT: Duration = Duration::from_secs(10);

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    headers: HeaderMap,
    body_len: usize,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An upstream that records requests and answers by path:
/// `/slow` after 600 ms, `/stream/N` with N bytes, `/hop` with hop-by-hop headers,
/// anything else 200 `ok`.
async fn upstream() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let seen = seen.clone();
        async move {
            let (parts, body) = req.into_parts();
            let path = parts.uri.path().to_owned();
            // Count the body as it streams, without holding it.
            let mut body = std::pin::pin!(body);
            let mut body_len = 0;
            while let Some(Ok(frame)) = body.frame().await {
                body_len += frame.data_ref().map_or(0, Bytes::len);
            }
            seen.lock().unwrap().push(Seen {
                uri: parts.uri.to_string(),
                headers: parts.headers.clone(),
                body_len,
            });
            let response = if path == "/slow" {
                tokio::time::sleep(Duration::from_millis(600)).await;
                Response::new(Body::from("slow"))
            } else if let Some(n) = path.strip_prefix("/stream/") {
                let total: usize = n.parse().unwrap();
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let frames = (0..total.div_ceil(chunk.len())).map(move |i| {
                    let len = chunk.len().min(total - i * chunk.len());
                    Ok::<_, Infallible>(Frame::data(chunk.slice(..len)))
                });
                Response::new(Body::new(StreamBody::new(futures_util::stream::iter(
                    frames,
                ))))
            } else if path == "/hop" {
                Response::builder()
                    .header("connection", "x-secret")
                    .header("x-secret", "1")
                    .header("keep-alive", "timeout=5")
                    .header("x-kept", "1")
                    .body(Body::from("hop"))
                    .unwrap()
            } else {
                Response::new(Body::from(format!("ok {body_len}")))
            };
            Ok::<_, Infallible>(response)
        }
    });
    tokio::spawn(serve(
        listener,
        svc,
        ServerSettings::default(),
        std::future::pending(),
    ));
    (addr, log)
}

struct TestGateway {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn gateway(toml: &str) -> TestGateway {
    let config = Config::parse(toml, "test").unwrap();
    let gateway = Gateway::from_config(&config, &HashMap::<String, String>::new()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async move {
        let _ = rx.await;
    }));
    TestGateway {
        addr,
        shutdown: Some(tx),
        task,
    }
}

fn routes(upstream: SocketAddr) -> String {
    format!(
        r#"
        [log]
        access_log = false
        [[routes]]
        path = "/api"
        upstream = "http://{upstream}"
        auth = "public"
        strip_prefix = true
        [[routes]]
        path = "/api/v2"
        upstream = "http://{upstream}/v2"
        auth = "public"
        strip_prefix = true
        [[routes]]
        path = "/keep"
        upstream = "http://{upstream}/base/"
        auth = "public"
        [[routes]]
        path = "/host"
        upstream = "http://{upstream}"
        auth = "public"
        preserve_host = true
        [[routes]]
        path = "/quick"
        upstream = "http://{upstream}"
        auth = "public"
        strip_prefix = true
        timeout = "200ms"
        "#
    )
}

async fn send(req: Request<Body>) -> Response<Bytes> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let res = tokio::time::timeout(WAIT, client.request(req))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, body)
}

async fn get(addr: SocketAddr, path: &str) -> Response<Bytes> {
    send(
        Request::get(format!("http://{addr}{path}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn last(log: &Log) -> Seen {
    log.lock().unwrap().last().cloned().unwrap()
}

#[tokio::test]
async fn prefixes_strip_and_join_onto_the_upstream_base() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    for (path, upstream_saw) in [
        ("/api", "/"),
        ("/api/users/7", "/users/7"),
        ("/api/v2/users", "/v2/users"),
        ("/api/v2", "/v2"),
        ("/keep/x", "/base/keep/x"),
    ] {
        assert_eq!(get(gw.addr, path).await.status(), StatusCode::OK, "{path}");
        assert_eq!(last(&log).uri, upstream_saw, "{path}");
    }
    let res = get(gw.addr, "/apix").await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "segment boundaries: /apix is not /api"
    );
    assert_eq!(res.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn the_query_string_is_kept_byte_for_byte() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let query = "b=2&a=%2F%20+x&&empty=&plus=a+b&utf=%C3%A9&raw=a/b?c";
    get(gw.addr, &format!("/api/q?{query}")).await;
    assert_eq!(last(&log).uri, format!("/q?{query}"));
}

#[tokio::test]
async fn path_tricks_are_normalised_or_refused() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    get(gw.addr, "/keep/../api/x").await;
    assert_eq!(last(&log).uri, "/x", "routed and forwarded as /api/x");
    let before = log.lock().unwrap().len();
    let res = get(gw.addr, "/keep/..%2fapi/x").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "the upstream was not called"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let req = Request::get(format!("http://{}/api/hop", gw.addr))
        .header("connection", "x-private, keep-alive")
        .header("x-private", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic eDp5")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("x-normal", "1")
        .body(Body::empty())
        .unwrap();
    let res = send(req).await;
    let seen = last(&log).headers;
    for name in [
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
    ] {
        assert!(!seen.contains_key(name), "{name} reached the upstream");
    }
    assert_eq!(seen["x-normal"], "1");
    for name in ["x-secret", "keep-alive"] {
        assert!(
            !res.headers().contains_key(name),
            "{name} reached the client"
        );
    }
    assert_eq!(res.headers()["x-kept"], "1");
}

#[tokio::test]
async fn forwarded_headers_are_set_by_the_gateway() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let req = Request::get(format!("http://{}/api/f", gw.addr))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("host", "gw.example")
        .body(Body::empty())
        .unwrap();
    send(req).await;
    let seen = last(&log).headers;
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "gw.example");
    assert_eq!(seen["host"], up.to_string(), "Host is the upstream's");

    let req = Request::get(format!("http://{}/host/x", gw.addr))
        .header("host", "gw.example")
        .body(Body::empty())
        .unwrap();
    send(req).await;
    assert_eq!(
        last(&log).headers["host"],
        "gw.example",
        "preserve_host keeps it"
    );
}

#[tokio::test]
async fn request_ids_are_propagated_generated_or_replaced() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let with_id = |id: &str| {
        Request::get(format!("http://{}/api/id", gw.addr))
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap()
    };
    let res = send(with_id("client-abc.1")).await;
    assert_eq!(res.headers()["x-request-id"], "client-abc.1");
    assert_eq!(last(&log).headers["x-request-id"], "client-abc.1");

    let res = get(gw.addr, "/api/id").await;
    let generated = res.headers()["x-request-id"].clone();
    assert_eq!(last(&log).headers["x-request-id"], generated);

    for bad in ["has space", &"x".repeat(200), "quote\"d"] {
        let res = send(with_id(bad)).await;
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert_eq!(last(&log).headers["x-request-id"], id);
    }
    let res = get(gw.addr, "/nowhere").await;
    assert!(
        res.headers().contains_key("x-request-id"),
        "errors carry an id too"
    );
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    // 256 MiB up, generated lazily: held whole anywhere, it would show in the RSS.
    let total = 256 * 1024 * 1024;
    let chunk = Bytes::from(vec![b'u'; 256 * 1024]);
    let frames = futures_util::stream::iter(
        (0..total / chunk.len()).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
    );
    let req = Request::post(format!("http://{}/api/upload", gw.addr))
        .body(Body::new(StreamBody::new(frames)))
        .unwrap();
    let res = send(req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(last(&log).body_len, total);

    let down = 64 * 1024 * 1024;
    let res = get(gw.addr, &format!("/api/stream/{down}")).await;
    assert_eq!(res.body().len(), down);
}

#[tokio::test]
async fn an_http2_client_reaches_an_http1_upstream() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Body>();
    let req = Request::get(format!("http://{}/api/h2?x=1", gw.addr))
        .body(Body::empty())
        .unwrap();
    let res = tokio::time::timeout(WAIT, client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(last(&log).uri, "/h2?x=1");
}

#[tokio::test]
async fn websockets_are_tunnelled_both_ways() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() || msg.is_binary() {
                ws.send(msg).await.unwrap();
            }
        }
    });
    let gw = gateway(&routes(ws_upstream)).await;
    let stream = TcpStream::connect(gw.addr).await.unwrap();
    let url = format!("ws://{}/api/socket", gw.addr);
    let (mut ws, response) =
        tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, stream))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..5 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let echoed = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), format!("hello {i}"));
    }
    ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    let echoed = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.into_data().as_ref(), [0u8, 1, 2]);
}

#[tokio::test]
async fn a_refused_or_broken_upstream_is_a_502_and_the_gateway_keeps_serving() {
    // A port with nothing listening.
    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(&routes(dead)).await;
    let res = get(gw.addr, "/api/x").await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "bad_gateway");
    assert_eq!(body["route"], "/api");
    assert_eq!(get(gw.addr, "/healthz").await.status(), StatusCode::OK);

    // An upstream that answers garbage.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let gw = gateway(&routes(garbage)).await;
    assert_eq!(
        get(gw.addr, "/api/x").await.status(),
        StatusCode::BAD_GATEWAY
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504_naming_the_route() {
    let (up, _log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let started = Instant::now();
    let res = get(gw.addr, "/quick/slow").await;
    assert_eq!(res.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(
        started.elapsed() < Duration::from_millis(550),
        "answered at the timeout, not after the upstream"
    );
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "gateway_timeout");
    assert_eq!(body["route"], "/quick");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let (up, _log) = upstream().await;
    let mut gw = gateway(&routes(up)).await;
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/api/slow").await });
    // Wait until the request has reached the gateway (a connection is open) before the signal.
    tokio::time::sleep(Duration::from_millis(150)).await;
    gw.shutdown.take().unwrap().send(()).unwrap();
    let res = tokio::time::timeout(WAIT, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body().as_ref(), b"slow");
    tokio::time::timeout(WAIT, &mut gw.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn builtin_endpoints_answer_404_405_and_options() {
    let (up, _log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    assert_eq!(get(gw.addr, "/healthz").await.status(), StatusCode::OK);
    let post = Request::post(format!("http://{}/healthz", gw.addr))
        .body(Body::empty())
        .unwrap();
    let res = send(post).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    let options = Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("http://{}/healthz", gw.addr))
        .body(Body::empty())
        .unwrap();
    let res = send(options).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    let res = get(gw.addr, "/unknown").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"], "not_found");
}

/// Sends raw bytes and returns the status line.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn malformed_requests_are_client_errors_and_never_forwarded() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    // hyper reads CL + TE as chunked and drops the Content-Length (RFC 9112 §6.3): the
    // upstream gets the chunked reading with a length of its own, and the byte the
    // Content-Length would have swallowed is never forwarded.
    let smuggle = b"POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX";
    raw(gw.addr, smuggle).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        let seen = log.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request forwarded: {seen:?}");
        assert_eq!(
            seen[0].body_len, 0,
            "framed as chunked, not by the Content-Length"
        );
        assert!(
            !seen[0].headers.contains_key("content-length")
                || seen[0].headers["content-length"] == "0"
        );
    }
    let big_head = format!(
        "GET /api/x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(32 * 1024)
    );
    assert!(
        raw(gw.addr, big_head.as_bytes()).await.contains(" 431 "),
        "a head over the limit is 431"
    );
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "the oversized request was not forwarded"
    );

    let bad_chunk = b"POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let status = raw(gw.addr, bad_chunk).await;
    assert!(
        status.contains(" 400 "),
        "a broken client body is the client's fault: {status}"
    );
}

#[tokio::test]
async fn h2c_upgrades_are_not_forwarded() {
    let (up, log) = upstream().await;
    let gw = gateway(&routes(up)).await;
    let req = Request::get(format!("http://{}/api/x", gw.addr))
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("http2-settings", "AAMAAABkAAQAAP__")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(req).await.status(), StatusCode::OK);
    let seen = last(&log).headers;
    assert!(!seen.contains_key("upgrade") && !seen.contains_key("http2-settings"));
}

fn check_config(toml: &str) -> (bool, String, String) {
    let dir = std::env::temp_dir().join(format!("portcullis-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{:x}.toml",
        toml.len() * 31 + toml.bytes().map(usize::from).sum::<usize>()
    ));
    std::fs::write(&path, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_config_files_name_the_key_and_the_line() {
    let cases = [
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n",
            ":3",
            "bogus",
        ),
        (
            "[server]\nshutdown_grace = \"ten\"\n",
            ":2",
            "server.shutdown_grace",
        ),
        ("[server]\n\nlisten = \"nowhere\"\n", ":3", "server.listen"),
        (
            "[[routes]]\npath = \"/a\"\nupstream = \"https://x\"\nauth = \"public\"\n",
            ":3",
            "routes[0].upstream",
        ),
        (
            "[[routes]]\npath = \"/a\"\n\nupstream = \"not a url\"\nauth = \"public\"\n",
            ":4",
            "routes[0].upstream",
        ),
        (
            "[[routes]]\npath = \"/a\"\nupstream = \"http://x\"\ntimeout = \"1 fortnight\"\n",
            ":4",
            "routes[0].timeout",
        ),
    ];
    for (toml, line, key) in cases {
        let (ok, _, stderr) = check_config(toml);
        assert!(!ok, "{toml} should be refused");
        assert!(stderr.contains(line), "no line {line} in: {stderr}");
        assert!(stderr.contains(key), "no key {key} in: {stderr}");
    }
}

#[test]
fn the_repository_config_is_valid_and_its_routes_are_printed() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("/api -> http://127.0.0.1:3000"), "{stdout}");
    assert!(stdout.contains("/healthz"), "{stdout}");
}
