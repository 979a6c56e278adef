//! A 3-server ZooKeeper ensemble on loopback: the leader is killed while providers and
//! a consumer run. Calls go on without a failure, the registrations survive the
//! election, and a provider started during the election is listed once the remaining
//! two servers have a leader again.

mod support;
#[path = "support/whoami.rs"]
mod whoami;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{eventually, Ensemble};
use whoami::{listed, provider, registry, WhoamiClient};

/// Longer than an election on a loaded machine: sessions move to a surviving server.
const SESSION_MS: u64 = 8000;

/// How long a fresh registry gets to subscribe, and then to read the list.
const LIST_WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_dies_and_discovery_goes_on() {
    let test = "the_leader_dies_and_discovery_goes_on";
    let Some(mut ensemble) = Ensemble::start(test, 3) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), scenario(&mut ensemble))
        .await
        .expect("scenario finished within 240 s");
}

async fn scenario(ensemble: &mut Ensemble) {
    let url = ensemble.url(SESSION_MS);
    let ((first, first_addr), (second, second_addr)) = tokio::join!(provider(&url), provider(&url));
    let client = erpc::Client::builder()
        .registry(registry(&url))
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client builds");
    let whoami = WhoamiClient::new(client);
    eventually(Duration::from_secs(30), "both providers listed", || async {
        let all = listed(&url, LIST_WAIT).await;
        (all.contains(&first_addr) && all.contains(&second_addr)).then_some(())
    })
    .await;

    let (calls, failures) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(parking_lot::Mutex::new(Vec::new())),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (whoami, calls, failures, stop) = (
                whoami.clone(),
                calls.clone(),
                failures.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match whoami.whoami().await {
                        Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            failures.lock().push(e.to_string());
                            0
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(10), "calls under way", || async {
        (calls.load(Ordering::Relaxed) > 20).then_some(())
    })
    .await;

    // Kill the leader; a new provider starts while the others elect a new one.
    let leader = eventually(Duration::from_secs(20), "a leader", || async {
        ensemble.leader()
    })
    .await;
    ensemble.kill(leader);
    let killed = Instant::now();
    let (third, third_addr) = provider(&url).await;
    let before = calls.load(Ordering::Relaxed);
    eventually(Duration::from_secs(60), "a new leader", || async {
        ensemble.leader()
    })
    .await;
    eprintln!("new leader after {:?}", killed.elapsed());

    // The registrations survived and the new provider is listed.
    eventually(
        Duration::from_secs(60),
        "all three providers listed",
        || async {
            let all = listed(&url, LIST_WAIT).await;
            [&first_addr, &second_addr, &third_addr]
                .iter()
                .all(|a| all.contains(a))
                .then_some(())
        },
    )
    .await;
    eprintln!(
        "all three listed {:?} after the leader died",
        killed.elapsed()
    );
    eventually(
        Duration::from_secs(20),
        "calls after the election",
        || async { (calls.load(Ordering::Relaxed) > before + 50).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        let _ = caller.await;
    }
    assert!(
        failures.lock().is_empty(),
        "calls failed: {:?}",
        failures.lock()
    );
    for server in [first, second, third] {
        server.shutdown().await.expect("graceful shutdown");
    }
}
