//! The demo, as a user runs it, against a real ZooKeeper: two `demo-provider` processes
//! register with `--registry zookeeper://...`, and `demo-consumer` with the same URL
//! finds both, calls every demo method and spreads its calls over the two.
//!
//! The demo binaries belong to other packages, so Cargo does not build them for this
//! test (`CARGO_BIN_EXE_*` only names a package's own binaries): the test builds them
//! with `cargo build -p demo-provider -p demo-consumer` into its own target directory
//! (a no-op when they are fresh), then runs them from there.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use erpc::registry::Registry;
use erpc_zookeeper::ZookeeperRegistry;
use futures::StreamExt;
use support::ZooKeeper;

/// The target directory and profile this test was built in, from its own path
/// (`<target>/<profile>/deps/demo-<hash>`).
fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name")
        .to_string();
    let target = profile_dir
        .parent()
        .expect("the profile directory lives in the target directory");
    (target.to_path_buf(), profile)
}

/// Builds the demo binaries in this test's target directory and profile; returns the
/// directory that holds them.
fn build_demo_binaries() -> PathBuf {
    let (target, profile) = target_and_profile();
    // The `test` profile's binaries go to `debug`, like `dev`'s.
    let cargo_profile = match profile.as_str() {
        "debug" => "dev",
        other => other,
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let started = Instant::now();
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "demo-provider",
            "-p",
            "demo-consumer",
            "--bins",
        ])
        .args(["--profile", cargo_profile])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the demo binaries failed: {status}"
    );
    eprintln!("demo binaries ready in {:?}", started.elapsed());
    target.join(profile)
}

/// A child process in its own process group, killed with it on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Process {
    std::os::unix::process::CommandExt::process_group(command, 0);
    Process(
        command
            .env_remove("ERPC_CONFIG")
            .env_remove("ERPC_REGISTRY")
            .env_remove("ERPC_PORT")
            .env_remove("ERPC_ADMIN")
            .spawn()
            .expect("demo binary starts"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_with_a_zookeeper_registry() {
    let Some(zk) = ZooKeeper::start("the_demo_runs_with_a_zookeeper_registry") else {
        return;
    };
    let bin = tokio::task::spawn_blocking(build_demo_binaries)
        .await
        .expect("build task");
    let url = zk.url(5000);
    let logs = tempfile::tempdir().expect("temp dir");

    let ports = [support::free_port(), support::free_port()];
    let _providers: Vec<Process> = ports
        .iter()
        .map(|port| {
            let log = std::fs::File::create(logs.path().join(format!("provider-{port}.log")))
                .expect("log file");
            spawn(
                Command::new(bin.join("demo-provider"))
                    .args(["--port", &port.to_string(), "--registry", &url])
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().expect("log file"))
                    .stderr(log),
            )
        })
        .collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();

    // Both providers in ZooKeeper before the consumer starts, so that it sees both.
    let registry = ZookeeperRegistry::from_url(&url).expect("valid URL");
    let key = erpc::ServiceKey::new("demo_api::Calculator", "", "1.0");
    let mut changes = registry.subscribe(&key).await.expect("subscribed");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let change = tokio::time::timeout(left, changes.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the providers did not register within 60 s; logs:\n{}",
                    logs_of(logs.path())
                )
            })
            .expect("the subscription goes on");
        let listed: Vec<String> = change.all.into_iter().map(|p| p.addr).collect();
        if addrs.iter().all(|a| listed.contains(a)) {
            break;
        }
    }

    let output = tokio::task::spawn_blocking({
        let bin = bin.clone();
        let url = url.clone();
        move || {
            let mut command = Command::new(bin.join("demo-consumer"));
            command
                .args(["--registry", &url, "--calls", "200", "--wait-secs", "60"])
                .env_remove("ERPC_CONFIG")
                .env_remove("ERPC_REGISTRY")
                .env_remove("ERPC_PORT")
                .env_remove("ERPC_ADMIN")
                .stdin(Stdio::null());
            command.output().expect("demo-consumer runs")
        }
    });
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("demo-consumer finishes within 120 s")
        .expect("consumer task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo-consumer failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider logs:\n{}",
        output.status,
        logs_of(logs.path())
    );
    assert!(stdout.contains("add(2, 3)        -> Ok(5)"), "{stdout}");
    assert!(
        stdout.contains("whoami x 200 over 2 provider(s)"),
        "{stdout}"
    );
    for addr in &addrs {
        assert!(
            stdout.contains(addr.as_str()),
            "{addr} served no call:\n{stdout}"
        );
    }
}

/// Every provider log, for a failure message.
fn logs_of(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        text.push_str(&format!("--- {}\n", entry.path().display()));
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    text
}
