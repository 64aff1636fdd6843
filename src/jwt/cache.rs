//! A cache of verified tokens, so a token's signature is checked once, not on
//! every request.
//!
//! Keyed by the whole token string (canonical thanks to the strict parser), so
//! a forged token can never ride on a cached one that shares its header and
//! payload. Written only after a successful verification; a hit re-checks
//! `exp`/`nbf` against the caller's clock; entries expire with their token.
//!
//! In front of moka, each thread keeps a few hundred of the tokens it last found
//! there (`front`): a hit on them is a comparison of the token, not moka's lookup,
//! whose hashing, epoch pinning and recording of the read for its eviction policy
//! were ~3% of a guarded request's CPU (BENCHMARKS.md, session 9). They answer only
//! for the cache that filled them, only until the cache is next invalidated (a
//! generation number every invalidation moves on), and never past the entry's own
//! deadline; `exp`/`nbf` are re-checked on every hit as before.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::VerifyError;
use super::claims::Claims;
use super::verifier::DEFAULT_MAX_TOKEN_LEN;

/// Verified tokens and their claims. Cheap to clone (moka's cache and the
/// counters are shared).
#[derive(Clone)]
pub struct TokenCache {
    cache: Option<Cache<Arc<str>, Entry, Hasher>>,
    max_ttl: Duration,
    max_token_len: usize,
    counters: Arc<Counters>,
    front: Arc<Front>,
}

/// What the per-thread front entries are checked against.
#[derive(Debug)]
struct Front {
    /// Which cache this is (front entries of another never answer for it).
    id: u64,
    /// Moved on by every invalidation, after moka has dropped the entries: a front
    /// entry stored under an older number is not used.
    generation: AtomicU64,
}

/// A snapshot of the cache counters, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to verify.
    pub misses: u64,
    /// Entries removed by moka for size or expiry (not explicit invalidation).
    pub evictions: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

/// The cached value: the claims and their time to live, computed from the
/// caller's `now` at insertion (moka's own clock is real time, ours may be
/// injected).
#[derive(Clone)]
struct Entry {
    claims: Arc<Claims>,
    ttl: Duration,
    /// The token (moka's key), for the front entries.
    token: Arc<str>,
    /// When moka drops the entry, in the caller's unix seconds: the front entries'
    /// deadline too.
    until: i64,
}

struct EntryExpiry;

/// Keyed (randomly seeded) but far cheaper than std's SipHash on a 300-byte token: the
/// hash was a tenth of a cache hit. Flooding one bucket needs chosen keys in the map,
/// and only tokens whose signature verified are ever inserted.
type Hasher = foldhash::quality::RandomState;

// === impl TokenCache ===

