//! Strict decoding of the JWS compact form: canonical base64url and JSON
//! objects without duplicate names, with bounded nesting.
//!
//! Strictness makes the token string canonical, which is what lets the cache
//! key on it (SECURITY_CASES §10.5), and removes parser differentials
//! (RFC 8725 §2.6, duplicate names: RFC 7515 §4, RFC 7519 §4).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Nesting deeper than this is refused. Claims need a few levels; 64 matches
/// the gateway's JSON body limit and keeps recursion far from the stack limit.
pub(crate) const MAX_JSON_DEPTH: usize = 64;

/// The three segments of a compact JWS, checked for shape only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// `header.payload`, the JWS signing input.
    pub(crate) signing_input: &'a str,
}

/// Splits a compact JWS: exactly three non-empty segments of the base64url
/// alphabet. Refuses JWE (five segments), JSON serialization, padding,
/// whitespace and anything else outside `[A-Za-z0-9_-.]`.
pub(crate) fn split_compact(token: &str) -> Option<Segments<'_>> {
    let bytes = token.as_bytes();
    let mut dots = [0usize; 2];
    let mut n = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if n == 2 {
                return None;
            }
            dots[n] = i;
            n += 1;
        } else if !is_b64url(b) {
            return None;
        }
    }
    if n != 2 {
        return None;
    }
    let header = token.get(..dots[0])?;
    let payload = token.get(dots[0] + 1..dots[1])?;
    let signature = token.get(dots[1] + 1..)?;
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return None;
    }
    Some(Segments {
        header,
        payload,
        signature,
        signing_input: token.get(..dots[1])?,
    })
}

const fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Decodes canonical, unpadded base64url: non-zero trailing bits (a second
/// spelling of the same bytes) are refused.
pub(crate) fn b64_decode(segment: &str) -> Option<Vec<u8>> {
    if !segment.bytes().all(is_b64url) {
        return None;
    }
    // The engine rejects padding and non-zero trailing bits by default
    // (`decode_allow_trailing_bits(false)`); the test `non_canonical_*` pins it.
    URL_SAFE_NO_PAD.decode(segment).ok()
}

/// Encodes unpadded base64url.
pub(crate) fn b64_encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Parses a UTF-8 JSON object: no BOM, no duplicate member names at any
/// depth, nesting bounded by [`MAX_JSON_DEPTH`], no trailing data.
pub(crate) fn json_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue { depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A seed that builds a `serde_json::Value`, refusing duplicate names and deep
/// nesting (serde_json's own `Map` keeps the last duplicate silently).
struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_JSON_DEPTH {
            return Err(de::Error::custom("JSON nested too deeply"));
        }
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue { depth })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.depth + 1;
        if depth > MAX_JSON_DEPTH {
            return Err(de::Error::custom("JSON nested too deeply"));
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            let v = map.next_value_seed(StrictValue { depth })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_accepts_three_segments() {
        let s = split_compact("aGVh.cGF5.c2ln").unwrap();
        assert_eq!((s.header, s.payload, s.signature), ("aGVh", "cGF5", "c2ln"));
        assert_eq!(s.signing_input, "aGVh.cGF5");
    }

    #[test]
    fn split_refuses_wrong_segment_counts_and_empty_segments() {
        for t in [
            "",
            "a",
            "a.b",
            "a.b.",
            ".b.c",
            "a..c",
            "a.b.c.d",
            "a.b.c.d.e",
            "a..b.c.d",
            "...",
        ] {
            assert!(split_compact(t).is_none(), "{t:?}");
        }
    }

    #[test]
    fn split_refuses_characters_outside_base64url() {
        for t in [
            "a.b.c=",
            "a+.b.c",
            "a/.b.c",
            "a .b.c",
            "a.b.c\n",
            "a.b\r.c",
            "{\"a\":1}",
            "a.b.cé",
        ] {
            assert!(split_compact(t).is_none(), "{t:?}");
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "k" and "l" differ only in the 2 pad bits of a 43-char segment.
        let good = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let bad = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
        assert_eq!(b64_decode(good).map(|v| v.len()), Some(32));
        assert!(b64_decode(bad).is_none());
        assert!(b64_decode("YQ==").is_none());
        assert!(b64_decode("Y").is_none());
    }

    #[test]
    fn json_object_refuses_duplicates_at_any_depth() {
        assert!(json_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(json_object(br#"{"a":{"b":1,"b":1}}"#).is_none());
        assert!(json_object(br#"{"a":[{"b":1,"b":1}]}"#).is_none());
        assert!(json_object(br#"{"a":1,"b":2}"#).is_some());
    }

    #[test]
    fn json_object_refuses_non_objects_bom_and_trailing_data() {
        for bad in [
            &b"[]"[..],
            b"\"x\"",
            b"1",
            b"null",
            b"\xEF\xBB\xBF{}",
            b"{} {}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":1e400}",
            b"",
        ] {
            assert!(json_object(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn json_object_bounds_nesting_without_overflowing_the_stack() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(json_object(deep.as_bytes()).is_none());
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(10), "]".repeat(10));
        assert!(json_object(ok.as_bytes()).is_some());
    }
}
