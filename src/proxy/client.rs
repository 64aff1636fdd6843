//! The HTTP/1.1 connection pool that talks to upstreams.
//!
//! Built on hyper's `client::conn::http1` rather than hyper-util's legacy client: that
//! client hashes a pool key (SipHash), locks its pool twice, boxes several futures and
//! spawns a task per request to notice when a connection is idle again, which together
//! cost more instructions than the rest of a proxied request. Here each upstream has its
//! own pool, found once when a route is built; a request pops the most recently used
//! idle connection (LIFO keeps few connections warm), and the response body hands the
//! connection back when it ends. [`ClientSettings::max_connections_per_host`] caps how
//! many connections one upstream gets; requests over it wait.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::upstream::Upstream;
use crate::body_type::Body;

/// Idle time before TCP keep-alive probes on upstream connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// How the gateway connects to upstreams.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientSettings {
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Close pooled connections idle this long. Keep it under the upstream's own
    /// keep-alive (Node: 5 s, nginx: 75 s), or a request races the upstream's close.
    pub pool_idle_timeout: Duration,
    /// The most idle connections kept per upstream.
    pub pool_max_idle_per_host: usize,
    /// The most connections open to one upstream at once, busy, idle or carrying a
    /// WebSocket tunnel; a request over it waits for one to come free, within its
    /// route's timeout. 0: no cap.
    pub max_connections_per_host: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(4),
            pool_max_idle_per_host: 512,
            max_connections_per_host: 1024,
        }
    }
}

/// Keep-alive connection pools to upstreams, one per upstream address, shared by every
/// route that forwards there.
///
/// Cheap to clone: the pools are shared.
#[derive(Clone, Debug)]
pub struct UpstreamClient {
    settings: ClientSettings,
    pools: Arc<Mutex<HashMap<String, Arc<Pool>>>>,
}

impl UpstreamClient {
    /// Builds an empty set of pools. Connections are opened on demand, inside the Tokio
    /// runtime that sends the requests.
    pub fn new(settings: &ClientSettings) -> Self {
        Self {
            settings: settings.clone(),
            pools: Arc::default(),
        }
    }

    /// The pool for `upstream`'s address (created on first use).
    pub(super) fn pool(&self, upstream: &Upstream) -> Arc<Pool> {
        let address = upstream.address();
        let mut pools = lock(&self.pools);
        Arc::clone(pools.entry(address.clone()).or_insert_with(|| {
            let cap = self.settings.max_connections_per_host;
            Arc::new(Pool {
                address,
                settings: self.settings.clone(),
                idle: Mutex::default(),
                // tokio's semaphore takes at most `MAX_PERMITS`; more is no cap anyway.
                slots: (cap > 0).then(|| Arc::new(Semaphore::new(cap.min(Semaphore::MAX_PERMITS)))),
                returned: Notify::new(),
                waiting: AtomicUsize::new(0),
            })
        }))
    }
}

impl Default for UpstreamClient {
    fn default() -> Self {
        Self::new(&ClientSettings::default())
    }
}

