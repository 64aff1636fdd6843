//! The HTTP/1.1 wire format on the client side (RFC 9112): request heads parsed, response
//! heads written.
//!
//! This is where a request's framing is decided once, strictly: anything a front end and
//! a back end could read two ways (both `Content-Length` and `Transfer-Encoding`, a
//! coding list that does not end in `chunked`, differing lengths, a missing or doubled
//! `Host`) is refused with its status before any layer sees the request, and the
//! connection is closed after the answer (SECURITY_CASES rows 111-116, 121).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Request, StatusCode, Uri, Version, response};

use crate::body_type::Body;
use crate::clock;
use crate::error::Error;
use crate::http1::{Lines, Piece, connection_tokens, encode_line, merge_content_length};
pub(super) use crate::http1::{RequestFraming, ResponseFraming};

/// The most header lines a request head may have, whatever the settings say: room for
/// them is on the stack while a head is parsed.
pub(super) const MAX_HEADERS_CAP: usize = 1024;

/// Header slots a request map is made with beyond the client's own lines, for what the
/// gateway's layers add (`X-Request-Id`, identity headers; the proxy writes `Host` and
/// `X-Forwarded-*` straight into the upstream head): growing the map rehashes it. Four:
/// with a short request's two lines the map's entries fit in 624 bytes, where the
/// allocator's fast path ends at 1 KiB (eight made it 1,248).
const HEADROOM: usize = 4;

/// The longest request target `http::Uri` takes.
const MAX_TARGET: usize = u16::MAX as usize - 1;

/// A request head, parsed and checked.
#[derive(Debug)]
pub(super) struct RequestHead {
    /// Its body is empty until the connection lends it its reader.
    pub(super) request: Request<Body>,
    pub(super) framing: RequestFraming,
    /// The client lets the connection carry another request after this one.
    pub(super) keep_alive: bool,
    /// `Expect: 100-continue` on a request with a body.
    pub(super) expect_continue: bool,
    /// `Connection: upgrade` with an `Upgrade` header.
    pub(super) upgrade: bool,
}

/// The bounds on a request head.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Bytes, request line included.
    pub(super) max_head: usize,
    /// Header lines.
    pub(super) max_headers: usize,
}

/// A refusal of a request head: its status and a fixed description.
fn refuse(status: StatusCode, description: &'static str) -> Error {
    Error::Protocol {
        status,
        description,
    }
}

fn bad(description: &'static str) -> Error {
    refuse(StatusCode::BAD_REQUEST, description)
}

/// The head cannot be complete within `max_head` bytes: 414 if the request line alone
/// is that long, else 431.
fn too_large(buf: &[u8], max_head: usize) -> Error {
    if buf.iter().take(max_head).any(|&b| b == b'\n') {
        refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "The request header section is too large",
        )
    } else {
        refuse(StatusCode::URI_TOO_LONG, "The request target is too long")
    }
}

/// Parses the request head at the start of `buf` and removes it from `buf`.
/// `Ok(None)`: not complete yet. `lines` is scratch room kept by the connection.
pub(super) fn parse_request(
    buf: &mut BytesMut,
    limits: Limits,
    lines: &mut Lines,
) -> Result<Option<RequestHead>, Error> {
    // Left uninitialised: zeroing room for the headers costs more than parsing them.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let room = limits.max_headers.clamp(1, MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut req,
        buf,
        &mut headers[..room],
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => {
            return Err(too_large(buf, limits.max_head));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "The request has too many header fields",
            ));
        }
        Err(httparse::Error::Version) => return Err(bad("Unsupported HTTP version")),
        Err(_) => return Err(bad("The request head is malformed")),
    };
    if len > limits.max_head {
        return Err(too_large(buf, limits.max_head));
    }
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| bad("The request method is malformed"))?;
    let version = match req.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let target = Piece::of(buf, req.path.unwrap_or_default().as_bytes());
    lines.record(buf, req.headers);

    let head = buf.split_to(len).freeze();
    build(&head, method, version, target, lines).map(Some)
}

/// What the framing-relevant headers said.
#[derive(Default)]
struct Seen {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: u8,
    chunked_last: bool,
    other_coding: bool,
    hosts: u8,
    close: bool,
    keep_alive: bool,
    upgrade_token: bool,
    upgrade_header: bool,
    expect_continue: bool,
}

