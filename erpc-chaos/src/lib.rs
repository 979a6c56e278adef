//! Chaos testing for erpc: real provider processes on 127.0.0.1 that the tests kill,
//! stop, restart, slow down and overload while a consumer keeps calling them.
//!
//! - [`Probe`]: the service under test (`work` is idempotent, `record` is not); every
//!   answer says which provider served it ([`Served`]).
//! - [`ProviderProcess`]: runs the `chaos-provider` binary, waits for its `READY` line,
//!   sends it signals, restarts it on the same port and kills it on drop (even when the
//!   test panics).
//! - [`Load`]: N concurrent tasks calling at a steady pace through one client, recording
//!   every call's outcome, provider and latency in a [`Report`].
//!
//! - [`CallLogs`]: where providers log the id of every call they run, read back to
//!   count executions per call ([`Report::assert_at_most_once`]).
//! - [`Bulk`]: answers whose size the caller picks and arguments as big as the frame
//!   limit, for the hostile-input suite ([`hostile`] builds its raw frames).
//! - [`procfs`]: a process's memory, file descriptors and threads, read from `/proc`.
//!
//! The binary's path is only known to this crate's own tests
//! (`env!("CARGO_BIN_EXE_chaos-provider")`), so they pass it in; the `soak` binary runs
//! the same provider ([`provider`]) as a subcommand of itself.

pub mod hostile;
pub mod procfs;
pub mod provider;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use erpc::{ClientConfig, Error};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// What a provider answers: who served the call and the call's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The provider's `--name` (its port when no name was given).
    pub provider: String,
    /// The id the caller sent.
    pub id: u64,
}

/// The service the chaos tests call.
#[erpc::service(group = "chaos", version = "1.0")]
pub trait Probe {
    /// Sleeps `delay_ms` (plus the provider's `--delay-ms`) and says who served it;
    /// safe to run twice.
    #[erpc(idempotent)]
    async fn work(&self, id: u64, delay_ms: u64) -> Served;
    /// Same as `work`, but not declared idempotent: erpc may only send it again when
    /// the first attempt provably never reached a handler.
    async fn record(&self, id: u64, delay_ms: u64) -> Served;
}

/// Largest answer [`Bulk::blob`] makes (16 MiB less room for the frame's head).
pub const MAX_BLOB: usize = 16 * 1024 * 1024 - 1024;

/// Big answers and big arguments, for the hostile-input suite.
#[erpc::service(group = "chaos", version = "1.0")]
pub trait Bulk {
    /// `len` bytes of text (at most [`MAX_BLOB`]): an answer whose size the caller picks.
    async fn blob(&self, len: u32) -> String;
    /// Returns its argument: a big argument makes an equally big answer.
    async fn echo(&self, text: String) -> String;
}

/// Upper bound for one chaos test's body.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs `body`, failing the test if it takes longer than `limit`; the providers it
/// started are killed as their [`ProviderProcess`] values drop.
pub async fn bounded<F: Future>(limit: Duration, body: F) -> F::Output {
    match tokio::time::timeout(limit, body).await {
        Ok(output) => output,
        Err(_) => panic!("test did not finish within {limit:?}"),
    }
}

/// Logs erpc's tracing output to stderr when `RUST_LOG` is set (for debugging a test;
/// providers inherit the variable and log too).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// Client settings shared by the chaos tests: 300 ms heartbeat interval and timeout,
/// a 5 s call timeout, and a short first breaker ejection (200 ms).
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::default();
    config.timeout_ms = 5_000;
    config.heartbeat_interval_ms = 300;
    config.heartbeat_timeout_ms = 300;
    config.breaker_ejection_ms = 200;
    config
}

/// Starts one provider per name on free ports, each spec adjusted by `spec`.
pub async fn start_providers(
    bin: &str,
    names: &[&str],
    spec: impl Fn(ProviderSpec) -> ProviderSpec,
) -> Vec<ProviderProcess> {
    let mut providers = Vec::with_capacity(names.len());
    for (name, port) in names.iter().zip(free_ports(names.len())) {
        providers.push(ProviderProcess::start(bin, spec(ProviderSpec::new(*name, port))).await);
    }
    providers
}

/// A client of the Probe service over the fixed list of `providers`.
pub fn probe_client(config: ClientConfig, providers: &[ProviderProcess]) -> ProbeClient {
    let client = erpc::Client::builder()
        .config(config)
        .direct(providers.iter().map(ProviderProcess::addr))
        .build()
        .expect("client builds");
    ProbeClient::new(client)
}

