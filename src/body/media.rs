//! What a `Content-Type` asks the parser to do.

use http::HeaderValue;

/// The body kinds the parser understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// `application/json` and `application/*+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `text/*`.
    Text,
}

/// The kind of a `Content-Type`, and whether its charset is one we read (UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Media {
    pub(super) kind: Option<BodyKind>,
    pub(super) utf8: bool,
}

pub(super) fn classify(content_type: Option<&HeaderValue>) -> Media {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return Media {
            kind: None,
            utf8: true,
        };
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let utf8 = parts
        .filter_map(|p| p.split_once('='))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("charset"))
        .all(|(_, v)| {
            let v = v.trim().trim_matches('"');
            v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8")
        });
    let kind = if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Some(BodyKind::Json)
    } else if essence == "application/x-www-form-urlencoded" {
        Some(BodyKind::Form)
    } else if essence.starts_with("text/") {
        Some(BodyKind::Text)
    } else {
        None
    };
    Media { kind, utf8 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ct: &str) -> Option<BodyKind> {
        classify(Some(&HeaderValue::from_str(ct).unwrap())).kind
    }

    #[test]
    fn types_are_recognised_case_insensitively() {
        assert_eq!(kind("application/json"), Some(BodyKind::Json));
        assert_eq!(
            kind("Application/JSON; charset=UTF-8"),
            Some(BodyKind::Json)
        );
        assert_eq!(kind("application/merge-patch+json"), Some(BodyKind::Json));
        assert_eq!(
            kind("application/x-www-form-urlencoded"),
            Some(BodyKind::Form)
        );
        assert_eq!(kind("text/plain"), Some(BodyKind::Text));
        assert_eq!(kind("multipart/form-data; boundary=x"), None);
        assert_eq!(kind("application/jsonx"), None);
        assert_eq!(classify(None).kind, None);
    }

    #[test]
    fn only_utf8_charsets_are_read() {
        let media = |ct: &str| classify(Some(&HeaderValue::from_str(ct).unwrap()));
        assert!(media("application/json; charset=\"utf-8\"").utf8);
        assert!(media("text/plain").utf8);
        assert!(!media("application/json; charset=utf-16").utf8);
        assert!(!media("text/plain; charset=latin1").utf8);
    }
}
