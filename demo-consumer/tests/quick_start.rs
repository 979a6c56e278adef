//! The README's quick-start command: the embedded demo runs two providers, spreads calls
//! over both, and shuts them down cleanly: without a warning or an error on the way.

use std::process::Command;

#[test]
fn embedded_demo_spreads_calls_over_two_providers_and_exits_cleanly() {
    // Round-robin makes the spread exact. The default (latency-aware p2c) rightly sends
    // most calls to whichever provider answers faster, which on a loaded machine can be
    // one of the two by far (34 / 366 was seen), so it cannot be held to an even split.
    let output = Command::new(env!("CARGO_BIN_EXE_demo-consumer"))
        .args(["--calls", "400"])
        .env("ERPC_CLIENT_BALANCER", "round_robin")
        .env_remove("ERPC_REGISTRY")
        .env_remove("ERPC_PORT")
        .output()
        .expect("demo-consumer runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("\"Hello description is an erpc demo\""),
        "{stdout}"
    );
    assert!(stdout.contains("Err(DivisionByZero)"), "{stdout}");
    let per_provider: Vec<u32> = stdout
        .lines()
        .filter(|l| l.trim_end().ends_with(" calls"))
        .filter_map(|l| l.split_whitespace().rev().nth(1)?.parse().ok())
        .collect();
    assert_eq!(per_provider.len(), 2, "expected two providers:\n{stdout}");
    assert_eq!(per_provider.iter().sum::<u32>(), 400);
    assert_eq!(per_provider, [200, 200], "calls not spread evenly");
    assert!(stdout.contains("all providers stopped"), "{stdout}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for log in [&stdout, &stderr] {
        assert!(
            !log.contains("WARN") && !log.contains("ERROR"),
            "a first run shows the user a warning or an error:\n{log}"
        );
    }
}
