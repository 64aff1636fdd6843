//! The upstream connection pool, against a scripted upstream on loopback that counts
//! the connections it accepts and sees closed.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use portcullis::Body;
use portcullis::proxy::{ClientSettings, Proxy, Upstream, UpstreamClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How the scripted upstream answers each request.
#[derive(Clone, Copy)]
enum Script {
    /// `200`, `Content-Length: 2`, keep the connection.
    KeepAlive,
    /// The same response, then close the socket without saying so (no
    /// `Connection: close`): the pooled connection goes stale.
    SilentClose,
    /// Wait this long, then answer as `KeepAlive`.
    Slow(Duration),
    /// As `Slow` for requests for `/slow`, as `KeepAlive` for any other.
    SlowPath(Duration),
    /// Promise 1 MiB, send 2 bytes, hold the connection.
    Partial,
    /// Answer as `KeepAlive` as soon as the head is in, then read the request body.
    EarlyAnswer,
    /// The response whole with `Connection: close`, then hold the connection open.
    CloseHeader,
    /// The response whole, then bytes that are not part of it; hold the connection.
    TrailingBytes,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    closed: AtomicUsize,
    /// Request bodies read to their end.
    bodies: AtomicUsize,
}

struct ScriptedUpstream {
    url: String,
    counts: Arc<Counts>,
}

impl ScriptedUpstream {
    async fn start(script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let c = Arc::clone(&counts);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                c.accepted.fetch_add(1, Ordering::SeqCst);
                let c = Arc::clone(&c);
                tokio::spawn(async move {
                    serve(stream, script, &c).await;
                    c.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self { url, counts }
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.counts.closed.load(Ordering::SeqCst)
    }

    fn bodies(&self) -> usize {
        self.counts.bodies.load(Ordering::SeqCst)
    }
}

/// Answers requests until the peer closes or the script ends it. Only `EarlyAnswer`
/// reads request bodies (by `content-length`).
async fn serve(mut stream: TcpStream, script: Script, counts: &Counts) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end);
        match script {
            Script::KeepAlive | Script::SilentClose | Script::Slow(_) | Script::SlowPath(_) => {
                match script {
                    Script::Slow(delay) => tokio::time::sleep(delay).await,
                    Script::SlowPath(delay) if head.starts_with("get /slow ") => {
                        tokio::time::sleep(delay).await;
                    }
                    _ => {}
                }
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(ok).await.is_err() {
                    return;
                }
                if let Script::SilentClose = script {
                    return;
                }
            }
            Script::EarlyAnswer => {
                let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                if stream.write_all(ok).await.is_err() {
                    return;
                }
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |n| n.trim().parse().unwrap());
                while buf.len() < length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..length);
                counts.bodies.fetch_add(1, Ordering::SeqCst);
            }
            Script::CloseHeader | Script::TrailingBytes => {
                let answer: &[u8] = match script {
                    Script::CloseHeader => {
                        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
                    }
                    _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
                };
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            Script::Partial => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\nok";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                // Hold until the proxy gives up on the connection.
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
        }
    }
}

fn proxy(upstream: &ScriptedUpstream, settings: impl FnOnce(&mut ClientSettings)) -> Proxy {
    let mut s = ClientSettings::default();
    settings(&mut s);
    Proxy::new(
        UpstreamClient::new(&s),
        Upstream::parse(&upstream.url).unwrap(),
    )
}

fn request() -> Request<Body> {
    request_for("/x")
}

fn request_for(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", "gw")
        .body(Body::empty())
        .unwrap()
}

async fn get(proxy: &Proxy) -> (StatusCode, String) {
    get_path(proxy, "/x").await
}

async fn get_path(proxy: &Proxy, path: &str) -> (StatusCode, String) {
    let res = proxy.clone().oneshot(request_for(path)).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// `n` requests at once; every one must be answered within ten seconds.
async fn get_concurrently(proxy: &Proxy, n: usize) -> Vec<(StatusCode, String)> {
    let requests: Vec<_> = (0..n).map(|_| get(proxy)).collect();
    tokio::time::timeout(
        Duration::from_secs(10),
        futures_util::future::join_all(requests),
    )
    .await
    .unwrap_or_else(|_| panic!("a request was not answered in time"))
}

/// Polls `cond` for up to two seconds: the proxy's connection tasks run on their own.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The route's timeout is a deadline per request, kept by a timer that stays with the
/// pooled connection: each request pushes it on, a slow answer runs into it, and a timer
/// that ran out while the connection was idle does not fail the next request.
#[tokio::test]
async fn each_request_on_a_pooled_connection_gets_the_whole_timeout() {
    let upstream = ScriptedUpstream::start(Script::SlowPath(Duration::from_secs(3))).await;
    let proxy = proxy(&upstream, |_| {}).with_timeout(Duration::from_millis(300));
    assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
    // Idle past the timeout: the connection's timer runs out meanwhile.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
    // Requests over more than one timeout in all, each well within its own.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
    }
    assert_eq!(upstream.accepted(), 1, "all on one pooled connection");

    let started = std::time::Instant::now();
    let (status, body) = get_path(&proxy, "/slow").await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "answered at the timeout, counted from this request: {waited:?}"
    );
}

