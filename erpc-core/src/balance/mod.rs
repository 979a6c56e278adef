//! Client-side load balancing: choosing one provider among the healthy ones.
//!
//! A [`LoadBalancer`] gets the candidates of one call — each with the client's
//! in-flight count and peak-EWMA latency for it — and returns the index of one.
//! Built-in balancers, each in its own file, by configuration name ([`by_name`]):
//!
//! | name | type | picks |
//! |---|---|---|
//! | `random` | [`WeightedRandom`] | at random, in proportion to weight |
//! | `round_robin` | [`RoundRobin`] | in turn, smooth weighted (nginx) |
//! | `consistent_hash` | [`ConsistentHash`] | by [`PickContext::hash_key`] on a ring of virtual nodes |
//! | `least_active` | [`LeastActive`] | fewest calls in flight, ties by weighted random |
//! | `p2c` | [`PowerOfTwoChoices`] | cheaper of two random ones, cost = latency × (in-flight + 1) / weight |
//!
//! # The default: `p2c`, from measurements
//!
//! [`default_balancer`] is [`PowerOfTwoChoices`]. Measured with
//! `cargo run --release -p erpc-core --example balancer_bench` (a shared 2-core
//! machine; pick cost is the fastest of 20 rounds):
//!
//! | ns per pick | 3 candidates | 10 candidates | 100 candidates |
//! |---|---:|---:|---:|
//! | random | 21.4 | 23.4 | 84.7 |
//! | round_robin | 78.2 | 207.3 | 1913.9 |
//! | consistent_hash | 62.3 | 125.3 | 976.3 |
//! | least_active | 5.0 | 9.2 | 109.3 |
//! | p2c | 26.9 | 26.9 | 19.5 |
//!
//! Discrete-event simulation: 64 closed-loop callers on one client, three
//! providers with exponential service times of mean 1 ms, 1 ms and 20 ms (slow).
//! With each provider serving 16 calls at once behind a FIFO queue (overloaded):
//!
//! | balancer | p50 | p99 | p99.9 | share to slow | calls/s |
//! |---|---:|---:|---:|---:|---:|
//! | random | 1.39 ms | 129.11 ms | 172.04 ms | 33.4 % | 2419 |
//! | round_robin | 1.38 ms | 129.26 ms | 174.56 ms | 33.3 % | 2408 |
//! | consistent_hash | 1.36 ms | 129.53 ms | 175.69 ms | 33.0 % | 2424 |
//! | least_active | 1.04 ms | 25.11 ms | 72.92 ms | 2.4 % | 32874 |
//! | p2c | 1.65 ms | 5.95 ms | 30.95 ms | 0.5 % | 32221 |
//!
//! With unbounded provider concurrency (no queueing, latency = service time):
//!
//! | balancer | p50 | p99 | p99.9 | share to slow | calls/s |
//! |---|---:|---:|---:|---:|---:|
//! | random | 1.26 ms | 70.23 ms | 116.49 ms | 33.2 % | 8766 |
//! | round_robin | 1.26 ms | 70.56 ms | 115.28 ms | 33.3 % | 8730 |
//! | consistent_hash | 1.25 ms | 70.30 ms | 116.87 ms | 32.9 % | 8819 |
//! | least_active | 0.72 ms | 18.47 ms | 64.71 ms | 2.5 % | 43282 |
//! | p2c | 0.69 ms | 4.82 ms | 18.61 ms | 0.2 % | 61125 |
//!
//! Why `p2c`: load-blind balancers (random, round-robin, keyless consistent hash)
//! keep sending a third of the calls to the slow provider, which caps throughput at
//! what it can serve and puts its latency into the p99. `least_active` reacts to
//! the slow provider only once calls pile up on it; `p2c` also sees its latency,
//! so it sends 5–12× fewer calls there and has a ~4× lower p99 and 2.4–3.5× lower
//! p99.9 in both set-ups, at the same throughput under overload and 40 % more
//! without it. `least_active` has the better p50 under overload (1.04 vs 1.65 ms:
//! it always takes the global minimum, `p2c` only the better of two), but tails
//! decide RPC latency as seen by users, who fan out to many calls. A `p2c` pick also
//! costs the same ~25 ns whatever the number of providers, and without latency
//! samples it still balances on in-flight calls and weight.
//!
//! Pick [`ConsistentHash`] for affinity (caches, sessions) with
//! `#[erpc(hash_key = "arg")]`, [`RoundRobin`] for strictly even spreading of
//! uniform work, [`WeightedRandom`] when nothing about providers is known.

