//! Runs an admitted call under the server's [`Dispatch`]: its first poll on the
//! connection's reader (adaptive), or as its own task.
//!
//! A method whose first poll ran long is spawned from the start for a while
//! ([`MethodPace`]), so one CPU-heavy method does not keep holding up its connections.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::policy::Dispatch;

/// A first poll longer than this marks its method as one to spawn.
const LONG_FIRST_POLL: Duration = Duration::from_micros(100);
/// Calls spawned after the first long first poll, before the reader tries again.
const FIRST_STREAK: u32 = 256;
/// The longest streak: a method that stays long is still tried once in this many calls.
const LONGEST_STREAK: u32 = 1 << 16;

/// What one method's first polls have looked like, shared by every connection.
#[derive(Debug, Default)]
pub(crate) struct MethodPace {
    /// Calls still to spawn from the start before the reader tries this method again.
    spawn_next: AtomicU32,
    /// The streak the next long first poll starts: doubles while the method stays
    /// long, back to none after a short one.
    streak: AtomicU32,
}

impl MethodPace {
    /// Whether this call's first poll may run on the reader (counts a spawned call).
    fn try_inline(&self) -> bool {
        if self.spawn_next.load(Ordering::Relaxed) == 0 {
            return true;
        }
        // Several connections count down at once: never below zero.
        let _ = self
            .spawn_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        false
    }

    /// Notes how long a first poll on the reader took.
    fn record(&self, took: Duration) {
        if took <= LONG_FIRST_POLL {
            if self.streak.load(Ordering::Relaxed) != 0 {
                self.streak.store(0, Ordering::Relaxed);
            }
            return;
        }
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
/// spawned if it has more to do; spawned at once otherwise.
pub(crate) fn run_call<F>(dispatch: Dispatch, pace: &MethodPace, call: Pin<Box<F>>) -> Inline
where
    F: Future<Output = ()> + Send + 'static,
{
    if dispatch == Dispatch::Spawn || !pace.try_inline() {
        tokio::spawn(call);
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

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_millis(1);
    const SHORT: Duration = Duration::from_micros(1);

    fn spawned_before_next_try(pace: &MethodPace) -> u32 {
        let mut spawned = 0;
        while !pace.try_inline() {
            spawned += 1;
        }
        spawned
    }

    #[test]
    fn a_long_first_poll_spawns_a_growing_streak_and_a_short_one_ends_it() {
        let pace = MethodPace::default();
        assert!(pace.try_inline(), "a method starts on the reader");
        pace.record(SHORT);
        assert!(pace.try_inline());

        pace.record(LONG);
        assert_eq!(spawned_before_next_try(&pace), FIRST_STREAK);
        pace.record(LONG);
        assert_eq!(spawned_before_next_try(&pace), 2 * FIRST_STREAK);
        for _ in 0..20 {
            pace.record(LONG);
        }
        assert_eq!(spawned_before_next_try(&pace), LONGEST_STREAK);

        pace.record(SHORT);
        assert!(pace.try_inline(), "short again: back on the reader");
        pace.record(LONG);
        assert_eq!(spawned_before_next_try(&pace), FIRST_STREAK);
    }
}
