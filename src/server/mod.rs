//! Accepts connections and serves a tower service over HTTP/1.1 and HTTP/2.
//!
//! Knows nothing of routes, JWTs or the config file: it serves any service from a
//! [`ServerSettings`]. HTTP/1.1 is served by our own connection loop (`conn`, `wire`,
//! `body`): it is the gateway's hot path, and a loop written for it costs less than
//! hyper's general-purpose server (no dispatcher, one timer per connection) and decides
//! framing in code we test byte for byte (BENCHMARKS.md, session 6). HTTP/2 (prior
//! knowledge) is served by hyper. What the server adds:
//! - a header read timeout (slowloris guard), which also closes idle connections,
//! - on HTTP/1.1, a bound on the request head (414 for the request line, 431 for the
//!   headers), and strict request framing: anything readable two ways is a 400 and a
//!   close (the gateway's JSON errors),
//! - a cap on open connections (accepting pauses while it is reached),
//! - graceful shutdown raced against a deadline,
//! - the peer address of each connection as a [`ClientAddr`] request extension, and on
//!   HTTP/1.1 upgrade requests an [`OnUpgrade`](crate::context::OnUpgrade).

mod body;
mod conn;
mod wire;

pub(crate) use body::RequestBody;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::Either;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::Service;
use tower::util::Oneshot;

use crate::body_type::{Body, BoxError};
use crate::clock;
use crate::context::ClientAddr;
use crate::ready;

/// How the server treats connections.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// How long a client may take to send a request head (408 after it); also closes
    /// idle HTTP/1 keep-alive connections after that long (the same wait, for the next
    /// head).
    pub header_read_timeout: Duration,
    /// The largest request head accepted, in bytes: a longer request line gets 414,
    /// a larger head 431.
    pub max_header_size: usize,
    /// The most header fields accepted in one request (431 beyond), at most 1,024.
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
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let http = Arc::new(Http::new(&settings));
    // Within what the semaphore takes (it panics above) and `acquire_many` can wait for.
    let max = settings.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let max = u32::try_from(max).unwrap_or(u32::MAX);
    let limit = Arc::new(Semaphore::new(max as usize));
    // Dropped to tell every connection to finish its request and close.
    let (stop, stopped) = watch::channel(());
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
        let service = service.clone();
        let http = http.clone();
        let mut stopped = stopped.clone();
        // One clock reading per poll of the connection (clock.rs).
        tokio::spawn(clock::cached(async move {
            let served = match http.protocol(&stream, &mut stopped).await {
                Ok(Some(Protocol::Http1)) => {
                    conn::serve(stream, peer, service, http.h1.clone(), stopped).await
                }
                Ok(Some(Protocol::Http2)) => {
                    let service = ConnService {
                        inner: service,
                        peer,
                    };
                    let conn = http.h2.serve_connection(TokioIo::new(stream), service);
                    finish(conn, stopped, |conn| conn.graceful_shutdown()).await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        }));
    }

    drop(listener);
    drop(stop);
    tracing::info!(
        connections = max as usize - limit.available_permits(),
        grace = ?settings.shutdown_grace,
        "shutting down: no longer accepting, finishing in-flight requests"
    );
    tokio::select! {
        // Every connection holds a permit until it has closed.
        _ = limit.acquire_many(max) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            tracing::warn!("shutdown grace elapsed; closing the remaining connections");
        }
    }
}

/// The two protocols' settings, made once and shared by every connection.
struct Http {
    h1: Arc<conn::Settings>,
    h2: http2::Builder<TokioExecutor>,
}

/// The HTTP/2 connection preface (RFC 9113, section 3.4): how a prior-knowledge
/// HTTP/2 client opens a connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

impl Http {
    fn new(settings: &ServerSettings) -> Self {
        let h1 = Arc::new(conn::Settings {
            limits: wire::Limits {
                max_head: settings.max_header_size,
                max_headers: settings.max_headers.min(wire::MAX_HEADERS_CAP),
            },
            header_read_timeout: settings.header_read_timeout,
        });
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(settings.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(256);
        Self { h1, h2 }
    }

    /// The protocol of a new connection, from its first bytes; `None` when it closes
    /// before sending any, stays silent past the header read timeout, or the server
    /// stops first.
    async fn protocol(
        &self,
        stream: &TcpStream,
        stopped: &mut watch::Receiver<()>,
    ) -> std::io::Result<Option<Protocol>> {
        tokio::select! {
            biased;
            _ = stopped.changed() => Ok(None),
            sniffed = tokio::time::timeout(self.h1.header_read_timeout, sniff(stream)) => {
                sniffed.unwrap_or(Ok(None))
            }
        }
    }
}

/// Which protocol a new connection speaks, from its first bytes, or `None` if it
/// closes before sending any.
///
/// The bytes are peeked, not read: they stay in the socket for whichever protocol
/// reads them. (hyper-util's auto builder reads them and hands them back through a
/// rewind buffer instead, which made hyper's HTTP/1 read buffer double on every
/// connection.)
async fn sniff(stream: &TcpStream) -> std::io::Result<Option<Protocol>> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if buf[..n] != H2_PREFACE[..n] {
            return Ok(Some(Protocol::Http1));
        }
        if n == H2_PREFACE.len() {
            return Ok(Some(Protocol::Http2));
        }
        // A split preface (or a request method that starts like it): the socket stays
        // readable while peeked bytes wait, so wait by time for the rest.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Drives `conn` to its end; once `stopped` fires, asks it to shut down gracefully
/// (finish in-flight requests, take no new ones) and drives it on.
async fn finish<C>(
    conn: C,
    mut stopped: watch::Receiver<()>,
    graceful_shutdown: impl FnOnce(Pin<&mut C>),
) -> Result<(), BoxError>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        result = conn.as_mut() => return Ok(result?),
        _ = stopped.changed() => graceful_shutdown(conn.as_mut()),
    }
    Ok(conn.await?)
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

/// Adapts a tower service to hyper's HTTP/2 for one connection, tagging requests with
/// the peer.
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: Service<Request<Body>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Oneshot<S, Request<Body>>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::incoming);
        req.extensions_mut().insert(ClientAddr(self.peer));
        ready::call(self.inner.clone(), req)
    }
}
