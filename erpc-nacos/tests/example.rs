//! The `nacos` example runs to completion against a real Nacos (rnacos here): two
//! providers found, calls spread, one leaves gracefully with no failed call.

mod support;

use std::process::Command;
use support::{Kind, Options, Server};

#[test]
fn the_nacos_example_runs_against_a_real_nacos() {
    let server = match Server::start(Kind::Rnacos, Options::default()) {
        Ok(server) => server,
        Err(support::Unavailable(why)) => return support::skipped("example", Kind::Rnacos, &why),
    };
    let exe = std::env::current_exe().expect("test binary path");
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("examples")
        .join("nacos");
    assert!(
        example.exists(),
        "{} is not built: run the whole `cargo test -p erpc-nacos`, which builds the examples",
        example.display()
    );
    let output = Command::new(&example)
        .arg(server.addr())
        .env_remove("ERPC_CONFIG")
        .output()
        .expect("example starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "example failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("answered by both providers"), "{stdout}");
    assert!(stdout.contains("none failed"), "{stdout}");
}
