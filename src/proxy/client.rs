//! The HTTP/1.1 connection pool that talks to upstreams.
//!
//! A request is one exchange on a pooled TCP connection, run by the request's own task:
//! the head is written from a buffer the connection keeps, the response head is parsed
//! with httparse ([`super::h1`]), and the response body reads straight from the socket
//! and hands the connection back to the pool when it ends. No task per connection, no
//! channel between the request and its connection: hyper's client needs both (a
//! dispatcher task, a request channel, a body channel), and with them a guarded,
//! proxied request cost 39.5k instructions instead of 30.5k (BENCHMARKS.md).
//!
//! Each upstream has its own pool, found once when a route is built; a request pops the
//! most recently used idle connection (LIFO keeps few connections warm).
//! [`ClientSettings::max_connections_per_host`] caps how many connections one upstream
//! gets; requests over it wait.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, Response, request};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Sleep;

use super::h1::{self, ProtocolError, RequestFraming, ResponseFraming, Target};
use super::headers::Forwarded;
use super::upstream::Upstream;
use crate::body_type::{Body, BoxError};
use crate::clock;
use crate::http1::{Lines, READ_SIZE, ReadSize};

/// Idle time before TCP keep-alive probes on upstream connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Body data up to this size is copied next to its framing: one write, not two or three.
const COPY_CHUNK: usize = 8 * 1024;
const COPY_CHUNK_U64: u64 = COPY_CHUNK as u64;

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
    /// One permit per open connection, held by the connection (`None`: no cap).
    slots: Option<Arc<Semaphore>>,
    /// Wakes a request waiting for a slot when an idle connection comes back instead.
    returned: Notify,
    /// Requests waiting for a slot; `put` notifies only when there are some.
    waiting: AtomicUsize,
}

#[derive(Default)]
struct Idle {
    connections: VecDeque<(Conn, Instant)>,
    reaper: bool,
}

/// One open upstream connection, between requests: its socket halves, its buffers and
/// its share of its slot.
struct Conn {
    read: ReadSide,
    write: WriteSide,
}

/// The receiving half of a connection and the bytes read from it but not yet used.
struct ReadSide {
    io: OwnedReadHalf,
    buf: BytesMut,
    /// How much room the next body read makes.
    read_size: ReadSize,
    /// Scratch room for the header lines of a response head being parsed.
    lines: Lines,
    slot: Slot,
    /// The deadline of the exchange under way. Polled only while the head's write or a
    /// read of the response head waits.
    deadline: Deadline,
}

/// A deadline that moves with each exchange on a connection, and the one timer kept
/// for it. A timer made per request was registered with the runtime's timer wheel and
/// removed again (about 0.4k instructions); one reset per request still converted each
/// deadline to the wheel's ticks (BENCHMARKS.md, sessions 7 and 8). This one is left
/// where it is while it would fire before the new deadline; when it does fire early
/// (at an earlier exchange's deadline, once per timeout on a busy connection), it is
/// moved on to the current one then.
struct Deadline {
    timer: Pin<Box<Sleep>>,
    at: tokio::time::Instant,
}

/// The sending half of a connection and the buffer request heads are built in.
struct WriteSide {
    io: OwnedWriteHalf,
    buf: Vec<u8>,
    /// Held for its `Drop` only: a half sending a body on its own still counts.
    _slot: Slot,
}

/// One connection's place under [`ClientSettings::max_connections_per_host`]: freed once
/// every holder is gone (both halves of the connection, or the WebSocket tunnel that
/// took it over: tunnels count as open connections too).
#[derive(Clone)]
pub(super) struct Slot {
    /// Held for its `Drop` only.
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

/// A connection handed over to a tunnel by `101 Switching Protocols`.
pub(super) struct Upgraded {
    /// The socket, whole again.
    pub(super) io: TcpStream,
    /// Bytes the upstream sent right after its `101` head: the tunnel's first bytes.
    pub(super) read_ahead: Bytes,
    pub(super) slot: Slot,
}

/// Why a request got no response from the upstream.
#[derive(Debug)]
pub(super) enum SendError {
    /// The TCP connection could not be made.
    Connect(std::io::Error),
    /// The TCP connection was not made within the connect timeout.
    ConnectTimeout,
    /// Reading or writing the connection failed.
    Io(std::io::Error),
    /// The upstream's response is not valid HTTP/1.
    Protocol(ProtocolError),
    /// The client's own request body failed, or did not match its length.
    Body(BoxError),
    /// No response head by the exchange's deadline (the route's timeout).
    Timeout,
}

impl SendError {
    /// The client's fault, not the upstream's.
    pub(super) fn is_client_body(&self) -> bool {
        matches!(self, Self::Body(_))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::ConnectTimeout => f.write_str("connect: timed out"),
            Self::Io(e) => write!(f, "connection: {e}"),
            Self::Protocol(e) => write!(f, "response: {e}"),
            Self::Body(e) => write!(f, "request body: {e}"),
            Self::Timeout => f.write_str("no response within the route's timeout"),
        }
    }
}

