//! Prefix routing, Koa-router style, with `allowedMethods()` answers.
//!
//! Two kinds of entries:
//! - **routes** match a path prefix on segment boundaries (`/api` matches `/api` and
//!   `/api/x`, never `/apix`); the longest prefix wins. Every method goes through, since
//!   a proxied upstream decides what it accepts.
//! - **endpoints** match one exact path and a set of methods; another method is answered
//!   405 with `Allow`, and `OPTIONS` with `Allow` (Koa's `allowedMethods()`).
//!
//! Before matching, the path is normalised (RFC 3986 dot-segment removal, see `router/path.rs`) and the request's URI rewritten
//! to it, so the routing decision and the upstream see the same path. The router knows
//! paths and methods only; what a route does is the service it was given.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Method, Request, Response, StatusCode};
//! use portcullis::{Body, router::Router};
//! use tower::{ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let ok = service_fn(|_req: Request<Body>| async { Ok::<_, Infallible>(Response::new(Body::from("hi"))) });
//! let router = Router::builder()
//!     .route("/api", ok)
//!     .endpoint("/healthz", &[Method::GET], ok)
//!     .build();
//!
//! let res = router.clone().oneshot(Request::post("/api/x").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! let res = router.clone().oneshot(Request::post("/healthz").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
//! let res = router.oneshot(Request::get("/apix").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::NOT_FOUND);
//! # }
//! ```

mod path;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, Uri};
use tower::Service;

use crate::body_type::Body;
use crate::context::RouteInfo;
use crate::error::{self, Error};
use crate::ready;

/// Routes requests to services by path prefix or exact endpoint path.
///
/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

/// Collects routes and endpoints; [`RouterBuilder::build`] makes the [`Router`].
#[derive(Default)]
pub struct RouterBuilder {
    routes: Vec<Entry>,
    endpoints: Vec<Endpoint>,
    untagged: bool,
}

struct Inner {
    /// Sorted by prefix length, longest first.
    routes: Vec<Entry>,
    endpoints: Vec<Endpoint>,
    /// Whether routed responses get a [`RouteInfo`] extension.
    tagged: bool,
}

struct Entry {
    prefix: Box<str>,
    info: RouteInfo,
    service: RouteService,
}

struct Endpoint {
    path: Box<str>,
    methods: Vec<Method>,
    allow: HeaderValue,
    info: RouteInfo,
    service: RouteService,
}

/// A service the router (and the gateway builder, and middleware) can hold: takes the
/// gateway's requests, never fails (errors are responses), and is cheap to clone and
/// share across threads. Implemented for every service that fits.
pub trait HttpService:
    Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> HttpService for S where
    S: Service<
            Request<Body>,
            Response = Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// A type-erased service, called through `&self` by cloning the inner service.
#[derive(Clone)]
struct RouteService(Arc<dyn ErasedService>);

trait ErasedService: Send + Sync {
    fn call(&self, req: Request<Body>) -> BoxFuture<'static, Response<Body>>;
}

struct CloneOnCall<S>(S);

/// The router's response future.
pub struct ResponseFuture {
    state: State,
}

enum State {
    Ready(Option<Response<Body>>),
    Routed {
        future: BoxFuture<'static, Response<Body>>,
        info: Option<RouteInfo>,
    },
}

// === impl RouterBuilder ===

impl RouterBuilder {
    /// Routes every request under `prefix` (on segment boundaries) to `service`.
    pub fn route<S>(self, prefix: &str, service: S) -> Self
    where
        S: HttpService,
    {
        let info = RouteInfo {
            name: trim_prefix(prefix).into(),
            upstream: None,
        };
        self.route_with_info(prefix, info, service)
    }

    /// Like [`RouterBuilder::route`], with the names the access log shows for it.
    pub fn route_with_info<S>(mut self, prefix: &str, info: RouteInfo, service: S) -> Self
    where
        S: HttpService,
    {
        self.routes.push(Entry {
            prefix: trim_prefix(prefix).into(),
            info,
            service: RouteService::new(service),
        });
        self
    }

    /// Answers `path` exactly, for `methods` only (`HEAD` comes with `GET`).
    pub fn endpoint<S>(mut self, path: &str, methods: &[Method], service: S) -> Self
    where
        S: HttpService,
    {
        let mut methods = methods.to_vec();
        if methods.contains(&Method::GET) && !methods.contains(&Method::HEAD) {
            methods.push(Method::HEAD);
        }
        let mut allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        allow.push("OPTIONS");
        let allow = HeaderValue::from_str(&allow.join(", "))
            .unwrap_or_else(|_| HeaderValue::from_static("OPTIONS"));
        self.endpoints.push(Endpoint {
            path: path.into(),
            methods,
            allow,
            info: RouteInfo {
                name: path.into(),
                upstream: None,
            },
            service: RouteService::new(service),
        });
        self
    }

