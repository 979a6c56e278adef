//! Client-side load balancing: choosing one provider among the healthy ones.

mod random;

pub use random::WeightedRandom;

use crate::registry::Provider;

/// A provider offered to a balancer, with what the client knows about it right now.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The provider as the registry describes it.
    pub provider: &'a Provider,
    /// Calls this client has in flight on it.
    pub in_flight: usize,
}

/// Per-call input a balancer may use (consistent hashing keys on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext<'a> {
    /// Method being called.
    pub method: &'a str,
    /// Hash key for sticky balancers, when the caller gave one.
    pub hash_key: Option<u64>,
}

/// Chooses a provider for each call.
pub trait LoadBalancer: Send + Sync + std::fmt::Debug + 'static {
    /// Index into `candidates` of the chosen one; `None` only when `candidates` is empty.
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> Option<usize>;
}
