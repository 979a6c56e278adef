//! The harness every attack runs in: a provider process, the well-behaved client, the
//! table row and the assertions; and the raw-socket helpers the attacks share.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use erpc::{Client, ClusterMode, Compression};
use erpc_chaos::hostile::{bulk_key, msgpack, probe_key, request};
use erpc_chaos::procfs::{mib, MemoryStatus};
use erpc_chaos::{
    bounded, free_ports, Load, LoadSpec, Mix, ProbeClient, ProviderProcess, ProviderSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_chaos-provider");

/// Peak RSS (VmHWM) a provider may reach in any attack. An idle debug provider holds
/// about 10 MiB; today's server reached 2.2 GB in the amplification attack. A server
/// that budgets its buffers in bytes (a few MiB per connection, a server-wide body
/// budget) stays far below this, with room for debug builds and allocator slack.
pub(crate) const PEAK_RSS_BOUND: u64 = 256 << 20;
/// How much a provider's virtual size may grow while many connections declare huge
/// bodies: today's server reserved the whole declared 16 MiB per connection (500
/// connections: 8 GB); a buffer that grows with the bytes that arrive needs almost none.
pub(crate) const VIRTUAL_GROWTH_BOUND: u64 = 1 << 30;
/// Least share of the well-behaved client's calls that must succeed during an attack.
pub(crate) const MIN_SUCCESS: f64 = 0.99;
/// The well-behaved client's p99 latency bound during an attack, over its p99 in a
/// quiet second just before (on an idle machine 1–7 ms in a debug build): the box's
/// own noise (other builds on 2 shared cores) is not the attack's doing.
pub(crate) const P99_BOUND: Duration = Duration::from_millis(50);
/// The quiet window that measures the box's noise before each attack.
const QUIET: Duration = Duration::from_secs(1);
/// How long the attacker holds its connections while the good client measures.
pub(crate) const HOLD: Duration = Duration::from_secs(4);
/// Longest wait for the provider to serve again after the attacker left.
pub(crate) const RECOVERY: Duration = Duration::from_secs(10);
/// Longest wait for a pong behind 20 pipelined bombs: a reader that leaves
/// decompression to other tasks answers a ping at once (today: 614 ms in release).
pub(crate) const PONG_BEHIND_BOMBS: Duration = Duration::from_millis(100);
/// Longest silence from the provider before an attacker's read counts as unanswered.
pub(crate) const SILENCE: Duration = Duration::from_secs(5);
/// Answer size of the "tiny request, big answer" attacks.
pub(crate) const BIG_ANSWER: u32 = 32 * 1024;

/// The attacks take turns: figures measured while another attack runs mean nothing.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The provider under attack.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
}

/// What an attack observed beyond the good client's figures.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Printed in the table row.
    pub(crate) note: String,
    /// Each a failed expectation; the test fails when any is present.
    pub(crate) problems: Vec<String>,
}

