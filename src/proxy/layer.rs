//! Request hygiene as early as the gateway can: framing conflicts refused, hop-by-hop
//! headers dropped.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

use super::headers::{conflicting_framing, strip_hop_by_hop};
use crate::error::{Error, ErrorOr};

/// Refuses requests with both `Content-Length` and `Transfer-Encoding` (400), and removes
/// hop-by-hop headers and the headers named in `Connection`.
///
/// The proxy does both too, but the gateway also does them first on every route: before
/// the body parser (which would otherwise forward a body under the wrong length) and
/// before the guard (otherwise a client's `Connection: X-User-Id` would make the proxy
/// remove the identity header the guard has just set).
#[derive(Debug, Clone, Copy, Default)]
pub struct HopByHopLayer;

/// The service of [`HopByHopLayer`].
#[derive(Debug, Clone)]
pub struct HopByHop<S> {
    inner: S,
}

/// The response future of [`HopByHop`].
pub type HygieneFuture<F, R> = ErrorOr<F, R>;

impl<S> Layer<S> for HopByHopLayer {
    type Service = HopByHop<S>;

    fn layer(&self, inner: S) -> HopByHop<S> {
        HopByHop { inner }
    }
}

impl<S, B, ResBody> Service<Request<B>> for HopByHop<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = HygieneFuture<S::Future, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if conflicting_framing(req.headers()) {
            let error = Error::bad_request(
                "A request may not have both Content-Length and Transfer-Encoding",
            );
            return ErrorOr::error(error);
        }
        strip_hop_by_hop(req.headers_mut());
        ErrorOr::future(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceExt, service_fn};

    #[tokio::test]
    async fn conflicting_framing_is_refused_before_the_inner_service() {
        let inner = service_fn(|_req: Request<()>| async {
            panic!("the inner service must not be called");
            #[allow(unreachable_code)]
            Ok::<Response<Bytes>, std::convert::Infallible>(Response::new(Bytes::new()))
        });
        let req = Request::post("/")
            .header("content-length", "6")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        let res = HopByHopLayer.layer(inner).oneshot(req).await.unwrap();
        assert_eq!(res.status(), 400);
    }
}
