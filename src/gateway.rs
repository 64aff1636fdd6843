//! Builds the gateway from a [`Config`]: the only module that knows the whole stack.
//!
//! The order of the layers, outermost first, and why each sits where it does:
//!
//! 1. **request id**: first, so every response, even an error from a later layer,
//!    carries `X-Request-Id`, and every log line can name the request;
//! 2. **access log**: outside everything that can answer, so each request is logged
//!    exactly once, with the status the client really got;
//! 3. **panic guard**: a panic below becomes a logged 500, not a dropped connection;
//! 4. **router**: normalises the path, then picks the endpoint or route;
//! 5. per route: **hop-by-hop hygiene** (before anything that sets headers), the
//!    **body parser** where the route asks for one, then the **proxy**.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, service_fn};

use crate::body::{BodyKind, BodyParserLayer};
use crate::body_type::{Body, BoxError};
use crate::config::{BodyConfig, BodyMode, Config, ConfigError, SecretSource};
use crate::context::RouteInfo;
use crate::echo::Echo;
use crate::error::json_response;
use crate::log::{AccessLog, AccessLogBody, AccessLogLayer};
use crate::panic::{CatchPanic, CatchPanicLayer};
use crate::proxy::{ClientSettings, HopByHopLayer, Proxy, Upstream, UpstreamClient};
use crate::request_id::{RequestIdLayer, SetRequestId};
use crate::router::Router;
use crate::server::{self, ServerSettings};

/// A gateway built from a configuration, ready to serve.
pub struct Gateway {
    service: GatewayService,
    server: ServerSettings,
    echo: Option<SocketAddr>,
    summary: Vec<String>,
}

/// The gateway's whole tower stack, usable as any tower service.
///
/// Cheap to clone: every layer keeps its state behind an `Arc`.
#[derive(Clone)]
pub struct GatewayService {
    inner: SetRequestId<AccessLog<CatchPanic<Router>>>,
}

// === impl Gateway ===

impl Gateway {
    /// Builds the stack. Errors name the key and line of the config that is wrong.
    pub fn from_config(config: &Config, _secrets: &dyn SecretSource) -> Result<Self, ConfigError> {
        let client = UpstreamClient::new(&ClientSettings {
            connect_timeout: config.proxy.connect_timeout.into(),
            pool_idle_timeout: config.proxy.pool_idle_timeout.into(),
            pool_max_idle_per_host: config.proxy.pool_max_idle_per_host,
        });
        let mut summary = Vec::new();
        let mut router = Router::builder();

        for (i, spanned) in config.routes.iter().enumerate() {
            let route = spanned.get_ref();
            let path = route.path.normalized();
            let upstream = Upstream::parse(route.upstream.get_ref()).map_err(|e| {
                config.error_at(
                    format!("routes[{i}].upstream"),
                    route.upstream.span(),
                    e.to_string(),
                )
            })?;
            let timeout: Duration = route
                .timeout
                .unwrap_or(config.server.request_timeout)
                .into();
            let info = RouteInfo {
                name: path.into(),
                upstream: Some(upstream.label().clone()),
            };
            summary.push(format!(
                "{path} -> {}{}{} (timeout {})",
                upstream.label(),
                if route.strip_prefix {
                    ", strip_prefix"
                } else {
                    ""
                },
                if route.preserve_host {
                    ", preserve_host"
                } else {
                    ""
                },
                humantime::format_duration(timeout),
            ));
            let mut proxy = Proxy::new(client.clone(), upstream)
                .with_route_name(path)
                .with_preserve_host(route.preserve_host)
                .with_timeout(timeout);
            if route.strip_prefix {
                proxy = proxy.with_strip_prefix(path);
            }
            let body = route.body.map(|mode| body_parser(&config.body, mode));
            let service = ServiceBuilder::new()
                .layer(HopByHopLayer)
                .option_layer(body)
                .service(proxy);
            router = router.route_with_info(path, info, service);
        }

        router = router.endpoint("/healthz", &[Method::GET], service_fn(healthz));
        summary.push("GET /healthz (built-in)".to_owned());

        let inner = ServiceBuilder::new()
            .layer(RequestIdLayer::new())
            .layer(AccessLogLayer::new().enabled(config.log.access_log))
            .layer(CatchPanicLayer)
            .service(router.build());

        let s = &config.server;
        Ok(Self {
            service: GatewayService { inner },
            server: ServerSettings {
                header_read_timeout: s.header_read_timeout.into(),
                max_header_size: s.max_header_size,
                max_headers: s.max_headers,
                max_connections: s.max_connections,
                shutdown_grace: s.shutdown_grace.into(),
            },
            echo: config.echo.as_ref().map(|e| e.listen),
            summary,
        })
    }

    /// The tower service that handles requests.
    pub fn service(&self) -> GatewayService {
        self.service.clone()
    }

    /// One line per route and endpoint, as `check-config` prints them.
    pub fn summary(&self) -> &[String] {
        &self.summary
    }

    /// Serves on `listener` (and starts the echo upstream if configured) until
    /// `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let echo = match self.echo {
            Some(addr) => {
                let echo_listener = TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot start the echo upstream on {addr}: {e}"),
                    )
                })?;
                tracing::info!(%addr, "echo upstream listening");
                let settings = self.server.clone();
                Some(tokio::spawn(server::serve(
                    echo_listener,
                    Echo,
                    settings,
                    std::future::pending(),
                )))
            }
            None => None,
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "portcullis listening");
        }
        server::serve(listener, self.service, self.server, shutdown).await;
        if let Some(echo) = echo {
            echo.abort();
        }
        Ok(())
    }
}

fn body_parser(limits: &BodyConfig, mode: BodyMode) -> BodyParserLayer {
    let layer = BodyParserLayer::new()
        .json_limit(limits.json_limit)
        .form_limit(limits.form_limit)
        .text_limit(limits.text_limit)
        .max_depth(limits.max_depth);
    match mode {
        BodyMode::Json => layer.require(BodyKind::Json),
        BodyMode::Form => layer.require(BodyKind::Form),
        BodyMode::Any => layer,
    }
}

async fn healthz(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"ok"}"#.to_vec(),
    ))
}

// === impl GatewayService ===

impl<B> Service<Request<B>> for GatewayService
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<AccessLogBody<Body>>;
    type Error = Infallible;
    type Future = <SetRequestId<AccessLog<CatchPanic<Router>>> as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        self.inner.call(req.map(Body::new))
    }
}