impl From<ProtocolError> for SendError {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

/// What the upstream answered: the response, and for a `101` the connection itself.
pub(super) type Answer = (Response<Body>, Option<Upgraded>);

// === impl Pool ===

impl Pool {
    /// Sends a request to `target`, with `forwarded`'s headers, on an idle connection or a
    /// new one.
    /// `upgrade`: the request asks for a WebSocket; a `101` answer hands the connection
    /// over in [`Upgraded`].
    ///
    /// A request that a pooled connection could not take (its head could not be
    /// written, or the connection closed before any answer to a bodiless `GET`, `HEAD`
    /// or `OPTIONS`) is sent again on the next one: the upstream cannot have acted on
    /// it, or acting twice is harmless. Nothing else is retried.
    pub(super) async fn send(
        self: &Arc<Self>,
        parts: request::Parts,
        mut body: Body,
        target: &Target<'_>,
        forwarded: &Forwarded<'_>,
        deadline: tokio::time::Instant,
        upgrade: bool,
    ) -> Result<Answer, SendError> {
        let size = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        let framing = RequestFraming::choose(&parts, size);
        let head_request = parts.method == Method::HEAD;
        let replayable = body.is_end_stream()
            && matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        // A small body whose bytes are already here (a buffered one, or a client's that
        // came with its head) goes out in the same write as the head.
        let early = small_body_at_hand(&mut body, framing)?;
        let rest = match framing {
            RequestFraming::Length(n) => RequestFraming::Length(n - early.len() as u64),
            other => other,
        };
        loop {
            let (mut conn, reused) = self.acquire(deadline).await?;
            conn.read.deadline.set(deadline);
            conn.write.buf.clear();
            h1::encode_request(&parts, target, forwarded, framing, &mut conn.write.buf);
            conn.write.buf.extend_from_slice(&early);
            let sent = tokio::select! {
                biased;
                sent = conn.write.send_buf() => sent,
                () = conn.read.deadline.passed() => Err(SendError::Timeout),
            };
            if let Err(e) = sent {
                if reused && !matches!(e, SendError::Timeout) {
                    tracing::debug!(upstream = %self.address, error = %e, "pooled connection was closed; retrying");
                    continue;
                }
                return Err(e);
            }
            if matches!(rest, RequestFraming::None | RequestFraming::Length(0)) {
                match conn.read.head(head_request).await {
                    Err(SendError::Io(e))
                        if reused
                            && replayable
                            && e.kind() == std::io::ErrorKind::UnexpectedEof =>
                    {
                        tracing::debug!(upstream = %self.address, "pooled connection closed before answering; retrying");
                    }
                    Err(e) => return Err(e),
                    Ok(head) => {
                        return self.answer(conn.read, Finish::Pool(conn.write), head, upgrade);
                    }
                }
                continue;
            }
            // Boxed: a request with a body to stream is the rarer kind, and its state
            // would otherwise make every request's future larger (BENCHMARKS.md).
            return Box::pin(self.exchange_with_body(conn, body, rest, head_request, upgrade))
                .await;
        }
    }

