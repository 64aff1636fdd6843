//! The reverse proxy: one route's requests forwarded to its upstream, streamed both ways.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Version};
use tower::Service;

use super::client::{Pool, SendError, UpstreamClient};
use super::h1::Target;
use super::headers::{Forwarded, conflicting_framing, strip_hop_by_hop};
use super::upgrade::{ClientUpgrade, spawn_tunnel};
use super::upstream::Upstream;
use crate::body_type::{Body, BoxError};
use crate::clock;
use crate::context::ClientAddr;
use crate::error::Error;

/// Forwards requests to one upstream.
///
/// Request and response bodies stream through without being buffered; hop-by-hop
/// headers are dropped both ways; `X-Forwarded-*` are set; `Host` becomes the
/// upstream's unless [`Proxy::with_preserve_host`] is on. A refused, reset or garbled
/// upstream is a 502, a slow one (no response head within the timeout) a 504.
///
/// Cheap to clone: one `Arc`.
#[derive(Clone, Debug)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    pool: Arc<Pool>,
    upstream: Upstream,
    route: Arc<str>,
    strip_prefix: Option<Box<str>>,
    preserve_host: bool,
    timeout: Duration,
}

/// The response future of [`Proxy`].
pub struct ResponseFuture {
    state: State,
}

/// The upstream exchange, an `async` block (its type has no name). It owns the route's
/// `Inner` and lends it to the pool's exchange: one reference count per request for
/// the pool, the upstream's `Host` and base path and the route's name together.
type Exchange = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

enum State {
    Failed { error: Option<Error> },
    Waiting { response: Exchange },
}

// === impl Proxy ===

impl Proxy {
    /// A proxy to `upstream` through `client`'s pool, with a 30 s timeout.
    pub fn new(client: UpstreamClient, upstream: Upstream) -> Self {
        let route = upstream.label().clone();
        Self {
            inner: Arc::new(Inner {
                pool: client.pool(&upstream),
                upstream,
                route,
                strip_prefix: None,
                preserve_host: false,
                timeout: Duration::from_secs(30),
            }),
        }
    }

    /// The route name used in error bodies and logs.
    pub fn with_route_name(mut self, name: impl Into<Arc<str>>) -> Self {
        Arc::make_mut(&mut self.inner).route = name.into();
        self
    }

    /// Removes `prefix` from the request path before joining it to the upstream's base.
    pub fn with_strip_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        Arc::make_mut(&mut self.inner).strip_prefix = (!prefix.is_empty()).then(|| prefix.into());
        self
    }

    /// Sends the client's `Host` upstream instead of the upstream's own.
    pub fn with_preserve_host(mut self, preserve: bool) -> Self {
        Arc::make_mut(&mut self.inner).preserve_host = preserve;
        self
    }

    /// How long to wait for the upstream's response head before answering 504.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.inner).timeout = timeout;
        self
    }

    fn forward(&self, req: Request<Body>) -> ResponseFuture {
        let inner = &*self.inner;
        let (mut parts, body) = req.into_parts();
        if conflicting_framing(&parts.headers) {
            return ResponseFuture::failed(Error::bad_request(
                "A request may not have both Content-Length and Transfer-Encoding",
            ));
        }

        let websocket = strip_hop_by_hop(&mut parts.headers);
        let upgrade =
            websocket && parts.version == Version::HTTP_11 && parts.method == http::Method::GET;
        // Without a `Host` header (HTTP/2, an HTTP/1.0 absolute-form target) the
        // authority of the target is the client's host.
        let authority = match parts.uri.authority() {
            Some(a) if !parts.headers.contains_key(header::HOST) => {
                HeaderValue::from_str(a.as_str()).ok()
            }
            _ => None,
        };
        let peer = parts.extensions.get::<ClientAddr>().map(|c| c.0.ip());
        // The upstream's path: its base, then the client's path less the route prefix.
        let path = parts.uri.path();
        let skip = match &inner.strip_prefix {
            Some(prefix) if path.starts_with(&**prefix) => prefix.len(),
            _ => 0,
        };
        let client_upgrade = if upgrade {
            ClientUpgrade::take(&mut parts.extensions)
        } else {
            if websocket {
                // A WebSocket upgrade asked for over HTTP/1.0 or with another method.
                parts.headers.remove(header::UPGRADE);
                parts.headers.remove(header::CONNECTION);
            }
            None
        };
        parts.extensions = http::Extensions::new();

        let deadline = tokio::time::Instant::from_std(clock::now()) + inner.timeout;
        let proxy = Arc::clone(&self.inner);
        let response: Exchange = Box::pin(async move {
            let inner = &*proxy;
            let target = Target {
                base: inner.upstream.base_path(),
                skip,
            };
            let forwarded = Forwarded {
                upstream_host: inner.upstream.host(),
                preserve_host: inner.preserve_host,
                authority,
                peer,
            };
            let upgrade = client_upgrade.is_some();
            let sent = inner
                .pool
                .send(parts, body, &target, &forwarded, deadline, upgrade);
            let (response, upgraded) = match sent.await {
                Ok(answer) => answer,
                Err(e) => return upstream_error(&inner.route, &e).into_response(),
            };
            // The response head comes without hop-by-hop headers (`h1`), except a 101's.
            if let (Some(client), Some(upstream)) = (client_upgrade, upgraded) {
                // The connection now belongs to the tunnel, and so does its slot.
                spawn_tunnel(client, upstream, inner.route.clone());
            }
            response
        });
        ResponseFuture {
            state: State::Waiting { response },
        }
    }
}

impl<B> Service<Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        self.forward(req.map(Body::new))
    }
}

// === impl ResponseFuture ===

impl ResponseFuture {
    fn failed(error: Error) -> Self {
        Self {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Failed { error } => {
                let error = error.take().unwrap_or(Error::Internal);
                Poll::Ready(Ok(error.into_response()))
            }
            State::Waiting { response } => response.as_mut().poll(cx).map(Ok),
        }
    }
}

/// A failure before the upstream's response head: no head by the deadline is a 504, the
/// client's own broken body a 400 (it is not the upstream's fault), anything else a 502.
fn upstream_error(route: &Arc<str>, error: &SendError) -> Error {
    if matches!(error, SendError::Timeout) {
        tracing::warn!(route = %route, "upstream timed out");
        return Error::UpstreamTimeout {
            route: route.clone(),
        };
    }
    if error.is_client_body() {
        tracing::info!(route = %route, error = %error, "client request body failed while proxying");
        return Error::bad_request("The request body is malformed or was cut short");
    }
    tracing::warn!(route = %route, error = %error, "upstream request failed");
    Error::UpstreamUnavailable {
        route: route.clone(),
    }
}
