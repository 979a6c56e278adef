//! Rolling restart: three providers restarted one after another (SIGTERM, exit, restart
//! on the same port) under a steady load of idempotent and non-idempotent calls; not a
//! single call may fail, no non-idempotent call runs twice (counted in the providers'
//! call logs), and each restarted provider serves again.

use std::time::Duration;

use erpc_chaos::{
    bounded, client_config, probe_client, start_providers, CallKind, CallLogs, Load, LoadSpec, Mix,
    TEST_LIMIT,
};

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_fails_no_call() {
    bounded(TEST_LIMIT, async {
        erpc_chaos::init_tracing();
    let names = ["A", "B", "C"];
    let logs = CallLogs::new("rolling-restart");
    let mut providers = start_providers(BIN, &names, |s| {
        let log = logs.path(&s.name);
        s.drain_ms(5_000).log_calls(log)
    })
    .await;
    let load = Load::start(
        probe_client(client_config(), &providers),
        LoadSpec {
            tasks: 16,
            pace: Duration::from_millis(10),
            mix: Mix::Both,
            delay_ms: 10,
        },
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut back_at = Vec::new();
    for provider in &mut providers {
        let term_at = load.elapsed();
        provider.sigterm();
        let status = provider.wait_exit(Duration::from_secs(10)).await;
        let exited_at = load.elapsed();
        provider.restart().await;
        let ready_at = load.elapsed();
        println!(
            "{}: SIGTERM at {term_at:?}, exited ({status}) at {exited_at:?}, READY again at {ready_at:?}",
            provider.name()
        );
        assert!(status.success(), "{} exited with {status}", provider.name());
        back_at.push((provider.name().to_string(), ready_at));
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    let report = load.stop().await;
    println!("rolling restart: {}", report.summary());
    for kind in [CallKind::Idempotent, CallKind::NonIdempotent] {
        let failures = report.failures(kind);
        assert!(
            failures.is_empty(),
            "{} {kind:?} calls failed, first: {:?}",
            failures.len(),
            failures.first()
        );
        assert!(report.of(kind).count() > 500, "too little {kind:?} load");
    }
    // The logs are complete: every provider exited gracefully or is still running, and
    // each call was logged before its handler answered.
    let repeated = report.assert_at_most_once(&logs.executions(&names));
    println!(
        "executions: {} idempotent and {} non-idempotent calls ran more than once",
        repeated[0], repeated[1]
    );
    for (name, ready_at) in &back_at {
        let after = report
            .calls
            .iter()
            .filter(|c| c.started > *ready_at && c.provider() == Some(name))
            .count();
        println!("{name}: {after} calls served after its restart");
        assert!(after > 0, "{name} never served again after its restart");
    }
    })
    .await;
}
