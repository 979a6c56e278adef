//! A retry budget: retries may add at most a fraction of the call volume, so a sick
//! cluster is not hammered by every caller retrying every failure.
//!
//! Each call deposits `ratio` tokens, each retry withdraws one; a small reserve refills
//! over time so that a quiet client can still retry now and then.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How many retries the budget allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetPolicy {
    /// Retries allowed per call made (0.2 = at most 20% extra load).
    pub ratio: f64,
    /// Retries allowed per second regardless of volume.
    pub min_per_second: f64,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10.0,
        }
    }
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
}

/// Token account shared by all calls of a client.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    policy: RetryBudgetPolicy,
    cap: f64,
    state: Mutex<State>,
}

impl RetryBudget {
    pub(crate) fn new(policy: RetryBudgetPolicy) -> Self {
        // The balance never exceeds ten seconds' worth of the reserve plus 100 calls'
        // deposits, so a long quiet period cannot bank a retry storm.
        let cap = policy.min_per_second * 10.0 + policy.ratio * 100.0;
        Self {
            policy,
            cap,
            state: Mutex::new(State {
                tokens: cap,
                refilled: Instant::now(),
            }),
        }
    }

    /// Records a call.
    pub(crate) fn deposit(&self) {
        let mut state = self.state.lock();
        state.tokens = (state.tokens + self.policy.ratio).min(self.cap);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        let mut state = self.state.lock();
        let now = Instant::now();
        let elapsed = now
            .duration_since(state.refilled)
            .min(Duration::from_secs(60));
        state.tokens =
            (state.tokens + elapsed.as_secs_f64() * self.policy.min_per_second).min(self.cap);
        state.refilled = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
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
