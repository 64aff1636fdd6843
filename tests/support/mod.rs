//! Builders for black-box tests: recording upstreams (HTTP/1.1 on hyper, raw TCP
//! misbehaviours, a WebSocket echo), the gateway started in-process from config text on
//! `127.0.0.1:0`, and real clients (hyper-util's legacy client over HTTP/1.1 or HTTP/2
//! prior knowledge, and raw TCP for malformed requests).
//!
//! Readiness never comes from a sleep: every listener is bound before its task is
//! spawned, so its address is live when a builder returns.

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
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis::{Config, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

/// The longest any single client step may take before the test fails instead of hanging.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// Errors of streamed bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every test client and upstream.
pub(crate) type TestBody = UnsyncBoxBody<Bytes, BoxError>;

/// An empty body.
pub(crate) fn empty() -> TestBody {
    Empty::new()
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// A body of these bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

/// A body of `total` bytes of `fill`, generated chunk by chunk and never held whole.
/// When `gate` is given, the body stops after its first chunk until `gate` resolves.
pub(crate) fn generated(
    total: u64,
    fill: u8,
    gate: Option<futures_util::future::BoxFuture<'static, ()>>,
) -> TestBody {
    const CHUNK: u64 = 256 * 1024;
    let chunk = Bytes::from(vec![fill; CHUNK as usize]);
    let state = (0u64, gate);
    let stream = futures_util::stream::unfold(state, move |(sent, gate)| {
        let chunk = chunk.clone();
        async move {
            if sent >= total {
                return None;
            }
            let mut gate = gate;
            if sent > 0 {
                if let Some(gate) = gate.take() {
                    gate.await;
                }
            }
            let len = CHUNK.min(total - sent);
            let frame = Frame::data(chunk.slice(..len as usize));
            Some((Ok::<_, BoxError>(frame), (sent + len, gate)))
        }
    });
    StreamBody::new(stream).boxed_unsync()
}

// === upstreams ===

/// One request as an upstream saw it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// The method.
    pub(crate) method: Method,
    /// The request target exactly as received (origin form: path and query).
    pub(crate) target: String,
    /// The protocol version.
    pub(crate) version: Version,
    /// The headers.
    pub(crate) headers: HeaderMap,
    /// How many body bytes arrived.
    pub(crate) body_len: u64,
    /// The first 64 KiB of the body.
    pub(crate) body: Vec<u8>,
    /// Whether the body ended in an error instead of its end.
    pub(crate) body_error: bool,
    /// Whether the whole body has been read.
    pub(crate) complete: bool,
}

/// How an upstream answers a request.
#[derive(Clone)]
pub(crate) enum Reply {
    /// A fixed status, headers and body (after reading the request body).
    Fixed {
        /// The status.
        status: u16,
        /// Extra response headers.
        headers: Vec<(&'static str, &'static str)>,
        /// The body.
        body: Bytes,
    },
    /// 200 with the request body streamed straight back as it arrives.
    Echo,
    /// Waits this long (after reading the request body), then answers the inner reply.
    Delay(Duration, Box<Reply>),
    /// 200 with `total` bytes of `d`, in 64 KiB chunks; with a gate, the rest of the
    /// body waits after the first chunk until the gate is notified.
    Stream {
        /// How many bytes.
        total: u64,
        /// Released by the test once the client has seen the first bytes.
        gate: Option<Arc<Notify>>,
    },
}

impl Reply {
    /// 200 `ok`.
    pub(crate) fn ok() -> Self {
        Self::Fixed {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from_static(b"ok"),
        }
    }

    /// A status and a body.
    pub(crate) fn status(status: u16, body: &'static str) -> Self {
        Self::Fixed {
            status,
            headers: Vec::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    /// A fixed answer with headers.
    pub(crate) fn with_headers(
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
    ) -> Self {
        Self::Fixed {
            status,
            headers,
            body: Bytes::from_static(body.as_bytes()),
        }
    }
}

type Decide = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A real HTTP/1.1 upstream on loopback that records every request.
pub(crate) struct Upstream {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    arrived: watch::Receiver<usize>,
    received: watch::Receiver<u64>,
}

impl Upstream {
    /// An upstream answering every request with `reply`.
    pub(crate) async fn start(reply: Reply) -> Self {
        Self::start_with(move |_| reply.clone()).await
    }

    /// An upstream that decides its reply from the request head.
    pub(crate) async fn start_with(
        decide: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (arrived_tx, arrived) = watch::channel(0usize);
        let (received_tx, received) = watch::channel(0u64);
        let state = Arc::new(UpstreamState {
            log: log.clone(),
            arrived: arrived_tx,
            received: received_tx,
            decide: Arc::new(decide),
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            log,
            arrived,
            received,
        }
    }

    /// `http://127.0.0.1:port` followed by `base`.
    pub(crate) fn url(&self, base: &str) -> String {
        format!("http://{}{base}", self.addr)
    }

    /// Every request seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub(crate) fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The last request seen; fails the test if there is none.
    pub(crate) fn last(&self) -> Seen {
        self.log
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("the upstream received no request"))
    }

    /// Resolves once `n` requests have arrived (their heads, not their bodies).
    pub(crate) async fn arrived(&self, n: usize) {
        let mut rx = self.arrived.clone();
        tokio::time::timeout(WAIT, rx.wait_for(|&count| count >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} request(s) never reached the upstream"))
            .unwrap();
    }

    /// A future that resolves once at least one request body byte has arrived.
    pub(crate) fn first_body_byte(&self) -> futures_util::future::BoxFuture<'static, ()> {
        let mut rx = self.received.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|&n| n > 0).await;
        })
    }
}