impl TokenCache {
    /// A cache of at most `max_entries` tokens, each kept at most `max_ttl`
    /// and never past its `exp`. `max_entries == 0` disables caching: every
    /// call verifies.
    pub fn new(max_entries: u64, max_ttl: Duration) -> Self {
        let counters = Arc::new(Counters::default());
        let cache = (max_entries > 0).then(|| {
            let c = Arc::clone(&counters);
            Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryExpiry)
                // Needed by `invalidate_kid`.
                .support_invalidation_closures()
                .eviction_listener(move |_key, _value, cause| {
                    if cause.was_evicted() {
                        c.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build_with_hasher(Hasher::default())
        });
        static IDS: AtomicU64 = AtomicU64::new(0);
        TokenCache {
            cache,
            max_ttl,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            counters,
            front: Arc::new(Front {
                id: IDS.fetch_add(1, Ordering::Relaxed),
                generation: AtomicU64::new(0),
            }),
        }
    }

    /// Tokens longer than `len` are never cached (they are verified, and the
    /// verifier refuses them if they exceed its own limit).
    pub fn with_max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// The cached claims for `token`, re-checked against `now` (unix seconds) with
    /// the verifier's leeway: an entry that outlived its `exp` is refused as
    /// [`VerifyError::Expired`] and dropped. `None`: not cached (nothing is
    /// verified). Every cached token was verified, so it is a compact JWS: callers
    /// may leave syntax checks of their own to a miss.
    pub fn get(&self, token: &str, now: i64) -> Option<Result<Arc<Claims>, VerifyError>> {
        let cache = self.cache.as_ref()?;
        if token.len() > self.max_token_len {
            return None;
        }
        // Read before both lookups: an invalidation after this read moves the
        // generation on, which retires whatever they find (see `invalidated`).
        let generation = self.front.generation.load(Ordering::Acquire);
        let claims = match front::get(self.front.id, generation, token, now) {
            Some(claims) => claims,
            None => {
                // `Arc<str>: Borrow<str>`: no allocation on the hit path.
                let entry = cache.get(token)?;
                front::put(self.front.id, generation, &entry);
                entry.claims
            }
        };
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        Some(match claims.check_time(now) {
            Ok(()) => Ok(claims),
            Err(e) => {
                // The front entry stays: it answers the same until it is replaced.
                cache.invalidate(token);
                Err(e)
            }
        })
    }

    /// Returns the cached claims for `token` (see [`TokenCache::get`]), or runs
    /// `verify` and caches its success. Concurrent first requests for one token
    /// run `verify` once. Failures are never cached.
    pub fn get_or_verify(
        &self,
        token: &str,
        now: i64,
        verify: impl FnOnce() -> Result<Arc<Claims>, VerifyError>,
    ) -> Result<Arc<Claims>, VerifyError> {
        match self.get(token, now) {
            Some(hit) => hit,
            None => self.verify_and_cache(token, now, verify),
        }
    }

    /// The miss half of [`TokenCache::get_or_verify`], for callers that already asked
    /// [`TokenCache::get`]: runs `verify` and caches its success, without looking the
    /// token up again first. Concurrent first requests for one token still run `verify`
    /// once, and a token another caller cached in between is answered from the cache.
    pub fn verify_and_cache(
        &self,
        token: &str,
        now: i64,
        verify: impl FnOnce() -> Result<Arc<Claims>, VerifyError>,
    ) -> Result<Arc<Claims>, VerifyError> {
        let Some(cache) = self
            .cache
            .as_ref()
            .filter(|_| token.len() <= self.max_token_len)
        else {
            return verify();
        };
        self.counters.misses.fetch_add(1, Ordering::Relaxed);
        let max_ttl = self.max_ttl;
        let key: Arc<str> = Arc::from(token);
        let entry = cache
            .try_get_with(Arc::clone(&key), || {
                verify().map(|claims| {
                    let ttl = ttl_for(&claims, now, max_ttl);
                    Entry {
                        until: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
                        ttl,
                        token: key,
                        claims,
                    }
                })
            })
            .map_err(|e| *e)?;
        // Another caller may have verified it at its own `now`: check ours.
        entry.claims.check_time(now)?;
        Ok(entry.claims)
    }

    /// Drops one token (e.g. after revoking its `jti`).
    pub fn invalidate(&self, token: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(token);
            self.invalidated();
        }
    }

    /// Retires every thread's front entries of this cache. Called after moka has
    /// dropped what it drops: a lookup that read the old generation stores its find
    /// under it (retired now), and one that reads the new one is ordered after moka's
    /// removal (release here, acquire in `get`), so it cannot find the dropped entry.
    fn invalidated(&self) {
        self.front.generation.fetch_add(1, Ordering::Release);
    }

    /// Drops every token verified by key `kid`, when that key is removed or
    /// rotated out.
    pub fn invalidate_kid(&self, kid: &str) {
        let Some(cache) = &self.cache else { return };
        let kid: Arc<str> = Arc::from(kid);
        let pred = move |_: &Arc<str>, v: &Entry| v.claims.kid() == &*kid;
        if cache.invalidate_entries_if(pred).is_err() {
            // Only fails without `support_invalidation_closures`, which `new`
            // enables; fail safe anyway.
            cache.invalidate_all();
        }
        cache.run_pending_tasks();
        self.invalidated();
    }

    /// Drops everything.
    pub fn invalidate_all(&self) {
        if let Some(cache) = &self.cache {
            cache.invalidate_all();
            self.invalidated();
        }
    }

    /// The number of live entries, after running moka's pending maintenance
    /// (so it costs more than a counter read).
    pub fn entry_count(&self) -> u64 {
        match &self.cache {
            Some(cache) => {
                cache.run_pending_tasks();
                cache.entry_count()
            }
            None => 0,
        }
    }

    /// Hit, miss and eviction counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("enabled", &self.cache.is_some())
            .field("max_ttl", &self.max_ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Each thread's most recent finds in moka, by token (see the module's doc).
mod front {
    use super::*;

    /// Slots per thread (a power of two): a direct-mapped table, so a token can only
    /// be in one.
    const SLOTS: usize = 256;

    struct Slot {
        cache: u64,
        generation: u64,
        until: i64,
        token: Arc<str>,
        claims: Arc<Claims>,
    }

    thread_local! {
        static TABLE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
    }

    /// The slot of `token`: from its last 8 bytes, which are signature for any token
    /// that verified (and a token that did not is never stored, so whatever it maps to
    /// cannot match it).
    fn index(token: &str) -> usize {
        let bytes = token.as_bytes();
        let tail = bytes
            .get(bytes.len().saturating_sub(8)..)
            .unwrap_or_default();
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        // Fibonacci hashing: the product's top bits are its well-mixed ones.
        let mixed = u64::from_le_bytes(word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> (u64::BITS - SLOTS.ilog2())) as usize
    }

    /// The claims stored for `token` by cache `cache` under `generation`, if still
    /// before the entry's deadline.
    pub(super) fn get(cache: u64, generation: u64, token: &str, now: i64) -> Option<Arc<Claims>> {
        TABLE
            .try_with(|table| {
                let table = table.borrow();
                let slot = table.get(index(token))?.as_ref()?;
                (slot.cache == cache
                    && slot.generation == generation
                    && now < slot.until
                    && *slot.token == *token)
                    .then(|| Arc::clone(&slot.claims))
            })
            .ok()
            .flatten()
    }

    /// Stores what cache `cache` found in moka, under the generation read before.
    pub(super) fn put(cache: u64, generation: u64, entry: &Entry) {
        let _ = TABLE.try_with(|table| {
            let mut table = table.borrow_mut();
            if table.is_empty() {
                table.resize_with(SLOTS, || None);
            }
            if let Some(slot) = table.get_mut(index(&entry.token)) {
                *slot = Some(Slot {
                    cache,
                    generation,
                    until: entry.until,
                    token: Arc::clone(&entry.token),
                    claims: Arc::clone(&entry.claims),
                });
            }
        });
    }
}

/// min(exp - now, max_ttl), never negative.
fn ttl_for(claims: &Claims, now: i64, max_ttl: Duration) -> Duration {
    let left = claims.exp.saturating_sub(now);
    let left = Duration::from_secs(u64::try_from(left).unwrap_or(0));
    left.min(max_ttl)
}

// === impl EntryExpiry ===

impl Expiry<Arc<str>, Entry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Algorithm, Issuer, KeySet, TokenRequest, Validation, Verifier};
    use super::*;
    use std::sync::atomic::AtomicUsize;

