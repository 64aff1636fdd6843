//! HTTP/1.1 message framing between the proxy and its upstreams, against a scripted
//! upstream on loopback that writes exact bytes: how response bodies are delimited
//! (length, chunks, close, no body), which responses are refused, whether a connection
//! is reused after each, and how request bodies are framed on the way up.
#![expect(clippy::unwrap_used, clippy::panic, reason = "tests")]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use portcullis::proxy::{Proxy, Upstream, UpstreamClient};
use portcullis::{Body, BoxError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The longest any one step may take before the test counts as hung.
const WAIT: Duration = Duration::from_secs(10);

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
const FORGED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged";

/// What the scripted upstream writes for one request.
struct Reply {
    bytes: Vec<u8>,
    /// Close the connection after writing (otherwise keep serving on it).
    close: bool,
}

/// Write `bytes`, keep the connection.
fn keep(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply {
        bytes: bytes.into(),
        close: false,
    }
}

/// Write `bytes`, then close the connection.
fn close(bytes: impl Into<Vec<u8>>) -> Reply {
    Reply {
        bytes: bytes.into(),
        close: true,
    }
}

/// A request as the upstream read it.
struct Recorded {
    /// The request line and headers, up to and including the blank line.
    head: String,
    /// The body, de-chunked if it was chunked.
    body: Vec<u8>,
}

impl Recorded {
    /// Asserts the request line (with its CRLF), showing the whole head if it differs.
    fn assert_line(&self, line: &str) {
        assert!(self.head.starts_with(line), "{}", self.head);
    }

    /// The value of the header `name`, if there is one (the first one).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

#[derive(Default)]
struct State {
    accepted: AtomicUsize,
    requests: Mutex<Vec<Recorded>>,
}

/// An upstream that answers request `i` (counted over all its connections) with
/// `replies[i]`, or with the last reply once they run out.
struct Scripted {
    url: String,
    state: Arc<State>,
}

impl Scripted {
    async fn start(replies: Vec<Reply>) -> Self {
        assert!(!replies.is_empty());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State::default());
        let replies = Arc::new(replies);
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                s.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(
                    Conn {
                        stream,
                        buf: Vec::new(),
                    },
                    Arc::clone(&s),
                    Arc::clone(&replies),
                ));
            }
        });
        Self { url, state }
    }

    fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Runs `f` on the requests read so far, in the order they were read.
    fn requests<T>(&self, f: impl FnOnce(&[Recorded]) -> T) -> T {
        f(&self.state.requests.lock().unwrap())
    }

    /// A proxy to this upstream with a pool of its own.
    fn proxy(&self) -> Proxy {
        Proxy::new(
            UpstreamClient::default(),
            Upstream::parse(&self.url).unwrap(),
        )
    }
}

async fn serve(mut conn: Conn, state: Arc<State>, replies: Arc<Vec<Reply>>) {
    while let Some(request) = read_request(&mut conn).await {
        let i = {
            let mut requests = state.requests.lock().unwrap();
            requests.push(request);
            requests.len() - 1
        };
        let reply = &replies[i.min(replies.len() - 1)];
        if conn.stream.write_all(&reply.bytes).await.is_err() || reply.close {
            return;
        }
    }
}

/// One upstream connection and the bytes read from it but not yet consumed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more bytes; `None` at the end of the stream.
    async fn fill(&mut self) -> Option<()> {
        let mut chunk = [0u8; 16384];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// The bytes up to and including the first `delimiter`.
    async fn until(&mut self, delimiter: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(at) = self
                .buf
                .windows(delimiter.len())
                .position(|w| w == delimiter)
            {
                return Some(self.buf.drain(..at + delimiter.len()).collect());
            }
            self.fill().await?;
        }
    }

    /// The next `n` bytes.
    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Some(self.buf.drain(..n).collect())
    }
}

