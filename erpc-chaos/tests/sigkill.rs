//! SIGKILL one of three providers under load: every idempotent call still succeeds,
//! only non-idempotent calls that were in flight at the moment of the kill may fail,
//! and no call is served by (or lost on) the dead provider afterwards.

use std::time::Duration;

use erpc::Error;
use erpc_chaos::{
    bounded, client_config, probe_client, start_providers, CallKind, Load, LoadSpec, Mix,
    TEST_LIMIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_only_in_flight_non_idempotent_calls() {
    bounded(TEST_LIMIT, async {
        erpc_chaos::init_tracing();
        let mut providers = start_providers(BIN, &["A", "B", "C"], |s| s).await;
        let tasks = 16;
        let load = Load::start(
            probe_client(client_config(), &providers),
            LoadSpec {
                tasks,
                pace: Duration::from_millis(10),
                mix: Mix::Both,
                // Long enough that calls are always in flight on the victim.
                delay_ms: 30,
            },
        );
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let victim = &mut providers[1];
        let kill_before = load.elapsed();
        victim.sigkill();
        let kill_after = load.elapsed();
        victim.wait_exit(Duration::from_secs(5)).await;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let report = load.stop().await;
        let victim_name = victim.name().to_string();
        let victim_addr = victim.addr();
        println!(
            "sigkill at {kill_before:?}..{kill_after:?}: {}",
            report.summary()
        );

        report.assert_no_failures(CallKind::Idempotent);

        let in_flight = report
            .of(CallKind::NonIdempotent)
            .filter(|c| c.started <= kill_after && c.ended() >= kill_before)
            .count();
        let failures = report.failures(CallKind::NonIdempotent);
        println!(
        "non-idempotent: {} failed, {in_flight} in flight (on any provider) at the kill, {} tasks",
        failures.len(),
        tasks
    );
        assert!(
            failures.len() <= in_flight && failures.len() <= tasks,
            "{} non-idempotent failures exceed the {in_flight} calls in flight at the kill",
            failures.len()
        );
        for failure in &failures {
            let on_victim = matches!(
                &failure.outcome,
                Err(Error::ConnectionLost { addr, .. }) if *addr == victim_addr
            );
            assert!(on_victim, "unexpected failure: {failure:?}");
            // Started before the kill, or in the instant before the client saw the reset.
            assert!(
                failure.started <= kill_after + Duration::from_millis(100),
                "a call started {:?} after the kill failed: {failure:?}",
                failure.started.saturating_sub(kill_after)
            );
        }

        let last_from_victim = report
            .calls
            .iter()
            .filter(|c| c.provider() == Some(victim_name.as_str()))
            .map(|c| c.ended())
            .max()
            .expect("the victim served calls before the kill");
        let after_a_second = report
            .calls
            .iter()
            .filter(|c| c.started > kill_after + Duration::from_secs(1))
            .count();
        let victim_after_a_second = report
            .calls
            .iter()
            .filter(|c| {
                c.started > kill_after + Duration::from_secs(1)
                    && c.provider() == Some(victim_name.as_str())
            })
            .count();
        println!(
            "last success from {victim_name} ended at {last_from_victim:?}; \
         {victim_after_a_second} of {after_a_second} calls started 1 s after the kill went there"
        );
        assert!(
            last_from_victim <= kill_after + Duration::from_millis(100),
            "{victim_name} answered at {last_from_victim:?}, after it was killed"
        );
        assert!(after_a_second > 300, "too little load after the kill");
        assert_eq!(victim_after_a_second, 0);
    })
    .await;
}
