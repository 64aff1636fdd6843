//! Revoked token ids: the shared-state seam for running several gateways
//! (DESIGN "Growing past one machine").
//!
//! # Why this shape
//!
//! A networked store (Redis) answers asynchronously, but the in-memory store
//! answers at once, on every guarded request. A plain `async fn` in a `dyn`
//! trait would box a future per call even for the in-memory store. Instead
//! the methods return [`StoreFuture`], an enum that is either `Ready` (no
//! allocation: the in-memory fast path) or `Pending` (a boxed future, for a
//! networked store). It is a `Future`, so callers simply `.await` it, and a
//! synchronous caller can take the ready value with [`StoreFuture::now`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;

/// Where revoked `jti`s live. Object-safe (`Arc<dyn RevocationStore>`).
///
/// Key on `jti`, never on the token string: ECDSA signatures are malleable,
/// so one token has several valid spellings (SECURITY_CASES §10.9).
pub trait RevocationStore: Send + Sync {
    /// Revokes `jti` until `exp` (unix seconds), after which the token is
    /// refused anyway.
    fn revoke<'a>(&'a self, jti: &'a str, exp: i64)
    -> StoreFuture<'a, Result<(), RevocationError>>;

    /// True if `jti` was revoked. A networked store should answer `true`
    /// (fail closed) when it cannot reach its backend.
    fn is_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool>;

    /// A cheap hint that nothing is revoked, so the guard can skip the
    /// lookup. Must never say `true` while a revocation is live; the default
    /// (`false`) is always safe.
    fn is_empty(&self) -> bool {
        false
    }
}

/// The answer of a [`RevocationStore`]: ready now, or a boxed future.
pub enum StoreFuture<'a, T> {
    /// Known without waiting (in-memory store): no allocation.
    Ready(Option<T>),
    /// Needs I/O (networked store).
    Pending(Pin<Box<dyn Future<Output = T> + Send + 'a>>),
}

/// A revocation could not be stored. The text is fixed and secret-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationError(&'static str);

/// The default store: a moka cache in this process, each entry expiring when
/// its token would have expired anyway (plus a grace period covering the
/// verifier's leeway).
#[derive(Clone)]
pub struct MemoryRevocationStore {
    cache: Cache<Arc<str>, Duration>,
    /// Live entries (incremented before insert, decremented on removal), so
    /// `is_empty` never claims empty while an entry exists.
    live: Arc<AtomicU64>,
    grace: Duration,
}

struct RevokedExpiry;

// === impl StoreFuture ===

impl<'a, T> StoreFuture<'a, T> {
    /// An answer available now.
    pub fn ready(value: T) -> Self {
        StoreFuture::Ready(Some(value))
    }

    /// Wraps a future (for networked stores).
    pub fn pending(fut: impl Future<Output = T> + Send + 'a) -> Self {
        StoreFuture::Pending(Box::pin(fut))
    }

    /// The answer if it is available without waiting.
    pub fn now(self) -> Option<T> {
        match self {
            StoreFuture::Ready(v) => v,
            StoreFuture::Pending(_) => None,
        }
    }
}

impl<T> Future for StoreFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Both variants are `Unpin` (an `Option<T>` is only moved out, never
        // pinned), so projecting through `get_mut` is sound.
        match self.get_mut() {
            StoreFuture::Ready(v) => match v.take() {
                Some(v) => Poll::Ready(v),
                // Polled after completion: stay pending rather than panic.
                None => Poll::Pending,
            },
            StoreFuture::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

impl<T> Unpin for StoreFuture<'_, T> {}

impl<T> fmt::Debug for StoreFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreFuture::Ready(_) => "StoreFuture::Ready",
            StoreFuture::Pending(_) => "StoreFuture::Pending",
        })
    }
}

// === impl RevocationError ===

impl RevocationError {
    /// An error with a fixed description.
    pub const fn new(description: &'static str) -> Self {
        RevocationError(description)
    }
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RevocationError {}

// === impl MemoryRevocationStore ===

impl MemoryRevocationStore {
    /// Holds at most `max_entries` revoked ids, with a 5-minute grace after
    /// `exp` (longer than any sane leeway).
    pub fn new(max_entries: u64) -> Self {
        let live = Arc::new(AtomicU64::new(0));
        let l = Arc::clone(&live);
        let cache = Cache::builder()
            .max_capacity(max_entries)
            .expire_after(RevokedExpiry)
            .eviction_listener(move |_k, _v, _cause| {
                l.fetch_sub(1, Ordering::SeqCst);
            })
            .build();
        MemoryRevocationStore {
            cache,
            live,
            grace: Duration::from_secs(300),
        }
    }

