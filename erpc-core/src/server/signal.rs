//! Server-wide events (draining, closing) as connections see them, cheaply.
//!
//! A `CancellationToken` takes a lock to answer `is_cancelled()`, and a `cancelled()`
//! future takes one or two each time it is polled. A connection's reader checks for
//! these events between every two frames, so it reads them here instead: a [`Signal`]
//! answers from an atomic flag, and [`ReaderStops`] gathers the events one connection's
//! reader waits for behind one atomic word and one [`AtomicWaker`], raised by a small
//! watcher task that waits on the tokens once.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A one-way event (a cancellation token) whose state is read without a lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    token: CancellationToken,
    fired: Arc<AtomicBool>,
}

impl Signal {
    /// Fires the event (idempotent).
    pub(crate) fn cancel(&self) {
        self.fired.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// True once fired; one atomic load.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Completes once fired.
    pub(crate) fn cancelled(&self) -> impl Future<Output = ()> + '_ {
        self.token.cancelled()
    }
}

/// The reader should send goaway: the server drains.
pub(crate) const DRAIN: u8 = 1;
/// The reader should stop: the server closes or the connection's writer failed.
pub(crate) const STOP: u8 = 2;

/// Events a connection's reader reacts to, polled with no lock.
#[derive(Debug, Default)]
pub(crate) struct ReaderStops {
    raised: AtomicU8,
    waker: AtomicWaker,
}

impl ReaderStops {
    fn raise(&self, event: u8) {
        self.raised.fetch_or(event, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Completes once any event of `mask` is raised.
    pub(crate) fn raised(&self, mask: u8) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| self.poll_raised(cx, mask))
    }

    fn poll_raised(&self, cx: &mut Context<'_>, mask: u8) -> Poll<()> {
        if self.raised.load(Ordering::Acquire) & mask != 0 {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Raised between the load and the registration: the wake may have been missed.
        if self.raised.load(Ordering::Acquire) & mask != 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Raises `DRAIN` when `draining` fires and `STOP` when `closing` or `broken` does.
    /// The returned task must be aborted when the connection ends.
    pub(crate) fn watch(
        self: &Arc<Self>,
        draining: &Signal,
        closing: &Signal,
        broken: &CancellationToken,
    ) -> JoinHandle<()> {
        let (stops, draining, closing, broken) = (
            self.clone(),
            draining.token.clone(),
            closing.token.clone(),
            broken.clone(),
        );
        tokio::spawn(async move {
            let stop = async {
                tokio::select! {
                    () = closing.cancelled() => {}
                    () = broken.cancelled() => {}
                }
            };
            tokio::pin!(stop);
            tokio::select! {
                () = &mut stop => return stops.raise(STOP),
                () = draining.cancelled() => stops.raise(DRAIN),
            }
            stop.await;
            stops.raise(STOP);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh draining/closing/broken events and a watcher raising them.
    fn watched() -> (
        Signal,
        Signal,
        CancellationToken,
        Arc<ReaderStops>,
        JoinHandle<()>,
    ) {
        let (draining, closing, broken) = (
            Signal::default(),
            Signal::default(),
            CancellationToken::new(),
        );
        let stops = Arc::new(ReaderStops::default());
        let watcher = stops.watch(&draining, &closing, &broken);
        (draining, closing, broken, stops, watcher)
    }

    #[tokio::test]
    async fn the_watcher_raises_drain_then_stop() {
        let (draining, closing, broken, stops, watcher) = watched();
        let pending = futures::poll!(std::pin::pin!(stops.raised(DRAIN | STOP)));
        assert!(pending.is_pending());

        draining.cancel();
        assert!(draining.is_cancelled() && !closing.is_cancelled());
        stops.raised(DRAIN).await;
        assert!(futures::poll!(std::pin::pin!(stops.raised(STOP))).is_pending());

        broken.cancel();
        stops.raised(STOP).await;
        watcher.await.unwrap();
    }

    #[tokio::test]
    async fn closing_raises_stop_without_drain() {
        let (_draining, closing, _broken, stops, watcher) = watched();
        closing.cancel();
        stops.raised(STOP).await;
        watcher.await.unwrap();
        assert!(futures::poll!(std::pin::pin!(stops.raised(DRAIN))).is_pending());
    }
}
