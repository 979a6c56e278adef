//! One slow provider (20 ms added to every call) among three fast ones: round robin
//! sends it its third of the calls regardless, while least-active and the latency-aware
//! power-of-two-choices balancer send it clearly less under the same load.

use std::time::Duration;

use erpc::Client;
use erpc_chaos::{
    bounded, client_config, free_ports, Load, LoadSpec, Mix, ProbeClient, ProviderProcess,
    ProviderSpec, TEST_LIMIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_aware_balancers_avoid_a_slow_provider() {
    bounded(TEST_LIMIT, async {
        erpc_chaos::init_tracing();
    let ports = free_ports(3);
    let specs = [
        ProviderSpec::new("A", ports[0]),
        ProviderSpec::new("slow", ports[1]).delay_ms(20),
        ProviderSpec::new("C", ports[2]),
    ];
    let mut providers = Vec::new();
    for spec in specs {
        providers.push(ProviderProcess::start(BIN, spec).await);
    }
    let mut shares = Vec::new();
    for balancer in ["round_robin", "least_active", "p2c"] {
        let mut config = client_config();
        config.balancer = balancer.to_string();
        let client = Client::builder()
            .config(config)
            .direct(providers.iter().map(ProviderProcess::addr))
            .build()
            .expect("client builds");
        let load = Load::start(
            ProbeClient::new(client),
            LoadSpec {
                tasks: 32,
                pace: Duration::from_millis(5),
                mix: Mix::Idempotent,
                delay_ms: 0,
            },
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let report = load.stop().await;
        assert!(report.failures(erpc_chaos::CallKind::Idempotent).is_empty());
        let share = report.share_of("slow");
        println!(
            "{balancer}: slow provider served {:.1}% of {} calls ({:?})",
            share * 100.0,
            report.calls.len(),
            report.served_by()
        );
        shares.push((balancer, share));
    }
    let round_robin = shares[0].1;
    assert!(
        (0.28..0.39).contains(&round_robin),
        "round robin should give the slow provider a third, gave {round_robin:.3}"
    );
    for (balancer, share) in &shares[1..] {
        assert!(
            *share < round_robin / 2.0,
            "{balancer} sent the slow provider {share:.3} of the calls, round robin {round_robin:.3}"
        );
    }
    })
    .await;
}
