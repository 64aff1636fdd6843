//! Finding the bearer token: RFC 6750 §2.1 (header) or a configured cookie.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE};

/// What the request carries.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Credentials<'a> {
    /// A bearer token. Its `b64token` syntax ([`is_b64token`]) is left to the guard,
    /// which checks it only for a token the cache does not hold: every cached token was
    /// verified, so it has that syntax, and the check is a pass over every byte.
    Token(&'a str),
    /// No bearer credentials (absent, or another scheme such as Basic): 401, no error.
    None,
    /// Bearer credentials that do not match `"Bearer" 1*SP b64token`, or two of them: 400.
    Malformed,
}

/// Reads the token from `Authorization: Bearer <token>`, else from the cookie `cookie`.
/// Query-string tokens are never read (RFC 9700 §4.3.2).
pub(super) fn extract<'a>(headers: &'a HeaderMap, cookie: Option<&str>) -> Credentials<'a> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => return Credentials::Malformed,
        (Some(value), None) => return parse_authorization(value.as_bytes()),
        (None, _) => {}
    }
    match cookie {
        Some(name) => from_cookie(headers, name),
        None => Credentials::None,
    }
}

fn parse_authorization(value: &[u8]) -> Credentials<'_> {
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        // `Bearer` alone is a bearer attempt without a token; another bare word is
        // some other scheme.
        return if value.eq_ignore_ascii_case(b"bearer") {
            Credentials::Malformed
        } else {
            Credentials::None
        };
    };
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Credentials::None;
    }
    match rest.trim_ascii_start() {
        [] => Credentials::Malformed,
        token => std::str::from_utf8(token).map_or(Credentials::Malformed, Credentials::Token),
    }
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
pub(super) fn is_b64token(token: &[u8]) -> bool {
    let body_end = token.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    // Branch-free over the bytes (an `all` would test and branch on each one).
    body_end > 0
        && token[..body_end]
            .iter()
            .fold(true, |ok, &b| ok & is_b64token_char(b))
}

/// A `b64token` character before the `=` padding. This check runs over every byte of
/// every token: as comparisons joined with `&`/`|` (no branches) it compiles to about
/// 2.4 instructions a byte, against 3.4 for a 256-entry table.
fn is_b64token_char(b: u8) -> bool {
    // `| 0x20` folds case; no non-letter lands in `a..=z` by it.
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

fn from_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Credentials<'a> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            let Some((n, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if n == name {
                if found.is_some() {
                    return Credentials::Malformed;
                }
                found = Some(v.trim_matches('"'));
            }
        }
    }
    found.map_or(Credentials::None, Credentials::Token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn auth(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER abc.def.ghi",
        ] {
            assert_eq!(
                extract(&auth(&[v]), None),
                Credentials::Token("abc.def.ghi")
            );
        }
    }

    #[test]
    fn other_schemes_and_no_header_are_no_credentials() {
        assert_eq!(
            extract(&auth(&["Basic dXNlcjpwYXNz"]), None),
            Credentials::None
        );
        assert_eq!(extract(&auth(&["Token abc"]), None), Credentials::None);
        assert_eq!(extract(&HeaderMap::new(), None), Credentials::None);
    }

    #[test]
    fn malformed_bearer_credentials_are_invalid_requests() {
        for v in ["Bearer", "Bearer  "] {
            assert_eq!(extract(&auth(&[v]), None), Credentials::Malformed, "{v:?}");
        }
        assert_eq!(
            extract(&auth(&["Bearer a", "Bearer b"]), None),
            Credentials::Malformed
        );
        // Outside the b64token alphabet: found, and left to the guard's check.
        for (v, token) in [
            ("Bearer a b", "a b"),
            ("Bearer a,b", "a,b"),
            ("Bearer a\"b", "a\"b"),
            ("Bearer a;b", "a;b"),
            ("Bearer =", "="),
        ] {
            assert_eq!(extract(&auth(&[v]), None), Credentials::Token(token));
            assert!(!is_b64token(token.as_bytes()), "{v:?}");
        }
    }

    #[test]
    fn the_token_alphabet_is_rfc_6750s() {
        let spec = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        for b in 0..=u8::MAX {
            assert_eq!(is_b64token_char(b), spec.contains(&b), "byte {b}");
        }
        assert!(is_b64token(b"a.b_c-d~e+f/g=="));
        assert!(!is_b64token(b"=a"));
        assert!(!is_b64token(b"a=b"));
    }

    #[test]
    fn the_cookie_is_read_only_when_configured() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("theme=dark; access_token=abc.def.ghi"),
        );
        assert_eq!(extract(&h, None), Credentials::None);
        assert_eq!(
            extract(&h, Some("access_token")),
            Credentials::Token("abc.def.ghi")
        );
        // The header wins over the cookie.
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer x.y.z"));
        assert_eq!(
            extract(&h, Some("access_token")),
            Credentials::Token("x.y.z")
        );
    }
}
