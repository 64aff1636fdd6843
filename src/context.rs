//! The typed facts of one request: Koa's `ctx.state`, as request extensions.
//!
//! Each fact has one type and exactly one writer; every other layer only reads it.
//! Layers meet here instead of importing each other.
//!
//! | type          | written by                  | read by                         |
//! |---------------|-----------------------------|---------------------------------|
//! | [`ClientAddr`] | `server` (per connection)   | `proxy` (X-Forwarded-For), rate limits |
//! | [`RequestId`] | `request_id` layer          | `proxy` (sent upstream), access log |
//! | [`RouteInfo`] | `router` (response extensions) | access log                    |
//! | [`ParsedBody`] | `body` (the body parser)    | `token`, user services          |
//! | `Arc<`[`Claims`]`>` | `guard` (after verification) | user services (Koa's `ctx.state.user`) |

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;

pub use crate::jwt::Claims;

/// The TCP peer of the connection the request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The request's id: the client's `X-Request-Id` when it is well-formed, else a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Wraps a header value already checked to be a good id.
    pub fn new(value: HeaderValue) -> Self {
        Self(value)
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as text (ids are visible ASCII by construction).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }
}

/// Which route answered, for the access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The route's configured path, or the endpoint's path.
    pub name: Arc<str>,
    /// The upstream it proxies to, if it is a proxy route.
    pub upstream: Option<Arc<str>>,
}

/// A request body parsed by the body parser: Koa's `ctx.request.body`.
///
/// The request still carries the original bytes; this is a parsed view of them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParsedBody {
    /// An `application/json` (or `+json`) body.
    Json(serde_json::Value),
    /// An `application/x-www-form-urlencoded` body, as ordered name/value pairs
    /// (repeated names are kept, so a consumer can refuse them).
    Form(Vec<(String, String)>),
    /// A `text/*` body.
    Text(String),
}

impl ParsedBody {
    /// The value of form field `name` when it appears exactly once.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        let Self::Form(pairs) = self else { return None };
        let mut values = pairs.iter().filter(|(n, _)| n == name);
        match (values.next(), values.next()) {
            (Some((_, v)), None) => Some(v),
            _ => None,
        }
    }
}
