//! Claims to upstream headers, after every client copy of those headers is gone.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::claim;
use crate::context::Claims;

/// Which claims become which request headers (`forward_claims` in config.toml).
#[derive(Debug, Clone, Default)]
pub struct ClaimHeaders {
    pairs: Vec<(String, HeaderName)>,
    /// Names stripped from client requests, set or not: every identity header the
    /// gateway sets on any route, so an upstream shared by several routes can trust
    /// them on all of them.
    reserved: Vec<HeaderName>,
}

/// A claim whose value cannot be a header value (control characters, non-ASCII, a
/// comma inside an array element, an object): the request is refused, never forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unforwardable;

impl ClaimHeaders {
    /// No claim is forwarded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forwards claim `claim` as header `header`.
    pub fn forward(mut self, claim: impl Into<String>, header: HeaderName) -> Self {
        self.pairs.push((claim.into(), header));
        self
    }

    /// Also removes client copies of `header` (in every spelling), without setting it.
    pub fn reserve(mut self, header: HeaderName) -> Self {
        if !self.reserved.contains(&header) {
            self.reserved.push(header);
        }
        self
    }

    /// The header names set from claims.
    pub fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.pairs.iter().map(|(_, h)| h)
    }

    fn stripped(&self) -> impl Iterator<Item = &HeaderName> {
        self.header_names().chain(&self.reserved)
    }

    /// Removes every client-sent header whose name is one of ours, in any case (header
    /// names are case-insensitive already) and with `_` in place of `-` (CGI, WSGI and
    /// PHP upstreams read `X_User_Id` as `X-User-Id`).
    pub(super) fn strip(&self, headers: &mut HeaderMap) {
        if self.pairs.is_empty() && self.reserved.is_empty() {
            return;
        }
        for name in self.stripped() {
            headers.remove(name);
        }
        let underscored: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().contains('_'))
            .filter(|k| {
                let dashed = k.as_str().replace('_', "-");
                self.stripped().any(|n| n.as_str() == dashed)
            })
            .cloned()
            .collect();
        for name in underscored {
            headers.remove(name);
        }
    }

    /// Sets the headers from `claims`. A claim that is absent or `null` sets nothing.
    pub(super) fn apply(
        &self,
        claims: &Claims,
        headers: &mut HeaderMap,
    ) -> Result<(), Unforwardable> {
        for (name, header) in &self.pairs {
            let Some(value) = claim(claims, name) else {
                continue;
            };
            if let Some(value) = header_value(&value)? {
                headers.insert(header.clone(), value);
            }
        }
        Ok(())
    }
}

/// Strings as they are, numbers and booleans as JSON, arrays comma-joined.
fn header_value(value: &Value) -> Result<Option<HeaderValue>, Unforwardable> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                let part = match item {
                    Value::String(s) if !s.contains([',', ';', '"']) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(Unforwardable),
                };
                parts.push(part);
            }
            parts.join(",")
        }
        Value::Object(_) => return Err(Unforwardable),
    };
    // Visible ASCII and spaces only: no CR, LF, NUL, other controls or obs-text.
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Unforwardable);
    }
    HeaderValue::from_str(&text)
        .map(Some)
        .map_err(|_| Unforwardable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_written_canonically() {
        let hv = |v: Value| {
            header_value(&v)
                .unwrap()
                .map(|h| h.to_str().unwrap().to_owned())
        };
        assert_eq!(hv(json!("alice")), Some("alice".into()));
        assert_eq!(hv(json!(101)), Some("101".into()));
        assert_eq!(hv(json!(true)), Some("true".into()));
        assert_eq!(hv(json!(["read", "write"])), Some("read,write".into()));
        assert_eq!(hv(Value::Null), None);
    }

    #[test]
    fn values_that_would_inject_or_confuse_are_refused() {
        for bad in [
            json!("alice\r\nX-Admin: true"),
            json!("alice\u{0}"),
            json!("Zoë"),
            json!(["user, admin"]),
            json!({"a": 1}),
            json!([{"a": 1}]),
        ] {
            assert_eq!(header_value(&bad), Err(Unforwardable), "{bad}");
        }
    }

    #[test]
    fn reserved_names_are_stripped_but_never_set() {
        let ch = ClaimHeaders::new().reserve(HeaderName::from_static("x-user-id"));
        let mut h = HeaderMap::new();
        h.append("x-user-id", HeaderValue::from_static("admin"));
        h.append(
            HeaderName::from_static("x_user_id"),
            HeaderValue::from_static("admin"),
        );
        ch.strip(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn client_copies_are_stripped_in_every_spelling() {
        let ch = ClaimHeaders::new().forward("sub", HeaderName::from_static("x-user-id"));
        let mut h = HeaderMap::new();
        h.append("x-user-id", HeaderValue::from_static("admin"));
        h.append("X-USER-ID", HeaderValue::from_static("admin2"));
        h.append(
            HeaderName::from_static("x_user_id"),
            HeaderValue::from_static("admin3"),
        );
        h.append(
            HeaderName::from_static("x-user_id"),
            HeaderValue::from_static("admin4"),
        );
        h.append("x-other", HeaderValue::from_static("kept"));
        ch.strip(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-other"));
    }
}