    /// Sends the request body while watching for the response head: an upstream may
    /// answer early (a `413`, say) or stream its answer while it reads (full duplex).
    /// An early answer goes back to the client at once; the rest of the body is sent by
    /// a task of its own, which pools the connection once both directions are done.
    async fn exchange_with_body(
        self: &Arc<Self>,
        conn: Conn,
        body: Body,
        framing: RequestFraming,
        head_request: bool,
        upgrade: bool,
    ) -> Result<Answer, SendError> {
        let Conn { mut read, write } = conn;
        let mut sending = Box::pin(send_body(write, body, framing));
        let (head, sent) = {
            let mut head = pin!(read.head(head_request));
            tokio::select! {
                biased;
                sent = &mut sending => {
                    // A broken client body is the client's error (400), not a wait for
                    // an answer to a request that will never be complete.
                    let write = sent?;
                    (head.await?, Some(write))
                }
                head = &mut head => (head?, None),
            }
        };
        if let Some(write) = sent {
            return self.answer(read, Finish::Pool(write), head, upgrade);
        }
        // The answer came first: the body goes on in its own task.
        let (give_read, take_read) = oneshot::channel::<ReadSide>();
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            match sending.await {
                Ok(write) => match take_read.await {
                    Ok(read) => pool.put(Conn { read, write }),
                    // The response did not end cleanly: keep the socket open for the
                    // read half until it goes.
                    Err(_) => write.io.forget(),
                },
                Err(e) => {
                    tracing::debug!(upstream = %pool.address, error = %e, "request body not sent after an early answer")
                }
            }
        });
        self.answer(read, Finish::Writer(give_read), head, upgrade)
    }

    /// Builds the response for `head`, whose body reads from `read`.
    fn answer(
        self: &Arc<Self>,
        mut read: ReadSide,
        finish: Finish,
        head: h1::ResponseHead,
        upgrade: bool,
    ) -> Result<Answer, SendError> {
        let h1::ResponseHead {
            response,
            framing,
            keep_alive,
        } = head;
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            let (Finish::Pool(write), true) = (finish, upgrade) else {
                return Err(ProtocolError::UnexpectedUpgrade.into());
            };
            let ReadSide { io, buf, slot, .. } = read;
            let io = io
                .reunite(write.io)
                .map_err(|e| SendError::Io(std::io::Error::other(e)))?;
            let upgraded = Upgraded {
                io,
                read_ahead: buf.freeze(),
                slot,
            };
            return Ok((response.map(|()| Body::empty()), Some(upgraded)));
        }
        let (decoder, complete) = match framing {
            ResponseFraming::Empty => (Decoder::Done, Some(Body::empty())),
            // The whole body came with the head (most API responses do): it is a buffer,
            // and the connection goes back to the pool before the client is written to.
            ResponseFraming::Length(n) if read.buf.len() as u64 >= n => {
                let data = read.buf.split_to(n as usize).freeze();
                (Decoder::Done, Some(Body::from(data)))
            }
            ResponseFraming::Length(n) => (Decoder::Length(n), None),
            ResponseFraming::Chunked => (Decoder::Chunked(h1::Chunked::Size), None),
            ResponseFraming::Close => (Decoder::Close, None),
        };
        if let Some(complete) = complete {
            if keep_alive {
                self.pass_on(read, finish);
            }
            return Ok((response.map(|()| complete), None));
        }
        let body = UpstreamBody {
            read: Some(read),
            decoder,
            finish: keep_alive.then_some(finish),
            pool: Arc::clone(self),
        };
        Ok((response.map(|()| Body::new(body)), None))
    }

    /// A response was read to its end: its connection goes on (back to the pool, or to
    /// the task still sending the request body) if it is clean.
    fn pass_on(self: &Arc<Self>, mut read: ReadSide, finish: Finish) {
        if !read.buf.is_empty() {
            // Bytes after the end of the response: a confused or hostile upstream.
            tracing::debug!(upstream = %self.address, "bytes after the response; closing");
            return;
        }
        read.rewind();
        match finish {
            Finish::Pool(write) => self.put(Conn { read, write }),
            Finish::Writer(writer) => {
                let _ = writer.send(read);
            }
        }
    }

    /// An idle connection (`true`), or a new one once a slot is free (`false`), by
    /// `deadline`.
    async fn acquire(&self, deadline: tokio::time::Instant) -> Result<(Conn, bool), SendError> {
        if let Some(conn) = self.checkout() {
            return Ok((conn, true));
        }
        // Boxed, as waiting for a slot or connecting is the rare case (see `send`).
        Box::pin(tokio::time::timeout_at(deadline, self.open()))
            .await
            .map_err(|_elapsed| SendError::Timeout)?
    }

    /// A new connection once a slot is free, or an idle one that came back meanwhile.
    async fn open(&self) -> Result<(Conn, bool), SendError> {
        loop {
            if let Some(conn) = self.checkout() {
                return Ok((conn, true));
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
        let mut returned = pin!(returned);
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

    /// The most recently used idle connection that is still clean, if any.
    fn checkout(&self) -> Option<Conn> {
        let now = clock::now();
        let mut idle = lock(&self.idle);
        while let Some((mut conn, since)) = idle.connections.pop_back() {
            if now.saturating_duration_since(since) >= self.settings.pool_idle_timeout {
                // The newest is too old, so every older one is too.
                idle.connections.clear();
                return None;
            }
            if conn.read.is_quiet() {
                return Some(conn);
            }
        }
        None
    }

    /// Puts a connection back, dropping the oldest one if the pool is full.
    fn put(self: &Arc<Self>, conn: Conn) {
        if self.settings.pool_max_idle_per_host == 0 {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.connections.len() >= self.settings.pool_max_idle_per_host {
            idle.connections.pop_front();
        }
        idle.connections.push_back((conn, clock::now()));
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
        let now = clock::now();
        let mut idle = lock(&self.idle);
        while idle.connections.front().is_some_and(|(_, since)| {
            now.saturating_duration_since(*since) >= self.settings.pool_idle_timeout
        }) {
            idle.connections.pop_front();
        }
    }

    /// Opens a connection, which holds `slot` for as long as it is open.
    async fn connect(&self, slot: Option<OwnedSemaphorePermit>) -> Result<Conn, SendError> {
        let stream = tokio::time::timeout(
            self.settings.connect_timeout,
            TcpStream::connect(self.address.as_str()),
        )
        .await
        .map_err(|_elapsed| SendError::ConnectTimeout)?
        .map_err(SendError::Connect)?;
        configure(&stream).map_err(SendError::Connect)?;
        let slot = Slot {
            _permit: slot.map(Arc::new),
        };
        let (read, write) = stream.into_split();
        Ok(Conn {
            read: ReadSide {
                io: read,
                buf: BytesMut::new(),
                read_size: ReadSize::default(),
                lines: Lines::default(),
                slot: slot.clone(),
                deadline: Deadline::new(),
            },
            write: WriteSide {
                io: write,
                buf: Vec::new(),
                _slot: slot,
            },
        })
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

// === impl Deadline ===

impl Deadline {
    /// One that has passed; `set` gives it a time.
    fn new() -> Self {
        let at = tokio::time::Instant::now();
        Self {
            timer: Box::pin(tokio::time::sleep_until(at)),
            at,
        }
    }

    fn set(&mut self, at: tokio::time::Instant) {
        self.at = at;
        // Routes sharing an upstream may have shorter timeouts than the one armed.
        if self.timer.deadline() > at {
            self.timer.as_mut().reset(at);
        }
    }

    /// Completes once the deadline has passed.
    async fn passed(&mut self) {
        loop {
            self.timer.as_mut().await;
            if self.timer.deadline() >= self.at {
                return;
            }
            self.timer.as_mut().reset(self.at);
        }
    }
}

// === impl ReadSide ===

impl ReadSide {
    /// Reads until a whole response head is in; its body's first bytes may follow it
    /// in the buffer. A close before any byte of it is `UnexpectedEof`.
    async fn head(&mut self, head_request: bool) -> Result<h1::ResponseHead, SendError> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) =
                    h1::parse_response(&mut self.buf, head_request, &mut self.lines)?
                {
                    return Ok(head);
                }
            }
            self.buf.reserve(READ_SIZE);
            let n = tokio::select! {
                biased;
                n = self.io.read_buf(&mut self.buf) => n.map_err(SendError::Io)?,
                () = self.deadline.passed() => return Err(SendError::Timeout),
            };
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    SendError::Io(std::io::ErrorKind::UnexpectedEof.into())
                } else {
                    ProtocolError::Incomplete.into()
                });
            }
        }
    }

    /// Reads what the socket has into the buffer; `Ok(0)`: the upstream closed.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        self.buf.reserve(self.read_size.size);
        let n = ready!(pin!(self.io.read_buf(&mut self.buf)).poll(cx))?;
        self.read_size.record(n);
        Poll::Ready(Ok(n))
    }

    /// Ready to be pooled: a buffer grown by a large body is let go, so that an idle
    /// connection holds no more than a head's room (the read size is kept: the next
    /// response on this connection is likely to be large too).
    fn rewind(&mut self) {
        if self.buf.capacity() > 2 * READ_SIZE {
            self.buf = BytesMut::new();
        }
    }

    /// Whether an idle connection has nothing to say: no close, no stray bytes, no
    /// error. Costs no system call unless the socket became readable while idle.
    fn is_quiet(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut probe = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        self.buf.is_empty() && self.io.poll_peek(&mut cx, &mut probe).is_pending()
    }
}

