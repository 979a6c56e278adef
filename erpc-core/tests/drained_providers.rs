//! Weight 0 means "drain": a provider listed with it gets no new call from any balancer,
//! on the first attempt or on failover.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erpc_core::balance::{
    BalancerKind, ConsistentHash, LeastActive, PowerOfTwoChoices, RoundRobin, WeightedRandom,
};
use erpc_core::registry::{MemoryRegistry, Provider, Registration, Registry};
use erpc_core::{CallOptions, Client, Error, ServiceKey};
use tokio::net::TcpListener;

/// A port that accepts connections, counts them and never answers.
struct Silent {
    addr: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn register(registry: &MemoryRegistry, key: &ServiceKey, addr: &str, weight: u32) {
    let mut provider = Provider::new(addr);
    provider.weight = weight;
    registry
        .register(&Registration {
            key: key.clone(),
            provider,
        })
        .await
        .expect("memory registry");
}

fn client(registry: &MemoryRegistry, balancer: BalancerKind) -> Client {
    let builder = Client::builder()
        .registry(registry.clone())
        .timeout(Duration::from_millis(300))
        .retries(2);
    let builder = match balancer {
        BalancerKind::WeightedRandom => builder.balancer(WeightedRandom::new()),
        BalancerKind::RoundRobin => builder.balancer(RoundRobin::new()),
        BalancerKind::ConsistentHash => builder.balancer(ConsistentHash::new()),
        BalancerKind::LeastActive => builder.balancer(LeastActive::new()),
        BalancerKind::PowerOfTwoChoices => builder.balancer(PowerOfTwoChoices::new()),
    };
    builder.build().expect("client builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_with_weight_0_is_never_called() {
    for balancer in BalancerKind::ALL {
        let key = ServiceKey::new("erpc.test.Drained", "", "1.0");
        let registry = MemoryRegistry::new();
        let drained = Silent::start().await;
        register(&registry, &key, &drained.addr, 0).await;
        let client = client(&registry, balancer);

        // The only provider is drained: no provider, and no connection to it.
        let error = client
            .call::<_, String>(&key, "whoami", &(), &CallOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::NoProvider { .. }),
            "{balancer}: {error:?}"
        );

        // With a live one next to it, calls (which time out there: it never answers)
        // go to the live one only, failover included.
        // The client learns of the new provider asynchronously: call until it is used.
        let live = Silent::start().await;
        register(&registry, &key, &live.addr, 100).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while live.accepted() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{balancer}: the live provider was not called"
            );
            let _ = client
                .call::<_, String>(&key, "whoami", &(), &CallOptions::default())
                .await;
        }
        for _ in 0..3 {
            let _ = client
                .call::<_, String>(&key, "whoami", &(), &CallOptions::default())
                .await;
        }
        assert_eq!(
            drained.accepted(),
            0,
            "{balancer}: the drained provider got connections"
        );
    }
}
