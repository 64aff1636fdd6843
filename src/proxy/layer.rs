//! A small layer that drops hop-by-hop headers as early as the gateway can.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use super::headers::strip_hop_by_hop;

/// Removes hop-by-hop headers and the headers named in `Connection` from requests.
///
/// The proxy does this too, but the gateway also does it before the guard: otherwise a
/// client's `Connection: X-User-Id` would make the proxy remove the identity header the
/// guard has just set.
#[derive(Debug, Clone, Copy, Default)]
pub struct HopByHopLayer;

/// The service of [`HopByHopLayer`].
#[derive(Debug, Clone)]
pub struct HopByHop<S> {
    inner: S,
}

impl<S> Layer<S> for HopByHopLayer {
    type Service = HopByHop<S>;

    fn layer(&self, inner: S) -> HopByHop<S> {
        HopByHop { inner }
    }
}

impl<S, B> Service<Request<B>> for HopByHop<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        strip_hop_by_hop(req.headers_mut());
        self.inner.call(req)
    }
}