struct UpstreamState {
    log: Arc<Mutex<Vec<Seen>>>,
    arrived: watch::Sender<usize>,
    received: watch::Sender<u64>,
    decide: Decide,
}

impl UpstreamState {
    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Response<TestBody> {
        let (parts, body) = req.into_parts();
        let seen = Seen {
            method: parts.method.clone(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned()),
            version: parts.version,
            headers: parts.headers.clone(),
            body_len: 0,
            body: Vec::new(),
            body_error: false,
            complete: false,
        };
        let reply = (self.decide)(&seen);
        let index = {
            let mut log = self.log.lock().unwrap();
            log.push(seen);
            log.len() - 1
        };
        self.arrived.send_modify(|n| *n += 1);

        if let Reply::Echo = reply {
            let state = self.clone();
            let stream = futures_util::stream::unfold(Some(body), move |body| {
                let state = state.clone();
                async move {
                    let mut body = body?;
                    match body.frame().await {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                state.record(index, data);
                            }
                            Some((Ok::<_, BoxError>(frame), Some(body)))
                        }
                        Some(Err(e)) => {
                            state.finish(index, true);
                            Some((Err(e.into()), None))
                        }
                        None => {
                            state.finish(index, false);
                            None
                        }
                    }
                }
            });
            return Response::new(StreamBody::new(stream).boxed_unsync());
        }

        let mut body = body;
        let mut error = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        self.record(index, data);
                    }
                }
                Err(_) => {
                    error = true;
                    break;
                }
            }
        }
        self.finish(index, error);
        respond(reply).await
    }

    fn record(&self, index: usize, data: &Bytes) {
        let mut log = self.log.lock().unwrap();
        let seen = &mut log[index];
        seen.body_len += data.len() as u64;
        let room = (64 * 1024usize).saturating_sub(seen.body.len());
        seen.body.extend_from_slice(&data[..data.len().min(room)]);
        drop(log);
        self.received.send_modify(|n| *n += data.len() as u64);
    }

    fn finish(&self, index: usize, error: bool) {
        let mut log = self.log.lock().unwrap();
        log[index].body_error = error;
        log[index].complete = true;
    }
}

