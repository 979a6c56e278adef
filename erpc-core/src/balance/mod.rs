//! Client-side load balancing: choosing one provider among the healthy ones.
//!
//! A [`LoadBalancer`] makes one [`Picker`] per service, again whenever that
//! service's provider list changes, so whatever a balancer remembers belongs to one
//! list. Each call asks the picker for the index of one of the [`Candidates`] —
//! providers the call may use now, each with the client's in-flight count and
//! peak-EWMA latency for it. Built-in balancers, each in its own file, by
//! configuration name ([`by_name`]):
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
//! machine under load; pick cost is the fastest of 20 rounds; the last column
//! alternates picks between two services of 50 providers, each with its own picker,
//! as a client does):
//!
//! | ns per pick | 3 candidates | 10 candidates | 100 candidates | 2 services × 50 |
//! |---|---:|---:|---:|---:|
//! | random | 17.6 | 14.7 | 20.0 | 18.3 |
//! | round_robin | 13.0 | 25.4 | 127.0 | 70.2 |
//! | consistent_hash | 15.5 | 17.7 | 24.4 | 23.0 |
//! | least_active | 7.4 | 19.1 | 276.5 | 143.9 |
//! | p2c | 31.2 | 31.8 | 24.9 | 24.6 |
//!
//! (Before pickers were per service, round_robin took 1914 ns and consistent_hash
//! 976 ns at 100 candidates: both hashed every address on every pick, and two
//! services called alternately reset each other's state.)
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
//! costs the same ~25–30 ns whatever the number of providers, and without latency
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

/// A load-balancing policy: makes one [`Picker`] per service.
///
/// A client asks its balancer for a picker when it first calls a service and again
/// each time the registry changes that service's provider list (volo's
/// `LoadBalance::rebalance`). Whatever a picker remembers (round-robin turns, a
/// hash ring) therefore belongs to one service's list and is built once per change,
/// not per call, and services never disturb each other.
///
/// ```
/// use erpc_core::balance::{Candidates, LoadBalancer, PickContext, Picker};
/// use erpc_core::registry::Provider;
///
/// /// Always the first provider that may be called.
/// #[derive(Debug)]
/// struct First;
///
/// impl LoadBalancer for First {
///     fn picker(&self, _providers: &[Provider]) -> Box<dyn Picker> {
///         Box::new(First)
///     }
/// }
///
/// impl Picker for First {
///     fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
///         candidates.eligible().next().map(|(i, _)| i)
///     }
/// }
/// ```
pub trait LoadBalancer: Send + Sync + fmt::Debug + 'static {
    /// The picker for one service whose current providers are `providers`. Calls
    /// then pass [`Candidates`] over this same list, in this order.
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker>;
}

/// A balancer's state for one provider list; chooses the provider of each call.
pub trait Picker: Send + Sync + fmt::Debug + 'static {
    /// The index of an eligible candidate ([`Candidates::is_eligible`]), or `None`
    /// when none is. An index past the end of the list, or of a provider this call
    /// already tried, fails the call with [`Error::Config`].
    fn pick(&self, candidates: &Candidates<'_>, ctx: &PickContext<'_>) -> Option<usize>;
}

/// The provider list a [`Picker`] was built for, as it stands at one call: which
/// providers may be chosen now (not yet tried by this call, not ejected, not going
/// away), and each one's load. Lookups are by index and cost O(1), so a pick need
/// not look at every provider.
pub struct Candidates<'a> {
    source: Source<'a>,
}

enum Source<'a> {
    /// Fixed candidates, every one eligible (tests, simulations).
    Fixed(&'a [Candidate<'a>]),
    /// The client's live endpoints.
    Live(&'a dyn LiveCandidates),
}

/// What a client knows about the providers of one route, read at pick time.
pub(crate) trait LiveCandidates: Sync {
    /// The provider list.
    fn providers(&self) -> &[Provider];
    /// Whether provider `i` may be chosen for this call.
    fn is_eligible(&self, i: usize) -> bool;
    /// Calls in flight on provider `i`.
    fn in_flight(&self, i: usize) -> usize;
    /// Observed latency of provider `i`.
    fn latency(&self, i: usize) -> Option<Duration>;
}

