//! Pieces of the HTTP/1.1 wire format (RFC 9112) that both sides of the gateway read:
//! the client's requests in `server`, the upstreams' responses in `proxy`.
//!
//! Message bodies are framed the same way in both directions, so the chunked decoder,
//! the `Content-Length` rules and the `Connection` list are written once, here.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};

/// The longest chunk-size line, extensions included (RFC 9112 §7.1.1 sets none).
pub(crate) const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes after the last chunk.
pub(crate) const MAX_TRAILERS: usize = 16 * 1024;

/// A message whose body cannot be delimited reliably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramingError {
    /// `Content-Length` is malformed or given twice with different values.
    ContentLength,
    /// A malformed chunk size line, chunk end or trailer section.
    Chunk,
    /// The connection closed before the body was complete.
    Incomplete,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ContentLength => "malformed or conflicting content-length",
            Self::Chunk => "malformed chunked encoding",
            Self::Incomplete => "connection closed before the message was complete",
        })
    }
}

impl std::error::Error for FramingError {}

/// The tokens of a `Connection` header value (a comma-separated list; empty items
/// are allowed and skipped, RFC 9110 §5.6.1).
pub(crate) fn connection_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|token| !token.is_empty())
}

/// One more `Content-Length` value (a line may hold a list): every value must be the
/// same number.
pub(crate) fn merge_content_length(seen: Option<u64>, value: &[u8]) -> Result<u64, FramingError> {
    let mut length = seen;
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::ContentLength);
        }
        let n = item.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if length.is_some_and(|l| l != n) {
            return Err(FramingError::ContentLength);
        }
        length = Some(n);
    }
    length.ok_or(FramingError::ContentLength)
}

// === Chunked bodies ===

/// What the chunked decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete next step: read more.
    Incomplete,
    /// The last chunk and the trailer section are done.
    End,
}

/// A chunked body decoder (RFC 9112 §7.1). Trailers are read and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// After a chunk's data, at its CRLF.
    DataEnd,
    /// After the last chunk, in the trailer section.
    Trailers,
    /// Done.
    End,
}

impl Chunked {
    /// Takes the next piece of the body from `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        loop {
            match *self {
                Self::Size => {
                    let Some(line) = find_crlf(buf, MAX_CHUNK_LINE)? else {
                        return Ok(Decoded::Incomplete);
                    };
                    let size = chunk_size(&buf[..line])?;
                    buf.advance(line + 2);
                    *self = if size == 0 {
                        Self::Trailers
                    } else {
                        Self::Data(size)
                    };
                }
                Self::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::Incomplete);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Self::DataEnd
                    } else {
                        Self::Data(left)
                    };
                    return Ok(Decoded::Data(data));
                }
                Self::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::Incomplete);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(FramingError::Chunk);
                    }
                    buf.advance(2);
                    *self = Self::Size;
                }
                Self::Trailers => {
                    // Each trailer line is consumed as it comes, up to the empty line.
                    let Some(line) = find_crlf(buf, MAX_TRAILERS)? else {
                        return Ok(Decoded::Incomplete);
                    };
                    let empty = line == 0;
                    if !empty && (buf[0] == b' ' || buf[0] == b'\t' || !buf[..line].contains(&b':'))
                    {
                        return Err(FramingError::Chunk);
                    }
                    buf.advance(line + 2);
                    if empty {
                        *self = Self::End;
                    }
                }
                Self::End => return Ok(Decoded::End),
            }
        }
    }
}

/// The offset of the first CRLF in `buf`, if within `limit` bytes. A bare LF is an error.
fn find_crlf(buf: &[u8], limit: usize) -> Result<Option<usize>, FramingError> {
    match buf.iter().take(limit).position(|&b| b == b'\n') {
        Some(0) => Err(FramingError::Chunk),
        Some(lf) if buf[lf - 1] == b'\r' => Ok(Some(lf - 1)),
        Some(_) => Err(FramingError::Chunk),
        None if buf.len() >= limit => Err(FramingError::Chunk),
        None => Ok(None),
    }
}

/// The size in a chunk-size line: hex digits, then optionally extensions after `;`.
fn chunk_size(line: &[u8]) -> Result<u64, FramingError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(FramingError::Chunk);
    }
    let rest = line[digits..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(FramingError::Chunk);
    }
    let mut size = 0u64;
    for &d in &line[..digits] {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        size = size << 4 | u64::from(v);
    }
    Ok(size)
}

