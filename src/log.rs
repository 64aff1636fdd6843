//! Logging: the subscriber set-up (pretty or JSON) and the access log.
//!
//! The access log writes one event per request, when the response body has been sent
//! (or dropped), with what an operator needs and nothing a client could use against
//! another: method, path with secret-looking query values redacted, status, latency,
//! bytes, route, upstream and request id. No header is ever logged, so `Authorization`
//! and cookies cannot reach a log line.
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use portcullis::Body;
//! use portcullis::log::AccessLogLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new().layer(AccessLogLayer::new()).service(service_fn(|_req: Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(Body::from("ok")))
//! }));
//! // One event is logged (target `portcullis::access`) once the body has been sent.
//! let res = svc.oneshot(Request::get("/x?token=secret").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), StatusCode::OK);
//! # }
//! ```

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Buf;
use http::{Method, Request, Response, Uri};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing_subscriber::EnvFilter;

use crate::clock;
use crate::context::{RequestId, RouteInfo};

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object a line, for a log pipeline.
    Json,
}

/// The target of access-log events, to filter them (`RUST_LOG=portcullis::access=off`).
pub const ACCESS_TARGET: &str = "portcullis::access";

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
pub fn init(
    level: &str,
    format: LogFormat,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(level)?,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
}

/// Logs one access event per request.
///
/// When disabled (or when the `portcullis::access` target is filtered out) it costs a
/// flag test per request and changes nothing else.
#[derive(Debug, Clone, Copy)]
pub struct AccessLogLayer {
    enabled: bool,
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    enabled: bool,
}

struct Record {
    method: Method,
    uri: Uri,
    request_id: Option<RequestId>,
    start: Instant,
}

pin_project! {
    /// The response future of [`AccessLog`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // Boxed, here and in the body: requests and answers are moved from layer to
        // layer, and a log line's fields inline made each move of the answer 200 bytes
        // longer even with the access log off.
        done: Option<Box<Done>>,
    }
}

pin_project! {
    /// A response body that counts its bytes and logs the request when it ends.
    pub struct AccessLogBody<B> {
        #[pin]
        inner: B,
        done: Option<Box<Done>>,
    }

    impl<B> PinnedDrop for AccessLogBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(done) = this.project().done.take() {
                done.log();
            }
        }
    }
}

struct Done {
    record: Record,
    status: u16,
    route: Option<RouteInfo>,
    bytes: u64,
}

impl AccessLogLayer {
    /// An enabled access log.
    pub fn new() -> Self {
        Self { enabled: true }
    }

    /// Turns the access log on or off.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

impl Default for AccessLogLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            enabled: self.enabled,
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<AccessLogBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let enabled =
            self.enabled && tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO);
        let done = enabled.then(|| {
            Box::new(Done {
                record: Record {
                    method: req.method().clone(),
                    uri: req.uri().clone(),
                    request_id: req.extensions().get::<RequestId>().cloned(),
                    start: clock::now(),
                },
                status: 0,
                route: None,
                bytes: 0,
            })
        });
        ResponseFuture {
            inner: self.inner.call(req),
            done,
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<AccessLogBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let done = this.done.take().map(|mut done| {
            done.status = response.status().as_u16();
            done.route = response.extensions().get::<RouteInfo>().cloned();
            done
        });
        Poll::Ready(Ok(response.map(|inner| AccessLogBody { inner, done })))
    }
}

impl<B> http_body::Body for AccessLogBody<B>
where
    B: http_body::Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(done) = this.done.as_mut() {
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                done.bytes += data.map_or(0, |d| d.remaining() as u64);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Done {
    fn log(self) {
        let latency = clock::now().saturating_duration_since(self.record.start);
        let path = redacted_path(&self.record.uri);
        let (route, upstream) = match &self.route {
            Some(info) => (&*info.name, info.upstream.as_deref().unwrap_or("-")),
            None => ("-", "-"),
        };
        let request_id = self
            .record
            .request_id
            .as_ref()
            .map_or("-", RequestId::as_str);
        tracing::info!(
            target: ACCESS_TARGET,
            method = %self.record.method,
            path = %path,
            status = self.status,
            latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            bytes = self.bytes,
            route,
            upstream,
            request_id,
            "request"
        );
    }
}

/// Query parameter names whose values never reach a log line.
const SECRET_PARAMS: [&str; 12] = [
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "auth",
    "code",
    "signature",
    "sig",
    "session",
    "credential",
    "challenge",
];

fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// The path and query, with the values of secret-looking parameters replaced.
fn redacted_path(uri: &Uri) -> String {
    let mut out = String::from(uri.path());
    let Some(query) = uri.query() else { return out };
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if looks_secret(name) => {
                let _ = write!(out, "{name}=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_redacted() {
        let uri: Uri = "/a/b?page=2&access_token=abc&API_KEY=x&q=hello&client_secret=s&id=1"
            .parse()
            .unwrap();
        assert_eq!(
            redacted_path(&uri),
            "/a/b?page=2&access_token=REDACTED&API_KEY=REDACTED&q=hello&client_secret=REDACTED&id=1"
        );
        assert_eq!(redacted_path(&"/x".parse().unwrap()), "/x");
    }
}
