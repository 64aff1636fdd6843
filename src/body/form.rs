//! Strict `application/x-www-form-urlencoded`: bad escapes and non-UTF-8 are refused.

use crate::urlencoded::{self, DecodeError};

/// Why a form body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FormError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A decoded name or value is not UTF-8.
    NotUtf8,
    /// More fields than allowed.
    TooManyFields(usize),
}

impl FormError {
    pub(super) fn description(self) -> String {
        match self {
            Self::BadEscape => "The form body has a malformed percent-escape".to_owned(),
            Self::NotUtf8 => "The form body is not UTF-8".to_owned(),
            Self::TooManyFields(n) => format!("The form body has more than {n} fields"),
        }
    }
}

/// Parses `a=1&b=x+y` into ordered pairs; `+` is a space, empty pairs are skipped.
pub(super) fn parse(bytes: &[u8], max_fields: usize) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    for pair in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        if pairs.len() == max_fields {
            return Err(FormError::TooManyFields(max_fields));
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        pairs.push((decode(name)?, decode(value)?));
    }
    Ok(pairs)
}

fn decode(input: &[u8]) -> Result<String, FormError> {
    urlencoded::decode(input).map_err(|e| match e {
        DecodeError::BadEscape => FormError::BadEscape,
        DecodeError::NotUtf8 => FormError::NotUtf8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_in_order() {
        let pairs = parse(
            b"grant_type=password&username=a%40b&password=a%2Bb%26c%3Dd%25&x&&y=",
            100,
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("grant_type".into(), "password".into()),
                ("username".into(), "a@b".into()),
                ("password".into(), "a+b&c=d%".into()),
                ("x".into(), String::new()),
                ("y".into(), String::new()),
            ]
        );
        // A raw `+` is a space.
        assert_eq!(parse(b"password=a+b", 10).unwrap()[0].1, "a b");
    }

    #[test]
    fn bad_escapes_and_bad_utf8_are_refused() {
        assert_eq!(parse(b"a=%ZZ", 10), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%2", 10), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%FF", 10), Err(FormError::NotUtf8));
        assert_eq!(parse(b"a=%00", 10).unwrap()[0].1, "\0");
    }

    #[test]
    fn the_field_count_is_capped() {
        let body = "a=1&".repeat(11);
        assert_eq!(
            parse(body.as_bytes(), 10),
            Err(FormError::TooManyFields(10))
        );
    }
}