// === framing ===

/// How a request body is delimited on the wire (RFC 9112 §6.3), as the server reads it
/// and as the proxy writes it. Each side chooses it in its own module (`choose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body, and no framing header.
    None,
    /// `Content-Length: n`; the body is exactly that long.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// How a response body is delimited (RFC 9112 §6.3), as the proxy reads it and as the
/// server writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// No body bytes follow the head: 1xx, 204, 304, an answer to `HEAD`, or a length
    /// of zero.
    Empty,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Neither: the body ends when the connection closes.
    Close,
}

// === heads ===

/// A piece of a head (its target, a header's name or value) by offset and length: a
/// head is parsed where it was read, then split off the read buffer and frozen, and
/// the `http` values are cut from that. Heads are at most 1 MiB, so a u32 holds both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece(u32, u32);

impl Piece {
    /// `part`, which must be a slice of `head`.
    pub(crate) fn of(head: &[u8], part: &[u8]) -> Self {
        let start = part.as_ptr() as usize - head.as_ptr() as usize;
        Self(start as u32, part.len() as u32)
    }

    pub(crate) fn range(self) -> std::ops::Range<usize> {
        self.0 as usize..(self.0 + self.1) as usize
    }

    pub(crate) fn len(self) -> usize {
        self.1 as usize
    }
}

/// Where one header line sits in a head.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: Piece,
    value: Piece,
}

/// Room a connection keeps for the header lines of the heads it parses: where each
/// line of the current head sits, and the names of the last head's lines. A keep-alive
/// peer sends the same names in the same order on every message, and recognising one
/// (a byte comparison and a clone) costs a fraction of `HeaderName::from_bytes`, which
/// also allocates for every name that is not a standard one.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    spans: Vec<Span>,
    names: Vec<(Bytes, HeaderName)>,
    /// Where the head the spans point into starts (`record`'s buffer).
    origin: usize,
}

/// How many names [`Lines`] remembers per connection.
const NAMES_KEPT: usize = 32;

impl Lines {
    /// Notes where the lines `headers`, parsed from `head`, sit.
    pub(crate) fn record(&mut self, head: &[u8], headers: &[httparse::Header<'_>]) {
        self.origin = head.as_ptr() as usize;
        self.spans.clear();
        self.spans.extend(headers.iter().map(|h| Span {
            name: Piece::of(head, h.name.as_bytes()),
            value: Piece::of(head, h.value),
        }));
    }

    /// How many lines the head has.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The lines as `http` types, in order, the values sharing `head`'s memory; `None`
    /// for a line that is not valid there. `head` is the buffer the lines were recorded
    /// from, frozen (any other buffer has its values checked as usual).
    pub(crate) fn headers<'a>(
        &'a mut self,
        head: &'a Bytes,
    ) -> impl Iterator<Item = Option<(HeaderName, HeaderValue)>> + 'a {
        let Self {
            spans,
            names,
            origin,
        } = self;
        let recorded = head.as_ptr() as usize == *origin;
        spans.iter().enumerate().map(move |(i, span)| {
            let name = name(names, i, &head[span.name.range()])?;
            let value = head.slice(span.value.range());
            if !recorded {
                return Some((name, HeaderValue::from_maybe_shared(value).ok()?));
            }
            // SAFETY: the bytes are a header value httparse accepted (`record`, whose
            // buffer `head` is), so each is HTAB, SP, visible ASCII or obs-text: the set
            // `HeaderValue::from_bytes` accepts (`value_bytes_are_checked_alike` checks
            // all 256). The contract's "valid UTF-8" wording is older than
            // `HeaderValue`'s obs-text support; nothing reads a `HeaderValue` as `str`
            // without `to_str`'s own check, and hyper builds every header value it
            // parses this way. Checking again cost ~2 instructions a byte, most of them
            // on the bearer token (BENCHMARKS.md); debug builds still do.
            let value = unsafe { HeaderValue::from_maybe_shared_unchecked(value) };
            Some((name, value))
        })
    }
}