    /// Whether routed responses carry a [`RouteInfo`] extension (they do by default).
    /// Inserting it allocates; the gateway turns it off when nothing reads it.
    pub fn route_info(mut self, enabled: bool) -> Self {
        self.untagged = !enabled;
        self
    }

    /// Finishes the router. Among routes with the same prefix, the last added wins.
    pub fn build(mut self) -> Router {
        self.routes.reverse();
        // Stable sort keeps the reversed insertion order among equal prefixes.
        self.routes
            .sort_by_key(|e| std::cmp::Reverse(e.prefix.len()));
        Router {
            inner: Arc::new(Inner {
                routes: self.routes,
                endpoints: self.endpoints,
                tagged: !self.untagged,
            }),
        }
    }
}

/// `/api/` and `/api` are the same prefix; `/` stays `/`.
fn trim_prefix(prefix: &str) -> &str {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() { "/" } else { trimmed }
}

fn matches_prefix(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

// === impl Router ===

impl Router {
    /// Starts an empty router.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// The configured route prefixes, longest first, with their route info.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &RouteInfo)> {
        self.inner.routes.iter().map(|e| (&*e.prefix, &e.info))
    }

    fn dispatch(&self, mut req: Request<Body>) -> ResponseFuture {
        let normalized = match path::normalize(req.uri().path()) {
            Ok(std::borrow::Cow::Borrowed(_)) => None,
            Ok(std::borrow::Cow::Owned(p)) => Some(p),
            Err(e) => return ResponseFuture::error(Error::bad_request(e.description())),
        };
        if let Some(path) = normalized {
            if rewrite_path(&mut req, &path).is_err() {
                return ResponseFuture::error(Error::bad_request("The path is malformed"));
            }
        }
        let path = req.uri().path();

        if let Some(endpoint) = self.inner.endpoints.iter().find(|e| *e.path == *path) {
            let method = req.method();
            if endpoint.methods.contains(method) {
                return self.routed(&endpoint.service, &endpoint.info, req);
            }
            let response = if method == Method::OPTIONS {
                error::allow_response(endpoint.allow.clone())
            } else {
                Error::MethodNotAllowed {
                    allow: endpoint.allow.clone(),
                }
                .into_response()
            };
            return ResponseFuture::ready(response);
        }

        match self
            .inner
            .routes
            .iter()
            .find(|e| matches_prefix(path, &e.prefix))
        {
            Some(entry) => self.routed(&entry.service, &entry.info, req),
            None => ResponseFuture::error(Error::NotFound),
        }
    }

    fn routed(
        &self,
        service: &RouteService,
        info: &RouteInfo,
        req: Request<Body>,
    ) -> ResponseFuture {
        let info = self.inner.tagged.then(|| info.clone());
        ResponseFuture {
            state: State::Routed {
                future: service.0.call(req),
                info,
            },
        }
    }
}

fn rewrite_path(req: &mut Request<Body>, path: &str) -> Result<(), http::Error> {
    let path_and_query = match req.uri().query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}"))?,
        None => PathAndQuery::try_from(path)?,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    *req.uri_mut() = Uri::from_parts(parts)?;
    Ok(())
}

impl Service<Request<Body>> for Router {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> ResponseFuture {
        self.dispatch(req)
    }
}

// === impl RouteService ===

impl RouteService {
    fn new<S>(service: S) -> Self
    where
        S: HttpService,
    {
        Self(Arc::new(CloneOnCall(service)))
    }
}

