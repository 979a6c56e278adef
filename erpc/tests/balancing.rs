//! Balancer state belongs to one service: services on disjoint providers, called
//! alternately, keep their own round-robin turn; a balancer's bad answer is a
//! configuration error, not a panic; forking is budgeted and only for idempotent calls.

mod support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use erpc::balance::{Candidates, ConsistentHash, LoadBalancer, PickContext, Picker, RoundRobin};
use erpc::registry::MemoryRegistry;
use erpc::registry::Provider;
use erpc::{Client, ClusterMode, Error, RetryBudgetPolicy};
use support::{bounded, server, spawn, LabClient, LabImpl, LabServer, TEST_LIMIT};

/// Providers a1, a2 of `Lab` in group "a" and b1, b2 in group "b" (two services on
/// disjoint providers), registered in `registry`.
async fn two_services_on_disjoint_providers(registry: &MemoryRegistry) -> Vec<erpc::ServerHandle> {
    let mut servers = Vec::new();
    for (name, group) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
        let lab = LabServer::new(LabImpl::new(name)).with_group(group);
        servers.push(spawn(server().registry(registry.clone()).add_service(lab)).await);
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_shares_stay_exact_with_two_services_interleaved() {
    bounded(TEST_LIMIT, async {
        let registry = MemoryRegistry::new();
        let servers = two_services_on_disjoint_providers(&registry).await;
        let client = Client::builder()
            .registry(registry)
            .balancer(RoundRobin::new())
            .build()
            .unwrap();
        let a = LabClient::new(client.clone()).with_group("a");
        let b = LabClient::new(client).with_group("b");
        let mut hits = HashMap::<String, usize>::new();
        for _ in 0..100 {
            *hits.entry(a.whoami().await.unwrap()).or_default() += 1;
            *hits.entry(b.whoami().await.unwrap()).or_default() += 1;
        }
        for name in ["a1", "a2", "b1", "b2"] {
            assert_eq!(hits.get(name), Some(&50), "{hits:?}");
        }
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Returns an index past the end of the candidates.
#[derive(Debug)]
struct PastTheEnd;

impl LoadBalancer for PastTheEnd {
    fn picker(&self, _: &[Provider]) -> Box<dyn Picker> {
        Box::new(PastTheEnd)
    }
}

impl Picker for PastTheEnd {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        Some(candidates.len() + 3)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancer_returning_an_out_of_range_index_is_a_config_error() {
    bounded(TEST_LIMIT, async {
        let server = support::start(LabImpl::new("one")).await;
        let lab = support::lab_client(server.local_addr()).with_balancer(PastTheEnd);
        let error = lab.whoami().await.unwrap_err();
        assert!(
            matches!(&error, Error::Config(m) if m.contains("PastTheEnd") && m.contains("index")),
            "{error:?}"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Consistent hashing that counts the pickers (rings) it builds.
#[derive(Debug, Default)]
struct CountingRings {
    inner: ConsistentHash,
    built: Arc<AtomicUsize>,
}

impl LoadBalancer for CountingRings {
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker> {
        self.built.fetch_add(1, Ordering::SeqCst);
        self.inner.picker(providers)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_ring_is_built_once_per_provider_list_not_per_pick() {
    bounded(TEST_LIMIT, async {
        let registry = MemoryRegistry::new();
        let servers = two_services_on_disjoint_providers(&registry).await;
        let balancer = CountingRings::default();
        let built = balancer.built.clone();
        let client = Client::builder()
            .registry(registry)
            .balancer(balancer)
            .build()
            .unwrap();
        let a = LabClient::new(client.clone()).with_group("a");
        let b = LabClient::new(client).with_group("b");
        let mut owners = HashMap::<(u64, &str), String>::new();
        for round in 0..3 {
            for key in 0..20u64 {
                for (name, lab) in [("a", &a), ("b", &b)] {
                    let owner = lab.clone().with_hash_key(key).whoami().await.unwrap();
                    let first = owners.entry((key, name)).or_insert(owner.clone());
                    assert_eq!(*first, owner, "round {round}: key {key} of {name} moved");
                }
            }
        }
        assert_eq!(built.load(Ordering::SeqCst), 2, "one ring per service");
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

#[test]
fn forking_as_the_client_wide_mode_is_refused_at_build_time() {
    let error = Client::builder()
        .direct(["127.0.0.1:1"])
        .cluster(ClusterMode::Forking(2))
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, Error::Config(m) if m.contains("forking") && m.contains("idempotent")),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forking_a_non_idempotent_call_is_refused_and_never_runs() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("one");
        let probe = lab.probe();
        let server = support::start(lab).await;
        let handle = support::lab_client(server.local_addr()).with_cluster(ClusterMode::Forking(2));
        let error = handle.hold(1).await.unwrap_err();
        assert!(
            matches!(&error, Error::Config(m) if m.contains("forking") && m.contains("idempotent")),
            "{error:?}"
        );
        assert_eq!(probe.started.load(Ordering::SeqCst), 0);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forking_is_charged_to_the_retry_budget() {
    bounded(TEST_LIMIT, async {
        let (one, two) = (LabImpl::new("one"), LabImpl::new("two"));
        let probes = [one.probe(), two.probe()];
        let servers = [support::start(one).await, support::start(two).await];
        let client = Client::builder()
            .direct(servers.iter().map(|s| s.local_addr().to_string()))
            .retry_budget(RetryBudgetPolicy {
                ratio: 0.0,
                min_per_second: 0.0,
            })
            .build()
            .unwrap();
        let lab = LabClient::new(client)
            .with_idempotent(true)
            .with_cluster(ClusterMode::Forking(2));
        for _ in 0..10 {
            assert_eq!(lab.hold(30).await.unwrap(), 30);
        }
        let runs: usize = probes
            .iter()
            .map(|p| p.started.load(Ordering::SeqCst))
            .sum();
        assert_eq!(runs, 10, "an empty retry budget still forked");
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}