/// The name of line `i`, `bytes` as sent: the last head's line `i` if it was spelled
/// the same, else parsed (and remembered for the next head).
fn name(names: &mut Vec<(Bytes, HeaderName)>, i: usize, bytes: &[u8]) -> Option<HeaderName> {
    if let Some((spelled, name)) = names.get(i)
        && spelled == bytes
    {
        return Some(name.clone());
    }
    let name = HeaderName::from_bytes(bytes).ok()?;
    let entry = (Bytes::copy_from_slice(bytes), name.clone());
    if let Some(slot) = names.get_mut(i) {
        *slot = entry;
    } else if i == names.len() && i < NAMES_KEPT {
        names.push(entry);
    }
    Some(name)
}

/// Writes one header line.
pub(crate) fn encode_line(name: &[u8], value: &[u8], dst: &mut Vec<u8>) {
    dst.extend_from_slice(name);
    dst.extend_from_slice(b": ");
    dst.extend_from_slice(value);
    dst.extend_from_slice(b"\r\n");
}

/// The chunk-size line before `len` bytes of data.
pub(crate) fn encode_chunk_size(len: usize, dst: &mut Vec<u8>) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&digits[i..]);
    dst.extend_from_slice(b"\r\n");
}

// === reading ===

/// Room made in a connection's read buffer before each read of a head, and the first
/// read of a body.
pub(crate) const READ_SIZE: usize = 8 * 1024;
/// The most a body read asks for: reads that fill their room double it up to this, so
/// that a large body moves in a few large reads and writes, not in 8 KiB steps (hyper's
/// limit is about 400 KiB).
pub(crate) const MAX_READ_SIZE: usize = 512 * 1024;

/// How much a body read asks for. It adapts as hyper's does: it doubles after a read that
/// got all it asked for, up to [`MAX_READ_SIZE`], and halves after two reads in a row that
/// got less than half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadSize {
    pub(crate) size: usize,
    pub(crate) short: u8,
}

impl Default for ReadSize {
    fn default() -> Self {
        Self {
            size: READ_SIZE,
            short: 0,
        }
    }
}

