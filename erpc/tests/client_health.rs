//! What the client counts against a provider's health, and how fast it comes back:
//! a caller's own short timeout ejects nothing; the only provider is never ejected
//! by its own breaker, and calls succeed soon after it accepts again; a client
//! outlives the runtime that first used it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use erpc::registry::MemoryRegistry;
use erpc::{BlockingClient, Client, Error, ServerHandle};
use support::{bounded, server, spawn, LabClient, LabImpl, LabServer, TEST_LIMIT};
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_caller_timeout_does_not_eject_the_provider() {
    bounded(TEST_LIMIT, async {
        let server = support::start(LabImpl::new("slow")).await;
        let lab = support::lab_client(server.local_addr());
        assert_eq!(lab.hold(1).await.unwrap(), 1, "warm-up");
        let hasty = lab.clone().with_timeout(Duration::from_millis(1));
        for _ in 0..40 {
            let error = hasty.hold(50).await.unwrap_err();
            assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        }
        for _ in 0..5 {
            let answer = lab.whoami().await;
            assert!(matches!(&answer, Ok(name) if name == "slow"), "{answer:?}");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Starts a `Lab` server on exactly `addr`.
async fn start_on(addr: SocketAddr) -> ServerHandle {
    spawn(
        erpc::Server::builder()
            .bind(addr.to_string())
            .add_service(LabServer::new(LabImpl::new("back"))),
    )
    .await
}

/// Stops the only provider for `outage` while a caller keeps calling, restarts it on
/// the same port and returns how long after it accepted again the first call succeeded.
async fn recovery_after(outage: Duration) -> Duration {
    let first = support::start(LabImpl::new("first")).await;
    let addr = first.local_addr();
    let lab = support::lab_client(addr);
    assert_eq!(lab.whoami().await.unwrap(), "first");
    first.close_abruptly().await;
    let (tx, mut successes) = tokio::sync::mpsc::unbounded_channel();
    let caller = tokio::spawn(async move {
        loop {
            if lab.whoami().await.is_ok() && tx.send(Instant::now()).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    tokio::time::sleep(outage).await;
    while successes.try_recv().is_ok() {}
    let back = start_on(addr).await;
    let accepting = Instant::now();
    let first_success = successes.recv().await.expect("caller runs");
    let took = first_success.saturating_duration_since(accepting);
    caller.abort();
    back.shutdown().await.unwrap();
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_provider_is_called_again_soon_after_a_3s_outage() {
    bounded(TEST_LIMIT, async {
        let took = recovery_after(Duration::from_secs(3)).await;
        eprintln!("recovered {took:?} after the provider accepted again (3 s outage)");
        assert!(took < Duration::from_secs(1), "took {took:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_only_provider_is_called_again_soon_after_a_10s_outage() {
    bounded(TEST_LIMIT, async {
        let took = recovery_after(Duration::from_secs(10)).await;
        eprintln!("recovered {took:?} after the provider accepted again (10 s outage)");
        assert!(took < Duration::from_secs(1), "took {took:?}");
    })
    .await;
}

/// Runs `body` on a fresh runtime on its own thread, then drops that runtime.
async fn on_own_runtime<T: Send + 'static>(
    body: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let out = runtime.block_on(body);
        drop(runtime);
        out
    })
    .await
    .expect("runtime thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_outlives_the_runtime_that_first_used_it() {
    bounded(TEST_LIMIT, async {
        let registry = MemoryRegistry::new();
        let one = spawn(
            server()
                .registry(registry.clone())
                .add_service(LabServer::new(LabImpl::new("one"))),
        )
        .await;
        let client = Client::builder()
            .registry(registry.clone())
            .build()
            .unwrap();
        let lab = LabClient::new(client);
        let first = lab.clone();
        let answer = on_own_runtime(async move { first.whoami().await }).await;
        assert_eq!(answer.unwrap(), "one");
        // Runtime A is gone, and with it the connection's reader and writer tasks:
        // runtime B's call reconnects to the same provider.
        let again = lab.clone();
        let answer = on_own_runtime(async move { again.whoami().await }).await;
        assert_eq!(answer.unwrap(), "one");
        // The provider list still follows the registry...
        one.shutdown().await.unwrap();
        let two = spawn(
            server()
                .registry(registry)
                .add_service(LabServer::new(LabImpl::new("two"))),
        )
        .await;
        // ...and calls from runtime B (and from this one) get through.
        let second = lab.clone();
        let answer = on_own_runtime(async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match second.whoami().await {
                    Ok(name) if name == "two" => return Ok(name),
                    other if Instant::now() >= deadline => return other,
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        assert_eq!(answer.unwrap(), "two");
        assert_eq!(lab.whoami().await.unwrap(), "two");
        two.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn dropping_a_blocking_client_inside_async_code_does_not_panic() {
    let client = BlockingClient::new(Client::builder().direct(["127.0.0.1:1"])).unwrap();
    drop(client.clone());
    drop(client);
}
