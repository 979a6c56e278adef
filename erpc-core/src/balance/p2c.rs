//! Power of two choices over peak-EWMA latency (as in Finagle, Linkerd and tower).
//!
//! Each pick draws two distinct candidates at random and keeps the cheaper one,
//! where cost = latency × (in-flight + 1) / weight. Latency is the client's
//! peak-EWMA round-trip estimate ([`Candidate::latency`]): it jumps up at once on a
//! slow response and decays slowly, so a provider that turns slow is avoided
//! quickly. Multiplying by the in-flight count makes a fast provider that is
//! already busy lose to an idle slower one, so load never piles onto one provider.
//! Two random choices rather than the global minimum keep picks O(1) and stop every
//! client from herding onto the same "best" provider.
//!
//! A provider without a latency sample yet is costed with the configured
//! [`PowerOfTwoChoices::unknown_latency`] if any, otherwise with the latency of the
//! candidate it is compared with, i.e. neutrally: it competes on load alone, gets
//! traffic, and so gets measured. When neither is known, only load decides.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;

use super::random::{rng, PickRng};
use super::{eligible_indexes, Candidate, Candidates, LoadBalancer, PickContext, Picker};
use crate::registry::Provider;

/// Latency-aware power of two choices (cost = peak-EWMA latency × (in-flight + 1) / weight).
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    seed: Option<u64>,
    unknown_latency: Option<Duration>,
}

impl PowerOfTwoChoices {
    /// RNG seeded from the operating system; unknown latencies are neutral.
    pub fn new() -> Self {
        Self {
            seed: None,
            unknown_latency: None,
        }
    }

    /// Deterministic, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed: Some(seed),
            unknown_latency: None,
        }
    }

    /// Costs providers without a latency sample as if they answered in `latency`
    /// (a low value probes new providers eagerly, a high one keeps them cold).
    pub fn unknown_latency(mut self, latency: Duration) -> Self {
        self.unknown_latency = Some(latency);
        self
    }
}

impl Default for PowerOfTwoChoices {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer for PowerOfTwoChoices {
    fn picker(&self, _: &[Provider]) -> Box<dyn Picker> {
        Box::new(P2cPicker {
            rng: rng(self.seed),
            unknown_latency: self.unknown_latency,
        })
    }
}

/// Needs no per-list state beyond its RNG: it compares two live candidates.
#[derive(Debug)]
struct P2cPicker {
    rng: PickRng,
    unknown_latency: Option<Duration>,
}

/// Draws of a pair before falling back to a scan of the eligible candidates.
const DRAWS: usize = 4;

impl P2cPicker {
    fn latency(&self, of: &Candidate<'_>, other: &Candidate<'_>) -> Option<Duration> {
        of.latency.or(self.unknown_latency).or(other.latency)
    }

    /// The cheaper of candidates `i` and `j`; `i` wins ties (it is already random).
    fn cheaper(&self, candidates: &Candidates<'_>, i: usize, j: usize) -> Option<usize> {
        let (a, b) = (candidates.get(i)?, candidates.get(j)?);
        let cost_a = cost(&a, self.latency(&a, &b));
        let cost_b = cost(&b, self.latency(&b, &a));
        Some(if cost_b < cost_a { j } else { i })
    }
}

/// Two distinct random indexes below `n` (n ≥ 2).
fn pair(rng: &mut SmallRng, n: usize) -> (usize, usize) {
    let i = rng.gen_range(0..n);
    let j = rng.gen_range(0..n - 1);
    (i, if j >= i { j + 1 } else { j })
}

impl Picker for P2cPicker {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let n = candidates.len();
        if n < 2 {
            return (n == 1 && candidates.is_eligible(0)).then_some(0);
        }
        let drawn = self.rng.with(|rng| {
            (0..DRAWS)
                .map(|_| pair(rng, n))
                .find(|&(i, j)| candidates.is_eligible(i) && candidates.is_eligible(j))
        });
        if let Some((i, j)) = drawn {
            return self.cheaper(candidates, i, j);
        }
        // Most providers may not be called now (tried, ejected): choose among the rest.
        let eligible = eligible_indexes(candidates);
        match eligible.len() {
            0 => None,
            1 => Some(eligible[0]),
            m => {
                let (i, j) = self.rng.with(|rng| pair(rng, m));
                self.cheaper(candidates, eligible[i], eligible[j])
            }
        }
    }
}