/// Routes to one upstream share its connections but not their timeouts: a connection
/// whose timer a route with a long timeout armed still answers 504 at a short one's.
#[tokio::test]
async fn a_shorter_timeout_on_a_shared_connection_is_kept() {
    let upstream = ScriptedUpstream::start(Script::SlowPath(Duration::from_millis(1500))).await;
    let client = UpstreamClient::default();
    let target = Upstream::parse(&upstream.url).unwrap();
    let long = Proxy::new(client.clone(), target.clone()).with_timeout(Duration::from_secs(30));
    let short = Proxy::new(client, target).with_timeout(Duration::from_millis(300));
    // Slow, so that its wait arms the connection's timer for its own deadline.
    assert_eq!(
        get_path(&long, "/slow").await,
        (StatusCode::OK, "ok".into())
    );

    let started = std::time::Instant::now();
    let (status, body) = get_path(&short, "/slow").await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(
        waited < Duration::from_secs(1),
        "answered at the short route's timeout: {waited:?}"
    );
    assert_eq!(
        upstream.accepted(),
        1,
        "on the long route's pooled connection"
    );
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let upstream = ScriptedUpstream::start(Script::KeepAlive).await;
    let proxy = proxy(&upstream, |_| {});
    for _ in 0..5 {
        assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
    }
    assert_eq!(upstream.accepted(), 1);
    assert_eq!(upstream.closed(), 0);
}

/// A response that came whole with its head returns its connection at once (before
/// the client reads it), but only a clean one: not after `Connection: close`, nor with
/// bytes after the response (a confused or hostile upstream). The upstream holds both
/// open, so only the proxy's decision keeps them out of the pool.
#[tokio::test]
async fn a_connection_that_said_close_or_sent_too_much_is_not_pooled() {
    for script in [Script::CloseHeader, Script::TrailingBytes] {
        let upstream = ScriptedUpstream::start(script).await;
        let proxy = proxy(&upstream, |_| {});
        for _ in 0..3 {
            assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
        }
        assert_eq!(upstream.accepted(), 3, "a new connection for each request");
        eventually("the proxy to close them", || upstream.closed() == 3).await;
    }
}