mod consistent_hash;
mod least_active;
mod p2c;
mod random;
mod round_robin;

pub use consistent_hash::{hash_key, ConsistentHash, DEFAULT_VIRTUAL_NODES};
pub use least_active::LeastActive;
pub use p2c::PowerOfTwoChoices;
pub use random::WeightedRandom;
pub use round_robin::RoundRobin;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::registry::Provider;
use crate::Error;

/// A provider offered to a balancer, with what the client knows about it right now.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The provider as the registry describes it.
    pub provider: &'a Provider,
    /// Calls this client has in flight on it.
    pub in_flight: usize,
    /// Peak-EWMA round-trip latency this client has observed to the provider;
    /// `None` until the first sample.
    pub latency: Option<Duration>,
}

/// Per-call input a balancer may use (consistent hashing keys on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// Method being called.
    pub method: &'a str,
    /// Hash key for sticky balancers, when the caller gave one (see [`hash_key`]).
    pub hash_key: Option<u64>,
}

/// Chooses a provider for each call.
pub trait LoadBalancer: Send + Sync + std::fmt::Debug + 'static {
    /// Index into `candidates` of the chosen one; `None` only when `candidates` is empty.
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> Option<usize>;
}

/// The built-in balancers, by configuration name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalancerKind {
    /// [`WeightedRandom`]: `random` (also `weighted_random`).
    WeightedRandom,
    /// [`RoundRobin`]: `round_robin` (also `roundrobin`, `rr`).
    RoundRobin,
    /// [`ConsistentHash`]: `consistent_hash` (also `consistenthash`, `hash`).
    ConsistentHash,
    /// [`LeastActive`]: `least_active` (also `leastactive`).
    LeastActive,
    /// [`PowerOfTwoChoices`]: `p2c` (also `power_of_two_choices`, `peak_ewma`).
    PowerOfTwoChoices,
}

impl BalancerKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [BalancerKind; 5] = [
        Self::WeightedRandom,
        Self::RoundRobin,
        Self::ConsistentHash,
        Self::LeastActive,
        Self::PowerOfTwoChoices,
    ];

    /// The canonical configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::WeightedRandom => "random",
            Self::RoundRobin => "round_robin",
            Self::ConsistentHash => "consistent_hash",
            Self::LeastActive => "least_active",
            Self::PowerOfTwoChoices => "p2c",
        }
    }

    /// A new balancer of this kind with default settings.
    pub fn build(self) -> Arc<dyn LoadBalancer> {
        match self {
            Self::WeightedRandom => Arc::new(WeightedRandom::new()),
            Self::RoundRobin => Arc::new(RoundRobin::new()),
            Self::ConsistentHash => Arc::new(ConsistentHash::new()),
            Self::LeastActive => Arc::new(LeastActive::new()),
            Self::PowerOfTwoChoices => Arc::new(PowerOfTwoChoices::new()),
        }
    }
}

impl fmt::Display for BalancerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BalancerKind {
    type Err = Error;

    /// Case-insensitive; `_`, `-` and spaces are ignored (`Round-Robin` works).
    fn from_str(name: &str) -> Result<Self, Error> {
        let normalized: String = name
            .chars()
            .filter(|c| !matches!(c, '_' | '-' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        Ok(match normalized.as_str() {
            "random" | "weightedrandom" => Self::WeightedRandom,
            "roundrobin" | "rr" => Self::RoundRobin,
            "consistenthash" | "hash" => Self::ConsistentHash,
            "leastactive" => Self::LeastActive,
            "p2c" | "poweroftwochoices" | "peakewma" => Self::PowerOfTwoChoices,
            _ => {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.name()).collect();
                return Err(Error::Config(format!(
                    "unknown load balancer {name:?}; expected one of: {}",
                    names.join(", ")
                )));
            }
        })
    }
}

/// The balancer configured by `name` (see [`BalancerKind`] for names and aliases).
///
/// ```
/// let balancer = erpc_core::balance::by_name("Round_Robin").unwrap();
/// assert!(format!("{balancer:?}").starts_with("RoundRobin"));
/// assert!(erpc_core::balance::by_name("fastest").is_err());
/// ```
pub fn by_name(name: &str) -> Result<Arc<dyn LoadBalancer>, Error> {
    name.parse::<BalancerKind>().map(BalancerKind::build)
}

/// The balancer used when none is configured: [`PowerOfTwoChoices`] (see the
/// measurements in the [module docs](self)).
pub fn default_balancer() -> Arc<dyn LoadBalancer> {
    BalancerKind::PowerOfTwoChoices.build()
}

/// A candidate's weight for balancing: registry weight, with 0 counted as 1.
fn weight_of(c: &Candidate<'_>) -> u64 {
    u64::from(c.provider.weight.max(1))
}

#[cfg(test)]
mod test_support {
    use super::{Candidate, LoadBalancer, PickContext};
    use crate::registry::Provider;

