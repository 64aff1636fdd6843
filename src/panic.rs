//! Turns a panic inside the stack into a 500 instead of a dropped connection.
//!
//! tower-http's `CatchPanicLayer` does this too but boxes every response body; this
//! one keeps the inner body type, so it costs nothing until something panics.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use portcullis::Body;
//! use portcullis::panic::CatchPanicLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new().layer(CatchPanicLayer).service(service_fn(|req: Request<Body>| async move {
//!     if req.uri().path() == "/boom" {
//!         panic!("a bug");
//!     }
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
//! }));
//! let res = svc.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::Error;

/// Answers 500 when the inner service panics.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

/// The service of [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

pin_project! {
    /// The response future of [`CatchPanic`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Running { #[pin] future: CatchUnwind<AssertUnwindSafe<F>> },
        Panicked,
    }
}

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;

    fn layer(&self, inner: S) -> CatchPanic<S> {
        CatchPanic { inner }
    }
}

impl<S, B, ResBody> Service<Request<B>> for CatchPanic<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let state = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => State::Running {
                future: AssertUnwindSafe(future).catch_unwind(),
            },
            Err(panic) => {
                log_panic(&*panic);
                State::Panicked
            }
        };
        ResponseFuture { state }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running { future } => match ready!(future.poll(cx)) {
                Ok(result) => Poll::Ready(result),
                Err(panic) => {
                    log_panic(&*panic);
                    Poll::Ready(Ok(Error::Internal.into_response()))
                }
            },
            StateProj::Panicked => Poll::Ready(Ok(Error::Internal.into_response())),
        }
    }
}

fn log_panic(panic: &(dyn std::any::Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceExt, service_fn};

    #[tokio::test]
    async fn a_panic_becomes_a_500() {
        let svc = CatchPanicLayer.layer(service_fn(|_req: Request<()>| async {
            if true {
                panic!("boom");
            }
            Ok::<Response<Bytes>, std::convert::Infallible>(Response::new(Bytes::new()))
        }));
        let res = svc.oneshot(Request::new(())).await.unwrap();
        assert_eq!(res.status(), 500);
    }
}
