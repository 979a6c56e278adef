//! Weighted random: each provider is chosen with probability weight / total weight.
//!
//! Stateless apart from the RNG, so it is the cheapest balancer and never needs
//! cleanup when providers come and go; [`pick_weighted`] is shared with
//! [`LeastActive`](super::LeastActive) to break ties.

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{weight_of, Candidate, LoadBalancer, PickContext};

/// Weighted random choice (weights from registry metadata; 0 counts as 1).
#[derive(Debug)]
pub struct WeightedRandom {
    rng: Mutex<SmallRng>,
}

impl WeightedRandom {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self {
            rng: Mutex::new(SmallRng::from_entropy()),
        }
    }

    /// Deterministic, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
        }
    }
}

impl Default for WeightedRandom {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer for WeightedRandom {
    fn pick(&self, candidates: &[Candidate<'_>], _: &PickContext<'_>) -> Option<usize> {
        match candidates.len() {
            0 => None,
            1 => Some(0),
            _ => pick_weighted(candidates, &mut self.rng.lock(), |_| true),
        }
    }
}

/// Weighted random index among the candidates that satisfy `keep`, in two passes
/// and without allocating; `None` when none is kept.
pub(super) fn pick_weighted(
    candidates: &[Candidate<'_>],
    rng: &mut SmallRng,
    keep: impl Fn(&Candidate<'_>) -> bool,
) -> Option<usize> {
    let total: u64 = candidates.iter().filter(|c| keep(c)).map(weight_of).sum();
    if total == 0 {
        return None;
    }
    let mut point = rng.gen_range(0..total);
    let mut last = None;
    for (i, c) in candidates.iter().enumerate().filter(|(_, c)| keep(c)) {
        let w = weight_of(c);
        if point < w {
            return Some(i);
        }
        point -= w;
        last = Some(i);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{candidates, providers, shares};

    #[test]
    fn picks_follow_weights() {
        let providers = providers(&[("a:1", 100), ("b:1", 300)]);
        let candidates = candidates(&providers);
        let balancer = WeightedRandom::seeded(7);
        let share = shares(&balancer, &candidates, 40_000);
        assert!((0.73..0.77).contains(&share[1]), "b got {}", share[1]);
    }

    #[test]
    fn zero_weight_counts_as_one() {
        let providers = providers(&[("a:1", 0), ("b:1", 1)]);
        let candidates = candidates(&providers);
        let share = shares(&WeightedRandom::seeded(3), &candidates, 20_000);
        assert!((0.47..0.53).contains(&share[0]), "a got {}", share[0]);
    }

    #[test]
    fn empty_and_single() {
        let balancer = WeightedRandom::seeded(1);
        assert_eq!(balancer.pick(&[], &PickContext::default()), None);
        let providers = providers(&[("a:1", 100)]);
        let candidates = candidates(&providers);
        assert_eq!(balancer.pick(&candidates, &PickContext::default()), Some(0));
    }

    #[test]
    fn pick_weighted_respects_filter() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let candidates = candidates(&providers);
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..1_000 {
            let i = pick_weighted(&candidates, &mut rng, |c| c.provider.addr != "b:1");
            assert!(matches!(i, Some(0 | 2)), "{i:?}");
        }
        assert_eq!(pick_weighted(&candidates, &mut rng, |_| false), None);
    }
}
