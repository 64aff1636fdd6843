//! The HTTP/1.1 wire format on the upstream side (RFC 9112): request heads written out,
//! response heads parsed, response bodies de-framed.
//!
//! The gateway's upstream side only ever speaks one dialect: it sends HTTP/1.1 requests
//! it built itself (every header already validated by `http`) and reads the answers.
//! That is a small part of HTTP/1, and written for this one purpose it costs a fraction
//! of a general client's instructions (BENCHMARKS.md). Everything an upstream sends is
//! checked as strictly as a client would: a garbled, oversized or ambiguous response
//! is an error (502), never guessed at.

use std::fmt;
use std::io::Write as _;
use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName};
use http::{Method, Response, StatusCode, Version, request};

use super::headers::{Forwarded, hop_by_hop_bit};
use super::upstream::write_target;
pub(super) use crate::http1::{
    Chunked, Decoded, RequestFraming, ResponseFraming, encode_chunk_size,
};
use crate::http1::{FramingError, Lines, connection_tokens, encode_line, merge_content_length};

/// The largest response head read, interim responses included.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// The most header lines in one response head (hyper's limit too).
const MAX_HEADERS: usize = 100;

/// Why an upstream's response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProtocolError {
    /// Not an HTTP/1.x response head (httparse's reason).
    Head(&'static str),
    /// The head is larger than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] lines.
    HeadTooLarge,
    /// `Content-Length` is malformed or given twice with different values.
    ContentLength,
    /// A malformed chunk size line, chunk end or trailer section.
    Chunk,
    /// The connection closed before the message was complete.
    Incomplete,
    /// A `101 Switching Protocols` nobody asked for.
    UnexpectedUpgrade,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Head(reason) => write!(f, "malformed response head: {reason}"),
            Self::HeadTooLarge => f.write_str("response head too large"),
            Self::ContentLength => f.write_str("malformed or conflicting content-length"),
            Self::Chunk => f.write_str("malformed chunked encoding"),
            Self::Incomplete => f.write_str("connection closed before the message was complete"),
            Self::UnexpectedUpgrade => f.write_str("101 response to a request without upgrade"),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<FramingError> for ProtocolError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::ContentLength => Self::ContentLength,
            FramingError::Chunk => Self::Chunk,
            FramingError::Incomplete => Self::Incomplete,
        }
    }
}

// === Requests ===

impl RequestFraming {
    /// The framing for a body of `exact` size (if known), following what the client
    /// sent: a known size is sent as `Content-Length` (and a zero one only where the
    /// method has body semantics or the client said so), an unknown one as the
    /// client's `Content-Length`, or chunked.
    pub(super) fn choose(parts: &request::Parts, exact: Option<u64>) -> Self {
        match exact {
            Some(0)
                if !parts.headers.contains_key(header::CONTENT_LENGTH)
                    && !matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) =>
            {
                Self::None
            }
            Some(n) => Self::Length(n),
            // A body that does not know its size but came with a length keeps it (the
            // exchange checks that it holds); the server that read it checked its syntax.
            None => parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .map_or(Self::Chunked, Self::Length),
        }
    }
}

/// Where a request goes on its upstream: the upstream's base path, then the client's
/// path less its first `skip` bytes (the route prefix, when the route strips it), then
/// the client's query, byte for byte. Both parts were validated where they came from
/// (the configuration, the client's request line), so the join needs no second check.
#[derive(Debug, Clone)]
pub(super) struct Target<'a> {
    /// No trailing slash; empty for `/`.
    pub(super) base: &'a str,
    pub(super) skip: usize,
}

/// Writes the request line and headers of `parts` into `dst`, with the path joined per
/// `target`, `forwarded`'s headers in place of the client's of those names, and
/// `framing`'s header in place of any framing header in `parts`. Always HTTP/1.1,
/// whatever the client spoke to the gateway.
pub(super) fn encode_request(
    parts: &request::Parts,
    target: &Target<'_>,
    forwarded: &Forwarded<'_>,
    framing: RequestFraming,
    dst: &mut Vec<u8>,
) {
    dst.extend_from_slice(parts.method.as_str().as_bytes());
    dst.push(b' ');
    let path = parts.uri.path().get(target.skip..).unwrap_or_default();
    write_target(target.base, path, parts.uri.query(), dst);
    dst.extend_from_slice(b" HTTP/1.1\r\n");
    forwarded.encode(&parts.headers, dst);
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || Forwarded::replaces(name)
        {
            continue;
        }
        encode_line(name.as_str().as_bytes(), value.as_bytes(), dst);
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            // Writing into a Vec cannot fail.
            let _ = write!(dst, "content-length: {n}\r\n");
        }
        RequestFraming::Chunked => dst.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    dst.extend_from_slice(b"\r\n");
}

