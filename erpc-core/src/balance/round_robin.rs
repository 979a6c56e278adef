//! Smooth weighted round-robin, as nginx does it.
//!
//! Every pick adds each provider's weight to its *current weight*, chooses the
//! largest current weight and subtracts the total weight from the chosen one. Over
//! one cycle of `total` picks each provider is chosen exactly `weight` times, and the
//! picks are interleaved (weights 5, 1, 1 give `a a b a c a a`) instead of bursty
//! (`a a a a a b c`).
//!
//! The current weights belong to one service's picker and are indexed by the
//! provider's position in that list: a new list (provider added or removed) starts
//! a new cycle. Providers that may not be called at a pick (already tried by the
//! call, ejected) sit that turn out; the others keep their shares.

use parking_lot::Mutex;

use super::{Candidates, LoadBalancer, PickContext, Picker};
use crate::registry::Provider;

/// Smooth weighted round-robin (weights from registry metadata; weight-0 providers are drained before any balancer sees them).
#[derive(Debug, Default)]
pub struct RoundRobin;

impl RoundRobin {
    /// A balancer with no history.
    pub fn new() -> Self {
        Self
    }
}

impl LoadBalancer for RoundRobin {
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker> {
        Box::new(RoundRobinPicker {
            current: Mutex::new(vec![0; providers.len()]),
        })
    }
}

/// Current weights, one per provider of the list.
#[derive(Debug)]
struct RoundRobinPicker {
    current: Mutex<Vec<i64>>,
}

impl Picker for RoundRobinPicker {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let mut current = self.current.lock();
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, cur) in current.iter_mut().enumerate() {
            if !candidates.is_eligible(i) {
                continue;
            }
            // Weights are u32, so this never saturates in practice.
            let w = i64::try_from(candidates.weight(i)).unwrap_or(i64::MAX);
            total += w;
            *cur += w;
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        let (chosen, _) = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{candidates, providers, shares, Only};
    use crate::balance::Candidate;

    fn sequence(balancer: &RoundRobin, candidates: &[Candidate<'_>], n: usize) -> String {
        let providers: Vec<Provider> = candidates.iter().map(|c| c.provider.clone()).collect();
        let picker = balancer.picker(&providers);
        let fixed = Candidates::new(candidates);
        (0..n)
            .map(|_| {
                let i = picker.pick(&fixed, &PickContext::default()).unwrap();
                candidates[i].provider.addr.as_bytes()[0] as char
            })
            .collect()
    }

    #[test]
    fn nginx_sequence_for_5_1_1() {
        let providers = providers(&[("a:1", 5), ("b:1", 1), ("c:1", 1)]);
        let candidates = candidates(&providers);
        let balancer = RoundRobin::new();
        assert_eq!(sequence(&balancer, &candidates, 14), "aabacaaaabacaa");
    }

    #[test]
    fn equal_weights_alternate_strictly() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let candidates = candidates(&providers);
        let balancer = RoundRobin::new();
        assert_eq!(sequence(&balancer, &candidates, 9), "abcabcabc");
    }

    #[test]
    fn distribution_matches_weights_exactly() {
        let providers = providers(&[("a:1", 300), ("b:1", 200), ("c:1", 0)]);
        let candidates = candidates(&providers);
        // One cycle is 501 picks; 100 cycles are exact.
        let share = shares(&RoundRobin::new(), &candidates, 50_100);
        assert_eq!(share, vec![300.0 / 501.0, 200.0 / 501.0, 1.0 / 501.0]);
    }

    #[test]
    fn providers_sitting_a_turn_out_keep_the_others_shares() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let balancer = RoundRobin::new();
        let picker = balancer.picker(&providers);
        let all = candidates(&providers);
        let all = Candidates::new(&all);
        let pick = |c: &Candidates<'_>| picker.pick(c, &PickContext::default()).unwrap();
        assert_eq!(pick(&all), 0);
        // `b` is not eligible for one pick (tried by a failing call): `c` takes the turn.
        let without_b = Only::new(&providers, &[0, 2]);
        assert_eq!(pick(&Candidates::live(&without_b)), 2);
        let seq: Vec<usize> = (0..300).map(|_| pick(&all)).collect();
        for i in 0..3 {
            let n = seq.iter().filter(|&&x| x == i).count();
            assert!((99..=101).contains(&n), "{i}: {n}");
        }
    }
}