fn build(
    head: &Bytes,
    method: Method,
    version: Version,
    target: Piece,
    lines: &mut Lines,
) -> Result<RequestHead, Error> {
    if target.len() > MAX_TARGET {
        return Err(refuse(
            StatusCode::URI_TOO_LONG,
            "The request target is too long",
        ));
    }
    let uri = Uri::from_maybe_shared(head.slice(target.range()))
        .map_err(|_| bad("The request target is malformed"))?;

    let mut headers = HeaderMap::with_capacity(lines.len() + HEADROOM);
    let mut seen = Seen::default();
    for line in lines.headers(head) {
        let (name, value) = line.ok_or_else(|| bad("A header is malformed"))?;
        see(&mut seen, &name, value.as_bytes())?;
        headers.append(name, value);
    }

    let framing = framing(&seen, version)?;
    if version == Version::HTTP_11 && seen.hosts != 1 {
        // RFC 9112 §3.2: exactly one Host, even with an absolute-form target.
        return Err(bad("The request needs exactly one Host header"));
    }
    let keep_alive = method != Method::CONNECT
        && !seen.close
        && (version == Version::HTTP_11 || seen.keep_alive);
    let upgrade = version == Version::HTTP_11 && seen.upgrade_token && seen.upgrade_header;
    let expect_continue =
        version == Version::HTTP_11 && seen.expect_continue && framing != RequestFraming::None;

    let mut request = Request::new(Body::empty());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(RequestHead {
        request,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    })
}

/// Notes what one header line says about framing and the connection.
fn see(seen: &mut Seen, name: &HeaderName, value: &[u8]) -> Result<(), Error> {
    if *name == header::CONTENT_LENGTH {
        seen.content_length = Some(
            merge_content_length(seen.content_length, value)
                .map_err(|_| bad("The Content-Length is malformed or ambiguous"))?,
        );
    } else if *name == header::TRANSFER_ENCODING {
        seen.transfer_encoding = true;
        // The codings of every line form one list (RFC 9110 §5.3).
        for coding in connection_tokens(value) {
            seen.chunked_last = coding.eq_ignore_ascii_case(b"chunked");
            if seen.chunked_last {
                seen.chunked = seen.chunked.saturating_add(1);
            } else {
                seen.other_coding = true;
            }
        }
    } else if *name == header::HOST {
        seen.hosts = seen.hosts.saturating_add(1);
    } else if *name == header::CONNECTION {
        for token in connection_tokens(value) {
            if token.eq_ignore_ascii_case(b"close") {
                seen.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                seen.keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                seen.upgrade_token = true;
            }
        }
    } else if *name == header::UPGRADE {
        seen.upgrade_header = true;
    } else if *name == header::EXPECT {
        seen.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
    }
    Ok(())
}

/// RFC 9112 §6.1 and §6.3, read strictly: no message is framed two ways.
fn framing(seen: &Seen, version: Version) -> Result<RequestFraming, Error> {
    if !seen.transfer_encoding {
        return Ok(match seen.content_length {
            None | Some(0) => RequestFraming::None,
            Some(n) => RequestFraming::Length(n),
        });
    }
    if version == Version::HTTP_10 {
        return Err(bad("Transfer-Encoding is not defined for HTTP/1.0"));
    }
    if seen.content_length.is_some() {
        return Err(bad(
            "A request may not have both Content-Length and Transfer-Encoding",
        ));
    }
    if !seen.chunked_last || seen.chunked != 1 {
        return Err(bad(
            "chunked must be the final transfer coding, applied once",
        ));
    }
    if seen.other_coding {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            "Only the chunked transfer coding is supported",
        ));
    }
    Ok(RequestFraming::Chunked)
}

// === Responses ===

impl ResponseFraming {
    /// The framing of a response with `status` to a `head_request`, whose body has
    /// `exact` length if known, for a client speaking `version`.
    pub(super) fn choose(
        status: StatusCode,
        head_request: bool,
        exact: Option<u64>,
        version: Version,
    ) -> Self {
        if status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || head_request
        {
            Self::Empty
        } else if let Some(n) = exact {
            Self::Length(n)
        } else if version == Version::HTTP_11 {
            Self::Chunked
        } else {
            Self::Close
        }
    }
}

/// What the `Connection` header of a response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persistence {
    /// Nothing: HTTP/1.1's default.
    Default,
    /// `connection: keep-alive`, for an HTTP/1.0 client that asked for it.
    KeepAlive,
    /// `connection: close`.
    Close,
}