    const NOW: i64 = 1_700_000_000;

    fn setup() -> (Issuer, Verifier) {
        let keys = KeySet::new(
            vec![
                private_spec(Algorithm::HS256),
                private_spec(Algorithm::EdDSA),
            ],
            Some("HS256"),
        )
        .unwrap();
        let issuer = Issuer::new(keys.clone(), "gw".into(), "api".into()).unwrap();
        (issuer, Verifier::new(keys, Validation::new("gw", "api")))
    }

    fn token(issuer: &Issuer, sub: &str, ttl: u64) -> String {
        let req = TokenRequest {
            subject: sub.into(),
            ttl: Duration::from_secs(ttl),
            ..TokenRequest::default()
        };
        issuer.issue(req, NOW).unwrap().token
    }

    #[test]
    fn hit_returns_cached_claims_without_verifying() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        let a = cache
            .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        let b = cache
            .get_or_verify(&t, NOW, || panic!("must not verify on a hit"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let s = cache.stats();
        assert_eq!((s.hits, s.misses), (1, 1));
        assert_eq!(cache.entry_count(), 1);
    }

    #[test]
    fn forged_token_sharing_header_and_payload_is_still_rejected() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        cache
            .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        let (input, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{input}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            cache.get_or_verify(&forged, NOW, || verifier.verify(&forged, NOW)),
            Err(VerifyError::Signature)
        );
        let padded = format!("{t}=");
        assert_eq!(
            cache.get_or_verify(&padded, NOW, || verifier.verify(&padded, NOW)),
            Err(VerifyError::Malformed)
        );
        assert_eq!(cache.entry_count(), 1);
    }

