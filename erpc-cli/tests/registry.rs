//! The `erpc` binary against real providers registered in a real registry (rnacos):
//! list (a drained provider is not healthy), describe from the registry metadata, call
//! with did-you-mean, watch provider changes, and a registered service whose providers
//! are all gone (exit 3).
//!
//! rnacos comes from `ERPC_RNACOS_BIN`, else `~/.cache/erpc/rnacos-0.8.8/bin/rnacos`
//! (`scripts/install-rnacos.sh`); without it the test prints SKIPPED, unless
//! `ERPC_NACOS_REQUIRE` is set.

#[path = "../../erpc-nacos/tests/support/mod.rs"]
mod support;

mod common;

use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use common::{erpc_async, Provider, Run};
use support::{eventually, Kind, Options, Server, Unavailable};

/// Generous bound for the registry to show a change on a loaded machine.
const SETTLE: Duration = Duration::from_secs(60);

async fn with(url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry".to_string(), url.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    erpc_async(all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_against_providers_in_rnacos() {
    let nacos = match Server::start(Kind::Rnacos, Options::default()) {
        Ok(server) => server,
        Err(Unavailable(why)) => return support::skipped("erpc-cli registry", Kind::Rnacos, &why),
    };
    let url = format!("nacos://{}", nacos.addr());
    let registry: Arc<dyn erpc::registry::Registry> =
        Arc::new(erpc::nacos::NacosRegistry::from_url(&url).expect("nacos URL"));
    let a = Provider::start(Some(registry.clone())).await;
    let calc = "demo_api::Calculator";
    for (group, service) in [("", calc), ("test1", "demo_api::HelloService")] {
        eventually(SETTLE, "the provider's registration", || async {
            let run = with(&url, &["providers", "--group", group, service]).await;
            (run.code == 0 && run.stdout.contains(&a.addr)).then_some(())
        })
        .await;
    }

    let list = with(&url, &["list"]).await;
    let rows: Vec<Vec<&str>> = list
        .ok()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec![calc, "1.0", "1", "1"],
            vec!["demo_api::HelloService", "test1", "1.0", "1", "1"]
        ],
        "{list:?}"
    );

    let describe = with(&url, &["describe", calc]).await;
    for expected in [
        "add(..)",
        "divide(..)",
        "whoami(..)",
        "methods from registry metadata",
    ] {
        assert!(
            describe.ok().contains(expected),
            "{expected} missing: {describe:?}"
        );
    }

    with(&url, &["providers", "demo_api::Calculater"])
        .await
        .fails(1, "did you mean demo_api::Calculator?");
    with(&url, &["describe", "demo_api::Calculater"])
        .await
        .fails(1, "did you mean demo_api::Calculator?");

    let add = with(&url, &["call", calc, "add", "[2, 3]", "-o", "json"]).await;
    assert_eq!(add.ok(), "{\"Ok\":5}\n");
    with(&url, &["call", calc, "ad", "[2, 3]"])
        .await
        .fails(1, "did you mean add? (methods: add, divide, whoami)");
    with(&url, &["call", "demo_api::Calculater", "add", "[2, 3]"])
        .await
        .fails(1, "did you mean demo_api::Calculator?");
    with(&url, &["call", "demo_api::HelloService", "hello", "[]"])
        .await
        .fails(1, r#"is registered with --group "test1""#);

    // watch: the provider present at the start, one that joins, and its leaving.
    let mut watch = common::command(&["--registry", &url, "watch", calc, "--count", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("erpc watch starts");
    let stdout = watch.stdout.take().expect("piped stdout");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut next_line = async || {
        tokio::time::timeout(SETTLE, lines.recv())
            .await
            .expect("a watch line in time")
            .expect("watch still running")
    };
    let first = next_line().await;
    assert!(
        first.contains(&format!("added   {calc}:1.0 {} weight=100", a.addr)),
        "{first}"
    );
    let b = Provider::start(Some(registry.clone())).await;
    let b_addr = b.addr.clone();
    let second = next_line().await;
    assert!(
        second.contains(&format!("added   {calc}:1.0 {b_addr}")),
        "{second}"
    );
    b.stop().await;
    let third = next_line().await;
    assert!(
        third.contains(&format!("removed {calc}:1.0 {b_addr}")),
        "{third}"
    );
    let status = tokio::task::spawn_blocking(move || watch.wait())
        .await
        .expect("waits")
        .expect("watch exits");
    assert!(status.success(), "{status:?}");

    // Watching a service with no provider yet says so once, with a did-you-mean.
    let mut typo = common::command(&["--registry", &url, "watch", "demo_api::Calculater"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("erpc watch starts");
    let stderr = typo.stderr.take().expect("piped stderr");
    let note = tokio::task::spawn_blocking(move || std::io::BufReader::new(stderr).lines().next())
        .await
        .expect("reads")
        .expect("a note line")
        .expect("utf-8");
    assert_eq!(
        note,
        format!("erpc: note: watching for providers: unknown service demo_api::Calculater:1.0 at {url} (did you mean demo_api::Calculator?)")
    );
    typo.kill().expect("watch stops");
    typo.wait().expect("watch reaped");

    // A drained provider (weight 0) counts as a provider, not as a healthy one.
    let drained = Provider::start_weighted(Some(registry.clone()), 0).await;
    let counts = eventually(SETTLE, "the drained provider's registration", || async {
        let run = with(&url, &["list", "-o", "json"]).await;
        let listed: serde_json::Value = serde_json::from_str(&run.stdout).ok()?;
        let calc_row = listed
            .as_array()?
            .iter()
            .find(|r| r["service"] == calc)?
            .clone();
        (calc_row["providers"] == 2).then_some(calc_row)
    })
    .await;
    assert_eq!(counts["healthy"], 1, "{counts}");
    drained.stop().await;

    // Every provider gone, the service still registered: unreachable (exit 3).
    a.stop().await;
    eventually(SETTLE, "the last provider's removal", || async {
        let run = with(&url, &["call", calc, "add", "[2, 3]"]).await;
        (run.code == 3).then_some(run)
    })
    .await
    .fails(3, "is registered at nacos://");
}
