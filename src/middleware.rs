//! Koa-style middleware from an async function: `async (ctx, next) => { ...; await next() }`.
//!
//! [`from_fn`] turns `async fn(Request<Body>, Next) -> Response<Body>` into a tower
//! layer. Code before `next.run(req).await` is Koa's "before", code after it the
//! "after", and returning without calling `next` is `ctx.throw`. Give it to
//! [`GatewayBuilder::layer`](crate::gateway::GatewayBuilder::layer) or to any
//! `ServiceBuilder`.
//!
//! Each call boxes a future, so this is for custom logic, not the hot path of the
//! built-in layers (which are hand-written services).
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use portcullis::Body;
//! use portcullis::middleware::{Next, from_fn};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! async fn timing(req: Request<Body>, next: Next) -> Response<Body> {
//!     let start = std::time::Instant::now();
//!     let mut res = next.run(req).await;
//!     let ms = start.elapsed().as_millis().to_string();
//!     res.headers_mut().insert("x-response-time-ms", ms.parse().unwrap());
//!     res
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new().layer(from_fn(timing)).service(service_fn(|_req: Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::from("hi")))
//! }));
//! let res = svc.oneshot(Request::new(Body::empty())).await.unwrap();
//! assert!(res.headers().contains_key("x-response-time-ms"));
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::body_type::Body;
use crate::router::HttpService;

/// A type-erased service of the stack: what [`Next`] calls.
pub type BoxService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// The rest of the stack, Koa's `next`.
pub struct Next {
    inner: BoxService,
}

impl Next {
    /// Runs the rest of the stack and returns its response.
    pub async fn run(self, req: Request<Body>) -> Response<Body> {
        match self.inner.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Makes a layer from an async function of the request and [`Next`].
pub fn from_fn<F, Fut>(f: F) -> FromFnLayer<F>
where
    F: Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    FromFnLayer { f: Arc::new(f) }
}

/// The layer made by [`from_fn`].
pub struct FromFnLayer<F> {
    f: Arc<F>,
}

impl<F> Clone for FromFnLayer<F> {
    fn clone(&self) -> Self {
        Self { f: self.f.clone() }
    }
}

/// The service of [`FromFnLayer`].
pub struct FromFn<F> {
    f: Arc<F>,
    inner: BoxService,
}

impl<F> Clone for FromFn<F> {
    fn clone(&self) -> Self {
        Self {
            f: self.f.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<F, S> Layer<S> for FromFnLayer<F>
where
    S: HttpService,
{
    type Service = FromFn<F>;

    fn layer(&self, inner: S) -> FromFn<F> {
        FromFn {
            f: self.f.clone(),
            inner: BoxCloneSyncService::new(inner),
        }
    }
}

impl<F, Fut> Service<Request<Body>> for FromFn<F>
where
    F: Fn(Request<Body>, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let next = Next {
            inner: self.inner.clone(),
        };
        let future = (self.f)(req, next);
        Box::pin(async move { Ok(future.await) })
    }
}
