//! Calling a tower service that is almost always ready without `Oneshot`'s detour.

use std::task::{Context, Poll, Waker};

use futures_util::future::Either;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

/// Calls `service` with `req`: straight away if it is ready now, else through `Oneshot`,
/// which waits for readiness with the caller's waker.
///
/// The gateway's own layers are always ready. Asking once with a no-op waker and calling
/// directly spares a `Oneshot` state machine per request, and with it a move of the
/// request and of the whole inner future into that state machine (these moves were a
/// measurable share of the `memcpy` in a proxied request's profile).
pub(crate) fn call<S, R>(mut service: S, req: R) -> Either<S::Future, Oneshot<S, R>>
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => Either::Left(service.call(req)),
        // Not ready, or failed: `Oneshot` polls again and reports either properly.
        Poll::Ready(Err(_)) | Poll::Pending => Either::Right(service.oneshot(req)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Ready after `pending` polls of `poll_ready` (waking the caller each time), or
    /// failing readiness when `fail` is set.
    #[derive(Clone)]
    struct Slow {
        polls: Arc<AtomicUsize>,
        pending: usize,
        fail: bool,
    }

    impl Service<u32> for Slow {
        type Response = u32;
        type Error = &'static str;
        type Future = std::future::Ready<Result<u32, &'static str>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if self.fail {
                return Poll::Ready(Err("broken"));
            }
            if self.polls.fetch_add(1, Ordering::SeqCst) < self.pending {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: u32) -> Self::Future {
            std::future::ready(Ok(req * 2))
        }
    }

    fn slow(pending: usize, fail: bool) -> Slow {
        Slow {
            polls: Arc::new(AtomicUsize::new(0)),
            pending,
            fail,
        }
    }

    #[tokio::test]
    async fn a_ready_service_is_called_directly() {
        let future = call(slow(0, false), 21);
        assert!(matches!(future, Either::Left(_)));
        assert_eq!(future.await.unwrap(), 42);
    }

    #[tokio::test]
    async fn a_service_that_is_not_ready_is_waited_for() {
        let service = slow(3, false);
        let polls = service.polls.clone();
        let future = call(service, 21);
        assert!(matches!(future, Either::Right(_)));
        assert_eq!(future.await.unwrap(), 42);
        assert_eq!(polls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn failed_readiness_is_reported() {
        assert_eq!(call(slow(0, true), 21).await.unwrap_err(), "broken");
    }
}
