//! One normalised path for both the routing decision and the upstream request.
//!
//! A guarded prefix must not be reachable through a public one by a path trick
//! (`/public/../private`, `/public/%2e%2e/private`, `//private`), so the router matches
//! on, and forwards, the path that RFC 3986 §5.2.4 and §6.2.2 make of what was sent:
//! percent-encoded unreserved characters are decoded, dot segments removed and repeated
//! slashes merged. What cannot be normalised without guessing how the upstream would
//! read it is refused: encoded `/` or `\`, a backslash, `%00`, a double-encoded octet,
//! a `;` parameter on a dot segment, and broken percent-encoding.

use std::borrow::Cow;

/// Why a path was refused; each is answered 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// `%2F`, `%5C`, `%00`, `%25XX` or a backslash: meaning depends on the reader.
    Ambiguous,
    /// `%` not followed by two hex digits, or a path that is not absolute.
    Malformed,
}

impl PathError {
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Ambiguous => "The path contains an ambiguous encoding",
            Self::Malformed => "The path is malformed",
        }
    }
}

/// Returns the normalised form of `path`, borrowed when it is already normal.
pub(crate) fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        // Authority-form and asterisk-form targets never reach a route.
        return Err(PathError::Malformed);
    }
    if is_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)?))
}

/// The fast path: nothing to decode, no dot segment, no empty segment. One pass over
/// the bytes (splitting into segments first cost twice the instructions).
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut start = 1;
    for i in 1..=bytes.len() {
        match bytes.get(i) {
            Some(b'%' | b'\\') => return false,
            end @ (Some(b'/') | None) => {
                // An empty segment is a repeated slash, unless it is the last one.
                let segment = &bytes[start..i];
                if (segment.is_empty() && end.is_some()) || is_dot_segment(segment) {
                    return false;
                }
                start = i + 1;
            }
            Some(_) => {}
        }
    }
    true
}

/// `.` or `..`, with or without a `;` parameter.
fn is_dot_segment(segment: &[u8]) -> bool {
    let name = segment.split(|&b| b == b';').next().unwrap_or(segment);
    name == b"." || name == b".."
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes `%XX` of unreserved characters; keeps other escapes as they are.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(PathError::Ambiguous),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::Malformed);
                };
                let octet = hi << 4 | lo;
                match octet {
                    b'/' | b'\\' | 0 => return Err(PathError::Ambiguous),
                    b'%' => {
                        // `%25` followed by two hex digits is a double encoding.
                        let next_is_escape = bytes.get(i + 3).copied().and_then(hex).is_some()
                            && bytes.get(i + 4).copied().and_then(hex).is_some();
                        if next_is_escape {
                            return Err(PathError::Ambiguous);
                        }
                        out.push_str(&path[i..i + 3]);
                    }
                    o if is_unreserved(o) => out.push(o as char),
                    _ => out.push_str(&path[i..i + 3]),
                }
                i += 3;
            }
            _ => {
                // Copy the run up to the next special byte in one go (keeps UTF-8 intact).
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'%' || b == b'\\')
                    .map_or(bytes.len(), |p| i + p);
                out.push_str(&path[i..end]);
                i = end;
            }
        }
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 on an absolute path, merging empty segments on the way.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let inner = &path[1..];
    let trailing_slash = inner.ends_with('/') || inner.is_empty();
    let mut ends_in_dir = trailing_slash;
    for segment in inner.split('/') {
        if segment.contains(';') && is_dot_segment(segment.as_bytes()) {
            // `..;/` is a dot segment to some servers and a name to others.
            return Err(PathError::Ambiguous);
        }
        match segment {
            "" => {}
            "." => ends_in_dir = true,
            ".." => {
                segments.pop();
                ends_in_dir = true;
            }
            name => {
                segments.push(name);
                ends_in_dir = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || ends_in_dir || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        normalize(p).unwrap().into_owned()
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in [
            "/",
            "/api",
            "/api/x",
            "/api/x/",
            "/a-b_c~d/e.f",
            "/.well-known/x",
            "/a..b/...",
            "/a;b=1/c",
        ] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn dot_segments_and_empty_segments_are_removed() {
        assert_eq!(ok("/public/../private/x"), "/private/x");
        assert_eq!(ok("/./private/x"), "/private/x");
        assert_eq!(ok("//private/x"), "/private/x");
        assert_eq!(ok("/private//x"), "/private/x");
        assert_eq!(ok("/../../etc"), "/etc");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/."), "/a/");
        assert_eq!(ok("/a/x/"), "/a/x/");
    }

    #[test]
    fn encoded_unreserved_characters_are_decoded_before_dot_removal() {
        assert_eq!(ok("/public/%2e%2e/private/x"), "/private/x");
        assert_eq!(ok("/public/%2E%2E/private/x"), "/private/x");
        assert_eq!(ok("/%61pi/x"), "/api/x");
        // Reserved characters stay encoded.
        assert_eq!(ok("/a/%20b/%3F"), "/a/%20b/%3F");
    }

    #[test]
    fn ambiguous_encodings_are_refused() {
        for p in [
            "/public/%2E%2E%2Fprivate/x",
            "/public/..%2fprivate/x",
            "/public/%252e%252e/private/x",
            "/public/..;/private/x",
            "/public/..\\private/x",
            "/public/%5c..%5cprivate/x",
            "/private%2fx",
            "/private/x%00",
        ] {
            assert_eq!(normalize(p), Err(PathError::Ambiguous), "{p}");
        }
    }

    #[test]
    fn broken_escapes_and_relative_targets_are_malformed() {
        for p in ["/a%zz", "/a%2", "/a%", "*", "api"] {
            assert_eq!(normalize(p), Err(PathError::Malformed), "{p}");
        }
    }

    #[test]
    fn a_lone_percent_sign_escape_is_kept() {
        assert_eq!(ok("/discount/50%25"), "/discount/50%25");
    }
}
