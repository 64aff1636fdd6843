//! Client authentication at the token endpoint (RFC 6749 §2.3.1): HTTP Basic with
//! form-encoded id and secret, or `client_id`/`client_secret` in the body, never both.

use base64::Engine;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::urlencoded;

/// Credentials a client presented.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ClientCredentials {
    /// None presented.
    None,
    /// From `Authorization: Basic` (a failure must answer with a Basic challenge).
    Basic { id: String, secret: String },
    /// From the body.
    Body { id: String, secret: Option<String> },
}

/// Why client authentication could not even be attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAuthError {
    /// Basic credentials that do not decode: `invalid_client` (401).
    BadBasic,
    /// Basic and body credentials together: `invalid_request` (400).
    TwoMethods,
}

/// Reads the client's credentials. `body_id`/`body_secret` are the body fields.
pub(super) fn credentials(
    headers: &HeaderMap,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<ClientCredentials, ClientAuthError> {
    let basic = match headers.get(AUTHORIZATION) {
        Some(value) => {
            let value = value.as_bytes();
            match value.split_at_checked(6) {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"basic ") => {
                    Some(decode_basic(rest)?)
                }
                _ => None,
            }
        }
        None => None,
    };
    match (basic, body_id) {
        (Some(_), Some(_)) => Err(ClientAuthError::TwoMethods),
        (Some(_), None) if body_secret.is_some() => Err(ClientAuthError::TwoMethods),
        (Some((id, secret)), None) => Ok(ClientCredentials::Basic { id, secret }),
        (None, Some(id)) => Ok(ClientCredentials::Body {
            id: id.to_owned(),
            secret: body_secret.map(str::to_owned),
        }),
        (None, None) => Ok(ClientCredentials::None),
    }
}

/// `base64(urlencode(id) ":" urlencode(secret))`.
fn decode_basic(encoded: &[u8]) -> Result<(String, String), ClientAuthError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .map_err(|_| ClientAuthError::BadBasic)?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(ClientAuthError::BadBasic)?;
    let id = form_decode(&decoded[..colon])?;
    let secret = form_decode(&decoded[colon + 1..])?;
    if id.is_empty() {
        return Err(ClientAuthError::BadBasic);
    }
    Ok((id, secret))
}

fn form_decode(bytes: &[u8]) -> Result<String, ClientAuthError> {
    urlencoded::decode(bytes).map_err(|_| ClientAuthError::BadBasic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // RFC 6749 §2.3.1: id `svc:1`, secret `s+cret%`.
        let got = credentials(&basic("svc%3A1:s%2Bcret%25"), None, None).unwrap();
        assert_eq!(
            got,
            ClientCredentials::Basic {
                id: "svc:1".into(),
                secret: "s+cret%".into()
            }
        );
        let got = credentials(&basic("r%C3%A9port:p%C3%A4ss:word"), None, None).unwrap();
        assert_eq!(
            got,
            ClientCredentials::Basic {
                id: "réport".into(),
                secret: "päss:word".into()
            }
        );
    }

    #[test]
    fn broken_basic_credentials_are_refused() {
        for raw in ["no-colon", ":secret", "a:%ZZ"] {
            assert_eq!(
                credentials(&basic(raw), None, None),
                Err(ClientAuthError::BadBasic),
                "{raw}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(credentials(&h, None, None), Err(ClientAuthError::BadBasic));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        assert_eq!(
            credentials(&basic("a:b"), Some("a"), Some("b")),
            Err(ClientAuthError::TwoMethods)
        );
        assert_eq!(
            credentials(&basic("a:b"), None, Some("b")),
            Err(ClientAuthError::TwoMethods)
        );
    }

    #[test]
    fn body_credentials_and_none() {
        let got = credentials(&HeaderMap::new(), Some("app"), Some("s")).unwrap();
        assert_eq!(
            got,
            ClientCredentials::Body {
                id: "app".into(),
                secret: Some("s".into())
            }
        );
        assert_eq!(
            credentials(&HeaderMap::new(), None, None).unwrap(),
            ClientCredentials::None
        );
    }
}
