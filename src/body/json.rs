//! Strict JSON: nesting bounded before parsing, duplicate names refused.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a JSON body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JsonError {
    /// Not JSON; with the parser's position (never its message, which may quote input).
    Syntax { line: usize, column: usize },
    /// Deeper than the limit.
    TooDeep(usize),
    /// An object names the same member twice (RFC 8259 §4, RFC 7493 §2.3).
    DuplicateName,
    /// Strict mode: the top level is not an object or array.
    NotContainer,
    /// Empty body.
    Empty,
}

impl JsonError {
    pub(super) fn description(&self) -> String {
        match self {
            Self::Syntax { line, column } => {
                format!("Malformed JSON at line {line} column {column}")
            }
            Self::TooDeep(limit) => format!("JSON nesting is deeper than {limit} levels"),
            Self::DuplicateName => "A JSON object repeats a member name".to_owned(),
            Self::NotContainer => "The JSON body must be an object or an array".to_owned(),
            Self::Empty => "The JSON body is empty".to_owned(),
        }
    }
}

/// Parses `bytes` as one JSON value, refusing duplicate names and nesting over `max_depth`.
pub(super) fn parse(bytes: &[u8], max_depth: usize, strict: bool) -> Result<Value, JsonError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonError::Empty);
    }
    // Bound the depth before serde recurses, so no input can exhaust the stack.
    if depth(bytes) > max_depth {
        return Err(JsonError::TooDeep(max_depth));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    let value = value.map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) {
            JsonError::DuplicateName
        } else {
            JsonError::Syntax {
                line: e.line(),
                column: e.column(),
            }
        }
    })?;
    if strict && !(value.is_object() || value.is_array()) {
        return Err(JsonError::NotContainer);
    }
    Ok(value)
}

/// The deepest nesting of `[`/`{` outside strings.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

const DUPLICATE: &str = "duplicate member name";

/// Deserializes a `serde_json::Value`, failing on a repeated object member name.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let value = map.next_value_seed(StrictValue)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Value, JsonError> {
        parse(s.as_bytes(), 64, true)
    }

    #[test]
    fn objects_and_arrays_parse() {
        assert_eq!(
            p(r#"{"a":[1,2,{"b":null}]}"#).unwrap()["a"][2]["b"],
            Value::Null
        );
        assert!(p("[]").is_ok());
    }

    #[test]
    fn malformed_json_reports_line_and_column_without_echoing_input() {
        for bad in [
            "{\"a\":1",
            "{'a':1}",
            "{\"a\":1,}",
            "[NaN]",
            "{\"a\":1} // c",
            "\u{feff}{}",
        ] {
            let e = p(bad).unwrap_err();
            assert!(matches!(e, JsonError::Syntax { .. }), "{bad}: {e:?}");
        }
        let e = p("{\n  \"a\": @\n}").unwrap_err();
        assert_eq!(e.description(), "Malformed JSON at line 2 column 8");
    }

    #[test]
    fn duplicate_member_names_are_refused_at_any_depth() {
        assert_eq!(
            p(r#"{"amount":1,"amount":-1}"#),
            Err(JsonError::DuplicateName)
        );
        assert_eq!(
            p(r#"[{"u":"a","u":"admin"}]"#),
            Err(JsonError::DuplicateName)
        );
    }

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(p(&deep), Err(JsonError::TooDeep(64)));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert!(p(&ok).is_ok());
        // Brackets inside strings do not count.
        assert!(p(&format!("[\"{}\"]", "[".repeat(1000))).is_ok());
    }

    #[test]
    fn strict_mode_wants_a_container_and_a_body() {
        assert_eq!(p("1"), Err(JsonError::NotContainer));
        assert_eq!(p("\"x\""), Err(JsonError::NotContainer));
        assert!(parse(b"1", 64, false).is_ok());
        assert_eq!(p("  "), Err(JsonError::Empty));
    }

    #[test]
    fn out_of_range_numbers_and_lone_surrogates_are_refused() {
        assert!(p("[1e400]").is_err());
        assert!(p(r#"["\ud800"]"#).is_err());
    }
}
