//! Outlier ejection per provider endpoint (a circuit breaker).
//!
//! Closed: calls flow; consecutive failures or a high error rate over a window open it.
//! Open: the endpoint gets no calls until its ejection time passes (doubling on each
//! repeated ejection, up to a ceiling). Then one probe call is let through (half-open):
//! success closes the breaker, failure opens it again. Any success closes it: the
//! client may still call an ejected endpoint when every provider is ejected (see
//! `Tier::Panic`), and an answer proves the provider healthy again.
//!
//! A closed breaker is the common case: checking it is one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::time::Instant;

pub use crate::policy::BreakerPolicy;

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive: u32,
    window_start: Instant,
    window_calls: u32,
    window_failures: u32,
    ejections: u32,
}

/// One endpoint's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    policy: BreakerPolicy,
    /// True unless the state is closed; read without the lock.
    tripped: AtomicBool,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(crate) fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            tripped: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive: 0,
                window_start: Instant::now(),
                window_calls: 0,
                window_failures: 0,
                ejections: 0,
            }),
        }
    }

    /// True when a call may be sent now (closed, or open with its time up and no probe
    /// running yet). Does not change state.
    pub(crate) fn admits(&self, now: Instant) -> bool {
        if !self.tripped.load(Ordering::Acquire) {
            return true;
        }
        match self.inner.lock().state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probing } => !probing,
        }
    }

    /// Called when a call is actually sent: an expired open breaker becomes half-open
    /// with this call as its probe. Returns false if the call must not be sent.
    pub(crate) fn begin(&self) -> bool {
        if !self.tripped.load(Ordering::Acquire) {
            return true;
        }
        let mut inner = self.inner.lock();
        match inner.state {
            State::Closed => true,
            State::Open { until } if Instant::now() >= until => {
                inner.state = State::HalfOpen { probing: true };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => false,
        }
    }

    /// Records the outcome of a call that ended at `now`; true when it ejected the
    /// endpoint.
    pub(crate) fn record(&self, success: bool, now: Instant) -> bool {
        let mut inner = self.inner.lock();
        if now.duration_since(inner.window_start) > self.policy.window {
            inner.window_start = now;
            inner.window_calls = 0;
            inner.window_failures = 0;
        }
        inner.window_calls += 1;
        if success {
            inner.consecutive = 0;
            if !matches!(inner.state, State::Closed) {
                inner.state = State::Closed;
                inner.ejections = 0;
                inner.window_calls = 0;
                inner.window_failures = 0;
                self.tripped.store(false, Ordering::Release);
            }
            return false;
        }
        inner.consecutive += 1;
        inner.window_failures += 1;
        let rate_tripped = inner.window_calls >= self.policy.min_calls
            && f64::from(inner.window_failures)
                >= self.policy.error_rate * f64::from(inner.window_calls);
        let trip = match inner.state {
            State::HalfOpen { .. } => true,
            State::Closed => inner.consecutive >= self.policy.consecutive_failures || rate_tripped,
            State::Open { .. } => false,
        };
        if trip {
            let factor = 1u32 << inner.ejections.min(16);
            let ejection = self
                .policy
                .base_ejection
                .saturating_mul(factor)
                .min(self.policy.max_ejection);
            inner.ejections += 1;
            inner.state = State::Open {
                until: now + ejection,
            };
            self.tripped.store(true, Ordering::Release);
            inner.consecutive = 0;
            inner.window_calls = 0;
            inner.window_failures = 0;
            tracing::info!(?ejection, "endpoint ejected");
        }
        trip
    }

    /// Forgets every failure and ejection (the provider reappeared in the registry).
    pub(crate) fn reset(&self) {
        let mut inner = self.inner.lock();
        inner.state = State::Closed;
        inner.consecutive = 0;
        inner.ejections = 0;
        inner.window_calls = 0;
        inner.window_failures = 0;
        self.tripped.store(false, Ordering::Release);
    }

    /// Ends a probe that produced no verdict (the call was abandoned).
    pub(crate) fn abandon_probe(&self) {
        let mut inner = self.inner.lock();
        if let State::HalfOpen { probing: true } = inner.state {
            inner.state = State::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_calls: 10,
            window: Duration::from_secs(10),
            base_ejection: Duration::from_millis(100),
            max_ejection: Duration::from_millis(250),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_then_probe_closes() {
        let b = Breaker::new(policy());
        for _ in 0..2 {
            b.record(false, Instant::now());
        }
        assert!(b.admits(Instant::now()), "two failures must not eject");
        b.record(false, Instant::now());
        assert!(
            !b.admits(Instant::now()) && !b.begin(),
            "third failure ejects"
        );
        tokio::time::advance(Duration::from_millis(101)).await;
        assert!(b.admits(Instant::now()));
        assert!(b.begin(), "probe allowed");
        assert!(
            !b.admits(Instant::now()) && !b.begin(),
            "only one probe at a time"
        );
        b.record(true, Instant::now());
        assert!(
            b.admits(Instant::now()) && b.begin(),
            "successful probe closes"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens_for_longer_up_to_the_ceiling() {
        let b = Breaker::new(policy());
        for _ in 0..3 {
            b.record(false, Instant::now());
        }
        tokio::time::advance(Duration::from_millis(101)).await;
        assert!(b.begin());
        b.record(false, Instant::now());
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(!b.admits(Instant::now()), "second ejection lasts 200 ms");
        tokio::time::advance(Duration::from_millis(60)).await;
        assert!(b.begin());
        b.record(false, Instant::now());
        tokio::time::advance(Duration::from_millis(251)).await;
        assert!(b.admits(Instant::now()), "ejection capped at 250 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn error_rate_ejects_without_consecutive_run() {
        let b = Breaker::new(policy());
        for i in 0..10 {
            b.record(i % 2 == 0, Instant::now());
        }
        assert!(
            !b.admits(Instant::now()),
            "50% failures over 10 calls eject"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_probe_lets_another_probe_through() {
        let b = Breaker::new(policy());
        for _ in 0..3 {
            b.record(false, Instant::now());
        }
        tokio::time::advance(Duration::from_millis(101)).await;
        assert!(b.begin());
        b.abandon_probe();
        assert!(b.begin());
    }

    #[tokio::test(start_paused = true)]
    async fn any_success_closes_and_reset_forgets() {
        let b = Breaker::new(policy());
        for _ in 0..3 {
            b.record(false, Instant::now());
        }
        assert!(!b.admits(Instant::now()));
        // A call sent anyway (every provider ejected) succeeded.
        b.record(true, Instant::now());
        assert!(b.admits(Instant::now()) && b.begin());
        for _ in 0..3 {
            b.record(false, Instant::now());
        }
        b.reset();
        assert!(b.admits(Instant::now()) && b.begin());
    }
}
