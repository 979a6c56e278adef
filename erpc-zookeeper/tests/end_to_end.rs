//! erpc servers and clients discovering each other through a real ZooKeeper: a consumer
//! finds two providers (registered at once, racing on the parent nodes) and calls both;
//! a provider that shuts down gracefully leaves ZooKeeper and the consumer within a
//! second with no failed call; with ZooKeeper down calls go on on the cached list; a
//! ZooKeeper restarted with its data keeps the session, one restarted empty gets the
//! provider back by itself (its session expired) and the consumer sees a new provider.

mod support;
#[path = "support/whoami.rs"]
mod whoami;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{eventually, ZooKeeper};
use whoami::{listed, load, provider, registry, Log, WhoamiClient};

/// Session timeout of the test registries: short, so expiry is testable in seconds, yet
/// safe on a loaded machine (the client pings every third of it).
const SESSION_MS: u64 = 3000;

/// How long a fresh registry gets to subscribe, and then to read the list.
const LIST_WAIT: Duration = Duration::from_secs(3);

impl Log {
    /// Providers that served calls started after `since`.
    fn served_since(&self, since: Instant) -> BTreeMap<String, usize> {
        let mut served = BTreeMap::new();
        for (start, result) in self.calls.lock().iter() {
            if let (true, Ok(addr)) = (*start >= since, result) {
                *served.entry(addr.clone()).or_insert(0) += 1;
            }
        }
        served
    }

    fn failures(&self) -> Vec<String> {
        self.calls
            .lock()
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().cloned())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_come_and_go_through_zookeeper_without_failed_calls() {
    let test = "providers_come_and_go_through_zookeeper_without_failed_calls";
    let Some(mut zk) = ZooKeeper::start(test) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(180), scenario(&mut zk))
        .await
        .expect("scenario finished within 180 s");
}

async fn scenario(zk: &mut ZooKeeper) {
    // The server keeps its port across restarts: one URL for the whole scenario.
    let url = zk.url(SESSION_MS);
    let ((first, first_addr), (second, second_addr)) = tokio::join!(provider(&url), provider(&url));
    let client = erpc::Client::builder()
        .registry(registry(&url))
        .timeout(Duration::from_secs(2))
        .heartbeat(Duration::from_millis(300), Duration::from_millis(300))
        .build()
        .expect("client builds");
    let whoami = WhoamiClient::new(client);

    // Discovery: both providers registered and called.
    eventually(
        Duration::from_secs(20),
        "calls reaching both providers",
        || {
            let whoami = whoami.clone();
            let (a, b) = (first_addr.clone(), second_addr.clone());
            async move {
                let mut seen = Vec::new();
                for _ in 0..20 {
                    if let Ok(addr) = whoami.whoami().await {
                        seen.push(addr);
                    }
                }
                (seen.contains(&a) && seen.contains(&b)).then_some(())
            }
        },
    )
    .await;

    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    let callers = load(&whoami, 4, &log, &stop);
    eventually(Duration::from_secs(10), "calls under way", || async {
        (log.calls.lock().len() > 20).then_some(())
    })
    .await;

    // Graceful shutdown: out of ZooKeeper at once, out of the consumer within a second.
    first.shutdown().await.expect("graceful shutdown");
    let shut = Instant::now();
    eventually(
        Duration::from_secs(1),
        "ZooKeeper to drop the stopped provider",
        || async { (!listed(&url, LIST_WAIT).await.contains(&first_addr)).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "calls after the shutdown",
        || async {
            (log.served_since(shut + Duration::from_secs(1))
                .values()
                .sum::<usize>()
                > 20)
                .then_some(())
        },
    )
    .await;
    let after = log.served_since(shut + Duration::from_secs(1));
    assert!(
        !after.contains_key(&first_addr),
        "calls still reached the stopped provider: {after:?}"
    );
    assert!(
        log.failures().is_empty(),
        "failed calls during graceful shutdown: {:?}",
        log.failures()
    );

    // ZooKeeper down: the consumer keeps its list and calls go on.
    zk.kill();
    let down = Instant::now();
    eventually(
        Duration::from_secs(20),
        "calls while ZooKeeper is down",
        || async {
            (log.served_since(down)
                .get(&second_addr)
                .copied()
                .unwrap_or(0)
                > 50)
                .then_some(())
        },
    )
    .await;
    assert!(
        log.failures().is_empty(),
        "calls failed while ZooKeeper was down: {:?}",
        log.failures()
    );

    // Back with its data: the provider's node is there (its session survived or it
    // registered again).
    zk.start_again();
    eventually(
        Duration::from_secs(30),
        "the provider listed after the restart",
        || async {
            listed(&url, LIST_WAIT)
                .await
                .contains(&second_addr)
                .then_some(())
        },
    )
    .await;

    // Back empty: every session and node is gone; the provider learns that its session
    // expired and registers again by itself.
    zk.kill();
    zk.start_again_empty();
    let restarted = Instant::now();
    eventually(
        Duration::from_secs(30),
        "the provider to register again",
        || async {
            listed(&url, LIST_WAIT)
                .await
                .contains(&second_addr)
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "provider back {:?} after ZooKeeper restarted empty",
        restarted.elapsed()
    );

    // The consumer's watch works on its new session: a new provider gets calls.
    let (third, third_addr) = provider(&url).await;
    eventually(
        Duration::from_secs(30),
        "the consumer to use the new provider",
        || async {
            log.served_since(Instant::now() - Duration::from_millis(500))
                .contains_key(&third_addr)
                .then_some(())
        },
    )
    .await;
    assert!(
        log.failures().is_empty(),
        "calls failed across the ZooKeeper restarts: {:?}",
        log.failures()
    );

    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        let _ = caller.await;
    }
    second.shutdown().await.expect("graceful shutdown");
    third.shutdown().await.expect("graceful shutdown");
    eprintln!("{} calls, none failed", log.calls.lock().len());
}
