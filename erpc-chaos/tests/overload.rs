//! Overload: provider A runs at most 4 calls at once, each taking 300 ms. Eight calls
//! at once, failfast and only to A: 4 are served and 4 are refused `Overloaded` at once
//! (well under the 300 ms). With failover and a second provider B, all 8 succeed: the
//! refused ones (never run, so safe even for a non-idempotent method) are served by B.

use std::time::Duration;

use erpc::balance::{Candidates, LoadBalancer, PickContext, Picker};
use erpc::registry::Provider;
use erpc::{Client, ClusterMode, Error};
use erpc_chaos::{
    bounded, client_config, free_ports, ProbeClient, ProviderProcess, ProviderSpec, Served,
    TEST_LIMIT,
};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");
const DELAY: Duration = Duration::from_millis(300);

/// Always picks the provider at one address while it is a candidate.
#[derive(Debug)]
struct Prefer(String);

impl LoadBalancer for Prefer {
    fn picker(&self, _: &[Provider]) -> Box<dyn Picker> {
        Box::new(Prefer(self.0.clone()))
    }
}

impl Picker for Prefer {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let mut eligible = candidates.eligible();
        let first = eligible.next();
        let preferred = first
            .into_iter()
            .chain(eligible)
            .find(|(_, c)| c.provider.addr == self.0);
        preferred.or(first).map(|(i, _)| i)
    }
}

/// Eight `record` calls at once; each result with its latency.
async fn eight_at_once(probe: &ProbeClient) -> Vec<(Result<Served, Error>, Duration)> {
    let calls = (0..8u64).map(|id| {
        let probe = probe.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            let result = probe.record(id, 0).await;
            (result, began.elapsed())
        })
    });
    let mut results = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        results.push(call.await.expect("call task"));
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_provider_refuses_fast_and_failover_serves_elsewhere() {
    bounded(TEST_LIMIT, async {
        erpc_chaos::init_tracing();
        let ports = free_ports(2);
        let a = ProviderProcess::start(
            BIN,
            ProviderSpec::new("A", ports[0])
                .delay_ms(DELAY.as_millis() as u64)
                .max_concurrency(4),
        )
        .await;
        let b = ProviderProcess::start(BIN, ProviderSpec::new("B", ports[1])).await;

        // Failfast, A only.
        let only_a = Client::builder()
            .config(client_config())
            .retries(0)
            .direct([a.addr()])
            .build()
            .expect("client builds");
        let probe = ProbeClient::new(only_a).with_cluster(ClusterMode::Failfast);
        probe.work(0, 0).await.expect("warm-up call connects");
        let results = eight_at_once(&probe).await;
        let served: Vec<_> = results.iter().filter(|(r, _)| r.is_ok()).collect();
        let refused: Vec<_> = results
            .iter()
            .filter(|(r, _)| matches!(r, Err(Error::Overloaded(_))))
            .collect();
        println!(
            "failfast: {} served (latencies {:?}), {} refused Overloaded (latencies {:?})",
            served.len(),
            served.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
            refused.len(),
            refused.iter().map(|(_, l)| *l).collect::<Vec<_>>()
        );
        assert_eq!(served.len(), 4, "{results:?}");
        assert_eq!(refused.len(), 4, "{results:?}");
        for (_, latency) in &refused {
            assert!(
                *latency < DELAY / 2,
                "a refusal took {latency:?}: it should come at once"
            );
        }
        for (_, latency) in &served {
            assert!(*latency >= DELAY);
        }

        // Failover with B beside A; the balancer sends every first attempt to A.
        let both = Client::builder()
            .config(client_config())
            .retries(2)
            .direct([a.addr(), b.addr()])
            .build()
            .expect("client builds");
        let probe = ProbeClient::new(both)
            .with_cluster(ClusterMode::Failover)
            .with_balancer(Prefer(a.addr()));
        probe.work(0, 0).await.expect("warm-up call connects to A");
        let results = eight_at_once(&probe).await;
        let by = |name: &str| {
            results
                .iter()
                .filter(|(r, _)| r.as_ref().is_ok_and(|s| s.provider == name))
                .count()
        };
        let failed: Vec<_> = results.iter().filter(|(r, _)| r.is_err()).collect();
        let fast = results.iter().filter(|(_, l)| *l < DELAY / 2).count();
        println!(
            "failover: {} by A, {} by B, {} failed; {fast} answered under {:?}",
            by("A"),
            by("B"),
            failed.len(),
            DELAY / 2
        );
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(by("A"), 4);
        assert_eq!(by("B"), 4);
        assert_eq!(fast, 4, "the 4 calls A refused are served by B at once");
    })
    .await;
}
