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
//! | [`OnUpgrade`] | `server` (HTTP/1.1 upgrade requests) | `proxy` (WebSocket tunnels) |
//! | `Arc<`[`Claims`]`>` | `guard` (after verification) | user services (Koa's `ctx.state.user`) |

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderValue;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub use crate::jwt::Claims;

/// The TCP peer of the connection the request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The client's connection, once a `101 Switching Protocols` answer to its upgrade
/// request has been written: the gateway's HTTP/1 server hands it over whole.
#[derive(Debug)]
#[non_exhaustive]
pub struct Upgraded {
    /// The connection.
    pub io: TcpStream,
    /// Bytes the client sent after its request head, already read: they come first.
    pub read_ahead: Bytes,
}

/// A request's claim on its connection after an upgrade: resolves to the connection
/// once the server has written the `101`, or fails if the answer was anything else.
///
/// The gateway's HTTP/1 server inserts one into each request that asks for an upgrade
/// (`Connection: upgrade` with an `Upgrade` header). Requests served by hyper (HTTP/2,
/// or the layers embedded in a hyper or axum server) carry hyper's own
/// `hyper::upgrade::OnUpgrade` instead.
///
/// Clones share the one connection: whichever awaits first gets it.
#[derive(Debug, Clone)]
pub struct OnUpgrade(Arc<Mutex<oneshot::Receiver<Upgraded>>>);

impl OnUpgrade {
    /// A claim and the sender the server completes it with.
    pub fn new() -> (oneshot::Sender<Upgraded>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(Arc::new(Mutex::new(rx))))
    }
}

/// Why an upgrade did not happen: the answer was not a `101`, or the connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeFailed;

impl std::fmt::Display for UpgradeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the connection was not upgraded")
    }
}

impl std::error::Error for UpgradeFailed {}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeFailed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Ok(mut rx) = self.0.lock() else {
            return Poll::Ready(Err(UpgradeFailed));
        };
        Pin::new(&mut *rx).poll(cx).map_err(|_| UpgradeFailed)
    }
}

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