fn cost(c: &Candidate<'_>, latency: Option<Duration>) -> f64 {
    // A floor keeps load in the formula when a latency rounds to zero.
    let seconds = latency.map_or(1.0, |d| d.as_secs_f64().max(1e-6));
    seconds * (c.in_flight as f64 + 1.0) / super::provider_weight(c.provider) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{candidates, providers, shares, shares_among};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slow_provider_is_avoided() {
        let providers = providers(&[("a:1", 100), ("slow:1", 100), ("c:1", 100), ("d:1", 100)]);
        let mut candidates = candidates(&providers);
        for c in &mut candidates {
            c.latency = Some(MS);
        }
        candidates[1].latency = Some(50 * MS);
        let share = shares(&PowerOfTwoChoices::seeded(1), &candidates, 10_000);
        assert!(share[1] < 0.05, "slow got {}", share[1]);
        for fast in [0, 2, 3] {
            assert!((0.30..0.37).contains(&share[fast]), "{share:?}");
        }
    }

    #[test]
    fn busy_fast_provider_loses_to_idle_slow_one() {
        let providers = providers(&[("fast:1", 100), ("slow:1", 100)]);
        let mut candidates = candidates(&providers);
        candidates[0].latency = Some(MS);
        candidates[1].latency = Some(50 * MS);
        candidates[0].in_flight = 99; // cost 100 ms vs 50 ms
        let balancer = PowerOfTwoChoices::seeded(2);
        assert_eq!(shares(&balancer, &candidates, 100), vec![0.0, 1.0]);
        candidates[0].in_flight = 40; // cost 41 ms vs 50 ms
        assert_eq!(shares(&balancer, &candidates, 100), vec![1.0, 0.0]);
    }

    #[test]
    fn two_candidates_are_always_compared() {
        let providers = providers(&[("a:1", 100), ("b:1", 300)]);
        let mut candidates = candidates(&providers);
        candidates[0].latency = Some(MS);
        candidates[1].latency = Some(MS);
        candidates[0].in_flight = 1; // 2 / 100 against 1 / 300
        let share = shares(&PowerOfTwoChoices::seeded(3), &candidates, 1_000);
        assert_eq!(share, vec![0.0, 1.0]);
    }

    #[test]
    fn equal_providers_share_evenly() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100), ("d:1", 100)]);
        let candidates = candidates(&providers);
        let share = shares(&PowerOfTwoChoices::seeded(4), &candidates, 40_000);
        assert!(share.iter().all(|s| (0.23..0.27).contains(s)), "{share:?}");
    }

    #[test]
    fn unknown_latency_is_neutral_unless_configured() {
        let providers = providers(&[("known:1", 100), ("new:1", 100)]);
        let mut candidates = candidates(&providers);
        candidates[0].latency = Some(5 * MS);
        let share = shares(&PowerOfTwoChoices::seeded(5), &candidates, 10_000);
        assert!((0.47..0.53).contains(&share[1]), "new got {}", share[1]);
        let eager = PowerOfTwoChoices::seeded(5).unknown_latency(Duration::from_micros(100));
        assert_eq!(shares(&eager, &candidates, 100), vec![0.0, 1.0]);
        let wary = PowerOfTwoChoices::seeded(5).unknown_latency(100 * MS);
        assert_eq!(shares(&wary, &candidates, 100), vec![1.0, 0.0]);
    }

    #[test]
    fn ineligible_providers_are_never_picked() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100), ("d:1", 100)]);
        let share = shares_among(&PowerOfTwoChoices::seeded(7), &providers, &[1, 3], 10_000);
        assert_eq!((share[0], share[2]), (0.0, 0.0));
        assert!((0.45..0.55).contains(&share[1]), "{share:?}");
        let one = shares_among(&PowerOfTwoChoices::seeded(7), &providers, &[2], 100);
        assert_eq!(one, vec![0.0, 0.0, 1.0, 0.0]);
    }
}