/// `n` distinct ports that were free a moment ago on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// How to run one provider.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    /// Name reported in [`Served::provider`].
    pub name: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Added to every call (a slow provider).
    pub delay_ms: u64,
    /// Server concurrency limit; calls beyond it are answered `Overloaded`.
    pub max_concurrency: Option<usize>,
    /// Longest wait for in-flight calls on graceful shutdown.
    pub drain_ms: Option<u64>,
    /// File the provider appends every executed call id to (`--log-calls`).
    pub log_calls: Option<PathBuf>,
    /// Argument put before the flags, for a binary that runs the provider as a
    /// subcommand (the `soak` binary: `soak provider --port ...`).
    pub subcommand: Option<String>,
}

impl ProviderSpec {
    /// A provider named `name` on `port`, with no delay and default limits.
    pub fn new(name: impl Into<String>, port: u16) -> Self {
        Self {
            name: name.into(),
            port,
            delay_ms: 0,
            max_concurrency: None,
            drain_ms: None,
            log_calls: None,
            subcommand: None,
        }
    }

    /// Sets `--log-calls`.
    pub fn log_calls(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_calls = Some(path.into());
        self
    }

    /// Runs the binary as `bin <subcommand> --port ...`.
    pub fn subcommand(mut self, name: impl Into<String>) -> Self {
        self.subcommand = Some(name.into());
        self
    }

    /// Sets `--delay-ms`.
    pub fn delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    /// Sets `--max-concurrency`.
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = Some(limit);
        self
    }

    /// Sets `--drain-ms`.
    pub fn drain_ms(mut self, drain_ms: u64) -> Self {
        self.drain_ms = Some(drain_ms);
        self
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Longest wait for a provider's `READY` line.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `chaos-provider` process; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct ProviderProcess {
    bin: PathBuf,
    spec: ProviderSpec,
    child: Option<Child>,
    /// Held open so the provider exits by itself if this process dies without dropping
    /// it (the provider treats end of stdin as "parent gone").
    stdin: Option<ChildStdin>,
}

impl ProviderProcess {
    /// Starts the provider binary at `bin` and waits until it printed `READY`.
    ///
    /// # Panics
    /// When it cannot be spawned or is not ready within 20 s.
    pub async fn start(bin: impl Into<PathBuf>, spec: ProviderSpec) -> Self {
        let mut process = Self {
            bin: bin.into(),
            spec,
            child: None,
            stdin: None,
        };
        process.spawn().await;
        process
    }

