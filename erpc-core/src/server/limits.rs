//! Per-service and per-method overload protection: concurrency limits and token-bucket
//! rate limits. Over a limit a call is answered `Overloaded` at once, never queued into
//! a timeout, so the consumer can retry it on another provider right away.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use crate::policy::LimitRule;

/// A token bucket: `rate` tokens per second, at most `capacity` stored.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    fn new(rate: f64, capacity: f64) -> Self {
        let capacity = capacity.max(1.0);
        Self {
            rate,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    fn try_take(&self) -> bool {
        let mut state = self.state.lock();
        let now = Instant::now();
        let elapsed = now.duration_since(state.1).min(Duration::from_secs(3600));
        state.0 = (state.0 + elapsed.as_secs_f64() * self.rate).min(self.capacity);
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The checks of one rule.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    concurrency: Option<(Arc<Semaphore>, usize)>,
    rate: Option<TokenBucket>,
}

/// Permits held while a call runs; dropping it frees the concurrency slots.
#[derive(Debug, Default)]
pub(crate) struct Admission(Vec<OwnedSemaphorePermit>);

impl Gate {
    pub(crate) fn from_rule(rule: &LimitRule) -> Self {
        Self {
            concurrency: rule
                .max_concurrency
                .map(|n| (Arc::new(Semaphore::new(n)), n)),
            rate: rule
                .rate_per_second
                .map(|rate| TokenBucket::new(rate, rule.burst.unwrap_or(rate))),
        }
    }

    /// Admits a call into `admission`, or says which limit refused it (`what` names
    /// the limited thing; it is only built for a refusal).
    pub(crate) fn admit(
        &self,
        admission: &mut Admission,
        what: impl FnOnce() -> String,
    ) -> Result<(), String> {
        if let Some((semaphore, limit)) = &self.concurrency {
            match semaphore.clone().try_acquire_owned() {
                Ok(permit) => admission.0.push(permit),
                Err(_) => {
                    let what = what();
                    return Err(format!(
                        "{what} is at its limit of {limit} concurrent calls"
                    ));
                }
            }
        }
        if let Some(bucket) = &self.rate {
            if !bucket.try_take() {
                let what = what();
                return Err(format!(
                    "{what} is over its rate limit of {}/s",
                    bucket.rate
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn concurrency_limit_refuses_and_frees() {
        let gate = Gate::from_rule(&LimitRule::service("s").max_concurrency(2));
        let (mut a, mut b, mut c) = (
            Admission::default(),
            Admission::default(),
            Admission::default(),
        );
        assert!(gate.admit(&mut a, || "s".into()).is_ok());
        assert!(gate.admit(&mut b, || "s".into()).is_ok());
        let refused = gate.admit(&mut c, || "s".into()).unwrap_err();
        assert!(refused.contains("limit of 2"), "{refused}");
        drop(a);
        assert!(gate.admit(&mut c, || "s".into()).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_allows_burst_then_rate() {
        let gate = Gate::from_rule(&LimitRule::service("s").rate(10.0, 3.0));
        let mut admission = Admission::default();
        let burst = (0..10)
            .filter(|_| gate.admit(&mut admission, || "s".into()).is_ok())
            .count();
        assert_eq!(burst, 3);
        tokio::time::advance(Duration::from_millis(500)).await;
        let refill = (0..10)
            .filter(|_| gate.admit(&mut admission, || "s".into()).is_ok())
            .count();
        assert_eq!(refill, 3, "bucket caps at 3 even after 5 tokens of refill");
    }
}
