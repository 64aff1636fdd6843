//! Per-client-address rate limits of the token endpoints.
//!
//! [`RateLimit`] is the seam for shared state: one instance keeps its counters in
//! memory ([`MemoryRateLimit`], on governor's GCRA); a fleet behind a load balancer
//! would implement it on an existing distributed store instead, without touching the
//! endpoint. The key is the TCP peer, never `X-Forwarded-For`, which a client can set.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Decides whether a client may make another attempt now.
pub trait RateLimit: Send + Sync {
    /// `Ok` if allowed, else how long until the next attempt may succeed.
    fn check(&self, client: IpAddr) -> Result<(), Duration>;
}

/// An in-memory limiter: `per_minute` attempts a minute per address, in bursts of up to
/// `burst`.
#[derive(Clone)]
pub struct MemoryRateLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    checks: Arc<AtomicU64>,
}

impl MemoryRateLimit {
    /// A limiter allowing `per_minute` attempts a minute with bursts of `burst`.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: Arc::new(RateLimiter::keyed(quota)),
            checks: Arc::default(),
        }
    }
}

impl RateLimit for MemoryRateLimit {
    fn check(&self, client: IpAddr) -> Result<(), Duration> {
        // Forget idle addresses now and then, so memory follows the active clients.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_wait() {
        let limit = MemoryRateLimit::new(NonZeroU32::new(60).unwrap(), NonZeroU32::new(3).unwrap());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        let wait = limit.check(a).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limit.check(b).is_ok(), "addresses are limited separately");
    }
}