/// Reads one request: its head, and its body as `Content-Length` or chunked framing
/// says.
async fn read_request(conn: &mut Conn) -> Option<Recorded> {
    let head = String::from_utf8(conn.until(b"\r\n\r\n").await?).unwrap();
    let mut request = Recorded {
        head,
        body: Vec::new(),
    };
    let chunked = request
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            let line = String::from_utf8(conn.until(b"\r\n").await?).unwrap();
            let size = line.trim_end().split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size, 16).unwrap();
            if size == 0 {
                // Trailers, up to the blank line.
                while conn.until(b"\r\n").await? != b"\r\n" {}
                break;
            }
            let data = conn.exact(size + 2).await?;
            assert_eq!(&data[size..], b"\r\n", "chunk data ends with CRLF");
            request.body.extend_from_slice(&data[..size]);
        }
    } else if let Some(length) = request.header("content-length") {
        let length = length.parse().unwrap();
        request.body = conn.exact(length).await?;
    }
    Some(request)
}

/// Awaits `f`, failing the test if it takes longer than [`WAIT`].
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("no answer within {WAIT:?}"))
}

async fn send(proxy: &Proxy, req: Request<Body>) -> Response<Body> {
    within(proxy.clone().oneshot(req)).await.unwrap()
}

async fn collect(res: Response<Body>) -> Result<Bytes, BoxError> {
    within(res.into_body().collect())
        .await
        .map(|collected| collected.to_bytes())
}

fn request(method: Method, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/x")
        .header("host", "gw")
        .body(body)
        .unwrap()
}

async fn get(proxy: &Proxy) -> (StatusCode, Bytes) {
    let res = send(proxy, request(Method::GET, Body::empty())).await;
    let status = res.status();
    (status, collect(res).await.unwrap())
}

/// What [`get`] returns for a `200` with `body`.
fn ok_with(body: &'static str) -> (StatusCode, Bytes) {
    (StatusCode::OK, Bytes::from_static(body.as_bytes()))
}

/// Asserts that `res` is the gateway's own JSON 502.
fn assert_json_502(res: &Response<Body>, what: &str) {
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY, "{what}");
    let content_type = res.headers()["content-type"].to_str().unwrap();
    assert!(content_type.contains("json"), "{what}: {content_type}");
}

// === response bodies ===

