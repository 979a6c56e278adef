//! Provider sessions against a real ZooKeeper, with the provider in its own process:
//! killed (SIGKILL), its node goes when ZooKeeper expires the session, not before, and
//! a consumer calling it loses at most the calls in flight;
//! paused (SIGSTOP) past the session timeout, it disappears, and once resumed it
//! notices the expiry and registers again by itself.

mod support;
#[path = "support/whoami.rs"]
mod whoami;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erpc::registry::{ChangeStream, Registry};
use erpc_zookeeper::ZookeeperRegistry;
use futures::StreamExt;
use support::ZooKeeper;
use whoami::{Named, WhoamiClient, WhoamiServer};

/// Session timeout of the provider processes.
const SESSION_MS: u64 = 3000;
/// Variable naming the registry URL of a [`child_provider`] process.
const CHILD_REGISTRY: &str = "ERPC_ZK_CHILD_REGISTRY";

/// Not a test of its own: the provider process the tests below start, kill and pause.
/// It serves `Whoami` registered in the registry named by [`CHILD_REGISTRY`], prints
/// `READY host:port` once registered, and runs until killed.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn child_provider() {
    let Ok(url) = std::env::var(CHILD_REGISTRY) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let addr = format!("127.0.0.1:{}", support::free_port());
        let registry = ZookeeperRegistry::from_url(&url).expect("valid URL");
        let server = erpc::Server::builder()
            .bind(addr.clone())
            .registry(registry)
            .add_service(WhoamiServer::new(Named(addr.clone())))
            .build()
            .await
            .expect("provider binds")
            .spawn();
        server.registered().await;
        let mut out = std::io::stdout();
        writeln!(out, "READY {addr}").expect("stdout");
        out.flush().expect("stdout");
        std::future::pending::<()>().await;
    });
}

/// A provider process; killed on drop.
struct ChildProvider {
    child: Child,
    addr: String,
}

impl ChildProvider {
    fn start(url: &str) -> ChildProvider {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([
                "--ignored",
                "--exact",
                "child_provider",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_REGISTRY, url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the provider process");
        let stdout = child.stdout.take().expect("piped stdout");
        // Owned at once, so a panic below still kills the process.
        let mut provider = ChildProvider {
            child,
            addr: String::new(),
        };
        let (sender, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print `test child_provider ... ` before it on the line.
                if let Some((_, addr)) = line.split_once("READY ") {
                    let _ = sender.send(addr.trim().to_string());
                }
            }
        });
        provider.addr = ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the provider process registered within 60 s");
        provider
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for ChildProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to `within`) for a change whose list satisfies `wanted`.
async fn until(
    changes: &mut ChangeStream,
    within: Duration,
    what: &str,
    wanted: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, changes.next()).await {
            Ok(Some(change)) => {
                let addrs: Vec<String> = change.all.into_iter().map(|p| p.addr).collect();
                if wanted(&addrs) {
                    return;
                }
            }
            Ok(None) => panic!("the change stream ended while waiting for {what}"),
            Err(_) => panic!("timed out after {within:?} waiting for {what}"),
        }
    }
}

