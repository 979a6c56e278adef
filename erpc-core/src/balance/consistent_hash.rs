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
//! The ring belongs to one service's picker: it is built when the client makes the
//! picker for a provider list and never during a pick. When the owner of a key may
//! not be called now (already tried by this call, ejected), the key goes to the next
//! eligible provider along the ring, as it would if the owner were removed.
//!
//! The key is [`PickContext::hash_key`], usually made with [`hash_key`]. Calls without
//! a key have no affinity to keep, so they use a random key and spread over the ring
//! like weighted random. (Hashing the method name instead would send every keyless
//! call of a method to a single provider.)

use std::fmt::Write as _;
use std::hash::Hasher as _;

use rand::Rng;
use rustc_hash::FxHashSet;
use serde::Serialize;
use twox_hash::XxHash64;

use super::random::{rng, PickRng};
use super::{provider_weight, Candidates, LoadBalancer, PickContext, Picker};
use crate::registry::{Provider, DEFAULT_WEIGHT};

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

/// Consistent hashing over a ring of virtual nodes, one ring per service.
#[derive(Debug)]
pub struct ConsistentHash {
    virtual_nodes: u32,
    seed: Option<u64>,
}

impl ConsistentHash {
    /// [`DEFAULT_VIRTUAL_NODES`] per provider; keyless calls use an OS-seeded RNG.
    pub fn new() -> Self {
        Self {
            virtual_nodes: DEFAULT_VIRTUAL_NODES,
            seed: None,
        }
    }

    /// Deterministic keyless picks, for tests.
    pub fn seeded(seed: u64) -> Self {
        Self {
            seed: Some(seed),
            ..Self::new()
        }
    }

    /// Sets the virtual nodes of a provider of default weight.
    /// More nodes spread keys more evenly at the cost of a larger ring.
    pub fn virtual_nodes(mut self, virtual_nodes: u32) -> Self {
        self.virtual_nodes = virtual_nodes.max(1);
        self
    }

    fn nodes_for(&self, weight: u64) -> u64 {
        let nodes = u64::from(self.virtual_nodes);
        (nodes * weight / u64::from(DEFAULT_WEIGHT)).clamp(1, nodes * 10)
    }

    /// The ring of `providers`: (point, index into `providers`), sorted. A provider
    /// listed twice keeps only its first entry's points.
    fn ring(&self, providers: &[Provider]) -> Vec<(u64, u32)> {
        let mut seen = FxHashSet::default();
        let mut points = Vec::new();
        let mut label = String::new();
        for (index, provider) in (0u32..).zip(providers) {
            if !seen.insert(provider.addr.as_str()) {
                continue;
            }
            for i in 0..self.nodes_for(provider_weight(provider)) {
                label.clear();
                let _ = write!(label, "{}#{i}", provider.addr);
                points.push((XxHash64::oneshot(0, label.as_bytes()), index));
            }
        }
        points.sort_unstable();
        points
    }
}

impl Default for ConsistentHash {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadBalancer for ConsistentHash {
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker> {
        Box::new(Ring {
            points: self.ring(providers),
            rng: rng(self.seed),
        })
    }
}

/// One provider list's ring.
#[derive(Debug)]
struct Ring {
    /// (point, index into the provider list), sorted.
    points: Vec<(u64, u32)>,
    rng: PickRng,
}

impl Picker for Ring {
    fn pick(&self, candidates: &Candidates<'_>, ctx: &PickContext<'_>) -> Option<usize> {
        let key = mix(ctx
            .hash_key
            .unwrap_or_else(|| self.rng.with(|rng| rng.gen())));
        let start = self.points.partition_point(|&(point, _)| point < key);
        // The owner, or the next eligible provider clockwise.
        let (behind, ahead) = self.points.split_at(start);
        ahead
            .iter()
            .chain(behind)
            .map(|&(_, owner)| owner as usize)
            .find(|&owner| candidates.is_eligible(owner))
    }
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
    use crate::balance::test_support::{candidates, providers, shares, Only};
    use crate::balance::Candidate;