    async fn spawn(&mut self) {
        assert!(
            self.child.is_none(),
            "{} is already running",
            self.spec.name
        );
        let mut command = Command::new(&self.bin);
        if let Some(subcommand) = &self.spec.subcommand {
            command.arg(subcommand);
        }
        command
            .arg("--port")
            .arg(self.spec.port.to_string())
            .arg("--name")
            .arg(&self.spec.name)
            .arg("--delay-ms")
            .arg(self.spec.delay_ms.to_string())
            .arg("--watch-stdin");
        if let Some(limit) = self.spec.max_concurrency {
            command.arg("--max-concurrency").arg(limit.to_string());
        }
        if let Some(drain) = self.spec.drain_ms {
            command.arg("--drain-ms").arg(drain.to_string());
        }
        if let Some(path) = &self.spec.log_calls {
            command.arg("--log-calls").arg(path);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.bin.display()));
        self.stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (lines, ready) = mpsc::channel::<String>();
        // Reads every line until the process exits, so its stdout never fills up.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match ready.try_recv() {
                Ok(line) if line.starts_with("READY") => return,
                Ok(_) => continue,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    panic!(
                        "{} exited before READY (status {status:?}; is port {} taken?)",
                        self.spec.name, self.spec.port
                    );
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() >= deadline => {
                    panic!("{} not READY within {READY_TIMEOUT:?}", self.spec.name)
                }
                Err(mpsc::TryRecvError::Empty) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        self.spec.addr()
    }

    /// The running process's id (`None` between an exit and a restart).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` to the process.
    ///
    /// # Panics
    /// When the process is not running.
    pub fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("provider is running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to {}: {e}", self.spec.name));
    }

    /// SIGTERM: graceful shutdown.
    pub fn sigterm(&self) {
        self.signal(Signal::SIGTERM);
    }

    /// SIGKILL: a crash.
    pub fn sigkill(&self) {
        self.signal(Signal::SIGKILL);
    }

    /// SIGSTOP: frozen, connections stay open but nothing answers.
    pub fn sigstop(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT: resumes a stopped provider.
    pub fn sigcont(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Waits until the process has exited.
    ///
    /// # Panics
    /// When it is still running after `timeout` (it is killed first).
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("provider was started");
        loop {
            if let Some(status) = child.try_wait().expect("polling the provider") {
                self.child = None;
                self.stdin = None;
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "{} still running {timeout:?} after the signal",
                    self.spec.name
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts the provider again on the same port (after it exited) and waits for
    /// `READY`.
    pub async fn restart(&mut self) {
        self.spawn().await;
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a stopped process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Which method a load task calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallKind {
    /// `work`: idempotent.
    Idempotent,
    /// `record`: not idempotent.
    NonIdempotent,
}

/// What the load calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Only `work`.
    Idempotent,
    /// Only `record`.
    NonIdempotent,
    /// Every task alternates `work` and `record`.
    Both,
}

/// Shape of a load.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    /// Concurrent tasks.
    pub tasks: usize,
    /// Each task starts a call at most this often (waiting for its previous call).
    pub pace: Duration,
    /// Which methods.
    pub mix: Mix,
    /// `delay_ms` argument of every call.
    pub delay_ms: u64,
}

/// One call made by the load.
#[derive(Debug)]
pub struct CallRecord {
    /// Which method.
    pub kind: CallKind,
    /// The id sent.
    pub id: u64,
    /// When the call started, relative to the start of the load.
    pub started: Duration,
    /// How long it took.
    pub latency: Duration,
    /// The serving provider's name, or the error.
    pub outcome: Result<String, Error>,
}

impl CallRecord {
    /// When the call ended, relative to the start of the load.
    pub fn ended(&self) -> Duration {
        self.started + self.latency
    }

    /// True when it was in flight at `at`.
    pub fn in_flight_at(&self, at: Duration) -> bool {
        self.started <= at && self.ended() >= at
    }

    /// The serving provider, if the call succeeded.
    pub fn provider(&self) -> Option<&str> {
        self.outcome.as_deref().ok()
    }
}

/// A running load; [`Load::stop`] ends it and returns what happened.
#[derive(Debug)]
pub struct Load {
    start: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<CallRecord>>>,
}

impl Load {
    /// Starts `spec.tasks` tasks calling through `client`, spread evenly over the pace.
    pub fn start(client: ProbeClient, spec: LoadSpec) -> Self {
        let start = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..spec.tasks)
            .map(|task| {
                let client = client.clone();
                let stop = stop.clone();
                let offset = spec.pace.mul_f64(task as f64 / spec.tasks.max(1) as f64);
                tokio::spawn(run_task(client, spec, task, start, offset, stop))
            })
            .collect();
        Self { start, stop, tasks }
    }

    /// Time since the load started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stops every task after its current call and collects the records.
    pub async fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut calls = Vec::new();
        for task in self.tasks {
            calls.extend(task.await.expect("load task panicked"));
        }
        calls.sort_by_key(|c| c.started);
        Report { calls }
    }
}

async fn run_task(
    client: ProbeClient,
    spec: LoadSpec,
    task: usize,
    start: Instant,
    offset: Duration,
    stop: Arc<AtomicBool>,
) -> Vec<CallRecord> {
    let mut records = Vec::new();
    let mut ticks =
        tokio::time::interval_at(start + offset, spec.pace.max(Duration::from_micros(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for seq in 0u64.. {
        ticks.tick().await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let kind = match spec.mix {
            Mix::Idempotent => CallKind::Idempotent,
            Mix::NonIdempotent => CallKind::NonIdempotent,
            Mix::Both if (seq + task as u64) % 2 == 0 => CallKind::Idempotent,
            Mix::Both => CallKind::NonIdempotent,
        };
        let id = (task as u64) << 32 | seq;
        let began = Instant::now();
        let result = match kind {
            CallKind::Idempotent => client.work(id, spec.delay_ms).await,
            CallKind::NonIdempotent => client.record(id, spec.delay_ms).await,
        };
        let latency = began.elapsed();
        let outcome = result.map(|served| {
            assert_eq!(served.id, id, "answer for another call");
            served.provider
        });
        records.push(CallRecord {
            kind,
            id,
            started: began - start,
            latency,
            outcome,
        });
    }
    records
}

/// A fresh directory of per-provider call logs (`--log-calls`), removed when dropped.
#[derive(Debug)]
pub struct CallLogs {
    dir: PathBuf,
}

impl CallLogs {
    /// Creates an empty directory for the logs of the test named `label`.
    ///
    /// # Panics
    /// When the directory cannot be created.
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("erpc-chaos-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Self { dir }
    }

    /// The log file of provider `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.calls"))
    }

    /// The ids provider `name` logged, one entry per execution, in the order its
    /// handlers started (empty when it logged nothing).
    ///
    /// # Panics
    /// When the file exists but cannot be read.
    pub fn executed_by(&self, name: &str) -> Vec<u64> {
        read_call_log(&self.path(name))
            .unwrap_or_else(|e| panic!("reading the call log of {name}: {e}"))
    }

    /// Executions per id, per provider, over the providers `names`.
    pub fn executions(&self, names: &[&str]) -> BTreeMap<u64, Vec<String>> {
        let mut runs: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for name in names {
            for id in self.executed_by(name) {
                runs.entry(id).or_default().push((*name).to_string());
            }
        }
        runs
    }
}

impl Drop for CallLogs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The ids in a `--log-calls` file (8 bytes big-endian each); empty if it does not exist.
pub fn read_call_log(path: &Path) -> std::io::Result<Vec<u64>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// Every call a load made, ordered by start time.
#[derive(Debug)]
pub struct Report {
    /// The calls.
    pub calls: Vec<CallRecord>,
}

impl Report {
    /// Calls of `kind`.
    pub fn of(&self, kind: CallKind) -> impl Iterator<Item = &CallRecord> {
        self.calls.iter().filter(move |c| c.kind == kind)
    }

    /// Panics, naming the first failure, when any call of `kind` failed.
    pub fn assert_no_failures(&self, kind: CallKind) {
        let failures = self.failures(kind);
        assert!(
            failures.is_empty(),
            "{} {kind:?} calls failed, first: {:?}",
            failures.len(),
            failures.first()
        );
    }

    /// The calls of `kind` that failed.
    pub fn failures(&self, kind: CallKind) -> Vec<&CallRecord> {
        self.of(kind).filter(|c| c.outcome.is_err()).collect()
    }

    /// Successful calls per provider.
    pub fn served_by(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for provider in self.calls.iter().filter_map(CallRecord::provider) {
            *counts.entry(provider.to_string()).or_insert(0) += 1;
        }
        counts
    }

    /// Share of successful calls served by `provider` (0.0–1.0).
    pub fn share_of(&self, provider: &str) -> f64 {
        let served: Vec<&str> = self.calls.iter().filter_map(CallRecord::provider).collect();
        if served.is_empty() {
            return 0.0;
        }
        served.iter().filter(|p| **p == provider).count() as f64 / served.len() as f64
    }

    /// Share of all calls that succeeded (0.0–1.0; 1.0 when there were none).
    pub fn success_ratio(&self) -> f64 {
        if self.calls.is_empty() {
            return 1.0;
        }
        let ok = self.calls.iter().filter(|c| c.outcome.is_ok()).count();
        ok as f64 / self.calls.len() as f64
    }

    /// The latency that `quantile` (0.0–1.0) of all calls, failed ones included, stayed
    /// at or under (nearest rank).
    pub fn latency_quantile(&self, quantile: f64) -> Duration {
        let mut latencies: Vec<Duration> = self.calls.iter().map(|c| c.latency).collect();
        latencies.sort_unstable();
        let rank = (quantile * latencies.len() as f64).ceil() as usize;
        latencies
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    /// Slowest call.
    pub fn max_latency(&self) -> Duration {
        self.calls
            .iter()
            .map(|c| c.latency)
            .max()
            .unwrap_or_default()
    }

    /// Checks the providers' execution counts (`runs`, from [`CallLogs::executions`])
    /// against the calls: no non-idempotent call ran more than once anywhere, a failed
    /// one ran at most once, and every successful call ran on the provider that
    /// answered it. Returns how many calls of each kind ran more than once.
    ///
    /// # Panics
    /// On the first violation, naming the call and where it ran.
    pub fn assert_at_most_once(&self, runs: &BTreeMap<u64, Vec<String>>) -> [usize; 2] {
        let mut repeated = [0; 2];
        let mut ids = BTreeSet::new();
        for call in &self.calls {
            assert!(ids.insert(call.id), "call id {} used twice", call.id);
            let ran: &[String] = runs.get(&call.id).map_or(&[], Vec::as_slice);
            if ran.len() > 1 {
                repeated[call.kind as usize] += 1;
            }
            if call.kind == CallKind::NonIdempotent {
                assert!(
                    ran.len() <= 1,
                    "non-idempotent call ran {} times (on {ran:?}): {call:?}",
                    ran.len()
                );
            }
            if let Some(provider) = call.provider() {
                assert!(
                    ran.iter().any(|p| p == provider),
                    "{provider} answered a call its log does not show it ran (ran on {ran:?}): {call:?}"
                );
            }
        }
        let unknown = runs.keys().filter(|id| !ids.contains(id)).count();
        assert_eq!(unknown, 0, "providers ran calls nobody made");
        repeated
    }

    /// One line: totals and failures per kind, and calls per provider.
    pub fn summary(&self) -> String {
        let line = |kind| {
            let total = self.of(kind).count();
            let failed = self.failures(kind).len();
            format!("{kind:?}: {total} calls, {failed} failed")
        };
        format!(
            "{}; {}; served by {:?}; max latency {:?}",
            line(CallKind::Idempotent),
            line(CallKind::NonIdempotent),
            self.served_by(),
            self.max_latency()
        )
    }
}
