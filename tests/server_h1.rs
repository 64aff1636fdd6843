//! HTTP/1.1 server conformance and request smuggling, black-box (SECURITY_CASES §7, rows
//! 111-124): raw bytes written to the gateway on loopback, its answers parsed one at a
//! time from the connection, and the recording upstream checked for what was (never)
//! forwarded. These are the tests any HTTP/1 server behind the gateway must pass.
//!
//! No assertion rests on a sleep: every read and write is bounded by [`STEP`], so a
//! server that does not answer or does not close fails the test instead of hanging it.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test helper fails the test loudly"
)]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use support::{Reply, TestGateway, Upstream, raw_upstream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest one read or write may wait before the connection counts as silent.
const STEP: Duration = Duration::from_secs(5);

/// The HS256 key of the guarded route (no test here needs a valid token).
const SECRET: &str = "server-h1-tests-hs256-secret-0123456789abcdef";

/// A chunked body decoding to `hello`.
const CHUNKED_HELLO: &str = "5\r\nhello\r\n0\r\n\r\n";

// === the gateway and its upstream ===

/// The gateway's config: the default `[server]`, `/api` guarded (`auth = "required"`)
/// and `/pub` public, both proxied to `upstream` without stripping the prefix.
fn gateway_config(upstream: &str) -> String {
    format!(
        r#"[log]
access_log = false

[jwt]
issuer = "portcullis-test"
audience = "api"
signing_key = "k"

[[jwt.keys]]
kid = "k"
algorithm = "HS256"
secret = "{SECRET}"

[[routes]]
path = "/api"
upstream = "{upstream}"
auth = "required"

[[routes]]
path = "/pub"
upstream = "{upstream}"
auth = "public"
"#
    )
}

/// A recording upstream that answers `200` with `METHOD target` as its body (so every
/// answer says which request it answers), and the gateway in front of it.
struct Setup {
    up: Upstream,
    gw: TestGateway,
}

impl Setup {
    async fn start() -> Self {
        let up = Upstream::start_with(|seen| Reply::Fixed {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from(format!("{} {}", seen.method, seen.target)),
        })
        .await;
        let gw = TestGateway::start(&gateway_config(&up.url(""))).await;
        Self { up, gw }
    }

    /// A new connection to the gateway.
    async fn conn(&self) -> Conn {
        Conn::open(self.gw.addr).await
    }

    /// The targets the upstream saw, in order.
    fn targets(&self) -> Vec<String> {
        self.up.seen().into_iter().map(|seen| seen.target).collect()
    }
}

/// A gateway whose routes go to a raw upstream that writes `answer` to every request
/// head, then closes.
async fn gateway_to_raw_upstream(answer: &'static [u8]) -> TestGateway {
    let (addr, _) = raw_upstream(answer).await;
    TestGateway::start(&gateway_config(&format!("http://{addr}"))).await
}

// === reading answers ===

/// One parsed response.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names in lower case, values as sent, in order.
    headers: Vec<(String, String)>,
    /// The body, de-chunked if it came chunked.
    body: Vec<u8>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the comma-separated header `name` holds `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The result of parsing the front of a buffer.
enum Parsed {
    Partial,
    Complete(Answer, usize),
    Malformed(String),
}

/// Parses the response at the front of `buf`. `head_request`: it answers a HEAD, so it
/// has no body whatever its headers say; `eof`: the server closed after these bytes, so
/// a body without length ends here.
fn parse(buf: &[u8], head_request: bool, eof: bool) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(e) => return Parsed::Malformed(format!("response head: {e}")),
    };
    let mut answer = Answer {
        status: response.code.unwrap(),
        headers: response
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_ascii_lowercase(), value)
            })
            .collect(),
        body: Vec::new(),
    };
    let rest = &buf[head_len..];
    if head_request || (100..200).contains(&answer.status) || matches!(answer.status, 204 | 304) {
        return Parsed::Complete(answer, head_len);
    }
    if let Some(te) = answer.header("transfer-encoding") {
        if !te.trim().eq_ignore_ascii_case("chunked") {
            return Parsed::Malformed(format!("transfer-encoding {te:?}"));
        }
        return match dechunk(rest) {
            Ok(Some((body, used))) => {
                answer.body = body;
                Parsed::Complete(answer, head_len + used)
            }
            Ok(None) => Parsed::Partial,
            Err(e) => Parsed::Malformed(e),
        };
    }
    if let Some(length) = answer.header("content-length") {
        let Ok(length) = length.trim().parse::<usize>() else {
            return Parsed::Malformed(format!("content-length {length:?}"));
        };
        if rest.len() < length {
            return Parsed::Partial;
        }
        answer.body = rest[..length].to_vec();
        return Parsed::Complete(answer, head_len + length);
    }
    if eof {
        answer.body = rest.to_vec();
        return Parsed::Complete(answer, buf.len());
    }
    Parsed::Partial
}

/// Decodes a complete chunked body at the front of `data`: the body and the bytes used,
/// `None` if it is not complete yet.
fn dechunk(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let line_end = |d: &[u8]| d.windows(2).position(|w| w == b"\r\n");
    let mut rest = data;
    let mut body = Vec::new();
    loop {
        let Some(eol) = line_end(rest) else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&rest[..eol]).into_owned();
        let digits = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(digits, 16)
            .map_err(|e| format!("chunk size line {line:?}: {e}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            // Trailer fields, up to the empty line.
            loop {
                let Some(eol) = line_end(rest) else {
                    return Ok(None);
                };
                rest = &rest[eol + 2..];
                if eol == 0 {
                    return Ok(Some((body, data.len() - rest.len())));
                }
            }
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".into());
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// What comes next on a connection.
enum Next {
    Answer(Answer),
    /// Closed (or reset) by the server; the bytes after the last whole answer.
    Closed(Vec<u8>),
    /// Nothing more for [`STEP`]; the bytes after the last whole answer.
    Silent(Vec<u8>),
    /// Bytes that are not a response.
    Broken(String),
}

/// The read side of a client connection: bytes received and not yet parsed.
#[derive(Default)]
struct Reader {
    buf: Vec<u8>,
    closed: bool,
}

impl Reader {
    /// Reads once; `false` if nothing came for [`STEP`]. A reset counts as a close.
    async fn fill(&mut self, io: &mut (impl AsyncRead + Unpin)) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout(STEP, io.read(&mut chunk)).await {
            Err(_) => false,
            Ok(Ok(0) | Err(_)) => {
                self.closed = true;
                true
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn next(&mut self, io: &mut (impl AsyncRead + Unpin), head_request: bool) -> Next {
        loop {
            match parse(&self.buf, head_request, self.closed) {
                Parsed::Complete(answer, used) => {
                    self.buf.drain(..used);
                    return Next::Answer(answer);
                }
                Parsed::Malformed(why) => {
                    return Next::Broken(format!("{why}: {:?}", lossy(&self.buf)));
                }
                Parsed::Partial if self.closed => return Next::Closed(self.buf.clone()),
                Parsed::Partial => {
                    if !self.fill(io).await {
                        return Next::Silent(self.buf.clone());
                    }
                }
            }
        }
    }

    /// Every answer until the server closes the connection or goes silent.
    async fn drain(&mut self, io: &mut (impl AsyncRead + Unpin)) -> Outcome {
        let mut answers = Vec::new();
        loop {
            let (closed, leftover) = match self.next(io, false).await {
                Next::Answer(answer) => {
                    answers.push(answer);
                    continue;
                }
                Next::Closed(rest) => (true, lossy(&rest)),
                Next::Silent(rest) => (false, lossy(&rest)),
                Next::Broken(why) => (self.closed, why),
            };
            return Outcome {
                answers,
                closed,
                leftover,
            };
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything a connection answered until it closed or went silent.
struct Outcome {
    answers: Vec<Answer>,
    closed: bool,
    /// Bytes after the last whole answer (or why they did not parse).
    leftover: String,
}

impl Outcome {
    fn statuses(&self) -> Vec<u16> {
        self.answers.iter().map(|a| a.status).collect()
    }

    /// For failure messages: the statuses and bodies, and how the connection ended.
    fn describe(&self) -> String {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|a| format!("{} {:?}", a.status, a.text()))
            .collect();
        format!(
            "answers [{}], connection {}{}",
            answers.join(", "),
            if self.closed { "closed" } else { "left open" },
            if self.leftover.is_empty() {
                String::new()
            } else {
                format!(", then {:?}", self.leftover)
            }
        )
    }
}

/// A client connection that reads answers one at a time.
struct Conn {
    stream: TcpStream,
    reader: Reader,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            reader: Reader::default(),
        }
    }

    /// Writes `bytes`, failing the test if the server does not take them.
    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        tokio::time::timeout(STEP, self.stream.write_all(bytes.as_ref()))
            .await
            .unwrap_or_else(|_| panic!("the server did not read the request in time"))
            .unwrap();
    }

    /// Writes `bytes` if the server still reads them (it may have answered and closed).
    async fn send_lossy(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = tokio::time::timeout(STEP, self.stream.write_all(bytes.as_ref())).await;
    }

    async fn answer(&mut self, head_request: bool) -> Answer {
        match self.reader.next(&mut self.stream, head_request).await {
            Next::Answer(answer) => answer,
            Next::Closed(rest) => panic!("closed before a whole answer: {:?}", lossy(&rest)),
            Next::Silent(rest) => panic!("no whole answer within {STEP:?}: {:?}", lossy(&rest)),
            Next::Broken(why) => panic!("not an HTTP/1 response: {why}"),
        }
    }

    /// The next answer; fails the test if none comes.
    async fn response(&mut self) -> Answer {
        self.answer(false).await
    }

    /// The next answer, to a HEAD request (so without a body).
    async fn head_response(&mut self) -> Answer {
        self.answer(true).await
    }

    /// Every further answer until the server closes or goes silent.
    async fn rest(&mut self) -> Outcome {
        self.reader.drain(&mut self.stream).await
    }
}

/// Writes `request` on a new connection (while reading, so a server that answers
/// early is not blocked by a full socket) and returns everything answered until the
/// server closed or went silent. `then_eof`: half-close the connection after writing.
async fn exchange_with(addr: SocketAddr, request: &[u8], then_eof: bool) -> Outcome {
    let mut conn = Conn::open(addr).await;
    let (mut read, mut write) = conn.stream.split();
    let writing = async {
        // The server may answer and close before it has read everything.
        let _ = tokio::time::timeout(STEP, write.write_all(request)).await;
        if then_eof {
            let _ = write.shutdown().await;
        }
    };
    let ((), outcome) = tokio::join!(writing, conn.reader.drain(&mut read));
    outcome
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> Outcome {
    exchange_with(addr, request, false).await
}

/// Sends each `(name, request)` on its own connection: each must get exactly one
/// answer, with a status in `allowed`, reach no upstream and, when `must_close`, be
/// followed by the close. Returns what went wrong, a line per case.
async fn refusal_failures(
    setup: &Setup,
    allowed: &[u16],
    must_close: bool,
    cases: &[(&str, Vec<u8>)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, request) in cases {
        let before = setup.up.count();
        let outcome = exchange(setup.gw.addr, request).await;
        let one_allowed = matches!(outcome.statuses()[..], [status] if allowed.contains(&status));
        let mut wrong = Vec::new();
        if !one_allowed || !outcome.leftover.is_empty() {
            wrong.push(format!("expected one answer in {allowed:?}, nothing else"));
        }
        if must_close && !outcome.closed {
            wrong.push("expected the close after it".to_owned());
        }
        let called = setup.up.count() - before;
        if called > 0 {
            wrong.push(format!("the upstream was called {called} time(s)"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{name}: {}; got {}",
                wrong.join(", "),
                outcome.describe()
            ));
        }
    }
    failures
}

/// [`refusal_failures`], asserted.
async fn assert_refused(
    setup: &Setup,
    allowed: &[u16],
    must_close: bool,
    cases: &[(&str, Vec<u8>)],
) {
    let failures = refusal_failures(setup, allowed, must_close, cases).await;
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// `POST /pub/x` over HTTP/1.1 with `headers` (CRLF-terminated lines) and `body`.
fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /pub/x HTTP/1.1\r\nHost: a\r\n{headers}\r\n{body}").into_bytes()
}

// === framing: Transfer-Encoding and Content-Length (rows 111-114) ===

#[tokio::test]
async fn content_length_with_transfer_encoding_is_400_then_close() {
    // Row 111 (CL.TE), both header orders: 400 and the close; the `X` after the chunked
    // body's end is never read as the start of a next request.
    let setup = Setup::start().await;
    let cl = "Content-Length: 6\r\n";
    let te = "Transfer-Encoding: chunked\r\n";
    let cases = [
        ("CL then TE", post(&format!("{cl}{te}"), "0\r\n\r\nX")),
        ("TE then CL", post(&format!("{te}{cl}"), "0\r\n\r\nX")),
    ];
    assert_refused(&setup, &[400], true, &cases).await;
}

#[tokio::test]
async fn obfuscated_transfer_encoding_is_refused_then_close() {
    // Row 112: an unknown coding may be 501; chunked not last, a space before the colon,
    // chunked twice and chunked in HTTP/1.0 are 400. Each closes the connection.
    let setup = Setup::start().await;
    let te = |value: &str| post(&format!("Transfer-Encoding{value}\r\n"), CHUNKED_HELLO);
    let unknown_coding = [
        ("xchunked", te(": xchunked")),
        ("identity, chunked", te(": identity, chunked")),
    ];
    let mut failures = refusal_failures(&setup, &[400, 501], true, &unknown_coding).await;
    let http10 = "POST /pub/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let malformed = [
        ("chunked, identity", te(": chunked, identity")),
        ("space before the colon", te(" : chunked")),
        (
            "two chunked lines",
            te(": chunked\r\nTransfer-Encoding: chunked"),
        ),
        (
            "chunked in HTTP/1.0",
            format!("{http10}{CHUNKED_HELLO}").into_bytes(),
        ),
    ];
    failures.extend(refusal_failures(&setup, &[400], true, &malformed).await);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn transfer_encoding_after_a_tab_is_plain_chunked() {
    // Row 112: a tab is optional whitespace (RFC 9110 §5.6.3), not an obfuscation.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send(post(
        "Transfer-Encoding:\tchunked\r\n",
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    ))
    .await;
    let answer = conn.response().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = setup.up.last();
    assert_eq!(seen.body, b"hello world", "{seen:?}");
    assert!(seen.complete && !seen.body_error, "{seen:?}");
}

#[tokio::test]
async fn invalid_or_conflicting_content_length_is_400_then_close() {
    // Row 113: an unrecoverable framing error.
    let setup = Setup::start().await;
    let cl = |value: &str| post(&format!("Content-Length: {value}\r\n"), "hellohello");
    let cases = [
        ("5 and 6", cl("5\r\nContent-Length: 6")),
        ("+5", cl("+5")),
        ("0x10", cl("0x10")),
        ("-1", cl("-1")),
        ("20 digits", cl("99999999999999999999")),
    ];
    assert_refused(&setup, &[400], true, &cases).await;
}

#[tokio::test]
async fn a_repeated_identical_content_length_is_accepted() {
    // Row 113: the same length twice is one length (RFC 9112 §6.3 item 5 lets a
    // recipient accept it).
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send(post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"))
        .await;
    let answer = conn.response().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = setup.up.last();
    assert_eq!(
        (seen.body_len, &seen.body[..]),
        (5, &b"hello"[..]),
        "{seen:?}"
    );
}

#[tokio::test]
async fn malformed_chunked_bodies_are_400_then_close_and_never_forwarded_whole() {
    // Row 114: bad chunk sizes, an unbounded chunk extension, a body cut before its last
    // CRLF. The client's fault: 400, never 502; the upstream never gets a whole body.
    let setup = Setup::start().await;
    let huge_extension = format!("5;ext={}\r\nhello\r\n0\r\n\r\n", "a".repeat(1 << 20));
    let cases = [
        (
            "size over u64",
            "5\r\nhello\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n".to_owned(),
            false,
        ),
        ("0x5", "0x5\r\nhello\r\n0\r\n\r\n".to_owned(), false),
        ("1 MiB chunk extension", huge_extension, false),
        (
            "no final CRLF, then EOF",
            "5\r\nhello\r\n0\r\n".to_owned(),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, body, then_eof) in cases {
        let request = post("Transfer-Encoding: chunked\r\n", &body);
        let outcome = exchange_with(setup.gw.addr, &request, then_eof).await;
        if outcome.statuses() != [400] || !outcome.closed {
            failures.push(format!(
                "{name}: expected 400 then the close; got {}",
                outcome.describe()
            ));
        }
    }
    let whole: Vec<_> = setup
        .up
        .seen()
        .into_iter()
        .filter(|s| s.complete && !s.body_error)
        .collect();
    assert!(
        failures.is_empty() && whole.is_empty(),
        "\n{}\nforwarded whole: {whole:?}",
        failures.join("\n")
    );
}

// === the request head (rows 115, 116, 121) ===

#[tokio::test]
async fn nul_obs_fold_and_bare_cr_in_the_head_are_400() {
    // Row 115: rejected, not repaired, and nothing forwarded.
    let setup = Setup::start().await;
    let head = |line: &str, headers: &str| {
        format!("{line}\r\nHost: a\r\nConnection: close\r\n{headers}\r\n").into_bytes()
    };
    let get = "GET /pub/x HTTP/1.1";
    let cases = [
        (
            "NUL in the request line",
            head("GET /pub/a\0b HTTP/1.1", ""),
        ),
        ("NUL in a header value", head(get, "X-A: a\0b\r\n")),
        ("obs-fold", head(get, "X-A: a\r\n  folded\r\n")),
        ("bare CR in a header line", head(get, "X-A: a\rb\r\n")),
    ];
    assert_refused(&setup, &[400], false, &cases).await;
}

#[tokio::test]
async fn bare_lf_line_endings_never_desync() {
    // Row 115: a server may refuse bare LF (400) or read it as a line end; either way the
    // bytes are one request: one 400 and nothing forwarded, or one forwarded request
    // answered once.
    let setup = Setup::start().await;
    let cases = [
        (
            "all bare LF",
            "GET /pub/lf1 HTTP/1.1\nHost: a\nConnection: close\n\n",
        ),
        (
            "mixed",
            "GET /pub/lf2 HTTP/1.1\r\nHost: a\nConnection: close\r\n\r\n",
        ),
    ];
    let mut failures = Vec::new();
    for (name, request) in cases {
        let target = request.split(' ').nth(1).unwrap();
        let before = setup.targets();
        let outcome = exchange(setup.gw.addr, request.as_bytes()).await;
        let forwarded: Vec<String> = setup.targets().into_iter().skip(before.len()).collect();
        let refused = outcome.statuses() == [400] && forwarded.is_empty();
        let served = outcome.statuses() == [200]
            && outcome.answers[0].text() == format!("GET {target}")
            && forwarded == [target];
        if !(refused || served) || !outcome.leftover.is_empty() {
            failures.push(format!(
                "{name}: {}; forwarded {forwarded:?}",
                outcome.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_missing_or_doubled_host_in_http11_is_400() {
    // Row 116 (RFC 9112 §3.2).
    let setup = Setup::start().await;
    let get = |hosts: &str| {
        format!("GET /pub/x HTTP/1.1\r\n{hosts}Connection: close\r\n\r\n").into_bytes()
    };
    let cases = [
        ("no Host", get("")),
        ("two Hosts", get("Host: a\r\nHost: b\r\n")),
    ];
    assert_refused(&setup, &[400], false, &cases).await;
}

#[tokio::test]
async fn http10_without_host_is_served() {
    // Row 116: Host is required of HTTP/1.1 requests only.
    let setup = Setup::start().await;
    let outcome = exchange(setup.gw.addr, b"GET /pub/old HTTP/1.0\r\n\r\n").await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.describe());
    assert_eq!(outcome.answers[0].text(), "GET /pub/old");
    assert_eq!(setup.targets(), ["/pub/old"]);
}

#[tokio::test]
async fn an_absolute_form_target_on_a_guarded_route_is_still_guarded() {
    // Row 116: the authority in the target (b.example) wins over Host (a.example); the
    // path still routes to /api, whose guard answers.
    let setup = Setup::start().await;
    let outcome = exchange(
        setup.gw.addr,
        b"GET http://b.example/api/x HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(outcome.statuses(), [401], "{}", outcome.describe());
    assert_eq!(setup.up.count(), 0);
}

#[tokio::test]
async fn a_64k_request_target_is_414() {
    // Row 121, default config: the target is at fault, not the header fields.
    let setup = Setup::start().await;
    let target = format!("/pub/{}", "x".repeat(64 * 1024));
    let request = format!("GET {target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    let cases = [("64 KiB target", request.into_bytes())];
    assert_refused(&setup, &[414], false, &cases).await;
}

#[tokio::test]
async fn oversized_header_fields_are_431() {
    // Row 121, default config: one 64 KiB field, and 1,000 small ones.
    let setup = Setup::start().await;
    let with = |fields: String| {
        format!("GET /pub/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n{fields}\r\n").into_bytes()
    };
    let big = format!("X-Big: {}\r\n", "a".repeat(64 * 1024));
    let many: String = (0..1000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases = [
        ("one 64 KiB field", with(big)),
        ("1,000 fields", with(many)),
    ];
    assert_refused(&setup, &[431], false, &cases).await;
}

// === keep-alive and pipelining ===

#[tokio::test]
async fn pipelined_gets_are_answered_in_order() {
    // Two requests in one write (RFC 9112 §9.3.2): both answered, in order.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send("GET /pub/one HTTP/1.1\r\nHost: a\r\n\r\nGET /pub/two HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    for expected in ["GET /pub/one", "GET /pub/two"] {
        let answer = conn.response().await;
        assert_eq!((answer.status, answer.text()), (200, expected.to_owned()));
    }
    assert_eq!(setup.targets(), ["/pub/one", "/pub/two"]);
}

#[tokio::test]
async fn a_pipelined_post_body_is_forwarded_exactly_and_the_next_request_follows() {
    // The body's framing ends exactly where the next request starts, with a length and
    // with chunks (rows 111-114 from the other side: a correct body is not cut short or
    // run over either).
    for (name, framing, body) in [
        ("content-length", "Content-Length: 11\r\n", "hello world"),
        (
            "chunked",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        ),
    ] {
        let setup = Setup::start().await;
        let mut conn = setup.conn().await;
        let mut request = post(framing, body);
        request.extend_from_slice(b"GET /pub/after HTTP/1.1\r\nHost: a\r\n\r\n");
        conn.send(request).await;
        for expected in ["POST /pub/x", "GET /pub/after"] {
            let answer = conn.response().await;
            assert_eq!(
                (answer.status, answer.text()),
                (200, expected.to_owned()),
                "{name}"
            );
        }
        let seen = setup.up.seen();
        assert_eq!(setup.targets(), ["/pub/x", "/pub/after"], "{name}");
        assert_eq!(seen[0].body, b"hello world", "{name}: {:?}", seen[0]);
        assert!(
            seen[0].complete && !seen[0].body_error,
            "{name}: {:?}",
            seen[0]
        );
        assert_eq!(seen[1].body_len, 0, "{name}: {:?}", seen[1]);
    }
}

/// `POST /api/upload` without a token, whose body is a whole request for `/pub/smuggled`.
fn post_with_a_request_for_body() -> (String, &'static str) {
    let body = "GET /pub/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

#[tokio::test]
async fn the_body_of_a_refused_post_is_never_answered_as_a_request() {
    // Rows 111/124: the guard answers 401 without needing the body; its bytes are still
    // the body, never a second request, whether the connection is then closed or kept.
    let setup = Setup::start().await;
    let (head, body) = post_with_a_request_for_body();
    let outcome = exchange(setup.gw.addr, format!("{head}{body}").as_bytes()).await;
    assert_eq!(outcome.statuses(), [401], "{}", outcome.describe());
    assert!(outcome.leftover.is_empty(), "{}", outcome.describe());
    assert_eq!(setup.up.count(), 0, "{:?}", setup.targets());
}

#[tokio::test]
async fn the_body_of_a_refused_post_is_never_answered_even_when_a_request_follows() {
    // The same, with the body sent with the head or only after the 401, and a real next
    // request (GET /healthz, which reaches no upstream) after it: the connection answers
    // nothing in between, and either closes or answers /healthz.
    let setup = Setup::start().await;
    let (head, body) = post_with_a_request_for_body();
    let next = "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    let mut failures = Vec::new();
    for body_after_the_answer in [false, true] {
        let mut conn = setup.conn().await;
        if body_after_the_answer {
            conn.send(&head).await;
            let answer = conn.response().await;
            assert_eq!(answer.status, 401, "{answer:?}");
            conn.send_lossy(format!("{body}{next}")).await;
        } else {
            conn.send(format!("{head}{body}")).await;
            let answer = conn.response().await;
            assert_eq!(answer.status, 401, "{answer:?}");
            conn.send_lossy(next).await;
        }
        let rest = conn.rest().await;
        let healthz_or_nothing = match &rest.answers[..] {
            [] => true,
            [only] => only.status == 200 && only.text().contains("ok"),
            _ => false,
        };
        if !healthz_or_nothing || !rest.leftover.is_empty() {
            failures.push(format!(
                "body after the 401: {body_after_the_answer}; after the 401: {}",
                rest.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(setup.up.count(), 0, "{:?}", setup.targets());
}

// === persistence ===

#[tokio::test]
async fn connection_close_is_answered_with_close_and_the_socket_closed() {
    // RFC 9112 §9.6.
    let setup = Setup::start().await;
    let outcome = exchange(
        setup.gw.addr,
        b"GET /pub/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.describe());
    assert!(
        outcome.answers[0].has_token("connection", "close"),
        "{:?}",
        outcome.answers[0]
    );
    assert!(outcome.closed, "{}", outcome.describe());
}

#[tokio::test]
async fn http10_without_keep_alive_is_closed_after_the_answer() {
    // RFC 9112 §9.3: an HTTP/1.0 connection persists only with keep-alive.
    let setup = Setup::start().await;
    let outcome = exchange(setup.gw.addr, b"GET /pub/x HTTP/1.0\r\nHost: a\r\n\r\n").await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.describe());
    assert_eq!(outcome.answers[0].text(), "GET /pub/x");
    assert!(outcome.closed, "{}", outcome.describe());
}

#[tokio::test]
async fn http10_keep_alive_is_honoured() {
    // RFC 9112 §9.3 and appendix C.2.2: with keep-alive, the answer says so and the
    // connection takes a second request.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    for target in ["/pub/first", "/pub/second"] {
        conn.send(format!(
            "GET {target} HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
        ))
        .await;
        let answer = conn.response().await;
        assert_eq!(
            (answer.status, answer.text()),
            (200, format!("GET {target}"))
        );
        assert!(answer.has_token("connection", "keep-alive"), "{answer:?}");
    }
    assert_eq!(setup.targets(), ["/pub/first", "/pub/second"]);
}

// === HEAD and Expect ===

#[tokio::test]
async fn head_has_the_upstream_length_and_no_body() {
    // RFC 9110 §9.3.2: the length a GET would have, and no body. The pipelined GET
    // parses right after the HEAD's head, so no body bytes came between.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send("HEAD /pub/h HTTP/1.1\r\nHost: a\r\n\r\nGET /pub/g HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let head = conn.head_response().await;
    assert_eq!(head.status, 200, "{head:?}");
    // The upstream's body for it would be `HEAD /pub/h`.
    assert_eq!(head.header("content-length"), Some("11"), "{head:?}");
    let get = conn.response().await;
    assert_eq!(
        (get.status, get.text()),
        (200, "GET /pub/g".to_owned()),
        "{get:?}"
    );
}

#[tokio::test]
async fn expect_100_continue_gets_100_then_the_final_answer() {
    // RFC 9110 §10.1.1: the client waits for the 100 before sending the body.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send(
        "POST /pub/e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let interim = conn.response().await;
    assert_eq!(interim.status, 100, "{interim:?}");
    conn.send("hello").await;
    let answer = conn.response().await;
    assert_eq!(
        (answer.status, answer.text()),
        (200, "POST /pub/e".to_owned())
    );
    assert_eq!(setup.up.last().body, b"hello");
}

#[tokio::test]
async fn expect_100_continue_without_a_token_gets_401_not_100() {
    // Row 124: the final answer instead of 100 Continue; the body is never sent.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send(
        "POST /api/e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let answer = conn.response().await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(setup.up.count(), 0);
}

// === response framing to the client ===

const CHUNKED_UPSTREAM: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";

#[tokio::test]
async fn a_chunked_upstream_body_reaches_an_http11_client_intact() {
    // Chunked or a length, but never both (RFC 9112 §6.1), and the right bytes.
    let gw = gateway_to_raw_upstream(CHUNKED_UPSTREAM).await;
    let mut conn = Conn::open(gw.addr).await;
    conn.send("GET /pub/c HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let answer = conn.response().await;
    assert_eq!(
        (answer.status, answer.text()),
        (200, "hello, world".to_owned())
    );
    assert!(
        answer.header("transfer-encoding").is_none() || answer.header("content-length").is_none(),
        "{answer:?}"
    );
    // The answer ended where its framing said: the next one parses.
    assert_eq!(conn.response().await.status, 200);
}

#[tokio::test]
async fn a_chunked_upstream_body_reaches_an_http10_client_unchunked() {
    // HTTP/1.0 has no chunked coding (RFC 9112 §6.1): the body is delimited by the
    // close (or a length), with no chunk framing in it.
    let gw = gateway_to_raw_upstream(CHUNKED_UPSTREAM).await;
    let outcome = exchange(gw.addr, b"GET /pub/c HTTP/1.0\r\n\r\n").await;
    assert_eq!(outcome.statuses(), [200], "{}", outcome.describe());
    let answer = &outcome.answers[0];
    assert_eq!(answer.header("transfer-encoding"), None, "{answer:?}");
    assert_eq!(answer.text(), "hello, world");
    assert!(
        outcome.closed && outcome.leftover.is_empty(),
        "{}",
        outcome.describe()
    );
}

#[tokio::test]
async fn a_204_from_upstream_has_no_body_and_no_transfer_encoding() {
    // RFC 9112 §6.1 and §6.3 item 1: a 204 ends at its head.
    let gw = gateway_to_raw_upstream(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    let mut conn = Conn::open(gw.addr).await;
    conn.send("GET /pub/n HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    let answer = conn.response().await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(answer.header("transfer-encoding"), None, "{answer:?}");
    // RFC 9110 §8.6: no Content-Length in a 204 either.
    assert_eq!(answer.header("content-length"), None, "{answer:?}");
    // No body bytes came after the head: the next answer parses at once.
    let next = conn.response().await;
    assert_eq!(next.status, 200, "{next:?}");
    assert!(next.text().contains("ok"), "{next:?}");
}

// === the rest of the head ===

/// Whether `date` has the shape of an IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`
/// (RFC 9110 §5.6.7), not one of the obsolete forms.
fn is_imf_fixdate(date: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let number = |s: &str, digits: usize, max: u32| {
        s.len() == digits
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let parts: Vec<&str> = date.split(' ').collect();
    let [day, mday, month, year, time, "GMT"] = parts[..] else {
        return false;
    };
    let clock: Vec<&str> = time.split(':').collect();
    DAYS.contains(&day)
        && number(mday, 2, 31)
        && mday != "00"
        && MONTHS.contains(&month)
        && number(year, 4, 9999)
        && matches!(clock[..], [h, m, s] if number(h, 2, 23) && number(m, 2, 59) && number(s, 2, 60))
}

#[tokio::test]
async fn gateway_answers_carry_an_imf_fixdate() {
    // RFC 9110 §6.6.1 and §5.6.7: `Sun, 06 Nov 1994 08:49:37 GMT`, the preferred form.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    conn.send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n")
        .await;
    for expected in [200, 404] {
        let answer = conn.response().await;
        assert_eq!(answer.status, expected, "{answer:?}");
        let date = answer
            .header("date")
            .unwrap_or_else(|| panic!("no date: {answer:?}"));
        assert!(is_imf_fixdate(date), "{date:?}");
    }
}

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_is_answered() {
    // A head split anywhere (here after every byte; the pauses only let each byte go out
    // on its own) is still one head.
    let setup = Setup::start().await;
    let mut conn = setup.conn().await;
    for byte in b"GET /pub/slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" {
        conn.send([*byte]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let answer = conn.response().await;
    assert_eq!(
        (answer.status, answer.text()),
        (200, "GET /pub/slow".to_owned())
    );
    assert_eq!(setup.targets(), ["/pub/slow"]);
}
