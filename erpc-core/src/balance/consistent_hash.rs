//! Consistent hashing on a ring of virtual nodes: calls with the same key go to the
//! same provider, and a change of providers moves only the keys it must.
//!
//! Each provider owns `virtual_nodes × weight / 100` points on a 64-bit ring (at
//! least 1, at most 10 × `virtual_nodes`), placed at the xxHash64 (seed 0) of
//! `"{addr}#{i}"`. A key, passed once more through a SplitMix64 finalizer so that
//! raw small integers spread too, belongs to the first point at or after it, found
//! by binary search. Because points depend only on the address, every consumer —
//! any process, any build — draws the same ring, and removing a provider hands its
//! keys to its ring neighbours while all other keys stay put.
//!
//! The ring is cached and rebuilt only when the set of (address, weight) pairs
//! changes; an order-insensitive fingerprint of that set is checked on each pick.
//!
//! The key is [`PickContext::hash_key`], usually made with [`hash_key`]. Calls without
//! a key have no affinity to keep, so they use a random key and spread over the ring
//! like weighted random. (Hashing the method name instead would send every keyless
//! call of a method to a single provider.)

use std::fmt::Write as _;
use std::hash::Hasher as _;

use parking_lot::{Mutex, RwLock};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use twox_hash::XxHash64;

use super::{weight_of, Candidate, LoadBalancer, PickContext};
use crate::registry::DEFAULT_WEIGHT;

/// Virtual nodes per provider of default weight, unless configured.
pub const DEFAULT_VIRTUAL_NODES: u32 = 160;

/// Stable 64-bit hash of `value`'s postcard encoding (xxHash64, seed 0).
///
/// The same value gives the same key in every process and build, so consumers
/// agree on which provider owns it. A `String` and a `&str` with the same text hash
/// alike. Should `Serialize` fail (only custom impls can, e.g. a sequence of
/// unknown length), the bytes encoded up to the failure are hashed.
///
/// ```
/// use erpc_core::balance::hash_key;
/// assert_eq!(hash_key("user-42"), hash_key(&String::from("user-42")));
/// ```
pub fn hash_key<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut hasher = XxHash64::with_seed(0);
    // An error leaves the prefix already fed to the hasher, which is still stable.
    let _ = postcard::serialize_with_flavor(value, HashFlavor(&mut hasher));
    hasher.finish()
}

/// Postcard output that feeds a hasher instead of a buffer.
struct HashFlavor<'a>(&'a mut XxHash64);