impl Findings {
    pub(crate) fn note(note: impl Into<String>) -> Self {
        Self {
            note: note.into(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn expect(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }
}

/// Starts a provider (default limits unless `spec` changes them), runs `attack`
/// against it while the well-behaved client calls, prints the row and asserts.
pub(crate) async fn under_attack<A, F>(
    name: &str,
    spec: impl FnOnce(ProviderSpec) -> ProviderSpec,
    attack: A,
) where
    A: FnOnce(Target) -> F + Send + 'static,
    F: Future<Output = Findings>,
{
    let _turn = SERIAL.lock().await;
    bounded(Duration::from_secs(120), async {
        erpc_chaos::init_tracing();
        let port = free_ports(1)[0];
        let provider = ProviderProcess::start(BIN, spec(ProviderSpec::new("victim", port))).await;
        let target = Target {
            addr: provider.addr().parse().expect("socket address"),
            pid: provider.pid().expect("provider runs"),
        };
        let good = good_client(&provider.addr());
        good.work(0, 0).await.expect("the good client's first call");
        let steady = LoadSpec {
            tasks: 4,
            pace: Duration::from_millis(20),
            mix: Mix::Idempotent,
            delay_ms: 0,
        };
        let quiet = Load::start(good.clone(), steady);
        tokio::time::sleep(QUIET).await;
        let quiet_p99 = quiet.stop().await.latency_quantile(0.99);
        let load = Load::start(good.clone(), steady);
        let mut findings = on_own_runtime(move || attack(target)).await;
        let report = load.stop().await;
        match serves_again(&good).await {
            Ok(after) => findings.note.push_str(&format!("; serves again after {after:?}")),
            Err(e) => findings
                .problems
                .push(format!("provider does not serve {RECOVERY:?} after the attack: {e}")),
        }
        let memory = MemoryStatus::of(target.pid);
        let peak = memory.as_ref().map(|m| m.peak_rss).unwrap_or(u64::MAX);
        let success = report.success_ratio();
        let p99 = report.latency_quantile(0.99);
        let row = format!(
            "| {name} | {:.2}% of {} | {p99:.1?} (quiet {quiet_p99:.1?}) | {} | {} | {} |",
            success * 100.0,
            report.calls.len(),
            memory.as_ref().map_or_else(|e| format!("({e})"), |m| mib(m.peak_rss)),
            memory.as_ref().map_or_else(|e| format!("({e})"), |m| mib(m.rss)),
            findings.note
        );
        println!("{row}");
        if let Some(path) = std::env::var_os("ERPC_HOSTILE_TABLE") {
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{row}"));
            if let Err(e) = appended {
                eprintln!("ERPC_HOSTILE_TABLE: {e}");
            }
        }
        let first_failure = report.calls.iter().find(|c| c.outcome.is_err());
        if first_failure.is_some() {
            println!("  {name}: good-client failures: {}", failure_kinds(&report));
        }
        assert!(
            success >= MIN_SUCCESS,
            "{name}: good client succeeded in {:.2}% of {} calls (need {:.0}%); first failure: {first_failure:?}",
            success * 100.0,
            report.calls.len(),
            MIN_SUCCESS * 100.0
        );
        assert!(
            p99 < P99_BOUND + quiet_p99,
            "{name}: good client p99 {p99:?} (need < {P99_BOUND:?} over the quiet p99 of {quiet_p99:?})"
        );
        assert!(
            peak < PEAK_RSS_BOUND,
            "{name}: provider peak RSS {} (bound {})",
            mib(peak),
            mib(PEAK_RSS_BOUND)
        );
        assert!(findings.problems.is_empty(), "{name}: {}", findings.problems.join("; "));
        drop(provider);
    })
    .await;
}

/// Rounds spread evenly over [`HOLD`]: an attack keeps the counts and lasts as
/// long as the good client measures, instead of saturating the CPU in a burst.
pub(crate) struct Pacer {
    began: Instant,
    round: u32,
    rounds: u32,
}

impl Pacer {
    pub(crate) fn new(rounds: u32) -> Self {
        Self {
            began: Instant::now(),
            round: 0,
            rounds,
        }
    }

    /// Waits for the next round's start; false once every round has started.
    pub(crate) async fn next(&mut self) -> bool {
        if self.round == self.rounds {
            return false;
        }
        tokio::time::sleep_until(self.began + HOLD * self.round / self.rounds).await;
        self.round += 1;
        true
    }
}

/// Runs the attack on its own thread and runtime, as a separate attacker would: its
/// tasks never queue in front of the good client's on the test's runtime.
async fn on_own_runtime<F: Future<Output = Findings>>(
    attack: impl FnOnce() -> F + Send + 'static,
) -> Findings {
    let (done, findings) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("attacker runtime");
        let _ = done.send(runtime.block_on(attack()));
    });
    findings.await.expect("the attack panicked (see above)")
}

/// The good client's failures counted by error variant: `Overloaded: 3, Timeout: 2`.
fn failure_kinds(report: &erpc_chaos::Report) -> String {
    let mut kinds = std::collections::BTreeMap::new();
    for call in &report.calls {
        if let Err(e) = &call.outcome {
            let debug = format!("{e:?}");
            let kind = debug
                .split(|c: char| !c.is_alphanumeric())
                .next()
                .unwrap_or_default()
                .to_string();
            *kinds.entry(kind).or_insert(0) += 1;
        }
    }
    kinds
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The well-behaved client: its own connection, 2 s timeout, no retries, failfast.
fn good_client(addr: &str) -> ProbeClient {
    let client = Client::builder()
        .timeout(Duration::from_secs(2))
        .retries(0)
        .direct([addr.to_string()])
        .build()
        .expect("client builds");
    ProbeClient::new(client).with_cluster(ClusterMode::Failfast)
}

/// Time until a call succeeds again, or the last error after [`RECOVERY`].
async fn serves_again(good: &ProbeClient) -> Result<Duration, String> {
    let began = Instant::now();
    loop {
        let error = match good.work(1, 0).await {
            Ok(_) => return Ok(began.elapsed()),
            Err(e) => e.to_string(),
        };
        if began.elapsed() >= RECOVERY {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"))
}

/// `count` connections, opened 100 at a time (the listen backlog stays short).
pub(crate) async fn connect_many(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    while streams.len() < count {
        let batch = (count - streams.len()).min(100);
        let mut opening = JoinSet::new();
        for _ in 0..batch {
            opening.spawn(TcpStream::connect(addr));
        }
        while let Some(opened) = opening.join_next().await {
            match opened.expect("connect task") {
                Ok(stream) => streams.push(stream),
                Err(e) => panic!("connecting to {addr}: {e}"),
            }
        }
    }
    streams
}

/// Writes `frames` on `stream` and holds it open, never reading, for [`HOLD`]; then
/// closes it. Writing may stall when the provider stops reading (its right).
pub(crate) async fn send_and_never_read(stream: TcpStream, frames: Vec<Bytes>) -> usize {
    let (read, mut write) = stream.into_split();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        for frame in frames {
            if write.write_all(&frame).await.is_err() {
                break;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        write
    });
    tokio::time::sleep(HOLD).await;
    writer.abort();
    let _ = writer.await;
    drop(read);
    sent.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn blob_requests(count: u64, len: u32) -> Vec<Bytes> {
    let args = msgpack(&(len,));
    (1..=count)
        .map(|id| request(id, &bulk_key(), "blob", &args, Compression::None))
        .collect()
}

pub(crate) fn work_request(request_id: u64, delay_ms: u64) -> Bytes {
    request(
        request_id,
        &probe_key(),
        "work",
        &msgpack(&(request_id, delay_ms)),
        Compression::None,
    )
}

/// Reads and drops whatever the provider sends until it closes.
pub(crate) async fn drain_answers(mut read: tokio::net::tcp::OwnedReadHalf) {
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
}