    /// Keeps entries this long after the token's `exp`; must exceed the
    /// verifier's leeway.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Revokes `jti` until `exp + grace`, measured from `now` (unix seconds).
    /// Does nothing when that moment has passed.
    pub fn revoke_at(&self, jti: &str, exp: i64, now: i64) {
        let left = exp.saturating_sub(now);
        let Ok(left) = u64::try_from(left) else {
            // exp already past: only the grace period matters.
            let past = now.saturating_sub(exp).unsigned_abs();
            if Duration::from_secs(past) >= self.grace {
                return;
            }
            let ttl = self.grace - Duration::from_secs(past);
            self.insert(jti, ttl);
            return;
        };
        self.insert(jti, Duration::from_secs(left).saturating_add(self.grace));
    }

    fn insert(&self, jti: &str, ttl: Duration) {
        self.live.fetch_add(1, Ordering::SeqCst);
        self.cache.insert(Arc::from(jti), ttl);
    }

    /// The number of revoked ids held, after moka's pending maintenance.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

impl RevocationStore for MemoryRevocationStore {
    fn revoke<'a>(
        &'a self,
        jti: &'a str,
        exp: i64,
    ) -> StoreFuture<'a, Result<(), RevocationError>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.revoke_at(jti, exp, now);
        StoreFuture::ready(Ok(()))
    }

    fn is_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
        StoreFuture::ready(!self.is_empty() && self.cache.contains_key(jti))
    }

    fn is_empty(&self) -> bool {
        self.live.load(Ordering::SeqCst) == 0
    }
}

impl fmt::Debug for MemoryRevocationStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocationStore")
            .field("live", &self.live.load(Ordering::Relaxed))
            .field("grace", &self.grace)
            .finish()
    }
}

// === impl RevokedExpiry ===

impl Expiry<Arc<str>, Duration> for RevokedExpiry {
    fn expire_after_create(&self, _k: &Arc<str>, ttl: &Duration, _at: Instant) -> Option<Duration> {
        Some(*ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn block_on<F: Future>(f: F) -> F::Output {
        // Our futures here are always ready: poll once with a no-op waker.
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected a ready future"),
        }
    }

    #[test]
    fn revoked_jti_is_reported_until_it_expires() {
        let store = MemoryRevocationStore::new(100);
        assert!(store.is_empty());
        assert!(!block_on(store.is_revoked("j1")));
        store.revoke_at("j1", NOW + 3600, NOW);
        assert!(!store.is_empty());
        assert!(block_on(store.is_revoked("j1")));
        assert!(!block_on(store.is_revoked("j2")));
        assert_eq!(store.entry_count(), 1);
    }

    #[test]
    fn trait_revoke_uses_the_real_clock() {
        let store: Arc<dyn RevocationStore> = Arc::new(MemoryRevocationStore::new(100));
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 60;
        block_on(store.revoke("abc", exp)).unwrap();
        assert_eq!(store.is_revoked("abc").now(), Some(true));
    }

    #[test]
    fn long_expired_tokens_are_not_stored() {
        let store = MemoryRevocationStore::new(100).with_grace(Duration::from_secs(60));
        store.revoke_at("old", NOW - 3600, NOW);
        assert!(store.is_empty());
        store.revoke_at("recent", NOW - 10, NOW);
        assert!(block_on(store.is_revoked("recent")));
    }

    #[test]
    fn entries_expire_with_their_token() {
        let store = MemoryRevocationStore::new(100).with_grace(Duration::from_millis(50));
        store.revoke_at("j", NOW, NOW);
        assert!(block_on(store.is_revoked("j")));
        std::thread::sleep(Duration::from_millis(120));
        // Expired entries are never reported; moka removes them (and
        // `is_empty` turns true) at its timer wheel's ~1 s granularity.
        assert!(!block_on(store.is_revoked("j")));
    }

    #[test]
    fn re_revoking_keeps_the_live_count_consistent() {
        let store = MemoryRevocationStore::new(100);
        store.revoke_at("j", NOW + 60, NOW);
        store.revoke_at("j", NOW + 60, NOW);
        assert_eq!(store.entry_count(), 1);
        assert!(!store.is_empty());
        store.cache.invalidate("j");
        store.cache.run_pending_tasks();
        assert!(store.is_empty());
    }

    #[test]
    fn pending_store_futures_work_through_the_trait() {
        struct Slow;
        impl RevocationStore for Slow {
            fn revoke<'a>(
                &'a self,
                _: &'a str,
                _: i64,
            ) -> StoreFuture<'a, Result<(), RevocationError>> {
                StoreFuture::pending(async { Err(RevocationError::new("backend unavailable")) })
            }
            fn is_revoked<'a>(&'a self, jti: &'a str) -> StoreFuture<'a, bool> {
                StoreFuture::pending(async move { jti == "x" })
            }
        }
        let s: Box<dyn RevocationStore> = Box::new(Slow);
        assert!(block_on(s.is_revoked("x")));
        assert!(s.is_revoked("x").now().is_none());
        assert!(!s.is_empty());
        assert_eq!(
            block_on(s.revoke("x", 0)).unwrap_err().to_string(),
            "backend unavailable"
        );
    }
}
