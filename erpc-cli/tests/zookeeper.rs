//! The `erpc` binary against a provider registered in a real ZooKeeper: `list` reads the
//! registry's catalogue (Dubbo's `/dubbo/{interface}/providers` layout), `providers`,
//! `describe` and `call` work on `zookeeper://` like on any registry, and a dead
//! ZooKeeper is exit 3.
//!
//! ZooKeeper comes from `ERPC_ZOOKEEPER_LIB` (`scripts/install-zookeeper.sh`); without it
//! the test prints SKIPPED, unless `ERPC_ZOOKEEPER_REQUIRE=1`.

#[path = "../../erpc-zookeeper/tests/support/mod.rs"]
mod support;

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{erpc_async, Provider, Run};

async fn with(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry".to_string(), url.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    erpc_async(all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_against_a_provider_in_zookeeper() {
    let Some(zookeeper) = support::ZooKeeper::start("erpc-cli zookeeper") else {
        return;
    };
    let url = zookeeper.url(4_000);
    let registry: Arc<dyn erpc::registry::Registry> =
        Arc::new(erpc::zookeeper::ZookeeperRegistry::from_url(&url).expect("zookeeper URL"));
    let provider = Provider::start(Some(registry)).await;
    let calc = "demo_api::Calculator";
    support::eventually(
        Duration::from_secs(60),
        "the provider's registration",
        || async {
            let run = with(&url, &["providers", calc]).await;
            (run.code == 0 && run.stdout.contains(&provider.addr)).then_some(())
        },
    )
    .await;

    let list = with(&url, &["list"]).await;
    let rows: Vec<Vec<&str>> = list
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.contains(&vec![calc, "1.0", "1", "1"]),
        "the Calculator row in {list:?}"
    );
    assert!(
        describe_lists_add(&with(&url, &["describe", calc]).await),
        "describe from the registry metadata"
    );
    let add = with(&url, &["call", calc, "add", "[2, 3]", "-o", "json"]).await;
    assert_eq!(add.ok(), "{\"Ok\":5}\n");

    let dead = format!("zookeeper://127.0.0.1:{}", support::free_port());
    with(&dead, &["list", "--timeout", "3s"])
        .await
        .fails(3, "ZooKeeper");
}

fn describe_lists_add(run: &Run) -> bool {
    let out = run.ok();
    out.contains("add(..)") && out.contains("methods from registry metadata")
}

/// `erpc monitor` on ZooKeeper: the page lists the provider with its admin listener, and
/// governance answers "not supported by this registry" (501), which the page shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_on_zookeeper_lists_providers_without_governance() {
    let Some(zookeeper) = support::ZooKeeper::start("erpc-cli zookeeper monitor") else {
        return;
    };
    let url = zookeeper.url(4_000);
    let registry: Arc<dyn erpc::registry::Registry> =
        Arc::new(erpc::zookeeper::ZookeeperRegistry::from_url(&url).expect("zookeeper URL"));
    let provider = Provider::start(Some(registry)).await;
    let monitor = common::monitor::Monitor::start(&url, None);
    let state = support::eventually(
        Duration::from_secs(60),
        "the provider on the monitor",
        || async {
            let state = monitor.state().await;
            let listed = state["services"]
                .as_array()?
                .iter()
                .filter(|s| s["interface"] == "demo_api::Calculator")
                .flat_map(|s| s["providers"].as_array().into_iter().flatten())
                .any(|p| {
                    p["addr"] == provider.addr.as_str() && p["admin"] == provider.admin.as_str()
                });
            listed.then_some(state)
        },
    )
    .await;
    let note = state["governance_unsupported"].as_str().unwrap_or_default();
    assert!(note.contains("not supported by this registry"), "{state}");
    let (status, answer) = monitor
        .act(
            None,
            serde_json::json!({"interface": "demo_api::Calculator", "version": "1.0", "addr": provider.addr, "enabled": false}),
        )
        .await;
    assert_eq!(status, 501, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("not supported by this registry")),
        "{answer}"
    );
    drop(monitor);
    provider.stop().await;
}