    #[test]
    fn invalid_tokens_never_grow_the_cache() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100_000, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        let (input, _) = t.rsplit_once('.').unwrap();
        for i in 0..10_000u32 {
            let bad = format!(
                "{input}.{}",
                super::super::parse::b64_encode([i.to_be_bytes(); 8].concat())
            );
            assert!(
                cache
                    .get_or_verify(&bad, NOW, || verifier.verify(&bad, NOW))
                    .is_err()
            );
        }
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn entry_that_expires_while_cached_is_rejected_afterwards() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 60);
        cache
            .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        // Within leeway after exp: still accepted, as the verifier would.
        cache
            .get_or_verify(&t, NOW + 60 + 29, || panic!("hit expected"))
            .unwrap();
        let later = NOW + 60 + 31;
        let err = cache
            .get_or_verify(&t, later, || panic!("hit expected"))
            .unwrap_err();
        assert!(err.is_expired());
        // The stale entry is gone; a retry verifies (and fails) again.
        assert_eq!(
            cache.get_or_verify(&t, later, || verifier.verify(&t, later)),
            Err(VerifyError::Expired)
        );
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn entry_ttl_is_bounded_by_exp_and_max_ttl() {
        let (issuer, verifier) = setup();
        let c = verifier.verify(&token(&issuer, "a", 60), NOW).unwrap();
        assert_eq!(
            ttl_for(&c, NOW, Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            ttl_for(&c, NOW, Duration::from_secs(10)),
            Duration::from_secs(10)
        );
        assert_eq!(
            ttl_for(&c, NOW + 100, Duration::from_secs(600)),
            Duration::ZERO
        );
    }

    #[test]
    fn moka_expires_entries_in_real_time() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_millis(50));
        let t = token(&issuer, "a", 3600);
        cache
            .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        std::thread::sleep(Duration::from_millis(120));
        // moka never returns an expired entry (its count lags: the timer
        // wheel removes entries at about one-second granularity).
        let calls = AtomicUsize::new(0);
        cache
            .get_or_verify(&t, NOW, || {
                calls.fetch_add(1, Ordering::SeqCst);
                verifier.verify(&t, NOW)
            })
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn concurrent_first_requests_verify_once() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        let calls = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    let c = cache
                        .get_or_verify(&t, NOW, || {
                            calls.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(50));
                            verifier.verify(&t, NOW)
                        })
                        .unwrap();
                    assert_eq!(c.sub, "alice");
                });
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn max_entries_is_respected() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(10, Duration::from_secs(600));
        for i in 0..100 {
            let t = token(&issuer, &format!("user{i}"), 3600);
            cache
                .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
                .unwrap();
        }
        assert!(cache.entry_count() <= 10);
        assert!(cache.stats().evictions >= 90);
    }

    #[test]
    fn zero_entries_disables_caching() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(0, Duration::from_secs(600));
        let t = token(&issuer, "a", 3600);
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            cache
                .get_or_verify(&t, NOW, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    verifier.verify(&t, NOW)
                })
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn tokens_over_the_length_limit_are_not_cached() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600)).with_max_token_len(10);
        let t = token(&issuer, "a", 3600);
        cache
            .get_or_verify(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        assert_eq!(cache.entry_count(), 0);
    }

    #[test]
    fn two_users_with_shared_prefix_get_their_own_claims() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let a = token(&issuer, "alice", 3600);
        let b = token(&issuer, "bob", 3600);
        assert_eq!(a[..40], b[..40]);
        let ca = cache
            .get_or_verify(&a, NOW, || verifier.verify(&a, NOW))
            .unwrap();
        let cb = cache
            .get_or_verify(&b, NOW, || verifier.verify(&b, NOW))
            .unwrap();
        assert_eq!((ca.sub.as_str(), cb.sub.as_str()), ("alice", "bob"));
    }

    #[test]
    fn invalidate_and_invalidate_kid_purge_entries() {
        let (issuer, verifier) = setup();
        let ed_keys = KeySet::new(vec![private_spec(Algorithm::EdDSA)], Some("EdDSA")).unwrap();
        let ed_issuer = Issuer::new(ed_keys, "gw".into(), "api".into()).unwrap();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let hs = token(&issuer, "a", 3600);
        let hs2 = token(&issuer, "b", 3600);
        let ed = token(&ed_issuer, "c", 3600);
        for t in [&hs, &hs2, &ed] {
            cache
                .get_or_verify(t, NOW, || verifier.verify(t, NOW))
                .unwrap();
        }
        assert_eq!(cache.entry_count(), 3);
        cache.invalidate(&hs2);
        assert_eq!(cache.entry_count(), 2);
        cache.invalidate_kid("HS256");
        assert_eq!(cache.entry_count(), 1);
        // The removed key's token must verify again (and would now fail).
        let calls = AtomicUsize::new(0);
        let _ = cache.get_or_verify(&hs, NOW, || {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(VerifyError::UnknownKey)
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache
            .get_or_verify(&ed, NOW, || panic!("EdDSA entry kept"))
            .unwrap();
    }

    #[test]
    fn verify_and_cache_caches_a_success_and_answers_a_token_cached_meanwhile() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        assert!(cache.get(&t, NOW).is_none());
        let a = cache
            .verify_and_cache(&t, NOW, || verifier.verify(&t, NOW))
            .unwrap();
        // Cached by it: `get` answers, and a caller that lost the race to verify is
        // answered from the entry instead of verifying again.
        let b = cache.get(&t, NOW).unwrap().unwrap();
        let c = cache
            .verify_and_cache(&t, NOW, || panic!("cached a moment ago"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &c));
        // Failures are not cached.
        let (input, _) = t.rsplit_once('.').unwrap();
        let forged = format!("{input}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            cache.verify_and_cache(&forged, NOW, || verifier.verify(&forged, NOW)),
            Err(VerifyError::Signature)
        );
        assert!(cache.get(&forged, NOW).is_none());
        assert_eq!(cache.entry_count(), 1);
    }

    /// The per-thread front entries answer only for the cache that stored them, and
    /// only until that cache is next invalidated, on any thread.
    #[test]
    fn front_entries_answer_only_for_their_cache_until_it_is_invalidated() {
        let (issuer, verifier) = setup();
        let cache = TokenCache::new(100, Duration::from_secs(600));
        let other = TokenCache::new(100, Duration::from_secs(600));
        let t = token(&issuer, "alice", 3600);
        let cached = |t: &str| {
            cache
                .get_or_verify(t, NOW, || verifier.verify(t, NOW))
                .unwrap();
            // The first `get` stores the front entry, the second is answered by it.
            assert!(cache.get(t, NOW).is_some() && cache.get(t, NOW).is_some());
        };
        cached(&t);
        assert!(other.get(&t, NOW).is_none(), "another cache's entry");
        cache.invalidate(&t);
        assert!(cache.get(&t, NOW).is_none(), "after invalidate");
        cached(&t);
        cache.invalidate_kid("HS256");
        assert!(cache.get(&t, NOW).is_none(), "after invalidate_kid");
        cached(&t);
        cache.invalidate_all();
        assert!(cache.get(&t, NOW).is_none(), "after invalidate_all");

        // Another thread's front entry, retired by an invalidation on this one.
        cached(&t);
        let (filled, fill) = std::sync::mpsc::channel();
        let (invalidated, wait) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let (cache, t) = (&cache, &t);
            let other_thread = scope.spawn(move || {
                assert!(cache.get(t, NOW).is_some() && cache.get(t, NOW).is_some());
                filled.send(()).unwrap();
                wait.recv().unwrap();
                cache.get(t, NOW).is_none()
            });
            fill.recv().unwrap();
            cache.invalidate(t);
            invalidated.send(()).unwrap();
            assert!(
                other_thread.join().unwrap(),
                "the other thread's entry was used"
            );
        });

        // Past `exp`, a front entry's claims are refused like moka's.
        cached(&t);
        let late = NOW + 3600 + 3600;
        assert_eq!(cache.get(&t, late), Some(Err(VerifyError::Expired)));
    }
}
