//! A provider that answers with its own address, registered in ZooKeeper, and what the
//! discovery tests read back: the addresses listed, and callers that log every call
//! (erpc-nacos's `Whoami` support, included below).
//!
//! Declared by the tests that use it (`#[path = "support/whoami.rs"] mod whoami;`), not by
//! `support`: erpc-cli's tests include `support` without depending on erpc-zookeeper.

// Each test binary uses only some of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use erpc::registry::Registry;
use erpc_zookeeper::ZookeeperRegistry;
use futures::StreamExt;

// The service, its provider and the call-load generator are erpc-nacos's: the same
// discovery tests run against both registries.
#[path = "../../../erpc-nacos/tests/support/whoami.rs"]
mod service;
pub use service::*;

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
    let registry = registry(url);
    let Ok(Ok(mut changes)) = tokio::time::timeout(wait, registry.subscribe(&key())).await else {
        return Vec::new();
    };
    match tokio::time::timeout(wait, changes.next()).await {
        Ok(Some(change)) => change.all.into_iter().map(|p| p.addr).collect(),
        _ => Vec::new(),
    }
}