impl<S> ErasedService for CloneOnCall<S>
where
    S: HttpService,
{
    fn call(&self, req: Request<Body>) -> BoxFuture<'static, Response<Body>> {
        let future = ready::call(self.0.clone(), req);
        Box::pin(async move {
            match future.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

// === impl ResponseFuture ===

impl ResponseFuture {
    fn ready(response: Response<Body>) -> Self {
        Self {
            state: State::Ready(Some(response)),
        }
    }

    fn error(error: Error) -> Self {
        Self::ready(error.into_response())
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Ready(Ok(Error::Internal.into_response())),
            },
            State::Routed { future, info } => {
                let mut response = std::task::ready!(future.as_mut().poll(cx));
                if let Some(info) = info.take() {
                    response.extensions_mut().insert(info);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use http_body_util::BodyExt;
    use tower::{ServiceExt, service_fn};

    fn echo_path(
        tag: &'static str,
    ) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static {
        service_fn(move |req: Request<Body>| async move {
            Ok(Response::new(Body::from(format!("{tag} {}", req.uri()))))
        })
    }

    async fn get(
        router: &Router,
        method: Method,
        uri: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn router() -> Router {
        Router::builder()
            .route("/", echo_path("root"))
            .route("/api", echo_path("api"))
            .route("/api/admin/", echo_path("admin"))
            .endpoint("/healthz", &[Method::GET], echo_path("health"))
            .build()
    }

    #[tokio::test]
    async fn prefixes_match_on_segment_boundaries_longest_first() {
        let r = router();
        assert_eq!(get(&r, Method::GET, "/api").await.2, "api /api");
        assert_eq!(get(&r, Method::GET, "/api/x?q=1").await.2, "api /api/x?q=1");
        assert_eq!(get(&r, Method::GET, "/apix").await.2, "root /apix");
        assert_eq!(
            get(&r, Method::GET, "/api/admin/users").await.2,
            "admin /api/admin/users"
        );
        assert_eq!(
            get(&r, Method::GET, "/api/administrator").await.2,
            "api /api/administrator"
        );
    }

    /// Not ready on its first `poll_ready` (it wakes the caller and is ready after).
    #[derive(Clone)]
    struct Reluctant {
        polls: Arc<std::sync::atomic::AtomicUsize>,
        calls_before_ready: Arc<std::sync::atomic::AtomicUsize>,
        ready: bool,
    }

    impl Service<Request<Body>> for Reluctant {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            use std::sync::atomic::Ordering::SeqCst;
            if self.polls.fetch_add(1, SeqCst) == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = true;
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _req: Request<Body>) -> Self::Future {
            if !self.ready {
                self.calls_before_ready
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            std::future::ready(Ok(Response::new(Body::from("ready"))))
        }
    }

    #[tokio::test]
    async fn a_service_that_is_not_ready_is_waited_for() {
        let service = Reluctant {
            polls: Arc::default(),
            calls_before_ready: Arc::default(),
            ready: false,
        };
        let r = Router::builder().route("/", service.clone()).build();
        assert_eq!(get(&r, Method::GET, "/x").await.2, "ready");
        use std::sync::atomic::Ordering::SeqCst;
        assert_eq!(service.polls.load(SeqCst), 2);
        assert_eq!(service.calls_before_ready.load(SeqCst), 0);
    }

    #[tokio::test]
    async fn no_match_is_a_json_404() {
        let r = Router::builder().route("/api", echo_path("api")).build();
        let (status, headers, body) = get(&r, Method::GET, "/apix").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers["content-type"], "application/json");
        assert!(body.contains("not_found"));
    }

    #[tokio::test]
    async fn endpoints_answer_405_and_options_with_allow() {
        let r = router();
        let (status, headers, _) = get(&r, Method::POST, "/healthz").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers["allow"], "GET, HEAD, OPTIONS");
        let (status, headers, _) = get(&r, Method::OPTIONS, "/healthz").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers["allow"], "GET, HEAD, OPTIONS");
        assert_eq!(get(&r, Method::HEAD, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn path_tricks_are_routed_on_the_normalised_path() {
        let r = Router::builder()
            .route("/public", echo_path("public"))
            .route("/private", echo_path("private"))
            .build();
        assert_eq!(
            get(&r, Method::GET, "/public/../private/x").await.2,
            "private /private/x"
        );
        assert_eq!(
            get(&r, Method::GET, "/public/%2e%2e/private/x?a=%2e")
                .await
                .2,
            "private /private/x?a=%2e"
        );
        assert_eq!(
            get(&r, Method::GET, "//private/x").await.2,
            "private /private/x"
        );
        let (status, _, body) = get(&r, Method::GET, "/public/..%2fprivate/x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("invalid_request"));
    }

    #[tokio::test]
    async fn the_route_is_named_in_the_response_extensions() {
        let r = router();
        let req = Request::get("/api/x").body(Body::empty()).unwrap();
        let res = r.oneshot(req).await.unwrap();
        assert_eq!(&*res.extensions().get::<RouteInfo>().unwrap().name, "/api");
    }

    #[tokio::test]
    async fn route_info_can_be_turned_off() {
        let r = Router::builder()
            .route("/api", echo_path("api"))
            .route_info(false)
            .build();
        let req = Request::get("/api/x").body(Body::empty()).unwrap();
        let res = r.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.extensions().get::<RouteInfo>().is_none());
    }
}
