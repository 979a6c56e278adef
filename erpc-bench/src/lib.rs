//! Same-run benchmark of erpc against tarpc, tonic and a raw framed-TCP baseline.
//!
//! The parent process is the client; every server runs in a child process started by
//! re-executing this binary as `erpc-bench server <kind> <port>`. See `README.md`.

mod idle;
mod load;
mod peers;
mod report;
mod stats;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::stats::Pid;

/// A client configuration under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Framework {
    /// erpc with its default serializer (MessagePack).
    Erpc,
    /// erpc with postcard, its fastest serializer.
    ErpcPostcard,
    /// erpc (MessagePack) over TLS 1.3 (rustls, ring).
    #[value(name = "erpc+tls", alias = "erpc-tls")]
    ErpcTls,
    /// erpc (MessagePack) with call metrics on at both ends (what `.admin(..)` turns on).
    #[value(name = "erpc+metrics", alias = "erpc-metrics")]
    ErpcMetrics,
    /// erpc (MessagePack) with the built-in `Tracing` filter on both ends and a `fmt`
    /// subscriber at INFO writing to a sink in both processes.
    #[value(name = "erpc+tracing", alias = "erpc-tracing")]
    ErpcTracing,
    /// erpc (MessagePack) with metrics and the `Tracing` filter at both ends, the
    /// subscriber of `erpc+tracing`, and the client's admin `/metrics` scraped every
    /// 100 ms.
    #[value(name = "erpc+metrics+tracing", alias = "erpc-observed")]
    ErpcObserved,
    /// tarpc, bincode serde transport over TCP.
    Tarpc,
    /// tonic, unary gRPC over one HTTP/2 channel.
    Tonic,
    /// Length-prefixed frames with a request id: framing only.
    Raw,
}

impl Framework {
    const ALL: [Framework; 9] = [
        Self::Erpc,
        Self::ErpcPostcard,
        Self::ErpcTls,
        Self::ErpcMetrics,
        Self::ErpcTracing,
        Self::ErpcObserved,
        Self::Tarpc,
        Self::Tonic,
        Self::Raw,
    ];

    /// Name in tables and CSV.
    pub fn name(self) -> &'static str {
        match self {
            Self::Erpc => "erpc",
            Self::ErpcPostcard => "erpc-postcard",
            Self::ErpcTls => "erpc+tls",
            Self::ErpcMetrics => "erpc+metrics",
            Self::ErpcTracing => "erpc+tracing",
            Self::ErpcObserved => "erpc+metrics+tracing",
            Self::Tarpc => "tarpc",
            Self::Tonic => "tonic",
            Self::Raw => "raw",
        }
    }

    fn server(self) -> ServerKind {
        match self {
            Self::Erpc | Self::ErpcPostcard => ServerKind::Erpc,
            Self::ErpcTls => ServerKind::ErpcTls,
            Self::ErpcMetrics => ServerKind::ErpcMetrics,
            Self::ErpcTracing => ServerKind::ErpcTracing,
            Self::ErpcObserved => ServerKind::ErpcObserved,
            Self::Tarpc => ServerKind::Tarpc,
            Self::Tonic => ServerKind::Tonic,
            Self::Raw => ServerKind::Raw,
        }
    }
}

/// A server process kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServerKind {
    /// erpc server (answers msgpack and postcard callers).
    Erpc,
    /// erpc server accepting only TLS, with the certificate the parent hands it.
    ErpcTls,
    /// erpc server recording call metrics.
    ErpcMetrics,
    /// erpc server with the `Tracing` filter and an INFO subscriber writing to a sink.
    ErpcTracing,
    /// erpc server with metrics, the `Tracing` filter and that subscriber.
    ErpcObserved,
    /// tarpc server.
    Tarpc,
    /// tonic server.
    Tonic,
    /// Raw framed echo server.
    Raw,
}

#[derive(Debug, Parser)]
#[command(about = "erpc vs tarpc vs tonic vs raw TCP framing, same machine, same run")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Short cells (0.3 s each): the whole matrix in well under a minute.
    #[arg(long)]
    quick: bool,
    /// One tiny cell per framework and a small idle test: for CI.
    #[arg(long)]
    smoke: bool,
    /// Measured seconds per cell (overrides --quick / the 2 s default).
    #[arg(long)]
    duration: Option<f64>,
    /// Frameworks to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Framework>,
    /// Payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1024, 65536])]
    payloads: Vec<usize>,
    /// Calls in flight.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64, 256])]
    concurrency: Vec<usize>,
    /// Where to write the CSV results.
    #[arg(long, default_value = "target/erpc-bench.csv")]
    csv: String,
    /// Idle erpc connections to open after the matrix (0 skips the idle test).
    #[arg(long)]
    idle_conns: Option<usize>,
    /// Runs per cell; the run with the highest QPS is reported (damps noise from other
    /// load on a shared machine).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Slices each cell's measured time is cut into within a round; the frameworks
    /// take their slices in turn, so a slow spell of a shared machine falls on all of
    /// them (default: 4; 1 with --quick; 2 with --smoke, to run the slicing in CI).
    #[arg(long)]
    slices: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Internal: run one server in this process (the bench starts these itself).
    Server {
        /// Which server.
        #[arg(value_enum)]
        kind: ServerKind,
        /// Port on 127.0.0.1; 0 picks a free one (printed as `PORT <n>`).
        port: u16,
    },
    /// Only the idle-connection test.
    Idle {
        /// Connections to open.
        #[arg(default_value_t = 10_000)]
        conns: usize,
    },
}

