//! `application/x-www-form-urlencoded` decoding, strict: shared by the body parser (form
//! bodies) and the token endpoint (HTTP Basic credentials, RFC 6749 §2.3.1).

/// Why a form-encoded string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes one name or value: `+` is a space, `%XX` an octet, and the result must be
/// UTF-8. Broken escapes are errors, never passed through as they are.
pub(crate) fn decode(input: &[u8]) -> Result<String, DecodeError> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    input.get(i + 1).copied().and_then(hex),
                    input.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(DecodeError::BadEscape);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_escapes_and_utf8() {
        assert_eq!(decode(b"a+b%26c%3Dd%25").unwrap(), "a b&c=d%");
        assert_eq!(decode(b"r%C3%A9").unwrap(), "ré");
        assert_eq!(decode(b"%ZZ"), Err(DecodeError::BadEscape));
        assert_eq!(decode(b"%2"), Err(DecodeError::BadEscape));
        assert_eq!(decode(b"%FF"), Err(DecodeError::NotUtf8));
    }
}
