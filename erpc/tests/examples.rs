//! Every example in `erpc/examples` runs to completion and prints what it promises.
//!
//! `cargo test -p erpc` builds the examples before running tests; this test runs the
//! built binaries (`target/<profile>/examples/<name>`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The built example `name`, next to this test's own binary.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole `cargo test -p erpc`, which builds the examples",
        path.display()
    );
    path
}

/// Runs an example with a bound on its run time and returns its standard output.
fn run(name: &str) -> String {
    run_with(name, &[])
}

/// Runs an example with arguments.
fn run_with(name: &str, args: &[&str]) -> String {
    let started = Instant::now();
    let output = Command::new(example(name))
        .args(args)
        .env_remove("ERPC_CONFIG")
        .env_remove("ERPC_REGISTRY")
        .output()
        .expect("example starts");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{name} took {:?}",
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn hello_calls_over_a_static_list_and_shuts_down() {
    let out = run("hello");
    assert!(out.contains("Hello, erpc!"), "{out}");
    assert!(out.contains("stopped"), "{out}");
}

#[test]
fn blocking_client_calls_without_a_runtime() {
    assert!(run("blocking_client").contains("40 + 2 = 42"));
}

#[test]
fn group_and_version_pick_the_implementation() {
    let out = run("group_version");
    assert!(
        out.contains("retail/1.0 1000, wholesale/1.0 800, retail/2.0 900"),
        "{out}"
    );
}

#[test]
fn a_custom_balancer_keeps_calls_in_their_zone_and_spills_over() {
    let out = run("custom_balancer");
    assert!(out.contains(r#"{"west": 20}"#), "{out}");
    assert!(out.contains("west gone, answered by: east"), "{out}");
}

#[test]
fn byte_payloads_travel_as_bin_with_msgpack() {
    let out = run_with("byte_payloads", &["1"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("| msgpack | `ByteBuf`"))
        .unwrap_or_else(|| panic!("{out}"));
    let size: usize = row.split('|').nth(3).unwrap().trim().parse().unwrap();
    assert!(size < (1 << 20) + 16, "{row}");
}

#[test]
fn context_travels_through_a_provider_and_auth_refuses_an_intruder() {
    let out = run("context_filters");
    let trace_of = |prefix: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no `{prefix}` line in {out}"))
            .to_string()
    };
    assert_eq!(
        trace_of("caller: trace "),
        trace_of("words: trace "),
        "{out}"
    );
    assert!(out.contains("at most 5s left"), "{out}");
    assert!(out.contains("Bonjour, erpc!"), "{out}");
    assert!(out.contains("intruder refused: no token"), "{out}");
}
