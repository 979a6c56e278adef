//! erpc against a 3-node Nacos cluster (rnacos in raft cluster mode on loopback), the
//! way Nacos is run in production. Providers register through node 1 (their address
//! list is node 1, 2, 3), the consumer reads through node 2 (node 2, 1, 3), while calls
//! run all along:
//!
//! 1. node 2, the consumer's, is killed: no call fails, the consumer's subscription
//!    fails over (a provider registered afterwards is found and called), and the
//!    providers stay listed by nodes 1 and 3;
//! 2. node 2 is started again and serves every instance;
//! 3. node 1, the providers' (and now the consumer's), is killed: the providers' beats
//!    and a new registration move to node 2, the consumer moves to node 3, no call
//!    fails, and nodes 2 and 3 keep listing every provider past the expiry time.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erpc::registry::Registry;
use erpc_nacos::{NacosConfig, NacosRegistry};
use support::whoami::{self, load, Log, Named, WhoamiClient, WhoamiServer};
use support::{eventually, Cluster, Kind};

/// A registry on `servers`, in that order.
fn nacos(servers: &[String]) -> Arc<dyn Registry> {
    let config = NacosConfig::new(servers.iter().cloned())
        .poll_interval(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(3));
    Arc::new(NacosRegistry::new(config).expect("valid config"))
}

/// A provider on a free port registered through `servers` (node 1 first).
async fn provider(servers: &[String]) -> (erpc::ServerHandle, String) {
    let addr = format!("127.0.0.1:{}", support::free_port(false));
    let bound = erpc::Server::builder()
        .bind(addr.clone())
        .registry(nacos(servers))
        .add_service(WhoamiServer::new(Named(addr.clone())))
        .build()
        .await
        .expect("provider binds");
    (bound.spawn(), addr)
}

/// Addresses one node lists as healthy for the service (a fresh one-address
/// subscription, so nothing fails over); `None` when the node does not answer.
async fn listed(node: &str) -> Option<BTreeSet<String>> {
    use futures::StreamExt;
    let key = whoami::key();
    let mut changes = nacos(&[node.to_string()]).subscribe(&key).await.ok()?;
    match tokio::time::timeout(Duration::from_secs(5), changes.next()).await {
        Ok(Some(change)) => Some(change.all.into_iter().map(|p| p.addr).collect()),
        _ => None,
    }
}

