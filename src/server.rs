//! Accepts connections and serves a tower service over HTTP/1.1 and HTTP/2.
//!
//! Knows nothing of routes, JWTs or the config file: it serves any service from a
//! [`ServerSettings`]. What it adds is what a server facing the internet needs and
//! hyper does not do by default:
//! - a header read timeout (with a timer set, or hyper has none: no slowloris guard),
//! - a bound on the request head (`max_buf_size`; hyper's default accepts ~400 KiB),
//! - a cap on open connections (accepting pauses while it is reached),
//! - graceful shutdown raced against a deadline (hyper's waits forever),
//! - the peer address of each connection as a [`ClientAddr`] request extension.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

use crate::body_type::BoxError;
use crate::context::ClientAddr;

/// How the server treats connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// How long a client may take to send a request head; also closes idle keep-alive
    /// connections after that long (hyper ≥ 1.6 uses one timer for both).
    pub header_read_timeout: Duration,
    /// The largest request head accepted, in bytes; larger heads get 431.
    /// Values under hyper's minimum of 8 KiB are raised to it.
    pub max_header_size: usize,
    /// The most header fields accepted in one request.
    pub max_headers: usize,
    /// The most connections open at once; accepting waits while it is reached.
    pub max_connections: usize,
    /// How long in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_size: 16 * 1024,
            max_headers: 100,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// hyper's lower bound for `max_buf_size`; it panics below it.
const MIN_BUF_SIZE: usize = 8 * 1024;

/// Serves `service` on `listener` until `shutdown` completes, then lets in-flight
/// requests finish for up to `settings.shutdown_grace` and returns.
///
/// The caller binds the listener, so tests can bind port 0 and read the address.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = Arc::new(connection_builder(&settings));
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = ConnService {
            inner: service.clone(),
            peer,
        };
        let builder = builder.clone();
        let conn = graceful.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        grace = ?settings.shutdown_grace,
        "shutting down: no longer accepting, finishing in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("shutdown grace elapsed; closing the remaining connections");
        }
    }
}

fn connection_builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_size.max(MIN_BUF_SIZE))
        .max_headers(settings.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_size).unwrap_or(u32::MAX))
        .max_concurrent_streams(256);
    builder
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Adapts a tower service to hyper for one connection, tagging requests with the peer.
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<Incoming>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Oneshot<S, Request<Incoming>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ClientAddr(self.peer));
        self.inner.clone().oneshot(req)
    }
}