#[tokio::test]
async fn a_chunked_response_is_decoded_and_its_connection_reused() {
    let upstream = Scripted::start(vec![
        keep(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n\
             0\r\nx-trailer: t\r\n\r\n",
        ),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("hello 0123456789"));
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
}

#[tokio::test]
async fn a_close_delimited_response_is_read_to_the_close_and_not_reused() {
    let upstream = Scripted::start(vec![
        close("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("until the end"));
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 2, "a new connection after the close");
}

#[tokio::test]
async fn a_head_response_has_no_body_whatever_its_content_length() {
    let upstream = Scripted::start(vec![
        keep("HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    let res = send(&proxy, request(Method::HEAD, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-length"], "1234");
    assert_eq!(collect(res).await.unwrap(), "");
    // Had the proxy waited for 1234 bytes, this would hang or read "HTTP/1.1 ..." as body.
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
    assert!(upstream.requests(|r| r[0].head.starts_with("HEAD /x HTTP/1.1\r\n")));
}

#[tokio::test]
async fn no_content_and_not_modified_responses_have_no_body_and_keep_the_connection() {
    let upstream = Scripted::start(vec![
        keep("HTTP/1.1 204 No Content\r\n\r\n"),
        keep("HTTP/1.1 304 Not Modified\r\ncontent-length: 50\r\netag: \"v1\"\r\n\r\n"),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, (StatusCode::NO_CONTENT, Bytes::new()));
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["content-length"], "50");
    assert_eq!(collect(res).await.unwrap(), "");
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
}

#[tokio::test]
async fn interim_responses_are_skipped_and_the_final_one_is_delivered() {
    let upstream = Scripted::start(vec![
        keep(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal"
                .to_vec(),
        ),
        keep(
            "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n\
             HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhinted",
        ),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("final"));
    assert_eq!(get(&proxy).await, ok_with("hinted"));
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
}

// === malformed responses ===

#[tokio::test]
async fn a_garbled_response_head_is_a_json_502_and_its_connection_is_dropped() {
    let garbage: [&[u8]; 3] = [
        b"HTTP/1.1 abc OK\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nx-fine: 1\r\nno-colon-here\r\ncontent-length: 2\r\n\r\nok",
        b"SSH-2.0-x\r\n",
    ];
    for garbage in garbage {
        let what = String::from_utf8_lossy(garbage);
        let upstream = Scripted::start(vec![keep(garbage), keep(OK)]).await;
        let proxy = upstream.proxy();
        let res = send(&proxy, request(Method::GET, Body::empty())).await;
        assert_json_502(&res, &what);
        // The upstream kept the connection open; the proxy must not use it again.
        assert_eq!(get(&proxy).await, ok_with("ok"), "{what}");
        assert_eq!(upstream.accepted(), 2, "{what}");
    }
}

#[tokio::test]
async fn conflicting_content_lengths_are_a_502() {
    let upstream = Scripted::start(vec![
        keep("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc"),
        keep(OK),
    ])
    .await;
    let proxy = upstream.proxy();
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_json_502(&res, "two content-lengths");
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 2, "the connection was dropped");
}

#[tokio::test]
async fn content_length_with_chunked_is_read_as_chunked_and_nothing_after_it_leaks() {
    // The content-length (3) would cut the chunked body short; a forged response
    // follows the chunked body in the same write.
    let mut first = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\n\r\n"
        .to_vec();
    first.extend_from_slice(FORGED);
    let upstream = Scripted::start(vec![keep(first), keep(OK)]).await;
    let proxy = upstream.proxy();
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    // RFC 9112 §6.3: an intermediary that forwards such a message MUST first remove
    // the received Content-Length (else the client would cut the body to "hel").
    assert_eq!(res.headers().get("content-length"), None);
    assert_eq!(collect(res).await.unwrap(), "hello");
    assert_forged_bytes_never_answer(&upstream, &proxy).await;
}

#[tokio::test]
async fn bytes_after_a_complete_response_are_never_taken_for_the_next_one() {
    let mut split = OK.to_vec();
    split.extend_from_slice(FORGED);
    let upstream = Scripted::start(vec![keep(split), keep(OK)]).await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_forged_bytes_never_answer(&upstream, &proxy).await;
}

/// After a first response followed by forged bytes: three more requests each get the
/// upstream's real answer, on one new connection.
async fn assert_forged_bytes_never_answer(upstream: &Scripted, proxy: &Proxy) {
    for i in 0..3 {
        assert_eq!(
            get(proxy).await,
            ok_with("ok"),
            "request {i} after the forged bytes"
        );
    }
    assert_eq!(
        upstream.requests(<[_]>::len),
        4,
        "every request reached the upstream"
    );
    assert_eq!(
        upstream.accepted(),
        2,
        "the connection with stray bytes was dropped, the next one kept"
    );
}

#[tokio::test]
async fn a_response_head_too_large_to_buffer_is_a_502() {
    let upstream = Scripted::start(vec![keep(big_head(1024)), keep(OK)]).await;
    let proxy = upstream.proxy();
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_json_502(&res, "a 1 MiB header");
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 2, "the connection was dropped");
}

/// A response head may be up to 64 KiB (as a request head may): a 120 KiB one is a
/// 502, and one just under the limit passes whole.
#[tokio::test]
async fn a_response_head_over_64_kib_is_a_502_and_one_under_it_passes() {
    let upstream = Scripted::start(vec![keep(big_head(120)), keep(big_head(60))]).await;
    let proxy = upstream.proxy();
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_json_502(&res, "a 120 KiB header");
    let res = send(&proxy, request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-big"].len(), 60 * 1024);
    assert_eq!(collect(res).await.unwrap(), "ok");
}

/// A `200` with one `x-big` header of `kib` KiB and the body `ok`.
fn big_head(kib: usize) -> Vec<u8> {
    let mut head = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    head.resize(head.len() + kib * 1024, b'a');
    head.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\nok");
    head
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error_not_a_short_body() {
    let upstream = Scripted::start(vec![close(
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789",
    )])
    .await;
    let res = send(&upstream.proxy(), request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = collect(res).await;
    assert!(body.is_err(), "a cut body must fail, got {body:?}");
}

#[tokio::test]
async fn a_chunked_body_cut_mid_chunk_is_an_error() {
    let upstream = Scripted::start(vec![close(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nA\r\n01234",
    )])
    .await;
    let res = send(&upstream.proxy(), request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = collect(res).await;
    assert!(body.is_err(), "a cut body must fail, got {body:?}");
}

#[tokio::test]
async fn connection_close_and_http_1_0_responses_are_not_reused() {
    for first in [
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
        "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    ] {
        // The upstream keeps serving on the connection: only the proxy can close it.
        let upstream = Scripted::start(vec![keep(first), keep(OK)]).await;
        let proxy = upstream.proxy();
        assert_eq!(get(&proxy).await, ok_with("hello"), "{first}");
        assert_eq!(get(&proxy).await, ok_with("ok"), "{first}");
        assert_eq!(upstream.accepted(), 2, "{first}");
    }
}

// === response headers and large bodies ===

#[tokio::test]
async fn obs_text_header_values_pass_through_byte_for_byte() {
    let upstream = Scripted::start(vec![keep(
        b"HTTP/1.1 200 OK\r\nx-latin: caf\xe9 \xff\x80\r\ncontent-length: 2\r\n\r\nok".to_vec(),
    )])
    .await;
    let res = send(&upstream.proxy(), request(Method::GET, Body::empty())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-latin"].as_bytes(), b"caf\xe9 \xff\x80");
    assert_eq!(collect(res).await.unwrap(), "ok");
}

#[tokio::test]
async fn repeated_headers_all_arrive_in_order() {
    let upstream = Scripted::start(vec![keep(
        "HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nx-other: o\r\nset-cookie: b=2\r\n\
         content-length: 2\r\n\r\nok",
    )])
    .await;
    let res = send(&upstream.proxy(), request(Method::GET, Body::empty())).await;
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(res.headers()["x-other"], "o");
}

#[tokio::test]
async fn a_large_chunked_response_arrives_intact() {
    let body: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(16 * 1024) {
        response.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        response.extend_from_slice(chunk);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");
    let upstream = Scripted::start(vec![keep(response), keep(OK)]).await;
    let proxy = upstream.proxy();
    let (status, got) = get(&proxy).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the body differs");
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1, "the connection was reused");
}

// === request bodies ===

#[tokio::test]
async fn a_request_body_of_known_length_goes_up_with_its_content_length() {
    let upstream = Scripted::start(vec![keep(OK)]).await;
    let proxy = upstream.proxy();
    let req = Request::post("/x")
        .header("host", "gw")
        .header("content-length", "11")
        .body(Body::from("hello world"))
        .unwrap();
    let res = send(&proxy, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(collect(res).await.unwrap(), "ok");
    // A next request on the same connection parses: no stray body bytes were sent.
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1);
    upstream.requests(|r| {
        r[0].assert_line("POST /x HTTP/1.1\r\n");
        assert_eq!(r[0].header("content-length"), Some("11"));
        assert_eq!(r[0].header("transfer-encoding"), None);
        assert_eq!(r[0].body, b"hello world");
        r[1].assert_line("GET /x HTTP/1.1\r\n");
    });
}

#[tokio::test]
async fn a_streamed_request_body_of_unknown_length_goes_up_chunked() {
    let upstream = Scripted::start(vec![keep(OK)]).await;
    let proxy = upstream.proxy();
    let frames = ["first,", "", "second,", "third"]
        .map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from_static(s.as_bytes()))));
    let body = Body::new(StreamBody::new(futures_util::stream::iter(frames)));
    let res = send(&proxy, request(Method::POST, body)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(collect(res).await.unwrap(), "ok");
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 1);
    upstream.requests(|r| {
        r[0].assert_line("POST /x HTTP/1.1\r\n");
        assert_eq!(r[0].header("transfer-encoding"), Some("chunked"));
        assert_eq!(r[0].header("content-length"), None);
        assert_eq!(r[0].body, b"first,second,third");
        r[1].assert_line("GET /x HTTP/1.1\r\n");
    });
}

#[tokio::test]
async fn a_request_without_a_body_goes_up_without_framing_headers() {
    let upstream = Scripted::start(vec![keep(OK)]).await;
    assert_eq!(get(&upstream.proxy()).await, ok_with("ok"));
    upstream.requests(|r| {
        r[0].assert_line("GET /x HTTP/1.1\r\n");
        assert_eq!(r[0].header("content-length"), None, "{}", r[0].head);
        assert_eq!(r[0].header("transfer-encoding"), None, "{}", r[0].head);
    });
}

// === retries and refusals ===

#[tokio::test]
async fn a_pooled_connection_closed_before_answering_a_get_is_retried_on_a_new_one() {
    // The second request finds the pooled connection, and the upstream closes it
    // without a word: a bodiless GET is safe to send again.
    let upstream = Scripted::start(vec![keep(OK), close(""), keep(OK)]).await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(get(&proxy).await, ok_with("ok"));
    assert_eq!(upstream.accepted(), 2);
    assert_eq!(upstream.requests(<[_]>::len), 3, "the GET went up twice");
}

#[tokio::test]
async fn a_post_is_not_retried_when_its_pooled_connection_closes_unanswered() {
    let upstream = Scripted::start(vec![keep(OK), close(""), keep(OK)]).await;
    let proxy = upstream.proxy();
    assert_eq!(get(&proxy).await, ok_with("ok"));
    let res = send(&proxy, request(Method::POST, Body::from("once"))).await;
    assert_json_502(&res, "a POST the upstream may have acted on");
    assert_eq!(upstream.requests(<[_]>::len), 2, "the POST went up once");
}

#[tokio::test]
async fn a_101_to_a_request_that_asked_for_no_upgrade_is_a_502() {
    let upstream = Scripted::start(vec![keep(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    )])
    .await;
    let res = send(&upstream.proxy(), request(Method::GET, Body::empty())).await;
    assert_json_502(&res, "an unrequested 101");
}

#[tokio::test]
async fn a_streamed_body_that_breaks_its_content_length_is_a_400() {
    // A body is complete once it has sent its length: what its stream might say after
    // that is not waited for. A frame that goes past the length, or an end before it,
    // is the body's error.
    for (declared, frames) in [("3", &["ab", "cdef"][..]), ("10", &["abc"][..])] {
        let upstream = Scripted::start(vec![keep(OK)]).await;
        let frames: Vec<_> = frames
            .iter()
            .map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from_static(s.as_bytes()))))
            .collect();
        let mut req = request(
            Method::POST,
            Body::new(StreamBody::new(futures_util::stream::iter(frames))),
        );
        req.headers_mut()
            .insert("content-length", declared.parse().unwrap());
        let res = send(&upstream.proxy(), req).await;
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "content-length {declared}"
        );
        // The upstream never read a whole request: the connection closed mid-body.
        within(async {
            while upstream.accepted() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert_eq!(
            upstream.requests(<[_]>::len),
            0,
            "content-length {declared}"
        );
    }
}