    /// Providers from (address, weight) pairs.
    pub(super) fn providers(spec: &[(&str, u32)]) -> Vec<Provider> {
        spec.iter()
            .map(|&(addr, weight)| {
                let mut p = Provider::new(addr);
                p.weight = weight;
                p
            })
            .collect()
    }

    /// Idle candidates without latency samples.
    pub(super) fn candidates(providers: &[Provider]) -> Vec<Candidate<'_>> {
        providers
            .iter()
            .map(|provider| Candidate {
                provider,
                in_flight: 0,
                latency: None,
            })
            .collect()
    }

    /// Share of `picks` keyless picks that went to each candidate.
    pub(super) fn shares(
        balancer: &dyn LoadBalancer,
        candidates: &[Candidate<'_>],
        picks: u32,
    ) -> Vec<f64> {
        let mut hits = vec![0u32; candidates.len()];
        for _ in 0..picks {
            let i = balancer
                .pick(candidates, &PickContext::default())
                .expect("candidates are not empty");
            hits[i] += 1;
        }
        hits.into_iter()
            .map(|h| f64::from(h) / f64::from(picks))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        let cases = [
            ("random", BalancerKind::WeightedRandom),
            ("Weighted_Random", BalancerKind::WeightedRandom),
            ("round_robin", BalancerKind::RoundRobin),
            ("RoundRobin", BalancerKind::RoundRobin),
            ("round-robin", BalancerKind::RoundRobin),
            ("consistent_hash", BalancerKind::ConsistentHash),
            ("CONSISTENTHASH", BalancerKind::ConsistentHash),
            ("least_active", BalancerKind::LeastActive),
            ("leastactive", BalancerKind::LeastActive),
            ("p2c", BalancerKind::PowerOfTwoChoices),
            ("P2C", BalancerKind::PowerOfTwoChoices),
            ("peak_ewma", BalancerKind::PowerOfTwoChoices),
        ];
        for (name, kind) in cases {
            assert_eq!(name.parse::<BalancerKind>().unwrap(), kind, "{name}");
        }
        for kind in BalancerKind::ALL {
            assert_eq!(kind.name().parse::<BalancerKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    #[test]
    fn by_name_builds_the_named_balancer() {
        let debug = |name: &str| format!("{:?}", by_name(name).unwrap());
        assert!(debug("random").starts_with("WeightedRandom"));
        assert!(debug("roundrobin").starts_with("RoundRobin"));
        assert!(debug("consistent_hash").starts_with("ConsistentHash"));
        assert!(debug("least_active").starts_with("LeastActive"));
        assert!(debug("p2c").starts_with("PowerOfTwoChoices"));
    }

    #[test]
    fn unknown_name_lists_the_options() {
        let err = by_name("fastest").unwrap_err();
        let Error::Config(message) = err else {
            panic!("not a config error: {err:?}");
        };
        assert!(message.contains("\"fastest\""), "{message}");
        for kind in BalancerKind::ALL {
            assert!(message.contains(kind.name()), "{message}");
        }
    }

    #[test]
    fn every_balancer_handles_empty_and_zero_weights() {
        let providers = test_support::providers(&[("a:1", 0), ("b:1", 0)]);
        let candidates = test_support::candidates(&providers);
        for kind in BalancerKind::ALL {
            let balancer = kind.build();
            assert_eq!(balancer.pick(&[], &PickContext::default()), None, "{kind}");
            let picked = balancer.pick(&candidates, &PickContext::default());
            assert!(matches!(picked, Some(0 | 1)), "{kind}: {picked:?}");
        }
    }
}