impl postcard::ser_flavors::Flavor for HashFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.write(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.write(&[data]);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Consistent hashing over a cached ring of virtual nodes.
#[derive(Debug)]
pub struct ConsistentHash {
    virtual_nodes: u32,
    ring: RwLock<Ring>,
    rng: Mutex<SmallRng>,
}

#[derive(Debug, Default)]
struct Ring {
    /// Of the (address, weight) set the ring was built from; 0 for the empty ring.
    fingerprint: u64,
    /// (point, index into `addrs`), sorted.
    points: Vec<(u64, u32)>,
    addrs: Vec<String>,
}

impl ConsistentHash {
    /// [`DEFAULT_VIRTUAL_NODES`] per provider; keyless calls use an OS-seeded RNG.
    pub fn new() -> Self {
        Self::with_rng(SmallRng::from_entropy())
    }

    /// Deterministic keyless picks, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self::with_rng(SmallRng::seed_from_u64(seed))
    }

    /// Sets the virtual nodes of a provider of default weight (0 counts as 1).
    /// More nodes spread keys more evenly at the cost of a larger ring.
    pub fn virtual_nodes(mut self, virtual_nodes: u32) -> Self {
        self.virtual_nodes = virtual_nodes.max(1);
        self
    }

    fn with_rng(rng: SmallRng) -> Self {
        Self {
            virtual_nodes: DEFAULT_VIRTUAL_NODES,
            ring: RwLock::new(Ring::default()),
            rng: Mutex::new(rng),
        }
    }

    fn nodes_for(&self, weight: u64) -> u64 {
        let nodes = u64::from(self.virtual_nodes);
        (nodes * weight / u64::from(DEFAULT_WEIGHT)).clamp(1, nodes * 10)
    }

    fn build(&self, candidates: &[Candidate<'_>], fingerprint: u64) -> Ring {
        let mut members: Vec<(&str, u64)> = candidates
            .iter()
            .map(|c| (c.provider.addr.as_str(), weight_of(c)))
            .collect();
        members.sort_unstable();
        members.dedup_by(|a, b| a.0 == b.0);
        let mut points = Vec::new();
        let mut label = String::new();
        for (index, (addr, weight)) in (0u32..).zip(&members) {
            for i in 0..self.nodes_for(*weight) {
                label.clear();
                let _ = write!(label, "{addr}#{i}");
                points.push((XxHash64::oneshot(0, label.as_bytes()), index));
            }
        }
        points.sort_unstable();
        Ring {
            fingerprint,
            points,
            addrs: members.into_iter().map(|(a, _)| a.to_owned()).collect(),
        }
    }
}

impl Default for ConsistentHash {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer for ConsistentHash {
    fn pick(&self, candidates: &[Candidate<'_>], ctx: &PickContext<'_>) -> Option<usize> {
        match candidates.len() {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let key = mix(ctx.hash_key.unwrap_or_else(|| self.rng.lock().gen()));
        let fingerprint = fingerprint(candidates);
        {
            let ring = self.ring.read();
            if ring.fingerprint == fingerprint {
                return ring.owner(key, candidates);
            }
        }
        // Built outside the lock so that picks on the old ring are not held up.
        let ring = self.build(candidates, fingerprint);
        let pick = ring.owner(key, candidates);
        *self.ring.write() = ring;
        pick
    }
}

impl Ring {
    /// Index in `candidates` of the provider owning `key`.
    fn owner(&self, key: u64, candidates: &[Candidate<'_>]) -> Option<usize> {
        let at = self.points.partition_point(|&(point, _)| point < key);
        let (_, owner) = self.points.get(at).or(self.points.first())?;
        let addr = self.addrs.get(*owner as usize)?;
        // Only a fingerprint collision could leave the owner out; stay available.
        Some(
            candidates
                .iter()
                .position(|c| c.provider.addr == *addr)
                .unwrap_or(0),
        )
    }
}

/// Order-insensitive fingerprint of the (address, weight) set, never 0.
fn fingerprint(candidates: &[Candidate<'_>]) -> u64 {
    candidates
        .iter()
        .map(|c| mix(XxHash64::oneshot(weight_of(c), c.provider.addr.as_bytes())))
        .fold(1, u64::wrapping_add)
        .max(1)
}

/// SplitMix64 finalizer: spreads keys that are not already hashes (small integers)
/// over the whole ring.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::balance::test_support::{candidates, providers, shares};

    fn owner(balancer: &ConsistentHash, candidates: &[Candidate<'_>], key: u64) -> String {
        let ctx = PickContext {
            method: "m",
            hash_key: Some(key),
        };
        let i = balancer.pick(candidates, &ctx).unwrap();
        candidates[i].provider.addr.clone()
    }

    fn owners(candidates: &[Candidate<'_>]) -> Vec<String> {
        let balancer = ConsistentHash::seeded(0);
        (0..10_000u32)
            .map(|k| owner(&balancer, candidates, hash_key(&k)))
            .collect()
    }

    fn five() -> Vec<crate::registry::Provider> {
        providers(&[
            ("10.0.0.1:20880", 100),
            ("10.0.0.2:20880", 100),
            ("10.0.0.3:20880", 100),
            ("10.0.0.4:20880", 100),
            ("10.0.0.5:20880", 100),
        ])
    }

    #[test]
    fn hash_is_stable_across_builds() {
        // xxHash64 reference vector, and a pinned postcard-encoded key.
        assert_eq!(XxHash64::oneshot(0, b""), 0xef46_db37_51d8_e999);
        assert_eq!(hash_key("user-42"), hash_key(&String::from("user-42")));
        assert_eq!(hash_key(&7u32), XxHash64::oneshot(0, &[7]));
        assert_ne!(hash_key(&7u32), hash_key(&8u32));
    }

    #[test]
    fn same_key_same_provider_whatever_the_order() {
        let providers = five();
        let forward = candidates(&providers);
        let mut backward = forward.clone();
        backward.reverse();
        let balancer = ConsistentHash::seeded(1);
        for k in 0..1_000u64 {
            let key = hash_key(&k);
            assert_eq!(
                owner(&balancer, &forward, key),
                owner(&balancer, &backward, key)
            );
        }
    }

    #[test]
    fn removing_a_provider_moves_only_its_keys() {
        let providers = five();
        let all = candidates(&providers);
        let removed = "10.0.0.3:20880";
        let rest: Vec<_> = all
            .iter()
            .copied()
            .filter(|c| c.provider.addr != removed)
            .collect();
        let before = owners(&all);
        let after = owners(&rest);
        let mut heirs = HashSet::new();
        for (b, a) in before.iter().zip(&after) {
            if b == removed {
                heirs.insert(a.clone());
            } else {
                assert_eq!(b, a, "a key not on the removed provider moved");
            }
        }
        assert!(heirs.len() >= 3, "removed keys went to {heirs:?}");
    }

    #[test]
    fn adding_a_provider_moves_about_a_sixth() {
        let mut providers = five();
        let before = owners(&candidates(&providers));
        providers.push(crate::registry::Provider::new("10.0.0.6:20880"));
        let after = owners(&candidates(&providers));
        let moved: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        let share = moved.len() as f64 / 10_000.0;
        assert!((0.11..0.23).contains(&share), "moved {share}");
        assert!(moved.iter().all(|(_, a)| *a == "10.0.0.6:20880"));
    }

    #[test]
    fn weight_scales_virtual_nodes_and_share() {
        let providers = providers(&[("a:1", 200), ("b:1", 100), ("c:1", 0)]);
        let candidates = candidates(&providers);
        let balancer = ConsistentHash::seeded(2);
        let counts =
            owners(&candidates)
                .into_iter()
                .fold(HashMap::<String, u32>::new(), |mut m, a| {
                    *m.entry(a).or_default() += 1;
                    m
                });
        balancer.pick(&candidates, &PickContext::default());
        let ring = balancer.ring.read();
        let nodes = |addr: &str| {
            let index = ring.addrs.iter().position(|a| a == addr).unwrap() as u32;
            ring.points.iter().filter(|p| p.1 == index).count()
        };
        assert_eq!((nodes("a:1"), nodes("b:1"), nodes("c:1")), (320, 160, 1));
        let share_a = f64::from(counts["a:1"]) / 10_000.0;
        assert!((0.58..0.75).contains(&share_a), "a got {share_a}");
    }

    #[test]
    fn configured_virtual_nodes() {
        let providers = providers(&[("a:1", 100), ("b:1", 100)]);
        let candidates = candidates(&providers);
        let balancer = ConsistentHash::seeded(2).virtual_nodes(16);
        balancer.pick(&candidates, &PickContext::default());
        assert_eq!(balancer.ring.read().points.len(), 32);
    }

    #[test]
    fn keys_spread_evenly() {
        let providers = five();
        let candidates = candidates(&providers);
        let balancer = ConsistentHash::seeded(3);
        let mut hits = HashMap::<String, u32>::new();
        for k in 0..50_000u64 {
            // Raw small integers work too: keys are mixed before the lookup.
            *hits.entry(owner(&balancer, &candidates, k)).or_default() += 1;
        }
        for (addr, n) in hits {
            let share = f64::from(n) / 50_000.0;
            assert!((0.13..0.27).contains(&share), "{addr} got {share}");
        }
    }

    #[test]
    fn keyless_calls_spread_like_random() {
        let providers = five();
        let candidates = candidates(&providers);
        let share = shares(&ConsistentHash::seeded(4), &candidates, 20_000);
        assert!(share.iter().all(|s| (0.13..0.27).contains(s)), "{share:?}");
    }

    #[test]
    fn ring_is_rebuilt_only_when_the_set_changes() {
        let providers = five();
        let all = candidates(&providers);
        let balancer = ConsistentHash::seeded(5);
        let ring_ptr = |b: &ConsistentHash| b.ring.read().points.as_ptr();
        balancer.pick(&all, &PickContext::default());
        let first = ring_ptr(&balancer);
        let mut reordered = all.clone();
        reordered.rotate_left(2);
        balancer.pick(&reordered, &PickContext::default());
        assert_eq!(ring_ptr(&balancer), first, "reordering rebuilt the ring");
        balancer.pick(&all[1..], &PickContext::default());
        assert_ne!(ring_ptr(&balancer), first, "a removal kept the old ring");
        assert_eq!(balancer.ring.read().addrs.len(), 4);
    }

    #[test]
    fn empty_and_single() {
        let balancer = ConsistentHash::seeded(6);
        assert_eq!(balancer.pick(&[], &PickContext::default()), None);
        let providers = providers(&[("a:1", 100)]);
        let candidates = candidates(&providers);
        assert_eq!(balancer.pick(&candidates, &PickContext::default()), Some(0));
    }
}