// === the request body ===

/// The bytes of a body of at most [`COPY_CHUNK`] bytes sent by length, if its first frame
/// is ready now (a buffered body always is). Empty if it is not, or if the body is not
/// of that kind; the body then goes out as it comes, after the head.
fn small_body_at_hand(body: &mut Body, framing: RequestFraming) -> Result<Bytes, SendError> {
    let RequestFraming::Length(length @ 1..=COPY_CHUNK_U64) = framing else {
        return Ok(Bytes::new());
    };
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(body).poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => {
            // A trailers frame has no place in a body sent by length.
            let data = frame.into_data().unwrap_or_default();
            if data.len() as u64 > length {
                return Err(SendError::Body(BODY_TOO_LONG.into()));
            }
            Ok(data)
        }
        Poll::Ready(Some(Err(e))) => Err(SendError::Body(e)),
        Poll::Ready(None) | Poll::Pending => Ok(Bytes::new()),
    }
}

const BODY_TOO_LONG: &str = "the body is longer than its content-length";
const BODY_TOO_SHORT: &str = "the body is shorter than its content-length";

impl WriteSide {
    /// Writes `bytes`, whole.
    async fn send(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        self.io.write_all(bytes).await.map_err(SendError::Io)
    }

    /// Writes the buffer, whole.
    async fn send_buf(&mut self) -> Result<(), SendError> {
        self.io.write_all(&self.buf).await.map_err(SendError::Io)
    }
}

