//! The `erpc` binary against a real demo provider reached directly (`--addr`, with its
//! admin listener as `--admin`): every command's success path and the mistakes users
//! make, each with its exit code and its one-line message.

mod common;

use std::time::{Duration, Instant};

use common::{dead_port, erpc_async, erpc_with_stdin, Provider};

/// `erpc --addr ADDR args..` (and `--admin ADMIN` when `admin`).
async fn at(provider: &Provider, admin: bool, args: &[&str]) -> common::Run {
    let mut all = vec!["--addr".to_string(), provider.addr.clone()];
    if admin {
        all.extend(["--admin".to_string(), provider.admin.clone()]);
    }
    all.extend(args.iter().map(|a| a.to_string()));
    erpc_async(all).await
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_results_and_explains_mistakes() {
    let p = Provider::start(None).await;
    let calc = "demo_api::Calculator";

    let add = at(&p, false, &["call", calc, "add", "[2, 3]"]).await;
    assert_eq!(json(add.ok()), serde_json::json!({"Ok": 5}));
    let compact = at(&p, false, &["call", calc, "add", "[2, 3]", "-o", "json"]).await;
    assert_eq!(compact.ok(), "{\"Ok\":5}\n");
    let hello = at(
        &p,
        false,
        &[
            "call",
            "--group",
            "test1",
            "demo_api::HelloService",
            "hello",
            r#"[{"message": "hi", "description": "from the CLI"}]"#,
        ],
    )
    .await;
    assert!(
        hello.ok().contains("Hello description is from the CLI"),
        "{hello:?}"
    );

    // A method's Err(..) prints and exits 1.
    let divide = at(&p, false, &["call", calc, "divide", "[1, 0]"]).await;
    divide.fails(1, "returned an error value");
    assert_eq!(
        json(&divide.stdout),
        serde_json::json!({"Err": "DivisionByZero"})
    );

    // Unknown method: without a method list, a plain line; with --admin, did-you-mean.
    at(&p, false, &["call", calc, "nope", "[]"])
        .await
        .fails(1, "unknown method nope of demo_api::Calculator:1.0");
    at(&p, true, &["call", calc, "ad", "[2, 3]"])
        .await
        .fails(1, "did you mean add? (methods: add, divide, whoami)");

    // Unknown service: the provider says so; the admin listener adds the closest name.
    at(&p, false, &["call", "demo_api::Calculatr", "add", "[2, 3]"])
        .await
        .fails(
            1,
            "unknown service demo_api::Calculatr:1.0 at static://127.0.0.1:",
        );
    at(&p, true, &["call", "demo_api::Calculatr", "add", "[2, 3]"])
        .await
        .fails(1, "unknown service demo_api::Calculatr:1.0 at static://");
    at(&p, true, &["call", "demo_api::Calculatr", "add", "[2, 3]"])
        .await
        .fails(1, "did you mean demo_api::Calculator?");
    at(&p, true, &["call", "demo_api::HelloService", "hello", "[]"])
        .await
        .fails(1, r#"is registered with --group "test1" --version "1.0""#);

    // Arguments the provider cannot decode: wrong type, wrong count.
    at(&p, true, &["call", calc, "add", r#"["two", 3]"#])
        .await
        .fails(
        1,
        "arguments do not fit add(a, b) of demo_api::Calculator:1.0, a JSON array in that order: the provider says: invalid type: string \"two\", expected i64",
    );
    at(&p, false, &["call", calc, "add", "[2]"])
        .await
        .fails(1, "arguments do not fit add of demo_api::Calculator:1.0, a JSON array with one element per argument (--admin HOST:PORT shows their names): the provider says: invalid length 1");

    // Bad JSON and a non-array: usage errors that point at the spot.
    at(&p, false, &["call", calc, "add", "[2,\n 3 x]"])
        .await
        .fails(2, "arguments are not valid JSON at line 2, column 4");
    at(&p, false, &["call", calc, "add", "{\"a\": 2}"])
        .await
        .fails(2, "arguments must be a JSON array");

    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_describe_and_providers_read_the_admin_listener() {
    let p = Provider::start(None).await;

    let list = at(&p, true, &["list"]).await;
    let table = list.ok();
    assert!(table.starts_with("SERVICE"), "{table}");
    let calc_row = table
        .lines()
        .find(|l| l.starts_with("demo_api::Calculator"))
        .unwrap_or_else(|| panic!("no Calculator row: {table}"));
    assert_eq!(
        calc_row.split_whitespace().collect::<Vec<_>>(),
        ["demo_api::Calculator", "1.0", "1", "1"],
        "{table}"
    );
    let listed = json(
        at(&p, true, &["list", "-o", "json", "--group", "test1"])
            .await
            .ok(),
    );
    assert_eq!(
        listed,
        serde_json::json!([{"service": "demo_api::HelloService", "group": "test1",
            "version": "1.0", "providers": 1, "healthy": 1}])
    );
    at(&p, false, &["list"])
        .await
        .fails(2, "keeps no service catalogue");

    let describe = at(&p, true, &["describe", "demo_api::Calculator"]).await;
    let text = describe.ok();
    for expected in [
        "add(a, b)",
        "divide(a, b)",
        "whoami()",
        "methods from admin /services",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
    let described = json(
        at(
            &p,
            true,
            &[
                "describe",
                "-o",
                "json",
                "--group",
                "test1",
                "demo_api::HelloService",
            ],
        )
        .await
        .ok(),
    );
    assert_eq!(described["methods"][0]["name"], "hello");
    assert_eq!(
        described["methods"][0]["args"],
        serde_json::json!(["hello"])
    );
    at(&p, false, &["describe", "demo_api::Calculator"])
        .await
        .fails(
            2,
            "pass the provider's admin listener with --admin HOST:PORT",
        );
    at(&p, true, &["describe", "demo_api::Calculater"])
        .await
        .fails(1, "did you mean demo_api::Calculator?");

    let providers = at(&p, false, &["providers", "demo_api::Calculator"]).await;
    assert!(providers.ok().contains(&p.addr), "{providers:?}");

    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_summarises_a_short_run() {
    let p = Provider::start(None).await;
    let calc = "demo_api::Calculator";

    let run = at(
        &p,
        false,
        &[
            "bench", calc, "add", "[2, 3]", "-c", "4", "-d", "1s", "-o", "json",
        ],
    )
    .await;
    let summary = json(run.ok());
    assert_eq!(
        run.stderr, "",
        "no progress line when stderr is not a terminal"
    );
    let calls = summary["calls"].as_u64().expect("calls");
    assert!(calls > 0, "{summary}");
    assert_eq!(summary["ok"].as_u64(), Some(calls), "{summary}");
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");
    assert_eq!(summary["concurrency"], 4);
    let latency = &summary["latency_ms"];
    for (low, high) in [
        ("min", "p50"),
        ("p50", "p90"),
        ("p90", "p99"),
        ("p99", "max"),
    ] {
        assert!(
            latency[low].as_f64() <= latency[high].as_f64(),
            "{low} > {high}: {summary}"
        );
    }
    let histogram = summary["histogram"].as_array().expect("histogram");
    let counted: u64 = histogram.iter().filter_map(|b| b["count"].as_u64()).sum();
    assert_eq!(counted, calls, "{summary}");

    // Application errors are counted by kind; the text summary shows every part.
    let text = at(
        &p,
        false,
        &["bench", calc, "divide", "[1, 0]", "-c", "2", "-d", "500ms"],
    )
    .await;
    text.fails(1, "every call failed");
    for expected in [
        "calls in",
        "calls/s",
        "p50",
        "p90",
        "p99",
        "max",
        "Latency histogram",
        "∎",
        "Errors by kind",
        "application",
    ] {
        assert!(
            text.stdout.contains(expected),
            "{expected} missing: {}",
            text.stdout
        );
    }

    at(&p, true, &["bench", calc, "ad", "[2, 3]", "-d", "1s"])
        .await
        .fails(1, "did you mean add?");
    p.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_targets_exit_3() {
    let dead = format!("127.0.0.1:{}", dead_port());
    let run = |args: Vec<&str>| erpc_async(args.into_iter().map(String::from).collect());
    run(vec![
        "--addr",
        &dead,
        "call",
        "demo_api::Calculator",
        "add",
        "[2, 3]",
    ])
    .await
    .fails(3, &format!("cannot connect to {dead}"));
    run(vec![
        "--addr",
        &dead,
        "bench",
        "demo_api::Calculator",
        "add",
        "[2, 3]",
        "-d",
        "1s",
    ])
    .await
    .fails(3, "cannot connect");
    let nacos = format!("nacos://{dead}");
    for args in [
        vec!["--registry", &nacos, "list"],
        vec!["--registry", &nacos, "describe", "demo_api::Calculator"],
        vec![
            "--registry",
            &nacos,
            "call",
            "demo_api::Calculator",
            "add",
            "[2, 3]",
        ],
        vec!["--registry", &nacos, "watch", "demo_api::Calculator"],
    ] {
        run(args).await.fails(3, "Nacos");
    }
    run(vec!["--addr", "127.0.0.1:1", "--admin", &dead, "list"])
        .await
        .fails(3, "cannot reach the admin listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_and_completions_print() {
    let run = |args: &[&str]| erpc_async(args.iter().map(|a| a.to_string()).collect());
    run(&["list"])
        .await
        .fails(2, "--registry URL (or ERPC_REGISTRY) or --addr HOST:PORT");
    run(&["--registry", "zk://h:1", "list"])
        .await
        .fails(2, "unsupported registry scheme");
    let clap_error = run(&["--addr", "h:1", "--timeout", "soon", "list"]).await;
    assert_eq!(clap_error.code, 2, "{clap_error:?}");
    assert!(
        clap_error.stderr.contains("invalid value 'soon'"),
        "{clap_error:?}"
    );
    assert_eq!(run(&["frobnicate"]).await.code, 2);
    let version = run(&["-V"]).await;
    assert!(version.ok().starts_with("erpc "), "{version:?}");

    for (shell, marker) in [
        ("bash", "complete -F _erpc"),
        ("zsh", "#compdef erpc"),
        ("fish", "complete -c erpc"),
    ] {
        let script = run(&["completions", shell]).await;
        let text = script.ok();
        assert!(text.contains(marker), "{shell}: {text}");
        for word in ["bench", "describe", "watch", "registry"] {
            assert!(text.contains(word), "{shell} lacks {word}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_arguments_json_watch_lines_and_bench_interrupted() {
    let p = Provider::start(None).await;
    let calc = "demo_api::Calculator";
    let args = |rest: &[&str]| {
        let mut all = vec!["--addr".to_string(), p.addr.clone()];
        all.extend(rest.iter().map(|a| a.to_string()));
        all
    };

    // `-` reads the arguments from stdin; a JSON mistake there points at its line.
    let add = erpc_with_stdin(args(&["call", calc, "add", "-"]), "[2,\n 3]").await;
    assert_eq!(json(add.ok()), serde_json::json!({"Ok": 5}));
    erpc_with_stdin(args(&["call", calc, "add", "-"]), "[2,\n 3,,]")
        .await
        .fails(2, "arguments are not valid JSON at line 2, column 4");

    // watch -o json: one JSON object per line.
    let watch = erpc_async(args(&["watch", calc, "--count", "1", "-o", "json"])).await;
    let line = json(watch.ok().trim_end());
    assert_eq!(line["event"], "added");
    assert_eq!(line["addr"], p.addr.as_str());
    assert_eq!(line["service"], "demo_api::Calculator:1.0");

    // ctrl-c ends a long bench early with its summary.
    let mut bench = common::command(&[
        "--addr", &p.addr, "bench", calc, "add", "[2, 3]", "-c", "2", "-d", "300s", "-o", "json",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("bench starts");
    // The probe call is the first; the ctrl-c handler is in place before the second.
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::server_calls(&p.admin, "add") < 3 {
        assert!(Instant::now() < deadline, "bench made no calls");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &bench.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        let _ = bench.stdin.take();
        bench.wait_with_output()
    })
    .await
    .expect("waits")
    .expect("bench ends");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "bench ignored ctrl-c"
    );
    assert!(output.status.success(), "{output:?}");
    let summary = json(&String::from_utf8_lossy(&output.stdout));
    assert!(summary["calls"].as_u64() > Some(0), "{summary}");
    assert!(summary["duration_s"].as_f64() < Some(300.0), "{summary}");

    p.stop().await;
}