async fn respond(reply: Reply) -> Response<TestBody> {
    let mut reply = reply;
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    match reply {
        Reply::Fixed {
            status,
            headers,
            body,
        } => {
            let mut response = Response::new(full(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            for (name, value) in headers {
                response.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            response
        }
        Reply::Stream { total, gate } => {
            let gate: Option<futures_util::future::BoxFuture<'static, ()>> = gate.map(|g| {
                Box::pin(async move { g.notified().await })
                    as futures_util::future::BoxFuture<'static, ()>
            });
            Response::new(generated(total, b'd', gate))
        }
        Reply::Echo | Reply::Delay(..) => unreachable!("handled before"),
    }
}

/// An address where nothing listens: connections are refused.
pub(crate) fn refusing_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A raw upstream: counts connections and, on each, reads the request head and then
/// writes `answer` (possibly nothing) and closes.
pub(crate) async fn raw_upstream(answer: &'static [u8]) -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(Mutex::new(0usize));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, connections)
}

/// A WebSocket echo upstream (tungstenite on a raw listener): echoes text and binary
/// messages and records the headers of each handshake.
pub(crate) async fn websocket_echo() -> (SocketAddr, Arc<Mutex<Vec<(String, HeaderMap)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
    let log = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                #[expect(
                    clippy::result_large_err,
                    reason = "the signature of tungstenite's handshake callback"
                )]
                let callback =
                    move |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                        log.lock()
                            .unwrap()
                            .push((req.uri().to_string(), req.headers().clone()));
                        Ok(res)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    } else if msg.is_close() {
                        return;
                    }
                }
            });
        }
    });
    (addr, handshakes)
}

// === the gateway ===

/// A gateway serving in-process on `127.0.0.1:0`.
pub(crate) struct TestGateway {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    /// Parses `toml`, builds the gateway with no secrets from the environment, binds
    /// the listener and spawns `serve`.
    pub(crate) async fn start(toml: &str) -> Self {
        let config = Config::parse(toml, "test").unwrap_or_else(|e| panic!("{e}\n{toml}"));
        let gateway = Gateway::from_config(&config, &HashMap::<String, String>::new())
            .unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// `http://addr` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers the graceful shutdown.
    pub(crate) fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for `serve` to return (at most [`WAIT`]).
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        let task = self.task.take().unwrap();
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap_or_else(|_| panic!("serve did not return after the shutdown"))
            .unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Config text: `[log] access_log = false`, then `extra` (other sections), then one
/// public route per `(path, upstream URL, route keys)`.
pub(crate) fn config(extra: &str, routes: &[(&str, String, &str)]) -> String {
    let mut toml = format!("[log]\naccess_log = false\n\n{extra}\n");
    for (path, upstream, keys) in routes {
        toml.push_str(&format!(
            "\n[[routes]]\npath = \"{path}\"\nupstream = \"{upstream}\"\nauth = \"public\"\n{keys}\n"
        ));
    }
    toml
}

// === clients ===

/// A response with its whole body.
pub(crate) type Collected = Response<Bytes>;

/// An HTTP/1.1 client.
pub(crate) fn h1() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 client with prior knowledge (cleartext, no upgrade).
pub(crate) fn h2() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `req` and collects the response, failing after [`WAIT`].
pub(crate) async fn send_with(
    client: &Client<HttpConnector, TestBody>,
    req: Request<TestBody>,
) -> Collected {
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
    Response::from_parts(parts, body)
}

/// Sends `req` over HTTP/1.1.
pub(crate) async fn send(req: Request<TestBody>) -> Collected {
    send_with(&h1(), req).await
}

/// `GET url` over HTTP/1.1.
pub(crate) async fn get(url: &str) -> Collected {
    send(Request::get(url).body(empty()).unwrap()).await
}

/// A response body as JSON.
pub(crate) fn json(res: &Collected) -> serde_json::Value {
    serde_json::from_slice(res.body())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(res.body())))
}

/// Writes `request` on a fresh connection, then reads until the server closes it (or
/// [`WAIT`] passes) and returns everything it answered.
pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything we send.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP/1.1 answer, or 0 if there is none.
pub(crate) fn raw_status(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
