//! `X-Request-Id`: taken from the client when well-formed, generated otherwise, sent
//! upstream and returned.
//!
//! tower-http's `SetRequestIdLayer` trusts any incoming id; a log line is no place for
//! a 10 KiB or control-character id, so this one accepts 1 to 128 bytes of
//! `[A-Za-z0-9._:/+=@-]` and replaces anything else.
//!
//! ```
//! use http::Request;
//! use portcullis::{Body, RequestId, request_id::RequestIdLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let svc = ServiceBuilder::new().layer(RequestIdLayer::new()).service(service_fn(|req: Request<Body>| async move {
//!     let id = req.extensions().get::<RequestId>().unwrap().clone();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(id.as_str().to_owned())))
//! }));
//! let res = svc.oneshot(Request::get("/").header("x-request-id", "abc-1").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.headers()["x-request-id"], "abc-1");
//! # }
//! ```

use std::cell::Cell;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::context::RequestId;

/// The header that carries the id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const MAX_LEN: usize = 128;

/// Adds a [`RequestId`] to every request and `X-Request-Id` to every response.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

/// The service of [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

pin_project! {
    /// Adds the id to the response.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;

    fn layer(&self, inner: S) -> SetRequestId<S> {
        SetRequestId { inner }
    }
}

impl<S, B, ResBody> Service<Request<B>> for SetRequestId<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // Three copies (the request's header, its extension, the response's header),
        // not clones: clones share the value, through an atomic count each clone and
        // drop updates, and an allocation at the first clone; copying 21 bytes costs
        // no more (BENCHMARKS.md, session 9).
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if is_valid(v) => copy(v),
            _ => generate(),
        };
        // One value upstream, whatever the client sent.
        req.headers_mut().insert(X_REQUEST_ID.clone(), copy(&id));
        req.extensions_mut().insert(RequestId::new(copy(&id)));
        ResponseFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        Poll::Ready(Ok(response))
    }
}

fn is_valid(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_LEN
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._:/+=@-".contains(&b))
}

/// A copy of `value` that shares nothing with it.
fn copy(value: &HeaderValue) -> HeaderValue {
    let copy = HeaderValue::from_bytes(value.as_bytes());
    // A valid header value is valid again.
    copy.unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A process-unique id: a random per-process prefix and a counter. Ids need to be
/// unique and cheap, not secret.
fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        hasher.finish() as u32
    });
    let n = next_number();
    // `{prefix:08x}-{n:012x}`, written by hand: `format!` was a measurable share of a
    // proxied request's instructions.
    let mut id = [b'-'; 21];
    write_hex(&mut id[..8], u64::from(prefix));
    write_hex(&mut id[9..], n);
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The next number for an id: unique in the process. Each thread takes a block of
/// numbers from the shared counter at a time, so an id costs no atomic operation
/// (ids from different threads interleave out of order, which nothing relies on).
fn next_number() -> u64 {
    const BLOCK: u64 = 4096;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        /// The thread's next number and the end of its block.
        static NEXT: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    NEXT.with(|next| {
        let (mut n, mut end) = next.get();
        if n == end {
            n = COUNTER.fetch_add(BLOCK, Ordering::Relaxed);
            end = n + BLOCK;
        }
        next.set((n + 1, end));
        n
    })
}

/// Writes the low `out.len()` hex digits of `n`, zero-padded.
fn write_hex(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(is_valid(&HeaderValue::from_static("abc-123_X.y:z/+=@")));
        assert!(!is_valid(&HeaderValue::from_static("")));
        assert!(!is_valid(&HeaderValue::from_static("a b")));
        assert!(!is_valid(&HeaderValue::from_static("a\"b")));
        assert!(!is_valid(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }

    #[test]
    fn generated_ids_are_unique_and_valid() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(is_valid(&a));
        let parse = |id: &HeaderValue| {
            let (prefix, n) = id.to_str().unwrap().split_once('-').unwrap();
            assert_eq!((prefix.len(), n.len()), (8, 12), "{id:?}");
            (prefix.to_owned(), u64::from_str_radix(n, 16).unwrap())
        };
        let ((prefix_a, n_a), (prefix_b, n_b)) = (parse(&a), parse(&b));
        assert_eq!(prefix_a, prefix_b);
        assert!(n_b > n_a, "the counter goes up");
        let mut hex = [0; 4];
        write_hex(&mut hex, 0xbeef);
        assert_eq!(&hex, b"beef");
    }

    #[test]
    fn ids_are_unique_across_threads() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| (0..10_000).map(|_| next_number()).collect::<Vec<_>>()))
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn the_id_is_copied_not_shared() {
        let id = generate();
        let copied = copy(&id);
        assert_eq!(copied, id);
        assert_ne!(copied.as_bytes().as_ptr(), id.as_bytes().as_ptr());
    }

    /// The upstream gets one id, the response and the extension the same one: the
    /// client's first if it is valid (any others dropped), else a new one.
    #[tokio::test]
    async fn one_id_goes_upstream_and_comes_back() {
        use tower::{ServiceExt, service_fn};
        let svc = RequestIdLayer::new().layer(service_fn(|req: Request<()>| async move {
            let sent: Vec<_> = req
                .headers()
                .get_all(&X_REQUEST_ID)
                .iter()
                .cloned()
                .collect();
            let seen = req
                .extensions()
                .get::<RequestId>()
                .unwrap()
                .header_value()
                .clone();
            assert_eq!(sent, [seen]);
            Ok::<_, std::convert::Infallible>(Response::new(sent[0].clone()))
        }));
        for (given, kept) in [
            (&["abc-1", "def-2"][..], true),
            (&["a b", "def-2"][..], false),
            (&[][..], false),
        ] {
            let mut req = Request::new(());
            for id in given {
                req.headers_mut()
                    .append(&X_REQUEST_ID, HeaderValue::from_static(id));
            }
            let res = svc.clone().oneshot(req).await.unwrap();
            let returned = res.headers().get(&X_REQUEST_ID).unwrap();
            assert_eq!(returned, res.body(), "{given:?}");
            assert_eq!(returned == "abc-1", kept, "{given:?}");
            assert_eq!(res.headers().get_all(&X_REQUEST_ID).iter().count(), 1);
        }
    }
}