/// Writes a response head: the status line, the headers (the service's framing and
/// `Connection` headers replaced by ours, kept as they are on a `101`), a `Date` if
/// the service set none. Returns the persistence written: `Close` if the service's own
/// `Connection` header asked for it.
pub(super) fn encode_response(
    parts: &response::Parts,
    framing: ResponseFraming,
    persistence: Persistence,
    dst: &mut Vec<u8>,
) -> Persistence {
    let mut persistence = persistence;
    let status = parts.status;
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    dst.extend_from_slice(b"HTTP/1.1 ");
    dst.extend_from_slice(status.as_str().as_bytes());
    dst.push(b' ');
    dst.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    dst.extend_from_slice(b"\r\n");
    // A HEAD's or a 304's Content-Length is the service's to give; a 1xx or 204 has none.
    let their_length = framing == ResponseFraming::Empty
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT;
    let mut dated = false;
    for (name, value) in &parts.headers {
        let ours = *name == header::TRANSFER_ENCODING
            || (*name == header::CONTENT_LENGTH && !their_length)
            || (*name == header::CONNECTION && !upgrade);
        if ours {
            if *name == header::CONNECTION
                && connection_tokens(value.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"close"))
            {
                persistence = Persistence::Close;
            }
            continue;
        }
        dated |= *name == header::DATE;
        encode_line(name.as_str().as_bytes(), value.as_bytes(), dst);
    }
    match framing {
        ResponseFraming::Length(n) => {
            dst.extend_from_slice(b"content-length: ");
            dst.extend_from_slice(itoa(n, &mut [0; 20]));
            dst.extend_from_slice(b"\r\n");
        }
        ResponseFraming::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseFraming::Empty | ResponseFraming::Close => {}
    }
    if !upgrade {
        match persistence {
            Persistence::Default => {}
            Persistence::KeepAlive => dst.extend_from_slice(b"connection: keep-alive\r\n"),
            Persistence::Close => dst.extend_from_slice(b"connection: close\r\n"),
        }
    }
    if !dated {
        dst.extend_from_slice(b"date: ");
        write_date(dst);
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
    persistence
}

/// `n` in decimal, in `buf`.
fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