/// Writes `body` framed as `framing`, and gives the write side back when it is done.
async fn send_body(
    mut write: WriteSide,
    mut body: Body,
    framing: RequestFraming,
) -> Result<WriteSide, SendError> {
    let mut left = match framing {
        RequestFraming::Length(n) => Some(n),
        _ => None,
    };
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(SendError::Body)?;
        let data = match frame.into_data() {
            Ok(data) => data,
            Err(frame) => {
                trailers = frame.into_trailers().ok();
                continue;
            }
        };
        if data.is_empty() {
            continue;
        }
        match &mut left {
            Some(left) => {
                *left = left
                    .checked_sub(data.len() as u64)
                    .ok_or_else(|| SendError::Body(BODY_TOO_LONG.into()))?;
                write.send(&data).await?;
                if *left == 0 {
                    // Complete by its length: what the stream might still say is not ours
                    // to wait for.
                    break;
                }
            }
            None => {
                write.buf.clear();
                h1::encode_chunk_size(data.len(), &mut write.buf);
                if data.len() <= COPY_CHUNK {
                    write.buf.extend_from_slice(&data);
                    write.buf.extend_from_slice(b"\r\n");
                    write.send_buf().await?;
                } else {
                    write.send_buf().await?;
                    write.send(&data).await?;
                    write.send(b"\r\n").await?;
                }
            }
        }
    }
    match left {
        Some(0) => {}
        Some(_) => return Err(SendError::Body(BODY_TOO_SHORT.into())),
        None => {
            write.buf.clear();
            h1::encode_last_chunk(trailers.as_ref(), &mut write.buf);
            write.send_buf().await?;
        }
    }
    Ok(write)
}

// === the response body ===

