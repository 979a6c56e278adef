//! Runs an admitted call under the server's [`Dispatch`]: its first poll on the
//! connection's reader (adaptive), or as its own task.
//!
//! The reader runs a call's first poll only for a method whose last first poll was
//! short ([`MethodPace`]). Every adaptive call's first poll is timed, on the reader or
//! in its own task, so the reader never has to try a method to learn its pace: a
//! method's first call, and every call of a method whose first polls run long, start as
//! their own task. One CPU-heavy method therefore never holds up its connections.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::policy::Dispatch;

/// A first poll longer than this marks its method as one to spawn.
const LONG_FIRST_POLL: Duration = Duration::from_micros(100);
/// Calls spawned after the first long first poll, even if their first polls are short.
const FIRST_STREAK: u32 = 256;
/// The longest streak, reached by a method whose first polls keep turning long again.
const LONGEST_STREAK: u32 = 1 << 16;

/// What one method's first polls have looked like, shared by every connection. The
/// default is a method not called yet: its first call is spawned (and timed).
#[derive(Debug, Default)]
pub(crate) struct MethodPace {
    /// Whether the last first poll timed was short (none is known at first).
    short: AtomicBool,
    /// Calls still to spawn after a long first poll, whatever their own first polls:
    /// a method that is sometimes long stays off the reader for a while.
    spawn_next: AtomicU32,
    /// The streak the next long first poll starts: doubles while long first polls
    /// keep coming, back to none after a short one on the reader.
    streak: AtomicU32,
}

impl MethodPace {
    /// Whether this call's first poll may run on the reader (counts a spawned call).
    fn try_inline(&self) -> bool {
        if self.spawn_next.load(Ordering::Relaxed) != 0 {
            // Several connections count down at once: never below zero.
            let _ = self
                .spawn_next
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            return false;
        }
        self.short.load(Ordering::Relaxed)
    }

    /// Notes how long a first poll took, on the reader or in the call's own task.
    fn record(&self, took: Duration) {
        if took <= LONG_FIRST_POLL {
            if !self.short.load(Ordering::Relaxed) {
                self.short.store(true, Ordering::Relaxed);
            }
            if self.streak.load(Ordering::Relaxed) != 0
                && self.spawn_next.load(Ordering::Relaxed) == 0
            {
                self.streak.store(0, Ordering::Relaxed);
            }
            return;
        }
        self.short.store(false, Ordering::Relaxed);
        let streak = self
            .streak
            .load(Ordering::Relaxed)
            .saturating_mul(2)
            .clamp(FIRST_STREAK, LONGEST_STREAK);
        self.streak.store(streak, Ordering::Relaxed);
        self.spawn_next.store(streak, Ordering::Relaxed);
    }
}

/// How a call's first poll on the reader ended.
pub(crate) enum Inline {
    /// The call finished (its answer is queued) or continues as its own task.
    Done,
    /// The call panicked outside its filters and handler (which catch their own
    /// panics); it is dropped, and the connection goes on.
    Panicked(String),
}

/// Runs `call`: polled once here when `dispatch` and the method's pace allow, and
/// spawned if it has more to do; spawned at once otherwise (adaptive: with its first
/// poll timed for `pace`).
pub(crate) fn run_call<F>(dispatch: Dispatch, pace: &Arc<MethodPace>, call: Pin<Box<F>>) -> Inline
where
    F: Future<Output = ()> + Send + 'static,
{
    if dispatch == Dispatch::Spawn {
        tokio::spawn(call);
        return Inline::Done;
    }
    if !pace.try_inline() {
        tokio::spawn(FirstPollTimed {
            call,
            pace: Some(pace.clone()),
        });
        return Inline::Done;
    }
    let mut call = call;
    // No waker is kept: a call still pending is spawned now, and the runtime polls a
    // new task at once, with the task's own waker.
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let began = Instant::now();
    let polled = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)));
    pace.record(began.elapsed());
    match polled {
        Ok(Poll::Ready(())) => Inline::Done,
        Ok(Poll::Pending) => {
            tokio::spawn(call);
            Inline::Done
        }
        Err(panic) => Inline::Panicked(crate::filter::panic_message(&*panic)),
    }
}

/// A spawned call whose first poll is timed for its method's [`MethodPace`].
struct FirstPollTimed<F> {
    call: Pin<Box<F>>,
    /// Taken by the first poll.
    pace: Option<Arc<MethodPace>>,
}

impl<F: Future<Output = ()>> Future for FirstPollTimed<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(pace) = self.pace.take() else {
            return self.call.as_mut().poll(cx);
        };
        let began = Instant::now();
        let polled = self.call.as_mut().poll(cx);
        pace.record(began.elapsed());
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(1);
    const SHORT: Duration = Duration::from_micros(1);

    /// How many of the next `calls` calls would run on the reader.
    fn inline_of(pace: &MethodPace, calls: u32) -> u32 {
        (0..calls).map(|_| u32::from(pace.try_inline())).sum()
    }

    #[test]
    fn a_method_starts_as_its_own_task_and_moves_to_the_reader_after_a_short_first_poll() {
        let pace = MethodPace::default();
        assert_eq!(inline_of(&pace, 10), 0, "nothing is known of a new method");
        pace.record(SHORT);
        assert_eq!(inline_of(&pace, 10), 10);
    }

    #[test]
    fn a_long_first_poll_keeps_its_method_off_the_reader_until_one_is_short_again() {
        let pace = MethodPace::default();
        pace.record(SHORT);
        pace.record(LONG);
        // The streak is spent, but no first poll since was short: still spawned (the
        // reader used to try such a method again here, and was held up by it).
        assert_eq!(inline_of(&pace, FIRST_STREAK + 100), 0);
        pace.record(SHORT);
        assert_eq!(inline_of(&pace, 10), 10, "short again: back on the reader");
    }

    #[test]
    fn long_first_polls_that_keep_coming_back_grow_the_streak_a_short_one_on_the_reader_ends_it() {
        let pace = MethodPace::default();
        pace.record(SHORT);
        pace.record(LONG);
        // A spawned call's short first poll does not end the streak.
        pace.record(SHORT);
        assert_eq!(inline_of(&pace, FIRST_STREAK), 0);
        assert!(pace.try_inline(), "after the streak: on the reader");

        pace.record(LONG);
        assert_eq!(pace.spawn_next.load(Ordering::Relaxed), 2 * FIRST_STREAK);
        for _ in 0..20 {
            pace.record(LONG);
        }
        assert_eq!(pace.spawn_next.load(Ordering::Relaxed), LONGEST_STREAK);

        // Short on the reader, once the streak is over: the next long one starts over.
        pace.spawn_next.store(0, Ordering::Relaxed);
        pace.record(SHORT);
        pace.record(LONG);
        assert_eq!(pace.spawn_next.load(Ordering::Relaxed), FIRST_STREAK);
    }
}