/// Settings of one benchmark run.
struct Plan {
    frameworks: Vec<Framework>,
    payloads: Vec<usize>,
    concurrency: Vec<usize>,
    warmup: Duration,
    duration: Duration,
    idle_conns: usize,
    rounds: usize,
    slices: usize,
    csv: String,
}

/// Entry point of the binary.
pub fn main_entry() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Cmd::Server { kind, port }) => run_server(kind, port),
        Some(Cmd::Idle { conns }) => runtime().block_on(idle::run(conns)).map(|r| {
            println!("{}", report::idle_markdown(&r));
        }),
        None => run_bench(plan(&cli)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("erpc-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plan(cli: &Cli) -> Plan {
    let frameworks = if cli.only.is_empty() {
        Framework::ALL.to_vec()
    } else {
        cli.only.clone()
    };
    let (payloads, concurrency, warmup, duration, idle, slices) = if cli.smoke {
        (vec![64], vec![16], 0.05, 0.2, 200, 2)
    } else if cli.quick {
        (
            cli.payloads.clone(),
            cli.concurrency.clone(),
            0.1,
            0.3,
            10_000,
            1,
        )
    } else {
        (
            cli.payloads.clone(),
            cli.concurrency.clone(),
            0.5,
            2.0,
            10_000,
            4,
        )
    };
    Plan {
        frameworks,
        payloads,
        concurrency,
        warmup: Duration::from_secs_f64(warmup),
        duration: Duration::from_secs_f64(cli.duration.unwrap_or(duration)),
        idle_conns: cli.idle_conns.unwrap_or(idle),
        rounds: cli.rounds.max(1),
        slices: cli.slices.unwrap_or(slices).max(1),
        csv: cli.csv.clone(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Tells the parent which port a server child listens on.
/// Binds a server's listener on 127.0.0.1:`port` and announces the bound port.
pub(crate) async fn listen_announced(port: u16) -> Result<tokio::net::TcpListener, String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    announce_port(listener.local_addr().map_err(|e| e.to_string())?.port());
    Ok(listener)
}

pub(crate) fn announce_port(port: u16) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PORT {port}");
    let _ = out.flush();
}

fn run_server(kind: ServerKind, port: u16) -> Result<(), String> {
    use peers::erpc_echo::{self, Extras};
    stats::raise_nofile_limit();
    runtime().block_on(async move {
        match kind {
            ServerKind::Erpc => erpc_echo::serve(port, None, Extras::default()).await,
            ServerKind::ErpcTls => {
                erpc_echo::serve(port, Some(peers::tls::server_config()?), Extras::default()).await
            }
            ServerKind::ErpcMetrics => {
                let extras = Extras {
                    metrics: true,
                    ..Extras::default()
                };
                erpc_echo::serve(port, None, extras).await
            }
            ServerKind::ErpcTracing | ServerKind::ErpcObserved => {
                erpc_echo::install_sink_subscriber();
                let extras = Extras {
                    metrics: kind == ServerKind::ErpcObserved,
                    tracing: true,
                    scrape: false,
                };
                erpc_echo::serve(port, None, extras).await
            }
            ServerKind::Tarpc => peers::tarpc_echo::serve(port).await,
            ServerKind::Tonic => peers::tonic_echo::serve(port).await,
            ServerKind::Raw => peers::raw::serve(port).await,
        }
    })
}

/// A server child process, killed on drop.
pub(crate) struct ServerProcess {
    child: Child,
    addr: String,
}

impl ServerProcess {
    /// Starts `kind` on a free port and waits until it listens.
    pub(crate) fn start(kind: ServerKind) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let kind_name = kind
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        let mut command = Command::new(exe);
        if kind == ServerKind::ErpcTls {
            peers::tls::hand_to_server(&mut command)?;
        }
        let mut child = command
            .args(["server", &kind_name, "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {kind_name} server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| format!("{kind_name} server did not announce a port: {line:?}"))?;
        Ok(Self {
            child,
            addr: format!("127.0.0.1:{port}"),
        })
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn pid(&self) -> Pid {
        Pid::Child(self.child.id())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_bench(plan: Plan) -> Result<(), String> {
    if plan
        .frameworks
        .iter()
        .any(|f| matches!(f, Framework::ErpcTracing | Framework::ErpcObserved))
    {
        // Process-wide: the other rows of this run share it (their own events are
        // below INFO, so they only pay its level check).
        peers::erpc_echo::install_sink_subscriber();
    }
    let rt = runtime();
    let mut rows = Vec::new();
    let cells = plan.payloads.len() * plan.concurrency.len() * plan.frameworks.len();
    eprintln!(
        "running {cells} cells, {:?} warm-up + {:?} each in {} slices, best of {}",
        plan.warmup, plan.duration, plan.slices, plan.rounds
    );
    for &payload in &plan.payloads {
        for &concurrency in &plan.concurrency {
            let mut best: Vec<Option<report::Row>> = plan.frameworks.iter().map(|_| None).collect();
            for round in 0..plan.rounds {
                let rows = rt.block_on(run_round(&plan, payload, concurrency, round))?;
                for (i, row) in rows {
                    eprintln!("{}", report::progress_line(&row));
                    if best[i].as_ref().is_none_or(|b| row.qps() > b.qps()) {
                        best[i] = Some(row);
                    }
                }
            }
            rows.extend(best.into_iter().flatten());
        }
    }
    let idle = if plan.idle_conns > 0 {
        Some(rt.block_on(idle::run(plan.idle_conns))?)
    } else {
        None
    };
    let markdown = report::markdown(&rows, idle.as_ref());
    println!("{markdown}");
    if let Some(dir) = std::path::Path::new(&plan.csv).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&plan.csv, report::csv(&rows))
        .map_err(|e| format!("writing {}: {e}", plan.csv))?;
    eprintln!("CSV written to {}", plan.csv);
    let failed: u64 = rows.iter().map(|r| r.errors).sum();
    if failed > 0 {
        return Err(format!("{failed} calls failed"));
    }
    Ok(())
}

/// The indexes `0..n` in the order round `round` runs them: starting at `round % n`.
fn rotated(n: usize, round: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n.max(1))
}

/// Measures one cell of every framework: all their servers and clients stay up for the
/// round, and each framework's measured time is cut into `plan.slices` slices taken in
/// turn. Rounds go through the frameworks so that a burst of outside load hits every
/// one of them rather than one, and each round and slice starts one framework later,
/// so none holds the same place throughout (on this VM, of `erpc` and `erpc+metrics`
/// run in fixed order, whichever ran second came out about 9 % slower on average, three
/// runs each way; whole 2 s cells in turn still left one framework's cell in a slow
/// spell of the machine now and then: a round's QPS ratio of two frameworks ranged
/// 1.5 to 2.6).
///
/// Returns each framework's row (by its index in the plan) in the order the round ran
/// them.
async fn run_round(
    plan: &Plan,
    payload: usize,
    concurrency: usize,
    round: usize,
) -> Result<Vec<(usize, report::Row)>, String> {
    // Callers first: a tuple drops in field order, so every client lets go of its
    // connection before its server is killed, on every way out of this function.
    let mut peers = Vec::with_capacity(plan.frameworks.len());
    for &framework in &plan.frameworks {
        let server = ServerProcess::start(framework.server())?;
        let caller = load::Caller::connect(framework, server.addr()).await?;
        peers.push((caller, server));
    }
    let slice = plan.duration.div_f64(plan.slices as f64);
    let mut measured: Vec<Option<load::Measured>> = peers.iter().map(|_| None).collect();
    for s in 0..plan.slices {
        // A framework's first slice warms its connection up; later ones only refill
        // the calls in flight.
        let warmup = match s {
            0 => plan.warmup,
            _ => plan.warmup.min(REWARM),
        };
        for i in rotated(peers.len(), round + s) {
            let (caller, server) = &peers[i];
            let part = load::run(caller, payload, concurrency, warmup, slice, server.pid()).await;
            match &mut measured[i] {
                Some(so_far) => so_far.merge(part),
                none => *none = Some(part),
            }
        }
    }
    let mut rows = Vec::with_capacity(peers.len());
    for i in rotated(peers.len(), round) {
        let (Some(measured), (_, server)) = (measured[i].take(), &peers[i]) else {
            continue;
        };
        let framework = plan.frameworks[i];
        if let Some(e) = &measured.first_error {
            eprintln!("{} {payload} B x{concurrency}: {e}", framework.name());
        }
        let server_hwm_kib = stats::status_kib(server.pid(), "VmHWM");
        let row = report::Row::new(framework, payload, concurrency, &measured, server_hwm_kib);
        rows.push((i, row));
    }
    Ok(rows)
}

/// Warm-up before a framework's later slices in a round.
const REWARM: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::rotated;

    #[test]
    fn every_round_runs_each_framework_once_and_each_takes_every_place_in_turn() {
        for n in 1..5 {
            let mut places = vec![vec![0; n]; n];
            for round in 0..n {
                let order: Vec<usize> = rotated(n, round).collect();
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "round {round} of {n}");
                for (place, framework) in order.into_iter().enumerate() {
                    places[framework][place] += 1;
                }
            }
            assert!(
                places.iter().flatten().all(|&times| times == 1),
                "{places:?}"
            );
        }
        assert_eq!(rotated(0, 3).count(), 0);
    }
}
