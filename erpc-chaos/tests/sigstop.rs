//! SIGSTOP one of three providers under load: its connections stay open but nothing
//! answers (no reset). The client's heartbeat (300 ms interval, 300 ms timeout) must
//! detect it: calls stuck there are released by the heartbeat, not by their 5 s timeout,
//! and retried elsewhere, so every idempotent call succeeds; calls stop landing there.
//! After SIGCONT the provider rejoins and serves again within a bounded time.

use std::time::Duration;

use erpc_chaos::{
    bounded, client_config, probe_client, start_providers, CallKind, Load, LoadSpec, Mix,
    TEST_LIMIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");

/// A call slower than this was stuck on the stopped provider (calls take ~5 ms).
const STUCK: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_is_detected_by_heartbeat_and_sigcont_rejoins() {
    bounded(TEST_LIMIT, async {
        erpc_chaos::init_tracing();
        let providers = start_providers(BIN, &["A", "B", "C"], |s| s).await;
        let config = client_config();
        let heartbeat =
            Duration::from_millis(config.heartbeat_interval_ms + config.heartbeat_timeout_ms);
        let timeout = Duration::from_millis(config.timeout_ms);
        let load = Load::start(
            probe_client(config, &providers),
            LoadSpec {
                tasks: 16,
                pace: Duration::from_millis(10),
                mix: Mix::Idempotent,
                delay_ms: 5,
            },
        );
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let victim = &providers[1];
        let stop_at = load.elapsed();
        victim.sigstop();
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let cont_at = load.elapsed();
        victim.sigcont();
        tokio::time::sleep(Duration::from_millis(4_000)).await;
        let report = load.stop().await;
        let victim_name = victim.name().to_string();
        println!(
            "SIGSTOP at {stop_at:?}, SIGCONT at {cont_at:?}: {}",
            report.summary()
        );

        report.assert_no_failures(CallKind::Idempotent);

        // Detection: the slowest call was released by the heartbeat (~600 ms after the
        // last byte from the provider), far before its own timeout.
        let max = report.max_latency();
        println!("slowest call {max:?} (heartbeat {heartbeat:?}, call timeout {timeout:?})");
        assert!(
            max < heartbeat * 2 + Duration::from_millis(500) && max < timeout / 2,
            "a call waited {max:?}: the stopped provider was not detected by the heartbeat"
        );

        // Calls stop landing there: once detected, only the breaker's lone probes get stuck.
        let detected = stop_at + heartbeat + Duration::from_millis(500);
        let stuck_before = report
            .calls
            .iter()
            .filter(|c| c.latency > STUCK && c.started < detected)
            .count();
        let stuck_after: Vec<_> = report
            .calls
            .iter()
            .filter(|c| c.latency > STUCK && c.started >= detected && c.started < cont_at)
            .collect();
        let calls_while_stopped = report
            .calls
            .iter()
            .filter(|c| c.started >= detected && c.started < cont_at)
            .count();
        println!(
        "stuck calls: {stuck_before} before {detected:?}, {} of {calls_while_stopped} after it \
         until SIGCONT (breaker probes)",
        stuck_after.len()
    );
        for c in &stuck_after {
            println!(
                "  stuck: started {:?}, took {:?}, {:?}",
                c.started, c.latency, c.outcome
            );
        }
        assert!(calls_while_stopped > 300, "too little load while stopped");
        assert!(
            stuck_after.len() <= 6,
            "{} calls still went to the stopped provider after detection",
            stuck_after.len()
        );

        // Rejoin: it serves again soon after SIGCONT.
        let rejoined = report
            .calls
            .iter()
            .filter(|c| c.provider() == Some(victim_name.as_str()) && c.started > cont_at)
            .map(|c| c.ended())
            .min()
            .expect("the provider never served again after SIGCONT");
        let served_after = report
            .calls
            .iter()
            .filter(|c| c.provider() == Some(victim_name.as_str()) && c.started > cont_at)
            .count();
        println!(
            "{victim_name} served again {:?} after SIGCONT ({served_after} calls since)",
            rejoined.saturating_sub(cont_at)
        );
        assert!(
            rejoined < cont_at + Duration::from_secs(3),
            "{victim_name} took {:?} to rejoin",
            rejoined - cont_at
        );
        assert!(
            served_after > 50,
            "{victim_name} barely serves after rejoining"
        );
    })
    .await;
}