/// Waits until each of `nodes` lists all of `expected` (the nodes sync with each other
/// in the background), then checks every second for `window` that they still do.
async fn stay_listed(nodes: &[String], expected: &[&String], window: Duration, what: &str) {
    let synced = Instant::now();
    eventually(
        Duration::from_secs(30),
        &format!("{what}: nodes {nodes:?} to list {expected:?}"),
        || async {
            for node in nodes {
                let seen = listed(node).await?;
                if !expected.iter().all(|addr| seen.contains(*addr)) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    eprintln!(
        "{what}: every node lists every provider after {:?}",
        synced.elapsed()
    );
    let end = Instant::now() + window;
    let mut checks = 0;
    while Instant::now() < end {
        for node in nodes {
            let seen = listed(node).await;
            let missing: Vec<_> = expected
                .iter()
                .filter(|addr| !seen.as_ref().is_some_and(|s| s.contains(**addr)))
                .collect();
            assert!(
                missing.is_empty(),
                "{what}: node {node} lost {missing:?} after {checks} good checks (lists {seen:?})"
            );
        }
        checks += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Log {
    fn served_since(&self, since: Instant, addr: &str) -> bool {
        self.calls
            .lock()
            .iter()
            .any(|(start, result)| *start >= since && result.as_deref() == Ok(addr))
    }

    /// Failed calls: when each started (since `origin`) and why.
    fn failures(&self, origin: Instant) -> Vec<(Duration, String)> {
        self.calls
            .lock()
            .iter()
            .filter_map(|(start, r)| {
                let why = r.as_ref().err()?;
                Some((start.saturating_duration_since(origin), why.clone()))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_of_a_nacos_cluster_die_under_load_without_failed_calls_or_lost_providers() {
    let test = "nodes_of_a_nacos_cluster_die_under_load";
    let mut cluster = match Cluster::start(3) {
        Ok(cluster) => cluster,
        Err(support::Unavailable(why)) => return support::skipped(test, Kind::Rnacos, &why),
    };
    let limit = Duration::from_secs(240);
    tokio::time::timeout(limit, scenario(&mut cluster))
        .await
        .unwrap_or_else(|_| panic!("the cluster scenario did not finish within {limit:?}"));
}

async fn scenario(cluster: &mut Cluster) {
    let started = Instant::now();
    let [n1, n2, n3] = [1, 2, 3].map(|id| cluster.addr(id));
    let providers_nodes = [n1.clone(), n2.clone(), n3.clone()];
    let consumer_nodes = [n2.clone(), n1.clone(), n3.clone()];
    // Past this an instance nobody beats for is gone (rnacos's default 30 s), plus a
    // beat and a margin.
    let expiry = Duration::from_secs(30 + 5 + 2);

    let (_a, a) = provider(&providers_nodes).await;
    let (_b, b) = provider(&providers_nodes).await;
    let client = erpc::Client::builder()
        .registry(nacos(&consumer_nodes))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client builds");
    let whoami = WhoamiClient::new(client);
    eventually(
        Duration::from_secs(20),
        "calls reaching both providers",
        || {
            let whoami = whoami.clone();
            let (a, b) = (a.clone(), b.clone());
            async move {
                let mut seen = BTreeSet::new();
                for _ in 0..20 {
                    if let Ok(addr) = whoami.whoami().await {
                        seen.insert(addr);
                    }
                }
                (seen.contains(&a) && seen.contains(&b)).then_some(())
            }
        },
    )
    .await;
    eprintln!("providers found after {:?}", started.elapsed());
    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let callers = load(&whoami, 4, &log, &stop);

    // 1. The consumer's node dies.
    cluster.kill(2);
    let killed = Instant::now();
    eprintln!("node 2 killed at {:?}", started.elapsed());
    let (_c, c) = provider(&providers_nodes).await;
    eventually(
        Duration::from_secs(20),
        "the consumer, its node 2 dead, to find a provider registered afterwards",
        || async { log.served_since(killed, &c).then_some(()) },
    )
    .await;
    eprintln!(
        "new provider found {:?} after node 2 died",
        killed.elapsed()
    );
    // The providers beat through node 1, which owns their instances: here they only
    // have to stay listed by both live nodes (the owner dying is step 3).
    stay_listed(
        &[n1.clone(), n3.clone()],
        &[&a, &b, &c],
        Duration::from_secs(10),
        "node 2 down",
    )
    .await;

    // 2. Node 2 comes back and serves every instance.
    cluster.restart(2);
    eventually(
        Duration::from_secs(30),
        "the restarted node 2 to list every provider",
        || async {
            listed(&n2)
                .await
                .filter(|seen| [&a, &b, &c].iter().all(|addr| seen.contains(*addr)))
        },
    )
    .await;
    eprintln!("node 2 back and serving at {:?}", started.elapsed());

    // 3. The providers' node (now also the consumer's) dies.
    cluster.kill(1);
    let killed = Instant::now();
    eprintln!("node 1 killed at {:?}", started.elapsed());
    let (_d, d) = provider(&providers_nodes).await;
    // rnacos routes an instance's writes to the node that owns it and refuses them
    // (HTTP 500) until it has noticed that node's death (15 s without contact, checked
    // every 3 s); the provider's beat task registers it as soon as a node takes it.
    eventually(
        Duration::from_secs(60),
        "the consumer, node 1 dead, to find a provider registered afterwards",
        || async { log.served_since(killed, &d).then_some(()) },
    )
    .await;
    eprintln!(
        "new provider found {:?} after node 1 died",
        killed.elapsed()
    );
    stay_listed(
        &[n2.clone(), n3.clone()],
        &[&a, &b, &c, &d],
        expiry,
        "node 1 down",
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.expect("caller task");
    }
    let calls = log.calls.lock().len();
    let failures = log.failures(started);
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed; first and last: {:?} {:?}",
        failures.len(),
        failures.first(),
        failures.last()
    );
    eprintln!(
        "{calls} calls, none failed; scenario took {:?}",
        started.elapsed()
    );
}