/// The idle connections to one upstream address, oldest first, and the slots that cap
/// how many are open.
pub(super) struct Pool {
    /// `host:port`, as `TcpStream::connect` takes it.
    address: String,
    settings: ClientSettings,
    idle: Mutex<Idle>,
    /// One permit per open connection, held by its connection task (`None`: no cap).
    slots: Option<Arc<Semaphore>>,
    /// Wakes a request waiting for a slot when an idle connection comes back instead.
    returned: Notify,
    /// Requests waiting for a slot; `put` notifies only when there are some.
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Idle {
    connections: VecDeque<(Handle, Instant)>,
    reaper: bool,
}

/// A connection's request handle and its share of the connection's slot.
struct Handle {
    sender: http1::SendRequest<Body>,
    slot: Slot,
}

/// One connection's place under [`ClientSettings::max_connections_per_host`]: freed once
/// the connection's task and every holder of a clone are gone. A WebSocket tunnel keeps
/// one for its life, so that tunnels count as open connections too.
#[derive(Clone)]
pub(super) struct Slot {
    /// Held for its `Drop` only.
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

/// Why a request got no response from the upstream.
#[derive(Debug)]
pub(super) enum SendError {
    /// The TCP connection could not be made.
    Connect(std::io::Error),
    /// The TCP connection was not made within the connect timeout.
    ConnectTimeout,
    /// hyper failed: the connection broke, the response was garbled, or the client's
    /// own request body failed while it was being sent ([`hyper::Error::is_user`]).
    Http(hyper::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::ConnectTimeout => f.write_str("connect: timed out"),
            Self::Http(e) => {
                write!(f, "{e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(e) = source {
                    write!(f, ": {e}")?;
                    source = e.source();
                }
                Ok(())
            }
        }
    }
}

// === impl Pool ===

impl Pool {
    /// Sends `req` (origin-form URI, `Host` set) on an idle connection, or on a new one.
    ///
    /// A request that an idle connection refused before writing a byte (the upstream
    /// closed it while it sat in the pool) is sent again on the next one: hyper gives
    /// the request back untouched in that case, so no body is lost or sent twice.
    pub(super) async fn send(
        self: Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<(Response<Incoming>, Connection), SendError> {
        loop {
            let (mut handle, reused) = self.acquire().await?;
            match handle.sender.try_send_request(req).await {
                Ok(response) => {
                    return Ok((response, Connection { pool: self, handle }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        tracing::debug!(upstream = %self.address, "pooled connection was closed; retrying");
                        req = unsent;
                    }
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    /// An idle connection (`true`), or a new one once a slot is free (`false`).
    async fn acquire(&self) -> Result<(Handle, bool), SendError> {
        loop {
            if let Some(handle) = self.checkout() {
                return Ok((handle, true));
            }
            let Some(slots) = &self.slots else {
                return Ok((self.connect(None).await?, false));
            };
            let slot = match Arc::clone(slots).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => self.wait(slots).await,
            };
            if slot.is_some() {
                return Ok((self.connect(slot).await?, false));
            }
        }
    }

    /// Waits until a slot is free (`Some`) or an idle connection has come back (`None`:
    /// check out again; another request may have been quicker, then this waits again).
    async fn wait(&self, slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        let returned = self.returned.notified();
        let mut returned = std::pin::pin!(returned);
        returned.as_mut().enable();
        // A connection put back between the checkout and the line above sent no notice.
        if !lock(&self.idle).connections.is_empty() {
            return None;
        }
        tokio::select! {
            () = returned => None,
            slot = Arc::clone(slots).acquire_owned() => slot.ok(),
        }
    }

    /// The most recently used idle connection that is still ready, if any.
    fn checkout(&self) -> Option<Handle> {
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        while let Some((handle, since)) = idle.connections.pop_back() {
            if now.saturating_duration_since(since) >= self.settings.pool_idle_timeout {
                // The newest is too old, so every older one is too.
                idle.connections.clear();
                return None;
            }
            if handle.sender.is_ready() {
                return Some(handle);
            }
        }
        None
    }

    /// Puts a ready connection back, dropping the oldest one if the pool is full.
    fn put(self: &Arc<Self>, handle: Handle) {
        if self.settings.pool_max_idle_per_host == 0 {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.connections.len() >= self.settings.pool_max_idle_per_host {
            idle.connections.pop_front();
        }
        idle.connections.push_back((handle, Instant::now()));
        if !idle.reaper {
            idle.reaper = true;
            spawn_reaper(Arc::downgrade(self), self.settings.pool_idle_timeout);
        }
        drop(idle);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.returned.notify_one();
        }
    }

    /// Drops the connections idle for longer than the idle timeout.
    fn reap(&self) {
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        while idle.connections.front().is_some_and(|(_, since)| {
            now.saturating_duration_since(*since) >= self.settings.pool_idle_timeout
        }) {
            idle.connections.pop_front();
        }
    }

    /// Opens a connection; its task holds `slot` for as long as it is open.
    async fn connect(&self, slot: Option<OwnedSemaphorePermit>) -> Result<Handle, SendError> {
        let stream = tokio::time::timeout(
            self.settings.connect_timeout,
            TcpStream::connect(self.address.as_str()),
        )
        .await
        .map_err(|_elapsed| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
        configure(&stream).map_err(SendError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Http)?;
        let slot = Slot {
            _permit: slot.map(Arc::new),
        };
        let held = slot.clone();
        let address = self.address.clone();
        tokio::spawn(async move {
            let _held = held;
            // `with_upgrades`: a `101 Switching Protocols` hands the socket to the tunnel.
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(upstream = %address, error = %e, "upstream connection ended");
            }
        });
        Ok(Handle { sender, slot })
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("address", &self.address)
            .field("idle", &lock(&self.idle).connections.len())
            .finish()
    }
}

/// Trims the pool every idle timeout while it exists, so that connections left idle by
/// a burst are closed even when no request comes to trim them.
fn spawn_reaper(pool: Weak<Pool>, every: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match pool.upgrade() {
                Some(pool) => pool.reap(),
                None => return,
            }
        }
    });
}

/// A connection lent to one request: back to its pool once the response has ended.
pub(super) struct Connection {
    pool: Arc<Pool>,
    handle: Handle,
}

impl Connection {
    /// The connection's slot, for a tunnel that takes the connection over (`101`).
    pub(super) fn into_slot(self) -> Slot {
        self.handle.slot
    }

    /// The response body, returning this connection to the pool when it ends.
    pub(super) fn body(self, body: Incoming) -> Body {
        Body::new(PooledBody {
            body,
            connection: Some(self),
            ended: false,
        })
    }

    fn release(self) {
        let Self { pool, mut handle } = self;
        if handle.sender.is_ready() {
            pool.put(handle);
        } else if let (false, Ok(runtime)) = (
            handle.sender.is_closed(),
            tokio::runtime::Handle::try_current(),
        ) {
            // Still sending the request body (the upstream answered before reading it
            // all): the connection is reusable once that is done.
            runtime.spawn(async move {
                if handle.sender.ready().await.is_ok() {
                    pool.put(handle);
                }
            });
        }
    }
}

/// An upstream response body that returns its connection at the end. Dropped before the
/// end (the client went away), the connection is dropped too: hyper closes it, since
/// the rest of the response would be in the way of the next one.
struct PooledBody {
    body: Incoming,
    connection: Option<Connection>,
    ended: bool,
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            self.ended = true;
            if let Some(connection) = self.connection.take() {
                connection.release();
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // hyper's server stops polling a body that says it has ended, so the end may
        // only be seen here.
        if let Some(connection) = self.connection.take() {
            if http_body::Body::is_end_stream(&self.body) {
                connection.release();
            }
        }
    }
}

/// No Nagle delay on request heads; TCP keep-alive to notice an upstream that vanished
/// under a long request or a WebSocket tunnel.
fn configure(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind, still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upstream_sockets_have_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        configure(&stream).unwrap();
        assert!(stream.nodelay().unwrap());
        let socket = socket2::SockRef::from(&stream);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), TCP_KEEPALIVE);
    }
}