/// Writes the last chunk and `trailers` (if any) that end a chunked body.
pub(super) fn encode_last_chunk(trailers: Option<&HeaderMap>, dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        encode_line(name.as_str().as_bytes(), value.as_bytes(), dst);
    }
    dst.extend_from_slice(b"\r\n");
}

// === Responses ===

/// A parsed response head.
#[derive(Debug)]
pub(super) struct ResponseHead {
    /// Status, version and headers; the body comes later. Hop-by-hop headers and the
    /// headers `Connection` names are already gone, except from a `101`.
    pub(super) response: Response<()>,
    pub(super) framing: ResponseFraming,
    /// Whether the connection may carry another request after this response.
    pub(super) keep_alive: bool,
}

/// Parses the response head at the start of `buf` and removes it from `buf`, skipping
/// interim (1xx) responses other than `101`. `Ok(None)`: the head is not complete yet.
/// `head_request`: the request was `HEAD`, so the response has no body whatever it says.
/// `lines` is scratch room the connection keeps (see `Lines`).
pub(super) fn parse_response(
    buf: &mut BytesMut,
    head_request: bool,
    lines: &mut Lines,
) -> Result<Option<ResponseHead>, ProtocolError> {
    loop {
        let Some(parsed) = parse_one(buf, lines)? else {
            return Ok(None);
        };
        if parsed.status.is_informational() && parsed.status != StatusCode::SWITCHING_PROTOCOLS {
            buf.advance(parsed.len);
            continue;
        }
        let head = buf.split_to(parsed.len).freeze();
        return build(&head, &parsed, lines, head_request).map(Some);
    }
}

fn reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// A response head found by httparse; its header lines are in the caller's `Lines`, by
/// offsets into the buffer it was parsed from.
struct Parsed {
    len: usize,
    status: StatusCode,
    version: Version,
}

fn parse_one(buf: &[u8], lines: &mut Lines) -> Result<Option<Parsed>, ProtocolError> {
    // Left uninitialised: zeroing room for a hundred headers costs more than parsing.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ProtocolError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::HeadTooLarge),
        Err(e) => return Err(ProtocolError::Head(reason(e))),
    };
    if len > MAX_HEAD {
        return Err(ProtocolError::HeadTooLarge);
    }
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or(ProtocolError::Head("invalid status code"))?;
    let version = match response.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    lines.record(buf, response.headers);
    Ok(Some(Parsed {
        len,
        status,
        version,
    }))
}

