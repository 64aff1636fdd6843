//! The time, read once per poll of a connection's task.
//!
//! A request met the clock seven times on its way through the gateway: the server's
//! head deadline, the guard's `exp` check, the token cache, the proxy's response
//! deadline, the upstream pool's checkout and put, the answer's `Date`. Each reading is
//! a vDSO `clock_gettime`, about 35 ns on the machines we measure; together ~1.5% of the
//! process's CPU, which callgrind's counts do not show (BENCHMARKS.md, session 8).
//! nginx reads the clock once per turn of its event loop (`ngx_time_update`) for the
//! same reason. The server does the same per poll of a
//! connection's task: it polls each connection inside [`cached`], and within that poll
//! [`now`] reads the clock at its first call and returns that reading after. A poll ends
//! at the task's first wait, so the reading is as fresh as the work done since (the
//! parsing of a head, a cache hit, the encoding of an answer: microseconds).
//!
//! Outside such a poll (the layers run under hyper or axum, other tasks) every call
//! reads the clock: the layers behave alike wherever they run.
//!
//! Wall-clock time ([`system_now`], [`unix_now`]) is derived from the same reading and
//! a wall-clock base read at most once a second per thread, so a step of the system
//! clock shows within a second; outside a cached poll it is read directly.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a wall-clock base is used before it is read again.
const WALL_BASE_LIFE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Reading {
    /// Not inside a cached poll: every call reads the clock.
    Off,
    /// Inside a cached poll, before its first reading.
    Empty,
    /// Inside a cached poll: its reading.
    Taken(Instant),
}

thread_local! {
    static READING: Cell<Reading> = const { Cell::new(Reading::Off) };
    /// A monotonic reading and the wall-clock time read with it.
    static WALL_BASE: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
}

/// The monotonic time: this poll's reading inside a cached poll, the clock's otherwise.
pub(crate) fn now() -> Instant {
    READING.with(|reading| match reading.get() {
        Reading::Taken(now) => now,
        Reading::Empty => {
            let now = Instant::now();
            reading.set(Reading::Taken(now));
            now
        }
        Reading::Off => Instant::now(),
    })
}

/// The wall-clock time, derived from [`now`] inside a cached poll.
pub(crate) fn system_now() -> SystemTime {
    if matches!(READING.with(Cell::get), Reading::Off) {
        return SystemTime::now();
    }
    let now = now();
    WALL_BASE.with(|base| match base.get() {
        Some((at, wall)) if now >= at && now - at < WALL_BASE_LIFE => wall + (now - at),
        _ => {
            let wall = SystemTime::now();
            base.set(Some((now, wall)));
            wall
        }
    })
}

/// Seconds since the Unix epoch (JWT `NumericDate`, RFC 7519 §2); 0 before it.
pub(crate) fn unix_now() -> i64 {
    system_now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Polls `future` with the clock read at most once per poll.
pub(crate) fn cached<F: Future>(future: F) -> Cached<F> {
    Cached { future }
}

pin_project_lite::pin_project! {
    /// The future of [`cached`].
    pub(crate) struct Cached<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Cached<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Puts back what the thread had, also when the poll unwinds.
        struct Restore(Reading);
        impl Drop for Restore {
            fn drop(&mut self) {
                READING.with(|reading| reading.set(self.0));
            }
        }
        let _restore = Restore(READING.with(|reading| reading.replace(Reading::Empty)));
        self.project().future.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::future::poll_fn;

    /// Polls `f` inside a cached poll, returning what it returned.
    fn in_cached_poll<T>(f: impl FnOnce() -> T) -> T {
        let mut f = Some(f);
        let mut out = None;
        let mut future = std::pin::pin!(cached(poll_fn(|_| {
            out = f.take().map(|f| f());
            Poll::Ready(())
        })));
        let waker = std::task::Waker::noop();
        assert!(
            future
                .as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_ready()
        );
        out.unwrap()
    }

    fn wait_for_the_clock_to_move(from: Instant) {
        while Instant::now() == from {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_cached_poll_reads_the_clock_once() {
        let (first, second) = in_cached_poll(|| {
            let first = now();
            wait_for_the_clock_to_move(first);
            (first, now())
        });
        assert_eq!(first, second);
    }

    #[test]
    fn each_cached_poll_reads_it_afresh() {
        let first = in_cached_poll(now);
        wait_for_the_clock_to_move(first);
        let second = in_cached_poll(now);
        assert!(second > first);
    }

    #[test]
    fn outside_a_cached_poll_every_call_reads_the_clock() {
        let first = now();
        wait_for_the_clock_to_move(first);
        assert!(now() > first);
        // A cached poll leaves the thread as it found it.
        in_cached_poll(now);
        let later = now();
        wait_for_the_clock_to_move(later);
        assert!(now() > later);
    }

    #[test]
    fn a_poll_that_panics_leaves_the_thread_uncached() {
        let unwound = std::panic::catch_unwind(|| in_cached_poll(|| panic!("boom")));
        assert!(unwound.is_err());
        let first = now();
        wait_for_the_clock_to_move(first);
        assert!(now() > first);
    }

    #[test]
    fn wall_clock_time_follows_the_cached_reading() {
        let (a, b, mono) = in_cached_poll(|| {
            let a = system_now();
            let start = now();
            wait_for_the_clock_to_move(start);
            (a, system_now(), now() - start)
        });
        // Within one poll the wall clock stands still with the monotonic one.
        assert_eq!(a, b);
        assert_eq!(mono, Duration::ZERO);
        let direct = SystemTime::now();
        let derived = in_cached_poll(system_now);
        let skew = match derived.duration_since(direct) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(
            skew < Duration::from_secs(1),
            "derived wall time off by {skew:?}"
        );
        let direct = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((in_cached_poll(unix_now) - direct).abs() <= 1);
    }
}