impl ReadSize {
    pub(crate) fn record(&mut self, n: usize) {
        if n >= self.size {
            self.size = (self.size * 2).min(MAX_READ_SIZE);
            self.short = 0;
        } else if n < self.size / 2 {
            self.short += 1;
            if self.short == 2 {
                self.size = (self.size / 2).max(READ_SIZE);
                self.short = 0;
            }
        } else {
            self.short = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the request head `head` and records its lines in `lines`.
    fn record(lines: &mut Lines, head: &Bytes) {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(head).unwrap().is_complete());
        lines.record(head, req.headers);
    }

    fn names_of(lines: &mut Lines, wire: &'static [u8]) -> Vec<String> {
        let head = Bytes::from_static(wire);
        record(lines, &head);
        lines
            .headers(&head)
            .map(|line| {
                let (name, value) = line.unwrap();
                format!("{name}={}", value.to_str().unwrap())
            })
            .collect()
    }

    /// Names are remembered by position and spelling from one head to the next on a
    /// connection; a name spelled otherwise is parsed afresh.
    #[test]
    fn header_names_are_remembered_from_the_last_head() {
        let mut lines = Lines::default();
        let first = names_of(&mut lines, b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n");
        assert_eq!(first, ["host=a", "x-a=1"]);
        let again = names_of(&mut lines, b"GET / HTTP/1.1\r\nHost: b\r\nX-A: 2\r\n\r\n");
        assert_eq!(again, ["host=b", "x-a=2"]);
        let other = names_of(
            &mut lines,
            b"GET / HTTP/1.1\r\nHOST: c\r\nX-B: 3\r\nX-C: 4\r\n\r\n",
        );
        assert_eq!(other, ["host=c", "x-b=3", "x-c=4"]);
        let fewer = names_of(&mut lines, b"GET / HTTP/1.1\r\nX-B: 5\r\n\r\n");
        assert_eq!(fewer, ["x-b=5"]);
        assert_eq!(lines.names.len(), 3);
        assert_eq!(lines.names[0].1, "x-b");
    }

    /// The unchecked path is taken only for the buffer the lines were recorded from.
    #[test]
    fn values_of_another_buffer_are_checked() {
        let wire: &[u8] = b"GET / HTTP/1.1\r\nx: abc\r\n\r\n";
        let head = Bytes::copy_from_slice(wire);
        let mut lines = Lines::default();
        record(&mut lines, &head);
        let mut other = wire.to_vec();
        let at = other.windows(3).position(|w| w == b"abc").unwrap();
        other[at + 1] = 0x7f;
        let other = Bytes::from(other);
        assert!(
            lines.headers(&other).next().unwrap().is_none(),
            "DEL is not a value byte"
        );
        assert!(lines.headers(&head).next().unwrap().is_some());
    }

    /// `Lines::headers` skips `HeaderValue`'s check on the grounds that httparse's is the
    /// same: every byte in the middle of a value, in requests and in responses.
    #[test]
    fn value_bytes_are_checked_alike() {
        for b in 0..=255u8 {
            let valid = HeaderValue::from_bytes(&[b'a', b, b'a']).is_ok();
            for prefix in [&b"GET / HTTP/1.1\r\n"[..], b"HTTP/1.1 200 OK\r\n"] {
                let mut wire = prefix.to_vec();
                wire.extend_from_slice(&[b'x', b':', b' ', b'a', b, b'a']);
                wire.extend_from_slice(b"\r\n\r\n");
                let head = Bytes::from(wire);
                let mut headers = [httparse::EMPTY_HEADER; 4];
                let parsed = if prefix.starts_with(b"GET") {
                    let mut req = httparse::Request::new(&mut headers);
                    req.parse(&head)
                        .map(|s| s.is_complete().then(|| req.headers.to_vec()))
                } else {
                    let mut res = httparse::Response::new(&mut headers);
                    res.parse(&head)
                        .map(|s| s.is_complete().then(|| res.headers.to_vec()))
                };
                let accepted = match parsed {
                    Ok(Some(lines)) => {
                        // Debug builds check the value again inside; a mismatch panics.
                        let mut recorded = Lines::default();
                        recorded.record(&head, &lines);
                        let (_, value) = recorded.headers(&head).next().unwrap().unwrap();
                        assert_eq!(value.as_bytes(), [b'a', b, b'a'], "byte {b:#04x}");
                        true
                    }
                    _ => false,
                };
                assert_eq!(accepted, valid, "byte {b:#04x} after {prefix:?}");
            }
        }
    }

    fn dechunk(wire: &[u8]) -> Result<(Vec<u8>, usize), Option<FramingError>> {
        // Fed one byte at a time, to cover every split point.
        let mut decoder = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for (i, &b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[b]);
            loop {
                match decoder.decode(&mut buf).map_err(Some)? {
                    Decoded::Data(d) => out.extend_from_slice(&d),
                    Decoded::Incomplete => break,
                    Decoded::End => return Ok((out, wire.len() - i - 1 + buf.len())),
                }
            }
        }
        Err(None)
    }

    #[test]
    fn chunked_bodies_are_decoded_at_any_split() {
        let (body, rest) =
            dechunk(b"5;ext=1\r\nhello\r\nA \r\n, world!!!\r\n0\r\nx-sum: 1\r\n\r\nNEXT").unwrap();
        assert_eq!(body, b"hello, world!!!");
        assert_eq!(rest, 4);
        assert_eq!(dechunk(b"0\r\n\r\n").unwrap().0, b"");
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"fffffffffffffffff1\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"\r\n",
            b"-1\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"0\r\n bad-trailer\r\n\r\n",
            b"0\r\nno-colon\r\n\r\n",
        ] {
            assert_eq!(
                dechunk(bad).unwrap_err(),
                Some(FramingError::Chunk),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"5;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'a');
        assert_eq!(dechunk(&long).unwrap_err(), Some(FramingError::Chunk));
        assert_eq!(dechunk(b"5\r\nhel").unwrap_err(), None);
    }

    #[test]
    fn content_length_values_must_agree() {
        assert_eq!(merge_content_length(None, b"5"), Ok(5));
        assert_eq!(merge_content_length(Some(5), b"5, 5"), Ok(5));
        for bad in [
            &b"+5"[..],
            b"0x10",
            b"-1",
            b"99999999999999999999",
            b"",
            b"5,6",
            b" ,",
        ] {
            assert_eq!(
                merge_content_length(None, bad),
                Err(FramingError::ContentLength),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            merge_content_length(Some(6), b"5"),
            Err(FramingError::ContentLength)
        );
    }

    #[test]
    fn chunk_sizes_are_hex() {
        let mut out = Vec::new();
        encode_chunk_size(0x1a2b, &mut out);
        encode_chunk_size(0, &mut out);
        encode_chunk_size(usize::MAX, &mut out);
        assert_eq!(out, b"1a2b\r\n0\r\nffffffffffffffff\r\n");
    }
}