async fn consumer(zk: &ZooKeeper) -> ChangeStream {
    let registry = ZookeeperRegistry::from_url(&zk.url(10_000)).expect("valid URL");
    let key = erpc::ServiceKey::new("erpc.test.Whoami", "", "1.0");
    registry.subscribe(&key).await.expect("subscribe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_provider_leaves_when_its_session_expires() {
    let Some(zk) = ZooKeeper::start("a_killed_provider_leaves_when_its_session_expires") else {
        return;
    };
    let mut changes = consumer(&zk).await;
    let provider = ChildProvider::start(&zk.url(SESSION_MS));
    let addr = provider.addr.clone();
    // A second provider, in this process, and a consumer calling both.
    let survivor_addr = format!("127.0.0.1:{}", support::free_port());
    let survivor = erpc::Server::builder()
        .bind(survivor_addr.clone())
        .registry(ZookeeperRegistry::from_url(&zk.url(SESSION_MS)).expect("valid URL"))
        .add_service(WhoamiServer::new(Named(survivor_addr.clone())))
        .build()
        .await
        .expect("provider binds")
        .spawn();
    until(
        &mut changes,
        Duration::from_secs(20),
        "both providers listed",
        |all| all.contains(&addr) && all.contains(&survivor_addr),
    )
    .await;
    let client = erpc::Client::builder()
        .registry(ZookeeperRegistry::from_url(&zk.url(10_000)).expect("valid URL"))
        .timeout(Duration::from_secs(2))
        .heartbeat(Duration::from_millis(300), Duration::from_millis(300))
        .build()
        .expect("client builds");
    let whoami = WhoamiClient::new(client);
    let served = Arc::new(parking_lot::Mutex::new(Vec::<(
        Instant,
        Result<String, String>,
    )>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (whoami, served, stop) = (whoami.clone(), served.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let result = whoami.whoami().await.map_err(|e| e.to_string());
                    served.lock().push((start, result));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    support::eventually(
        Duration::from_secs(20),
        "calls reaching the provider process",
        || async {
            served
                .lock()
                .iter()
                .any(|(_, r)| r.as_deref() == Ok(addr.as_str()))
                .then_some(())
        },
    )
    .await;

    provider.signal("-KILL");
    let killed = Instant::now();
    until(
        &mut changes,
        Duration::from_secs(30),
        "the killed provider to go",
        |all| !all.contains(&addr),
    )
    .await;
    let gone = killed.elapsed();
    eprintln!("killed provider gone after {gone:?} (session timeout {SESSION_MS} ms)");
    // Ephemeral nodes live as long as the session: a crash is noticed by the session
    // timeout, not at once (a close would delete them at once).
    assert!(
        gone >= Duration::from_millis(SESSION_MS / 2),
        "gone after {gone:?}: not by session expiry"
    );

    // Calls went on on the survivor; at most the 4 in flight at the kill failed.
    support::eventually(
        Duration::from_secs(20),
        "calls after the expiry",
        || async {
            let after = killed + gone;
            (served
                .lock()
                .iter()
                .filter(|(start, r)| *start > after && r.is_ok())
                .count()
                > 50)
                .then_some(())
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        let _ = caller.await;
    }
    let (total, failed): (usize, Vec<String>) = {
        let calls = served.lock();
        let failed = calls
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().cloned())
            .collect();
        (calls.len(), failed)
    };
    assert!(
        failed.len() <= 4,
        "{} calls failed; at most the 4 in flight at the kill may: {failed:?}",
        failed.len()
    );
    eprintln!(
        "{total} calls, {} failed (in flight at the kill)",
        failed.len()
    );
    survivor.shutdown().await.expect("graceful shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_provider_registers_again_after_its_session_expired() {
    let test = "a_paused_provider_registers_again_after_its_session_expired";
    let Some(zk) = ZooKeeper::start(test) else {
        return;
    };
    let mut changes = consumer(&zk).await;
    let provider = ChildProvider::start(&zk.url(SESSION_MS));
    let addr = provider.addr.clone();
    until(
        &mut changes,
        Duration::from_secs(20),
        "the provider listed",
        |all| all.contains(&addr),
    )
    .await;

    // Paused past its session timeout: ZooKeeper expires the session.
    provider.signal("-STOP");
    until(
        &mut changes,
        Duration::from_secs(30),
        "the paused provider to expire",
        |all| !all.contains(&addr),
    )
    .await;

    // Resumed: it learns that its session expired, opens a new one, registers again.
    provider.signal("-CONT");
    let resumed = Instant::now();
    until(
        &mut changes,
        Duration::from_secs(30),
        "the provider to register again",
        |all| all.contains(&addr),
    )
    .await;
    eprintln!(
        "provider registered again {:?} after it resumed",
        resumed.elapsed()
    );
}