impl<'a> Candidates<'a> {
    /// Candidates with fixed loads, all eligible (for tests and simulations).
    pub fn new(candidates: &'a [Candidate<'a>]) -> Self {
        Self {
            source: Source::Fixed(candidates),
        }
    }

    pub(crate) fn live(live: &'a dyn LiveCandidates) -> Self {
        Self {
            source: Source::Live(live),
        }
    }

    /// Number of providers in the list, eligible or not.
    pub fn len(&self) -> usize {
        match self.source {
            Source::Fixed(c) => c.len(),
            Source::Live(l) => l.providers().len(),
        }
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether provider `i` may be chosen now.
    pub fn is_eligible(&self, i: usize) -> bool {
        match self.source {
            Source::Fixed(c) => i < c.len(),
            Source::Live(l) => i < l.providers().len() && l.is_eligible(i),
        }
    }

    /// Provider `i` with its load, whether eligible or not; `None` past the end.
    pub fn get(&self, i: usize) -> Option<Candidate<'a>> {
        match self.source {
            Source::Fixed(c) => c.get(i).copied(),
            Source::Live(l) => l.providers().get(i).map(|provider| Candidate {
                provider,
                in_flight: l.in_flight(i),
                latency: l.latency(i),
            }),
        }
    }

    /// The eligible candidates with their indexes (a scan of the whole list).
    pub fn eligible(&self) -> impl Iterator<Item = (usize, Candidate<'a>)> + '_ {
        (0..self.len())
            .filter(|&i| self.is_eligible(i))
            .filter_map(|i| self.get(i).map(|c| (i, c)))
    }

    /// Registry weight of provider `i` for balancing (0 past the end; drained weight-0
    /// providers never reach a balancer, 0 from a hand-made list counts as 1).
    pub fn weight(&self, i: usize) -> u64 {
        let provider = match self.source {
            Source::Fixed(c) => c.get(i).map(|c| c.provider),
            Source::Live(l) => l.providers().get(i),
        };
        provider.map_or(0, provider_weight)
    }
}

impl fmt::Debug for Candidates<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.eligible().map(|(_, c)| c.provider.addr.as_str()))
            .finish()
    }
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

/// A provider's weight for balancing: registry weight, with 0 counted as 1.
fn provider_weight(p: &Provider) -> u64 {
    u64::from(p.weight.max(1))
}

/// Indexes of the eligible candidates, for the rare pick that must scan.
fn eligible_indexes(candidates: &Candidates<'_>) -> smallvec::SmallVec<[usize; 16]> {
    (0..candidates.len())
        .filter(|&i| candidates.is_eligible(i))
        .collect()
}

#[cfg(test)]
mod test_support {
    use std::time::Duration;

    use super::{Candidate, Candidates, LiveCandidates, LoadBalancer, PickContext};
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

    /// Share of `picks` keyless picks that went to each candidate, all eligible.
    pub(super) fn shares(
        balancer: &dyn LoadBalancer,
        candidates: &[Candidate<'_>],
        picks: u32,
    ) -> Vec<f64> {
        let providers: Vec<Provider> = candidates.iter().map(|c| c.provider.clone()).collect();
        let picker = balancer.picker(&providers);
        let candidates = Candidates::new(candidates);
        let mut hits = vec![0u32; candidates.len()];
        for _ in 0..picks {
            let i = picker
                .pick(&candidates, &PickContext::default())
                .expect("candidates are not empty");
            hits[i] += 1;
        }
        hits.into_iter()
            .map(|h| f64::from(h) / f64::from(picks))
            .collect()
    }

    /// Like [`shares`] over idle `providers` of which only `eligible` may be picked.
    pub(super) fn shares_among(
        balancer: &dyn LoadBalancer,
        providers: &[Provider],
        eligible: &[usize],
        picks: u32,
    ) -> Vec<f64> {
        let picker = balancer.picker(providers);
        let only = Only::new(providers, eligible);
        let candidates = Candidates::live(&only);
        let mut hits = vec![0u32; providers.len()];
        for _ in 0..picks {
            let i = picker
                .pick(&candidates, &PickContext::default())
                .expect("some candidate is eligible");
            hits[i] += 1;
        }
        hits.into_iter()
            .map(|h| f64::from(h) / f64::from(picks))
            .collect()
    }

    /// Idle providers of which only some are eligible.
    pub(super) struct Only<'a> {
        providers: &'a [Provider],
        eligible: Vec<usize>,
    }

    impl<'a> Only<'a> {
        pub(super) fn new(providers: &'a [Provider], eligible: &[usize]) -> Self {
            Self {
                providers,
                eligible: eligible.to_vec(),
            }
        }
    }

    impl LiveCandidates for Only<'_> {
        fn providers(&self) -> &[Provider] {
            self.providers
        }

        fn is_eligible(&self, i: usize) -> bool {
            self.eligible.contains(&i)
        }

        fn in_flight(&self, _: usize) -> usize {
            0
        }

        fn latency(&self, _: usize) -> Option<Duration> {
            None
        }
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
    fn every_balancer_handles_empty_single_none_eligible_and_zero_weights() {
        use test_support::{candidates, providers, Only};
        let ctx = PickContext::default();
        let zeros = providers(&[("a:1", 0), ("b:1", 0)]);
        let single = providers(&[("a:1", 100)]);
        for kind in BalancerKind::ALL {
            let balancer = kind.build();
            let empty = balancer.picker(&[]);
            assert_eq!(empty.pick(&Candidates::new(&[]), &ctx), None, "{kind}");
            let picked = balancer
                .picker(&zeros)
                .pick(&Candidates::new(&candidates(&zeros)), &ctx);
            assert!(matches!(picked, Some(0 | 1)), "{kind}: {picked:?}");
            let picker = balancer.picker(&single);
            let one = candidates(&single);
            assert_eq!(picker.pick(&Candidates::new(&one), &ctx), Some(0), "{kind}");
            let none = Only::new(&zeros, &[]);
            let picked = balancer.picker(&zeros).pick(&Candidates::live(&none), &ctx);
            assert_eq!(picked, None, "{kind}");
        }
    }
}
