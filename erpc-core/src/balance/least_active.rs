//! Least active: the provider with the fewest calls in flight from this client.
//!
//! A slow or overloaded provider holds on to its calls, so its in-flight count
//! grows and it is picked less — load follows capacity without any latency
//! measurement. Ties (common when load is light) are broken by weighted random, so
//! weights still matter and equal providers share evenly.

use super::random::{pick_weighted, rng, PickRng};
use super::{Candidates, LoadBalancer, PickContext, Picker};
use crate::registry::Provider;

/// Fewest in-flight calls wins; ties by weighted random.
#[derive(Debug)]
pub struct LeastActive {
    seed: Option<u64>,
}

impl LeastActive {
    /// Tie-breaking RNG seeded from the operating system.
    pub fn new() -> Self {
        Self { seed: None }
    }

    /// Deterministic tie-breaking, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self { seed: Some(seed) }
    }
}

impl Default for LeastActive {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer for LeastActive {
    fn picker(&self, _: &[Provider]) -> Box<dyn Picker> {
        Box::new(LeastActivePicker {
            rng: rng(self.seed),
        })
    }
}

/// Needs no per-list state beyond its RNG: it compares live in-flight counts.
#[derive(Debug)]
struct LeastActivePicker {
    rng: PickRng,
}

impl Picker for LeastActivePicker {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let mut least = usize::MAX;
        let mut first = None;
        let mut ties = 0usize;
        for (i, c) in candidates.eligible() {
            if c.in_flight < least {
                least = c.in_flight;
                first = Some(i);
                ties = 1;
            } else if c.in_flight == least {
                ties += 1;
            }
        }
        if ties <= 1 {
            return first;
        }
        let in_flight = |i: usize| candidates.get(i).map(|c| c.in_flight);
        self.rng
            .with(|rng| pick_weighted(candidates, rng, |i| in_flight(i) == Some(least)))
            .or(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{candidates, providers, shares};

    #[test]
    fn fewer_in_flight_always_wins() {
        let providers = providers(&[("a:1", 100), ("b:1", 1_000), ("c:1", 100)]);
        let mut candidates = candidates(&providers);
        candidates[0].in_flight = 3;
        candidates[1].in_flight = 2;
        candidates[2].in_flight = 1;
        let share = shares(&LeastActive::seeded(1), &candidates, 1_000);
        assert_eq!(share, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn ties_spread_by_weight() {
        let providers = providers(&[("a:1", 100), ("b:1", 300), ("c:1", 100)]);
        let mut candidates = candidates(&providers);
        candidates[0].in_flight = 1;
        candidates[1].in_flight = 1;
        candidates[2].in_flight = 2;
        let share = shares(&LeastActive::seeded(2), &candidates, 40_000);
        assert_eq!(share[2], 0.0);
        assert!((0.23..0.27).contains(&share[0]), "a got {}", share[0]);
    }

    #[test]
    fn idle_equal_providers_share_evenly() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let candidates = candidates(&providers);
        let share = shares(&LeastActive::seeded(3), &candidates, 30_000);
        assert!(share.iter().all(|s| (0.31..0.36).contains(s)), "{share:?}");
    }
}
