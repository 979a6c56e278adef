//! Weighted random: each provider is chosen with probability weight / total weight.
//!
//! The picker keeps the prefix sums of its list's weights, so a pick is one random
//! draw and a binary search; [`pick_weighted`] (a scan) is shared with
//! [`LeastActive`](super::LeastActive) to break ties and serves the rare pick whose
//! draw lands on a provider that may not be called now.

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{provider_weight, Candidates, LoadBalancer, PickContext, Picker};
use crate::registry::Provider;

/// Weighted random choice (weights from registry metadata; weight-0 providers are drained before any balancer sees them).
#[derive(Debug)]
pub struct WeightedRandom {
    seed: Option<u64>,
}

impl WeightedRandom {
    /// Seeded from the operating system.
    pub fn new() -> Self {
        Self { seed: None }
    }

    /// Deterministic, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self { seed: Some(seed) }
    }
}

impl Default for WeightedRandom {
    fn default() -> Self {
        Self::new()
    }
}

/// A picker's random numbers: a seeded generator behind a lock (tests want the same
/// sequence every run), or, unseeded, the calling thread's own generator, so that
/// concurrent picks of one service share no lock and no cache line.
#[derive(Debug)]
pub(super) enum PickRng {
    /// Deterministic, for tests.
    Seeded(Mutex<SmallRng>),
    /// One generator per thread, seeded from the operating system.
    PerThread,
}

thread_local! {
    static THREAD_RNG: std::cell::RefCell<SmallRng> =
        std::cell::RefCell::new(SmallRng::from_entropy());
}

impl PickRng {
    /// Runs `f` with the generator.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut SmallRng) -> R) -> R {
        match self {
            PickRng::Seeded(rng) => f(&mut rng.lock()),
            PickRng::PerThread => THREAD_RNG.with(|rng| f(&mut rng.borrow_mut())),
        }
    }
}

/// A generator seeded from `seed`, or per thread from the operating system.
pub(super) fn rng(seed: Option<u64>) -> PickRng {
    match seed {
        Some(seed) => PickRng::Seeded(Mutex::new(SmallRng::seed_from_u64(seed))),
        None => PickRng::PerThread,
    }
}

impl LoadBalancer for WeightedRandom {
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker> {
        let mut total = 0;
        let ends = providers
            .iter()
            .map(|p| {
                total += provider_weight(p);
                total
            })
            .collect();
        Box::new(RandomPicker {
            ends,
            rng: rng(self.seed),
        })
    }
}

/// Prefix sums of one list's weights.
#[derive(Debug)]
struct RandomPicker {
    /// `ends[i]` is the total weight of providers `0..=i`.
    ends: Vec<u64>,
    rng: PickRng,
}

impl Picker for RandomPicker {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let total = *self.ends.last()?;
        self.rng.with(|rng| {
            for _ in 0..4 {
                let point = rng.gen_range(0..total);
                let i = self.ends.partition_point(|&end| end <= point);
                if candidates.is_eligible(i) {
                    return Some(i);
                }
            }
            pick_weighted(candidates, rng, |_| true)
        })
    }
}

/// Weighted random index among the eligible candidates for which `keep` holds, in
/// two passes and without allocating; `None` when there is none.
pub(super) fn pick_weighted(
    candidates: &Candidates<'_>,
    rng: &mut SmallRng,
    keep: impl Fn(usize) -> bool,
) -> Option<usize> {
    let kept = |i: &usize| candidates.is_eligible(*i) && keep(*i);
    let n = candidates.len();
    let total: u64 = (0..n).filter(kept).map(|i| candidates.weight(i)).sum();
    if total == 0 {
        return None;
    }
    let mut point = rng.gen_range(0..total);
    let mut last = None;
    for i in (0..n).filter(kept) {
        let w = candidates.weight(i);
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
    use crate::balance::test_support::{candidates, providers, shares, shares_among};

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
    fn ineligible_providers_are_never_picked() {
        let providers = providers(&[("a:1", 100), ("b:1", 900), ("c:1", 100)]);
        let share = shares_among(&WeightedRandom::seeded(2), &providers, &[0, 2], 10_000);
        assert_eq!(share[1], 0.0);
        assert!((0.45..0.55).contains(&share[0]), "{share:?}");
    }

    #[test]
    fn pick_weighted_respects_filter() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let candidates = candidates(&providers);
        let candidates = Candidates::new(&candidates);
        let mut rng = SmallRng::seed_from_u64(5);
        for _ in 0..1_000 {
            let i = pick_weighted(&candidates, &mut rng, |i| i != 1);
            assert!(matches!(i, Some(0 | 2)), "{i:?}");
        }
        assert_eq!(pick_weighted(&candidates, &mut rng, |_| false), None);
    }
}