    fn owner(picker: &dyn Picker, candidates: &[Candidate<'_>], key: u64) -> String {
        let ctx = PickContext {
            method: "m",
            hash_key: Some(key),
        };
        let i = picker.pick(&Candidates::new(candidates), &ctx).unwrap();
        candidates[i].provider.addr.clone()
    }

    fn owners(providers: &[Provider]) -> Vec<String> {
        let picker = ConsistentHash::seeded(0).picker(providers);
        let candidates = candidates(providers);
        (0..10_000u32)
            .map(|k| owner(picker.as_ref(), &candidates, hash_key(&k)))
            .collect()
    }

    fn five() -> Vec<Provider> {
        providers(&[
            ("10.0.0.1:20880", 100),
            ("10.0.0.2:20880", 100),
            ("10.0.0.3:20880", 100),
            ("10.0.0.4:20880", 100),
            ("10.0.0.5:20880", 100),
        ])
    }

    /// Virtual nodes per address on `providers`' ring.
    fn nodes(balancer: &ConsistentHash, providers: &[Provider]) -> HashMap<String, usize> {
        let mut nodes = HashMap::new();
        for (_, owner) in balancer.ring(providers) {
            *nodes
                .entry(providers[owner as usize].addr.clone())
                .or_default() += 1;
        }
        nodes
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
        let forward = five();
        let mut backward = forward.clone();
        backward.reverse();
        assert_eq!(owners(&forward), owners(&backward));
    }

    #[test]
    fn removing_a_provider_moves_only_its_keys() {
        let all = five();
        let removed = "10.0.0.3:20880";
        let rest: Vec<_> = all.iter().filter(|p| p.addr != removed).cloned().collect();
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
    fn an_ineligible_owner_hands_its_keys_on_as_a_removal_would() {
        // Provider 2 tried or ejected for this call: its keys go where they would go
        // if it were removed from the list, all other keys stay put.
        let all = five();
        let rest: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, p)| p.clone())
            .collect();
        let after_removal = owners(&rest);
        let picker = ConsistentHash::seeded(0).picker(&all);
        let without_2 = Only::new(&all, &[0, 1, 3, 4]);
        let live = Candidates::live(&without_2);
        for (k, expected) in (0..10_000u32).zip(&after_removal) {
            let ctx = PickContext {
                method: "m",
                hash_key: Some(hash_key(&k)),
            };
            let i = picker.pick(&live, &ctx).unwrap();
            assert_eq!(&all[i].addr, expected, "key {k}");
        }
    }

    #[test]
    fn adding_a_provider_moves_about_a_sixth() {
        let mut providers = five();
        let before = owners(&providers);
        providers.push(Provider::new("10.0.0.6:20880"));
        let after = owners(&providers);
        let moved: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        let share = moved.len() as f64 / 10_000.0;
        assert!((0.11..0.23).contains(&share), "moved {share}");
        assert!(moved.iter().all(|(_, a)| *a == "10.0.0.6:20880"));
    }

    #[test]
    fn weight_scales_virtual_nodes_and_share() {
        let providers = providers(&[("a:1", 200), ("b:1", 100), ("c:1", 0)]);
        let counts =
            owners(&providers)
                .into_iter()
                .fold(HashMap::<String, u32>::new(), |mut m, a| {
                    *m.entry(a).or_default() += 1;
                    m
                });
        let nodes = nodes(&ConsistentHash::seeded(2), &providers);
        assert_eq!((nodes["a:1"], nodes["b:1"], nodes["c:1"]), (320, 160, 1));
        let share_a = f64::from(counts["a:1"]) / 10_000.0;
        assert!((0.58..0.75).contains(&share_a), "a got {share_a}");
    }

    #[test]
    fn configured_virtual_nodes() {
        let providers = providers(&[("a:1", 100), ("b:1", 100)]);
        let balancer = ConsistentHash::seeded(2).virtual_nodes(16);
        assert_eq!(balancer.ring(&providers).len(), 32);
    }

    #[test]
    fn keys_spread_evenly() {
        let providers = five();
        let candidates = candidates(&providers);
        let picker = ConsistentHash::seeded(3).picker(&providers);
        let mut hits = HashMap::<String, u32>::new();
        for k in 0..50_000u64 {
            // Raw small integers work too: keys are mixed before the lookup.
            *hits
                .entry(owner(picker.as_ref(), &candidates, k))
                .or_default() += 1;
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
}