thread_local! {
    /// The current second and its IMF-fixdate, formatted once a second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an IMF-fixdate (RFC 9110 §5.6.7).
fn write_date(dst: &mut Vec<u8>) {
    let now = clock::system_now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == 29 {
                cached.1.copy_from_slice(text.as_bytes());
                cached.0 = second;
            }
        }
        dst.extend_from_slice(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head: 16 * 1024,
        max_headers: 100,
    };

    fn parse(bytes: &[u8]) -> Result<Option<RequestHead>, Error> {
        parse_request(&mut BytesMut::from(bytes), LIMITS, &mut Lines::default())
    }

    fn status(bytes: &[u8]) -> u16 {
        match parse(bytes) {
            Err(e) => e.status().as_u16(),
            Ok(Some(_)) => 200,
            Ok(None) => 0,
        }
    }

    #[test]
    fn a_request_head_is_parsed_and_removed_from_the_buffer() {
        let mut buf = BytesMut::from(
            &b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Two: 1\r\nX-Two: 2\r\n\r\nabcNEXT"[..],
        );
        let head = parse_request(&mut buf, LIMITS, &mut Lines::default())
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..], b"abcNEXT");
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri(), "/a?b=1");
        assert_eq!(head.framing, RequestFraming::Length(3));
        assert!(head.keep_alive);
        let twos: Vec<_> = head.request.headers().get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_strictly() {
        let head = |extra: &str| format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let framing = |extra: &str| parse(head(extra).as_bytes()).unwrap().unwrap().framing;
        assert_eq!(framing(""), RequestFraming::None);
        assert_eq!(framing("Content-Length: 0\r\n"), RequestFraming::None);
        assert_eq!(
            framing("Content-Length: 5\r\nContent-Length: 5\r\n"),
            RequestFraming::Length(5)
        );
        assert_eq!(
            framing("Transfer-Encoding: chunked\r\n"),
            RequestFraming::Chunked
        );
        assert_eq!(
            framing("Transfer-Encoding:\tChunked\r\n"),
            RequestFraming::Chunked
        );
        for (extra, want) in [
            ("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", 400),
            ("Transfer-Encoding: xchunked\r\n", 400),
            ("Transfer-Encoding: chunked, identity\r\n", 400),
            ("Transfer-Encoding: identity, chunked\r\n", 501),
            (
                "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
                501,
            ),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                400,
            ),
            ("Transfer-Encoding: chunked, chunked\r\n", 400),
            ("Transfer-Encoding : chunked\r\n", 400),
            ("Content-Length: 5\r\nContent-Length: 6\r\n", 400),
            ("Content-Length: +5\r\n", 400),
            ("Content-Length: 0x10\r\n", 400),
            ("Content-Length: -1\r\n", 400),
            ("Content-Length: 99999999999999999999\r\n", 400),
        ] {
            assert_eq!(status(head(extra).as_bytes()), want, "{extra:?}");
        }
        assert_eq!(
            status(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn host_must_be_there_once_in_http_1_1() {
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(status(b"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
        assert_eq!(status(b"GET / HTTP/1.0\r\n\r\n"), 200);
    }

    #[test]
    fn garbage_is_a_400() {
        for bad in [
            &b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n",
        ] {
            assert_eq!(status(bad), 400, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn oversized_heads_are_414_or_431() {
        let long_target = format!("GET /{} HTTP/1.1\r\n", "x".repeat(LIMITS.max_head));
        assert_eq!(status(long_target.as_bytes()), 414);
        let big_header = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n",
            "x".repeat(LIMITS.max_head)
        );
        assert_eq!(status(big_header.as_bytes()), 431);
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..LIMITS.max_headers {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(status(many.as_bytes()), 431);
    }

    #[test]
    fn persistence_and_expectations() {
        let keep = |bytes: &[u8]| parse(bytes).unwrap().unwrap().keep_alive;
        assert!(keep(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!keep(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x, Close\r\n\r\n"
        ));
        assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let head = parse(
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(head.upgrade);
        let expect = |bytes: &[u8]| parse(bytes).unwrap().unwrap().expect_continue;
        assert!(expect(
            b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(!expect(
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n"
        ));
    }

    fn encode(response: http::Response<()>, framing: ResponseFraming, p: Persistence) -> String {
        let (parts, ()) = response.into_parts();
        let mut out = Vec::new();
        encode_response(&parts, framing, p, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_service_asking_to_close_closes() {
        let response = http::Response::builder()
            .header("connection", "Close")
            .body(())
            .unwrap();
        let (parts, ()) = response.into_parts();
        let mut out = Vec::new();
        let p = encode_response(
            &parts,
            ResponseFraming::Length(0),
            Persistence::Default,
            &mut out,
        );
        assert_eq!(p, Persistence::Close);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    }

    #[test]
    fn response_heads_carry_our_framing_and_a_date() {
        let response = http::Response::builder()
            .status(404)
            .header("content-length", "99")
            .header("transfer-encoding", "chunked")
            .header("connection", "x-private")
            .header("x-a", "b")
            .body(())
            .unwrap();
        let text = encode(response, ResponseFraming::Length(7), Persistence::Close);
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "HTTP/1.1 404 Not Found");
        assert_eq!(lines[1], "x-a: b");
        assert_eq!(lines[2], "content-length: 7");
        assert_eq!(lines[3], "connection: close");
        assert!(
            lines[4].starts_with("date: ") && lines[4].ends_with(" GMT"),
            "{text}"
        );
        assert_eq!(lines[4].len(), "date: ".len() + 29);
        assert!(text.ends_with("\r\n\r\n"));

        let dated = http::Response::builder()
            .header("date", "yesterday")
            .header("content-length", "5")
            .body(())
            .unwrap();
        let text = encode(dated, ResponseFraming::Empty, Persistence::KeepAlive);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ndate: yesterday\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn response_framing_follows_the_status_and_the_client() {
        use ResponseFraming::*;
        let v11 = Version::HTTP_11;
        assert_eq!(
            ResponseFraming::choose(StatusCode::OK, false, Some(3), v11),
            Length(3)
        );
        assert_eq!(
            ResponseFraming::choose(StatusCode::OK, false, None, v11),
            Chunked
        );
        assert_eq!(
            ResponseFraming::choose(StatusCode::OK, false, None, Version::HTTP_10),
            Close
        );
        assert_eq!(
            ResponseFraming::choose(StatusCode::OK, true, Some(3), v11),
            Empty
        );
        assert_eq!(
            ResponseFraming::choose(StatusCode::NO_CONTENT, false, None, v11),
            Empty
        );
        assert_eq!(
            ResponseFraming::choose(StatusCode::NOT_MODIFIED, false, None, v11),
            Empty
        );
    }
}