#[tokio::test]
async fn routes_to_one_upstream_share_its_pool() {
    let upstream = ScriptedUpstream::start(Script::KeepAlive).await;
    let client = UpstreamClient::default();
    let a = Proxy::new(client.clone(), Upstream::parse(&upstream.url).unwrap());
    let b = Proxy::new(
        client,
        Upstream::parse(&format!("{}/v2", upstream.url)).unwrap(),
    );
    assert_eq!(get(&a).await.0, StatusCode::OK);
    assert_eq!(get(&b).await.0, StatusCode::OK);
    assert_eq!(upstream.accepted(), 1);
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_is_not_used_again() {
    let upstream = ScriptedUpstream::start(Script::SilentClose).await;
    let proxy = proxy(&upstream, |_| {});
    for i in 1..=4 {
        assert_eq!(
            get(&proxy).await,
            (StatusCode::OK, "ok".into()),
            "request {i}"
        );
        eventually("the upstream closed", || upstream.closed() == i).await;
    }
    assert_eq!(upstream.accepted(), 4);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let upstream = ScriptedUpstream::start(Script::KeepAlive).await;
    let proxy = proxy(&upstream, |s| {
        s.pool_idle_timeout = Duration::from_millis(100)
    });
    assert_eq!(get(&proxy).await.0, StatusCode::OK);
    // No further request comes: the pool itself closes the connection.
    eventually("the idle connection was closed", || upstream.closed() == 1).await;
    assert_eq!(get(&proxy).await.0, StatusCode::OK);
    assert_eq!(upstream.accepted(), 2, "a new connection after the timeout");
}

#[tokio::test]
async fn a_response_dropped_before_its_end_does_not_return_its_connection() {
    let upstream = ScriptedUpstream::start(Script::Partial).await;
    let proxy = proxy(&upstream, |_| {});
    let res = proxy.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(res);
    // The rest of that response would be read as the next one's: the connection closes.
    eventually("the cut connection was closed", || upstream.closed() == 1).await;
    let res = proxy.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(upstream.accepted(), 2);
}

#[tokio::test]
async fn a_connection_answered_before_the_request_body_was_sent_is_reused_after_it() {
    let upstream = ScriptedUpstream::start(Script::EarlyAnswer).await;
    let proxy = proxy(&upstream, |_| {});
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let req = Request::post("/upload")
        .header("host", "gw")
        .header("content-length", "4")
        .body(Body::new(StreamBody::new(chunks)))
        .unwrap();
    tx.send(Bytes::from_static(b"ab")).await.unwrap();
    let res = proxy.clone().oneshot(req).await.unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(
        upstream.bodies(),
        0,
        "the response ended before the request body"
    );
    // The rest of the request body goes out after the exchange has ended ...
    tx.send(Bytes::from_static(b"cd")).await.unwrap();
    eventually("the upstream read the whole body", || {
        upstream.bodies() == 1
    })
    .await;
    // ... and the connection is pooled once it has (give the hand-back a moment).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
    assert_eq!(upstream.closed(), 0);
}

#[tokio::test]
async fn the_pool_keeps_at_most_max_idle_connections() {
    let upstream = ScriptedUpstream::start(Script::Slow(Duration::from_millis(100))).await;
    let proxy = proxy(&upstream, |s| s.pool_max_idle_per_host = 1);
    for (status, _) in get_concurrently(&proxy, 3).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        upstream.accepted(),
        3,
        "concurrent requests get a connection each"
    );
    eventually("two of three idle connections closed", || {
        upstream.closed() == 2
    })
    .await;
    assert_eq!(get(&proxy).await.0, StatusCode::OK);
    assert_eq!(upstream.accepted(), 3, "the kept one is reused");
}

#[tokio::test]
async fn connections_over_the_cap_wait_and_take_the_ones_that_come_back() {
    let upstream = ScriptedUpstream::start(Script::Slow(Duration::from_millis(50))).await;
    let proxy = proxy(&upstream, |s| s.max_connections_per_host = 2);
    for (status, body) in get_concurrently(&proxy, 6).await {
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    }
    // The four over the cap were served on the two connections as they came back.
    assert_eq!(upstream.accepted(), 2);
}

#[tokio::test]
async fn a_closed_connection_frees_its_slot_for_a_waiting_request() {
    // The upstream closes every connection after one answer: waiting requests can only
    // be served on new connections, each once the previous one has closed.
    let upstream = ScriptedUpstream::start(Script::SilentClose).await;
    let proxy = proxy(&upstream, |s| s.max_connections_per_host = 1);
    for (status, _) in get_concurrently(&proxy, 3).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(upstream.accepted(), 3);
}

#[tokio::test]
async fn without_a_cap_every_concurrent_request_gets_a_connection() {
    let upstream = ScriptedUpstream::start(Script::Slow(Duration::from_millis(50))).await;
    let proxy = proxy(&upstream, |s| s.max_connections_per_host = 0);
    for (status, _) in get_concurrently(&proxy, 6).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(upstream.accepted(), 6);
}

#[tokio::test]
async fn a_request_waiting_past_the_route_timeout_is_a_504() {
    let upstream = ScriptedUpstream::start(Script::Partial).await;
    let proxy = proxy(&upstream, |s| s.max_connections_per_host = 1)
        .with_timeout(Duration::from_millis(300));
    // The first response never ends: its connection (the only slot) stays busy.
    let first = proxy.clone().oneshot(request()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = proxy.clone().oneshot(request()).await.unwrap();
    assert_eq!(second.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(upstream.accepted(), 1);
    drop(first);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_a_later_one_is_reached() {
    // Reserve a port, close it: nothing listens there yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let proxy = Proxy::new(UpstreamClient::default(), Upstream::parse(&url).unwrap());
    let res = proxy.clone().oneshot(request()).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    // The failure is not remembered: once something listens, requests go through.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        serve(stream, Script::KeepAlive, &Counts::default()).await;
    });
    assert_eq!(get(&proxy).await, (StatusCode::OK, "ok".into()));
}