/// Where a connection goes once its response has been read to the end.
enum Finish {
    /// The request is sent: back to the pool, whole.
    Pool(WriteSide),
    /// The request body is still being sent: to the task sending it, which pools the
    /// connection once it is done.
    Writer(oneshot::Sender<ReadSide>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoder {
    Length(u64),
    Chunked(h1::Chunked),
    Close,
    Done,
}

/// An upstream response body, read from the connection as the client takes it. At its
/// end the connection goes back to the pool, unless the response said to close it or
/// the upstream sent more than the response. Dropped before its end (the client went
/// away), it closes the connection: the rest of the response would be in the way.
struct UpstreamBody {
    read: Option<ReadSide>,
    decoder: Decoder,
    /// `None`: the connection closes after this response.
    finish: Option<Finish>,
    pool: Arc<Pool>,
}

impl UpstreamBody {
    /// The response is complete: pass the connection on if it is clean.
    fn end(&mut self) {
        self.decoder = Decoder::Done;
        if let (Some(read), Some(finish)) = (self.read.take(), self.finish.take()) {
            self.pool.pass_on(read, finish);
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = SendError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        let this = &mut *self;
        loop {
            let Some(read) = &mut this.read else {
                return Poll::Ready(None);
            };
            match &mut this.decoder {
                Decoder::Done => return Poll::Ready(None),
                Decoder::Length(left) if !read.buf.is_empty() => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(read.buf.len());
                    let data = read.buf.split_to(take).freeze();
                    *left -= take as u64;
                    if *left == 0 {
                        this.end();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoder::Chunked(chunked) if !read.buf.is_empty() => match chunked
                    .decode(&mut read.buf)
                {
                    Ok(h1::Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(h1::Decoded::End) => {
                        this.end();
                        return Poll::Ready(None);
                    }
                    Ok(h1::Decoded::Incomplete) => {}
                    Err(e) => {
                        this.read = None;
                        return Poll::Ready(Some(Err(h1::ProtocolError::from(e).into())));
                    }
                },
                Decoder::Close if !read.buf.is_empty() => {
                    let data = read.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                _ => {}
            }
            match ready!(read.poll_fill(cx)) {
                Ok(0) if this.decoder == Decoder::Close => {
                    this.read = None;
                    this.decoder = Decoder::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    this.read = None;
                    return Poll::Ready(Some(Err(ProtocolError::Incomplete.into())));
                }
                Ok(_) => {}
                Err(e) => {
                    this.read = None;
                    return Poll::Ready(Some(Err(SendError::Io(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder == Decoder::Done || self.read.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Length(n) => SizeHint::with_exact(n),
            Decoder::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Io(e) => Some(e),
            Self::Protocol(e) => Some(e),
            Self::Body(e) => Some(&**e),
            Self::ConnectTimeout | Self::Timeout => None,
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
    use crate::http1::MAX_READ_SIZE;

    #[test]
    fn body_reads_grow_while_they_fill_up_and_shrink_when_they_do_not() {
        let mut size = ReadSize::default();
        let mut expected = READ_SIZE;
        while expected < MAX_READ_SIZE {
            size.record(expected);
            expected *= 2;
            assert_eq!(size.size, expected);
        }
        size.record(MAX_READ_SIZE);
        assert_eq!(size.size, MAX_READ_SIZE, "no further than the limit");
        size.record(10);
        size.record(MAX_READ_SIZE / 2 + 1);
        size.record(10);
        assert_eq!(size.size, MAX_READ_SIZE, "short reads only count in a row");
        size.record(10);
        assert_eq!(size.size, MAX_READ_SIZE / 2);
        for _ in 0..40 {
            size.record(0);
        }
        assert_eq!(size.size, READ_SIZE, "no smaller than a head's room");
    }

    #[tokio::test]
    async fn a_pooled_connection_lets_a_grown_buffer_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (io, _write) = stream.into_split();
        let mut side = ReadSide {
            io,
            buf: BytesMut::with_capacity(MAX_READ_SIZE),
            read_size: ReadSize {
                size: MAX_READ_SIZE,
                short: 0,
            },
            lines: Lines::default(),
            slot: Slot { _permit: None },
            deadline: Deadline::new(),
        };
        side.rewind();
        assert_eq!(side.buf.capacity(), 0);
        assert_eq!(side.read_size.size, MAX_READ_SIZE, "the size is kept");
        side.buf = BytesMut::with_capacity(READ_SIZE);
        side.rewind();
        assert_eq!(side.buf.capacity(), READ_SIZE, "a head's room is kept");
    }

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
