//! Weighted random: each provider is chosen with probability weight / total weight.

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Candidate, LoadBalancer, PickContext};

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
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let weight = |c: &Candidate<'_>| u64::from(c.provider.weight.max(1));
        let total: u64 = candidates.iter().map(weight).sum();
        let mut point = self.rng.lock().gen_range(0..total);
        for (i, c) in candidates.iter().enumerate() {
            let w = weight(c);
            if point < w {
                return Some(i);
            }
            point -= w;
        }
        Some(candidates.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Provider;

    #[test]
    fn picks_follow_weights() {
        let mut a = Provider::new("a:1");
        a.weight = 100;
        let mut b = Provider::new("b:1");
        b.weight = 300;
        let candidates = [
            Candidate {
                provider: &a,
                in_flight: 0,
            },
            Candidate {
                provider: &b,
                in_flight: 0,
            },
        ];
        let balancer = WeightedRandom::seeded(7);
        let mut hits = [0u32; 2];
        for _ in 0..40_000 {
            hits[balancer.pick(&candidates, &PickContext::default()).unwrap()] += 1;
        }
        let share_b = f64::from(hits[1]) / 40_000.0;
        assert!((0.73..0.77).contains(&share_b), "b got {share_b}");
        assert_eq!(balancer.pick(&[], &PickContext::default()), None);
    }
}
