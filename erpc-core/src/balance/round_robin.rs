//! Smooth weighted round-robin, as nginx does it.
//!
//! Every pick adds each provider's weight to its *current weight*, chooses the
//! largest current weight and subtracts the total weight from the chosen one. Over
//! one cycle of `total` picks each provider is chosen exactly `weight` times, and the
//! picks are interleaved (weights 5, 1, 1 give `a a b a c a a`) instead of bursty
//! (`a a a a a b c`).
//!
//! Current weights are keyed by address so they survive reordering of the candidate
//! list; entries of addresses that are no longer offered are dropped, and a provider
//! that comes back starts again from zero.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{weight_of, Candidate, LoadBalancer, PickContext};

/// Smooth weighted round-robin (weights from registry metadata; 0 counts as 1).
#[derive(Debug, Default)]
pub struct RoundRobin {
    current: Mutex<HashMap<String, i64>>,
}

impl RoundRobin {
    /// A balancer with no history.
    pub fn new() -> Self {
        Self::default()
    }
}

impl LoadBalancer for RoundRobin {
    fn pick(&self, candidates: &[Candidate<'_>], _: &PickContext<'_>) -> Option<usize> {
        match candidates.len() {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let mut current = self.current.lock();
        let mut total = 0i64;
        let mut best = (0usize, i64::MIN);
        for (i, c) in candidates.iter().enumerate() {
            let w = weight_as_i64(c);
            total += w;
            // Only a newly seen address allocates.
            let now = match current.get_mut(c.provider.addr.as_str()) {
                Some(cur) => {
                    *cur += w;
                    *cur
                }
                None => {
                    current.insert(c.provider.addr.clone(), w);
                    w
                }
            };
            if now > best.1 {
                best = (i, now);
            }
        }
        if let Some(cur) = current.get_mut(candidates[best.0].provider.addr.as_str()) {
            *cur -= total;
        }
        if current.len() > candidates.len() {
            current.retain(|addr, _| candidates.iter().any(|c| c.provider.addr == *addr));
        }
        Some(best.0)
    }
}

fn weight_as_i64(c: &Candidate<'_>) -> i64 {
    // Weights are u32, so this never saturates in practice.
    i64::try_from(weight_of(c)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{candidates, providers, shares};

    fn sequence(balancer: &RoundRobin, candidates: &[Candidate<'_>], n: usize) -> String {
        (0..n)
            .map(|_| {
                let i = balancer.pick(candidates, &PickContext::default()).unwrap();
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
    fn state_follows_addresses_and_vanished_ones_are_pruned() {
        let providers = providers(&[("a:1", 100), ("b:1", 100), ("c:1", 100)]);
        let all = candidates(&providers);
        let balancer = RoundRobin::new();
        assert_eq!(sequence(&balancer, &all, 2), "ab");
        // Reordering keeps each provider's share (only tie-breaking follows the order).
        let reordered = [all[2], all[0], all[1]];
        let seq = sequence(&balancer, &reordered, 3_000);
        for name in ['a', 'b', 'c'] {
            let n = seq.chars().filter(|&x| x == name).count();
            assert!((999..=1001).contains(&n), "{name}: {n}");
        }
        // `c` disappears: its state goes, the others share evenly.
        let two = [all[0], all[1]];
        let seq = sequence(&balancer, &two, 100);
        assert!((49..=51).contains(&seq.matches('a').count()), "{seq}");
        let state = balancer.current.lock();
        assert_eq!(state.len(), 2);
        assert!(!state.contains_key("c:1"));
    }

    #[test]
    fn empty_and_single() {
        let balancer = RoundRobin::new();
        assert_eq!(balancer.pick(&[], &PickContext::default()), None);
        let providers = providers(&[("a:1", 100)]);
        let candidates = candidates(&providers);
        assert_eq!(balancer.pick(&candidates, &PickContext::default()), Some(0));
    }
}
