//! A retry budget: retries may add at most a fraction of the call volume, so a sick
//! cluster is not hammered by every caller retrying every failure.
//!
//! Each call deposits `ratio` tokens, each retry withdraws one; a small reserve refills
//! over time so that a quiet client can still retry now and then.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use crate::policy::RetryBudgetPolicy;

/// Tokens are kept in thousandths so that deposits (one per call, on the hot path) are
/// a single atomic update; the rare withdrawals also refill the time-based reserve.
const MILLI: f64 = 1000.0;

/// Token account shared by all calls of a client.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    deposit_milli: i64,
    refill_milli_per_sec: f64,
    cap_milli: i64,
    tokens_milli: AtomicI64,
    refilled: Mutex<Instant>,
}

impl RetryBudget {
    pub(crate) fn new(policy: RetryBudgetPolicy) -> Self {
        // The balance never exceeds ten seconds' worth of the reserve plus 100 calls'
        // deposits, so a long quiet period cannot bank a retry storm.
        let cap = policy.min_per_second * 10.0 + policy.ratio * 100.0;
        let cap_milli = (cap * MILLI) as i64;
        Self {
            deposit_milli: (policy.ratio * MILLI) as i64,
            refill_milli_per_sec: policy.min_per_second * MILLI,
            cap_milli,
            tokens_milli: AtomicI64::new(cap_milli),
            refilled: Mutex::new(Instant::now()),
        }
    }

    fn add(&self, milli: i64) {
        let cap = self.cap_milli;
        let _ = self
            .tokens_milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + milli).min(cap))
            });
    }

    /// Records a call.
    pub(crate) fn deposit(&self) {
        if self.deposit_milli > 0 {
            self.add(self.deposit_milli);
        }
    }

    /// Takes one retry from the budget; false when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        {
            let mut refilled = self.refilled.lock();
            let now = Instant::now();
            let elapsed = now.duration_since(*refilled).min(Duration::from_secs(60));
            *refilled = now;
            self.add((elapsed.as_secs_f64() * self.refill_milli_per_sec) as i64);
        }
        self.tokens_milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                (t >= MILLI as i64).then(|| t - MILLI as i64)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_are_capped_at_the_ratio_of_calls() {
        let budget = RetryBudget::new(RetryBudgetPolicy {
            ratio: 0.1,
            min_per_second: 0.0,
        });
        // Spend the initial balance.
        while budget.withdraw() {}
        for _ in 0..100 {
            budget.deposit();
        }
        let allowed = (0..100).filter(|_| budget.withdraw()).count();
        assert!(
            (9..=10).contains(&allowed),
            "allowed {allowed} retries for 100 calls"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reserve_refills_over_time() {
        let budget = RetryBudget::new(RetryBudgetPolicy {
            ratio: 0.0,
            min_per_second: 2.0,
        });
        while budget.withdraw() {}
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw());
    }
}
