//! A provider that answers with its own address, registered in ZooKeeper, and what the
//! discovery tests read back: the addresses listed, and callers that log every call.
//!
//! Declared by the tests that use it (`#[path = "support/whoami.rs"] mod whoami;`), not by
//! `support`: erpc-cli's tests include `support` without depending on erpc-zookeeper.

// Each test binary uses only some of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erpc::registry::Registry;
use erpc_zookeeper::ZookeeperRegistry;
use futures::StreamExt;

/// Answers with the provider's own address.
#[erpc::service(name = "erpc.test.Whoami")]
pub trait Whoami {
    /// The serving provider's address.
    async fn whoami(&self) -> String;
}

/// A [`Whoami`] provider named by its address.
pub struct Named(pub String);

impl Whoami for Named {
    async fn whoami(&self) -> String {
        self.0.clone()
    }
}

/// A fresh registry on the `zookeeper://` URL `url`.
pub fn registry(url: &str) -> Arc<dyn Registry> {
    Arc::new(ZookeeperRegistry::from_url(url).expect("valid URL"))
}

/// A provider on a free port, registered through `url`; its handle and address.
pub async fn provider(url: &str) -> (erpc::ServerHandle, String) {
    let addr = format!("127.0.0.1:{}", crate::support::free_port());
    let bound = erpc::Server::builder()
        .bind(addr.clone())
        .registry(registry(url))
        .add_service(WhoamiServer::new(Named(addr.clone())))
        .build()
        .await
        .expect("provider binds");
    (bound.spawn(), addr)
}

/// Addresses ZooKeeper lists for the service, read with a fresh registry that gets
/// `wait` to subscribe and `wait` for its first list; empty when either runs out.
pub async fn listed(url: &str, wait: Duration) -> Vec<String> {
    let key = erpc::ServiceKey::new("erpc.test.Whoami", "", "1.0");
    let registry = registry(url);
    let Ok(Ok(mut changes)) = tokio::time::timeout(wait, registry.subscribe(&key)).await else {
        return Vec::new();
    };
    match tokio::time::timeout(wait, changes.next()).await {
        Ok(Some(change)) => change.all.into_iter().map(|p| p.addr).collect(),
        _ => Vec::new(),
    }
}

/// Calls made by [`load`]: when each started and what it got (the provider's address
/// or the error's text).
#[derive(Default)]
pub struct Log {
    pub calls: parking_lot::Mutex<Vec<(Instant, Result<String, String>)>>,
}

/// `tasks` callers in a loop (5 ms apart each) until `stop` is set.
pub fn load(
    client: &WhoamiClient,
    tasks: usize,
    log: &Arc<Log>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|_| {
            let (client, log, stop) = (client.clone(), log.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let result = client.whoami().await.map_err(|e| e.to_string());
                    log.calls.lock().push((start, result));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect()
}