fn build(
    head: &Bytes,
    parsed: &Parsed,
    lines: &mut Lines,
    head_request: bool,
) -> Result<ResponseHead, ProtocolError> {
    let status = parsed.status;
    // A 101's Connection and Upgrade are for the client, whose connection is upgraded too.
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS;
    let mut headers = HeaderMap::with_capacity(lines.len());
    let mut content_length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    let mut close = parsed.version == Version::HTTP_10;
    let mut named: Vec<HeaderName> = Vec::new();
    for line in lines.headers(head) {
        let (name, value) = line.ok_or(ProtocolError::Head("invalid header"))?;
        if name == header::CONTENT_LENGTH {
            content_length = Some(merge_content_length(content_length, value.as_bytes())?);
        } else if name == header::TRANSFER_ENCODING {
            // The codings of every line form one list; only the last one counts.
            let last = value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            for token in connection_tokens(value.as_bytes()) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if !upgrade
                    && !token.eq_ignore_ascii_case(b"keep-alive")
                    && !token.eq_ignore_ascii_case(b"upgrade")
                {
                    // Hop-by-hop for this message (`Connection: X-Secret`): dropped too.
                    named.extend(HeaderName::from_bytes(token).ok());
                }
            }
        }
        // Hop-by-hop headers describe this connection only (RFC 9110 §7.6.1).
        if upgrade || hop_by_hop_bit(&name).is_none() {
            headers.append(name, value);
        }
    }
    for name in named {
        headers.remove(name);
    }

    let framing = if upgrade {
        close = true;
        ResponseFraming::Empty
    } else if head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED
    {
        ResponseFraming::Empty
    } else if let Some(chunked) = chunked {
        if parsed.version == Version::HTTP_10 {
            // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; the framing is faulty.
            return Err(ProtocolError::Head(
                "transfer-encoding in an HTTP/1.0 response",
            ));
        }
        if content_length.is_some() {
            // RFC 9112 §6.3: Transfer-Encoding wins, the length goes, and the
            // connection is not trusted with another message.
            headers.remove(header::CONTENT_LENGTH);
            close = true;
        }
        if chunked {
            ResponseFraming::Chunked
        } else {
            close = true;
            ResponseFraming::Close
        }
    } else {
        match content_length {
            Some(0) => ResponseFraming::Empty,
            Some(n) => ResponseFraming::Length(n),
            None => {
                close = true;
                ResponseFraming::Close
            }
        }
    };

    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = parsed.version;
    *response.headers_mut() = headers;
    Ok(ResponseHead {
        response,
        framing,
        keep_alive: !close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<ResponseHead>, ProtocolError> {
        parse_response(&mut BytesMut::from(bytes), false, &mut Lines::default())
    }

    fn framing(bytes: &[u8]) -> (ResponseFraming, bool) {
        let head = parse(bytes).unwrap().unwrap();
        (head.framing, head.keep_alive)
    }

    #[test]
    fn request_heads_carry_our_framing_only() {
        let (parts, ()) = http::Request::post("http://gw/a?b=1")
            .header("content-length", "99")
            .header("transfer-encoding", "chunked")
            .header("x-a", "1")
            .header("x-a", "2")
            .body(())
            .unwrap()
            .into_parts();
        let mut out = Vec::new();
        let forwarded = forwarded();
        encode_request(
            &parts,
            &target("", 0),
            &forwarded,
            RequestFraming::Length(5),
            &mut out,
        );
        assert_eq!(
            out,
            b"POST /a?b=1 HTTP/1.1\r\nhost: up\r\nx-forwarded-proto: http\r\n\
              x-a: 1\r\nx-a: 2\r\ncontent-length: 5\r\n\r\n"
        );
        out.clear();
        encode_request(
            &parts,
            &target("", 0),
            &forwarded,
            RequestFraming::Chunked,
            &mut out,
        );
        assert!(out.ends_with(b"x-a: 2\r\ntransfer-encoding: chunked\r\n\r\n"));
    }

    #[test]
    fn request_heads_carry_our_forwarding_headers_only() {
        let (parts, ()) = http::Request::get("/a")
            .header("x-real-ip", "10.0.0.1")
            .header("host", "gw.example")
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example")
            .header("x-b", "1")
            .body(())
            .unwrap()
            .into_parts();
        let up = http::HeaderValue::from_static("up");
        let forwarded = Forwarded {
            upstream_host: &up,
            preserve_host: false,
            authority: None,
            peer: Some("127.0.0.1".parse().unwrap()),
        };
        let mut out = Vec::new();
        encode_request(
            &parts,
            &target("", 0),
            &forwarded,
            RequestFraming::None,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a HTTP/1.1\r\nhost: up\r\nx-forwarded-for: 203.0.113.9, 127.0.0.1\r\n\
             x-forwarded-proto: http\r\nx-forwarded-host: gw.example\r\nx-b: 1\r\n\r\n"
        );
    }

    static UP: http::HeaderValue = http::HeaderValue::from_static("up");

    fn forwarded() -> Forwarded<'static> {
        Forwarded {
            upstream_host: &UP,
            preserve_host: false,
            authority: None,
            peer: None,
        }
    }

    fn target(base: &str, skip: usize) -> Target<'_> {
        Target { base, skip }
    }

    #[test]
    fn request_targets_join_the_base_and_the_rest_of_the_path() {
        let line = |uri: &str, base: &str, skip: usize| {
            let (parts, ()) = http::Request::get(uri).body(()).unwrap().into_parts();
            let mut out = Vec::new();
            let target = target(base, skip);
            encode_request(
                &parts,
                &target,
                &forwarded(),
                RequestFraming::None,
                &mut out,
            );
            let line = out.split(|&b| b == b'\r').next().unwrap().to_vec();
            String::from_utf8(line).unwrap()
        };
        assert_eq!(line("/api/x?q=%20a&b", "", 4), "GET /x?q=%20a&b HTTP/1.1");
        assert_eq!(line("/api/x", "/v1", 4), "GET /v1/x HTTP/1.1");
        assert_eq!(line("/api/x", "/v1", 0), "GET /v1/api/x HTTP/1.1");
        assert_eq!(line("/api", "", 4), "GET / HTTP/1.1");
        assert_eq!(line("/api?x", "/v1", 4), "GET /v1?x HTTP/1.1");
        assert_eq!(line("http://gw:8080/a/b", "", 0), "GET /a/b HTTP/1.1");
        assert_eq!(line("http://gw:8080", "", 0), "GET / HTTP/1.1");
    }

    #[test]
    fn empty_bodies_get_a_length_only_where_one_is_expected() {
        let parts = |method: Method, length: bool| {
            let mut req = http::Request::builder().method(method);
            if length {
                req = req.header("content-length", "0");
            }
            req.body(()).unwrap().into_parts().0
        };
        assert_eq!(
            RequestFraming::choose(&parts(Method::GET, false), Some(0)),
            RequestFraming::None
        );
        assert_eq!(
            RequestFraming::choose(&parts(Method::GET, true), Some(0)),
            RequestFraming::Length(0)
        );
        assert_eq!(
            RequestFraming::choose(&parts(Method::POST, false), Some(0)),
            RequestFraming::Length(0)
        );
        assert_eq!(
            RequestFraming::choose(&parts(Method::POST, false), Some(7)),
            RequestFraming::Length(7)
        );
        assert_eq!(
            RequestFraming::choose(&parts(Method::POST, true), None),
            RequestFraming::Length(0)
        );
        assert_eq!(
            RequestFraming::choose(&parts(Method::POST, false), None),
            RequestFraming::Chunked
        );
    }

    #[test]
    fn last_chunks_carry_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", http::HeaderValue::from_static("3"));
        let mut out = Vec::new();
        encode_chunk_size(255, &mut out);
        encode_last_chunk(Some(&trailers), &mut out);
        assert_eq!(out, b"ff\r\n0\r\nx-sum: 3\r\n\r\n");
    }

    #[test]
    fn response_framing_follows_rfc_9112_section_6_3() {
        use ResponseFraming::*;
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
            (Length(5), true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (Empty, true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
            (Chunked, true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n"),
            (Close, false)
        );
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n"), (Close, false));
        assert_eq!(
            framing(b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
            (Empty, true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n"),
            (Empty, true)
        );
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: Close\r\n\r\n"),
            (Length(5), false)
        );
        assert_eq!(
            framing(b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n"),
            (Length(5), false)
        );
        assert_eq!(
            framing(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"),
            (Empty, false)
        );
        let head = parse_response(
            &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"[..]),
            true,
            &mut Lines::default(),
        );
        assert_eq!(head.unwrap().unwrap().framing, Empty);
    }

    #[test]
    fn transfer_encoding_in_an_http_1_0_response_is_an_error() {
        let error = parse(b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").unwrap_err();
        assert!(matches!(error, ProtocolError::Head(_)), "{error:?}");
    }

    #[test]
    fn transfer_encoding_beats_content_length_and_closes() {
        let head =
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(head.framing, ResponseFraming::Chunked);
        assert!(!head.keep_alive);
        assert!(!head.response.headers().contains_key(header::CONTENT_LENGTH));
    }

    #[test]
    fn hop_by_hop_headers_stay_behind_except_on_a_101() {
        let head = parse(
            b"HTTP/1.1 200 OK\r\nx-secret: 1\r\nconnection: keep-alive, X-Secret\r\nkeep-alive: timeout=5\r\nupgrade: h2c\r\ntrailer: x-sum\r\nproxy-authenticate: Basic\r\nx-kept: 2\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        let mut names: Vec<_> = head
            .response
            .headers()
            .keys()
            .map(HeaderName::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "x-kept"]);
        assert!(head.keep_alive);
        let head = parse(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.response.headers()["upgrade"], "websocket");
        assert_eq!(head.response.headers()["connection"], "upgrade");
    }

    #[test]
    fn content_length_values_must_agree() {
        assert_eq!(
            framing(b"HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\ncontent-length: 2\r\n\r\n").0,
            ResponseFraming::Length(2)
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 2, 3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0x2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad).unwrap_err(),
                ProtocolError::ContentLength,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok"[..],
        );
        let head = parse_response(&mut buf, false, &mut Lines::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.response.status(), StatusCode::CREATED);
        assert!(!head.response.headers().contains_key("link"));
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn heads_are_parsed_only_when_complete_and_within_limits() {
        assert!(parse(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        for garbled in [
            &b"HTTP/1.1 abc OK\r\n\r\n"[..],
            b"SSH-2.0-x\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
        ] {
            let error = parse(garbled).unwrap_err();
            assert!(matches!(error, ProtocolError::Head(_)), "{error:?}");
        }
        let mut big = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&big).unwrap_err(), ProtocolError::HeadTooLarge);
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many).unwrap_err(), ProtocolError::HeadTooLarge);
    }

    #[test]
    fn header_values_keep_their_bytes_and_order() {
        let head = parse(b"HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nx-latin: caf\xe9\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        let headers = head.response.headers();
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(headers["x-latin"].as_bytes(), b"caf\xe9");
    }
}
