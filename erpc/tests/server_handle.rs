//! What dropping a `ServerHandle` does: the same graceful shutdown as `shutdown()`,
//! started at once and finished in the background (the handle is `#[must_use]` so that
//! `server.spawn();` does not do this by accident).

#[path = "support/down_at_first.rs"]
mod down_at_first;

use std::time::Duration;

use down_at_first::DownAtFirst;
use erpc::registry::{MemoryRegistry, Registry};
use erpc::{Server, ServiceKey};
use futures::StreamExt;

/// A service to register.
#[erpc::service]
pub trait Ping {
    /// Answers.
    async fn ping(&self) -> u32;
}

struct Pong;

impl Ping for Pong {
    async fn ping(&self) -> u32 {
        1
    }
}

/// A `Ping` server registered in `registry` as `advertised`.
async fn spawn_advertised(registry: impl Registry, advertised: &str) -> erpc::ServerHandle {
    Server::builder()
        .bind("127.0.0.1:0")
        .advertise(advertised)
        .registry(registry)
        .add_service(PingServer::new(Pong))
        .build()
        .await
        .expect("server binds")
        .spawn()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_deregisters_and_closes_the_server() {
    let registry = MemoryRegistry::new();
    let handle = spawn_advertised(registry.clone(), "127.0.0.1:1").await;
    let addr = handle.local_addr();
    let key = ServiceKey::new(PING_DESCRIPTOR.interface, "", "1.0");
    let mut changes = registry.subscribe(&key).await.unwrap();
    let listed = |all: &[erpc::registry::Provider]| all.iter().any(|p| p.addr == "127.0.0.1:1");
    let wait = Duration::from_secs(20);
    tokio::time::timeout(wait, async {
        while let Some(change) = changes.next().await {
            if listed(&change.all) {
                return;
            }
        }
        panic!("registry stream ended");
    })
    .await
    .expect("registered");

    drop(handle);

    // Graceful: deregistered first...
    tokio::time::timeout(wait, async {
        while let Some(change) = changes.next().await {
            if !listed(&change.all) {
                return;
            }
        }
        panic!("registry stream ended");
    })
    .await
    .expect("deregistered after the handle was dropped");
    // ...then the port closes.
    tokio::time::timeout(wait, async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the port stops accepting after the handle was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_completes_once_the_registry_has_the_provider() {
    let registry = DownAtFirst::new();
    let handle = spawn_advertised(registry.clone(), "127.0.0.1:2").await;
    // The registry refuses: the server retries in the background and is not registered.
    let early = tokio::time::timeout(Duration::from_millis(300), handle.registered()).await;
    assert!(
        early.is_err(),
        "registered() completed while the registry refused"
    );

    registry.come_up();
    tokio::time::timeout(Duration::from_secs(20), handle.registered())
        .await
        .expect("registered once the registry is up");
    let key = ServiceKey::new(PING_DESCRIPTOR.interface, "", "1.0");
    let mut changes = registry.subscribe(&key).await.unwrap();
    let first = changes.next().await.expect("current list");
    assert!(
        first.all.iter().any(|p| p.addr == "127.0.0.1:2"),
        "registered() completed before the provider was listed: {:?}",
        first.all
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn registered_completes_at_once_without_a_registry() {
    let handle = Server::builder()
        .bind("127.0.0.1:0")
        .add_service(PingServer::new(Pong))
        .build()
        .await
        .expect("server binds")
        .spawn();
    tokio::time::timeout(Duration::from_secs(5), handle.registered())
        .await
        .expect("nothing to register");
    handle.shutdown().await.unwrap();
}
