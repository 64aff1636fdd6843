//! Used challenges: the shared-state seam that makes each challenge work once
//! (DESIGN "Growing past one machine").
//!
//! Challenges themselves are stateless (a MAC any instance can check); what must be
//! shared is the set of nonces already redeemed. [`ReplayGuard`] returns the same
//! [`StoreFuture`] as [`RevocationStore`](crate::jwt::RevocationStore): ready at once,
//! with no allocation, for the in-memory guard; a boxed future for a networked store
//! (for example Redis `SET nonce 1 NX EXAT exp`), which a fleet would add without
//! touching the endpoint.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::Expiry;
use moka::sync::Cache;

use crate::jwt::StoreFuture;

/// Remembers redeemed challenge nonces until their challenge expires. Object-safe
/// (`Arc<dyn ReplayGuard>`).
pub trait ReplayGuard: Send + Sync {
    /// Atomically marks `nonce` as used until `expires_at` (unix seconds): `Ok(true)` if
    /// this call was the first to use it, `Ok(false)` if it was already used. Two
    /// concurrent calls with one nonce must never both see `true`. A networked guard
    /// that cannot reach its backend returns an error (the grant then fails closed).
    fn consume<'a>(
        &'a self,
        nonce: &'a [u8; 32],
        expires_at: i64,
    ) -> StoreFuture<'a, Result<bool, ReplayError>>;
}

/// The replay store failed. The text is fixed and secret-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayError(&'static str);

/// The default guard: a moka cache in this process, each nonce kept until its
/// challenge's expiry plus a small grace.
///
/// It has no capacity bound on purpose: evicting a live nonce would let its challenge
/// be redeemed again. Its size is the number of tokens granted within one challenge
/// lifetime (about 100 bytes each), which the rate limits bound.
#[derive(Clone)]
pub struct MemoryReplayGuard {
    cache: Cache<[u8; 32], Duration>,
    grace: Duration,
}

struct UntilExpiry;

// === impl ReplayError ===

impl ReplayError {
    /// An error with a fixed description.
    pub const fn new(description: &'static str) -> Self {
        Self(description)
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ReplayError {}

// === impl MemoryReplayGuard ===

impl MemoryReplayGuard {
    /// An empty guard keeping nonces 5 s past their challenge's expiry (covering the
    /// rounding between the wall clock and moka's monotonic one).
    pub fn new() -> Self {
        Self {
            cache: Cache::builder().expire_after(UntilExpiry).build(),
            grace: Duration::from_secs(5),
        }
    }

    /// Like [`ReplayGuard::consume`], with the current time `now` (unix seconds).
    pub fn consume_at(&self, nonce: &[u8; 32], expires_at: i64, now: i64) -> bool {
        let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
        let ttl = Duration::from_secs(left).saturating_add(self.grace);
        // `or_insert_with` runs at most one initialiser per key at a time: exactly one
        // caller sees a fresh entry.
        self.cache.entry(*nonce).or_insert_with(|| ttl).is_fresh()
    }

    /// The number of nonces held, after moka's pending maintenance.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

impl Default for MemoryReplayGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayGuard for MemoryReplayGuard {
    fn consume<'a>(
        &'a self,
        nonce: &'a [u8; 32],
        expires_at: i64,
    ) -> StoreFuture<'a, Result<bool, ReplayError>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        StoreFuture::ready(Ok(self.consume_at(nonce, expires_at, now)))
    }
}

impl fmt::Debug for MemoryReplayGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayGuard")
            .field("entries", &self.cache.entry_count())
            .field("grace", &self.grace)
            .finish()
    }
}

// === impl UntilExpiry ===

impl Expiry<[u8; 32], Duration> for UntilExpiry {
    fn expire_after_create(&self, _k: &[u8; 32], ttl: &Duration, _at: Instant) -> Option<Duration> {
        Some(*ttl)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_nonce_is_consumed_once() {
        let guard = MemoryReplayGuard::new();
        assert!(guard.consume_at(&[1; 32], NOW + 60, NOW));
        assert!(!guard.consume_at(&[1; 32], NOW + 60, NOW));
        assert!(
            guard.consume_at(&[2; 32], NOW + 60, NOW),
            "nonces are separate"
        );
        assert_eq!(guard.entry_count(), 2);
    }

    #[test]
    fn concurrent_consumers_of_one_nonce_have_one_winner() {
        let guard = MemoryReplayGuard::new();
        for round in 0..20u8 {
            let barrier = Arc::new(Barrier::new(8));
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        let barrier = barrier.clone();
                        let guard = &guard;
                        s.spawn(move || {
                            barrier.wait();
                            usize::from(guard.consume_at(&[round; 32], NOW + 60, NOW))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1, "round {round}");
        }
    }

    #[test]
    fn the_trait_answers_at_once_through_a_dyn_guard() {
        let guard: Arc<dyn ReplayGuard> = Arc::new(MemoryReplayGuard::new());
        let exp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 60;
        assert_eq!(guard.consume(&[9; 32], exp).now(), Some(Ok(true)));
        assert_eq!(guard.consume(&[9; 32], exp).now(), Some(Ok(false)));
    }

    #[test]
    fn nonces_are_forgotten_after_their_expiry() {
        let guard = MemoryReplayGuard {
            grace: Duration::from_millis(50),
            ..MemoryReplayGuard::new()
        };
        assert!(guard.consume_at(&[3; 32], NOW, NOW));
        assert!(!guard.consume_at(&[3; 32], NOW, NOW));
        std::thread::sleep(Duration::from_millis(120));
        assert!(
            guard.consume_at(&[3; 32], NOW, NOW),
            "the challenge expired long ago: its nonce need not be kept"
        );
    }
}
