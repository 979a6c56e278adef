//! Soak: 1,000 client connections making steady calls to three providers while the
//! providers are restarted gracefully one after another (SIGTERM, drain, start again),
//! for a bounded time. It exits non-zero when
//!
//! - an idempotent call failed, or a call that returned `Ok` did not run exactly once
//!   (every provider logs the id of each call it runs; the logs are counted at the end),
//! - RSS, open file descriptors or live tokio tasks (of this client process and of the
//!   providers, the largest of the three) grew past the margin over their baseline: the
//!   largest value between minute 1 (or a third of a shorter run) and a tenth of the run
//!   later (at least 5 s); every later sample must stay within `baseline × (1 + margin)`
//!   plus a small slack (8 MiB, 16 fds, 32 tasks),
//! - the client's tokio task count does not return to what it was before the clients
//!   were built once they are dropped, or fewer connections than asked were open.
//!
//! ```text
//! cargo run -p erpc-chaos --bin soak -- --duration 60s                # in scripts/test.sh
//! cargo run --release -p erpc-chaos --bin soak -- --duration 30m      # the long soak
//! ```
//!
//! The providers are this same binary run as `soak provider --port ...`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use erpc::{Client, Error};
use erpc_chaos::procfs::{mib, open_fds, open_sockets, MemoryStatus};
use erpc_chaos::provider::{run, ProviderArgs};
use erpc_chaos::{free_ports, ProbeClient, ProviderProcess, ProviderSpec};
use tokio::runtime::RuntimeMetrics;
use tokio::time::{Instant, MissedTickBehavior};

#[derive(Debug, Parser)]
#[command(
    about = "Soak: 1,000 connections of steady calls while 3 providers restart in turn",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    soak: SoakArgs,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Serve as one of the soak's providers (the soak starts these itself).
    Provider(ProviderArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct SoakArgs {
    /// How long the calls go on: `500ms`, `60s`, `30m`, `1h`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Client connections: one client per three, each connected to all 3 providers.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Each client starts a call this often (alternately idempotent and not).
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    pace: Duration,
    /// One provider is restarted this often, in turn.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    restart_every: Duration,
    /// Growth over the baseline allowed for RSS, fds and tasks, in percent.
    #[arg(long, default_value_t = 20)]
    margin_percent: u64,
}

/// `<number><unit>` with unit `ms`, `s`, `m` or `h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (ms, s, m, h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    Ok(Duration::from_millis(number.saturating_mul(millis)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("soak: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.role {
        Some(Role::Provider(args)) => runtime.block_on(run(args)).map(|()| Vec::new()),
        None => runtime.block_on(soak(cli.soak)),
    };
    match outcome {
        Ok(violations) if violations.is_empty() => ExitCode::SUCCESS,
        Ok(violations) => {
            for violation in violations {
                eprintln!("soak: VIOLATION: {violation}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one client's calling task saw.
#[derive(Debug, Default)]
struct Tally {
    client: u64,
    /// Calls started; call `seq` had id `client << 32 | seq`, idempotent when even.
    issued: u64,
    ok: [u64; 2],
    /// Ids and errors of the calls that failed.
    failed: Vec<(u64, String)>,
    /// Calls per latency bucket: bucket `b` holds latencies under 2^b µs.
    latency: [u64; 32],
}

fn kind_of(id: u64) -> usize {
    usize::from(id & 1 == 1)
}

const KINDS: [&str; 2] = ["work (idempotent)", "record (not idempotent)"];

async fn call_steadily(
    probe: ProbeClient,
    client: u64,
    pace: Duration,
    offset: Duration,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally {
        client,
        ..Tally::default()
    };
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, pace);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        let seq = tally.issued;
        let id = client << 32 | seq;
        tally.issued += 1;
        let began = Instant::now();
        let result = if kind_of(id) == 0 {
            probe.work(id, 0).await
        } else {
            probe.record(id, 0).await
        };
        let micros = began.elapsed().as_micros().max(1);
        let bucket = (128 - micros.leading_zeros()) as usize;
        tally.latency[bucket.min(31)] += 1;
        match result {
            Ok(served) if served.id == id => tally.ok[kind_of(id)] += 1,
            Ok(served) => tally
                .failed
                .push((id, format!("answer for call {} instead", served.id))),
            Err(e) => tally.failed.push((id, e.to_string())),
        }
    }
    tally
}

/// One sample of every measured figure.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    client_rss: u64,
    client_fds: u64,
    client_sockets: u64,
    tasks: u64,
    /// Largest of the running providers (`None` when none could be read).
    provider_rss: Option<u64>,
    provider_fds: Option<u64>,
}

fn sample(at: Duration, providers: &[ProviderProcess], metrics: &RuntimeMetrics) -> Sample {
    let own = std::process::id();
    let mut provider_rss = None;
    let mut provider_fds = None;
    for pid in providers.iter().filter_map(ProviderProcess::pid) {
        // A provider between SIGTERM and exit may vanish mid-read: skip it this time.
        if let (Ok(status), Ok(fds)) = (MemoryStatus::of(pid), open_fds(pid)) {
            provider_rss = provider_rss.max(Some(status.rss));
            provider_fds = provider_fds.max(Some(fds as u64));
        }
    }
    Sample {
        at,
        client_rss: MemoryStatus::own().map_or(0, |s| s.rss),
        client_fds: open_fds(own).map_or(0, |n| n as u64),
        client_sockets: open_sockets(own).map_or(0, |n| n as u64),
        tasks: metrics.num_alive_tasks() as u64,
        provider_rss,
        provider_fds,
    }
}

async fn soak(args: SoakArgs) -> Result<Vec<String>, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the soak binary", e))?;
    let logs = std::env::temp_dir().join(format!("erpc-soak-{}", std::process::id()));
    std::fs::create_dir_all(&logs)
        .map_err(|e| Error::io(format!("creating {}", logs.display()), e))?;
    let names = ["A", "B", "C"];
    let mut providers = Vec::new();
    for (name, port) in names.iter().zip(free_ports(names.len())) {
        let spec = ProviderSpec::new(*name, port)
            .subcommand("provider")
            .drain_ms(10_000)
            .log_calls(logs.join(format!("{name}.calls")));
        providers.push(ProviderProcess::start(&exe, spec).await);
    }
    let addrs: Vec<String> = providers.iter().map(ProviderProcess::addr).collect();
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let clients = args.connections.div_ceil(names.len());
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::with_capacity(clients);
    for client in 0..clients {
        let probe = ProbeClient::new(
            Client::builder()
                .timeout(Duration::from_secs(5))
                .direct(addrs.iter().cloned())
                .build()?,
        );
        let offset = args.pace.mul_f64(client as f64 / clients as f64);
        callers.push(tokio::spawn(call_steadily(
            probe,
            client as u64,
            args.pace,
            offset,
            stop.clone(),
        )));
    }
    println!(
        "soak: {:?}, {clients} clients x {} providers = {} connections, a call per client every {:?}, a provider restarted every {:?}",
        args.duration,
        names.len(),
        clients * names.len(),
        args.pace,
        args.restart_every
    );

    let start = Instant::now();
    let mut violations = Vec::new();
    let mut samples = Vec::new();
    let mut restarts = 0;
    let mut next_restart = args.restart_every;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while start.elapsed() < args.duration {
        ticks.tick().await;
        if start.elapsed() >= next_restart
            && start.elapsed() + Duration::from_secs(2) < args.duration
        {
            let provider = &mut providers[restarts % names.len()];
            provider.sigterm();
            let status = provider.wait_exit(Duration::from_secs(30)).await;
            if !status.success() {
                violations.push(format!(
                    "{} exited with {status} on SIGTERM",
                    provider.name()
                ));
            }
            provider.restart().await;
            restarts += 1;
            next_restart += args.restart_every;
        }
        samples.push(sample(start.elapsed(), &providers, &metrics));
    }
    stop.store(true, Ordering::Relaxed);
    let mut tallies = Vec::with_capacity(callers.len());
    for caller in callers {
        tallies.push(
            caller
                .await
                .map_err(|e| Error::Config(format!("a calling task failed: {e}")))?,
        );
    }
    // Every client is dropped with its task: its connections and their tasks must end.
    let settle = Instant::now();
    let mut tasks_after = metrics.num_alive_tasks();
    while tasks_after > tasks_before && settle.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tasks_after = metrics.num_alive_tasks();
    }
    for provider in &mut providers {
        provider.sigterm();
        let status = provider.wait_exit(Duration::from_secs(30)).await;
        if !status.success() {
            violations.push(format!(
                "{} exited with {status} at the end",
                provider.name()
            ));
        }
    }
    let executed = read_call_logs(&logs, &names)?;
    let _ = std::fs::remove_dir_all(&logs);

    println!(
        "\nsoak: {restarts} graceful restarts over {:?}",
        start.elapsed()
    );
    violations.extend(check_calls(&tallies, &executed));
    violations.extend(check_flat(&args, &samples));
    println!(
        "tokio tasks: {tasks_before} before the clients, {tasks_after} after they were dropped"
    );
    if tasks_after > tasks_before {
        violations.push(format!(
            "{tasks_after} tokio tasks alive 10 s after the clients were dropped ({tasks_before} before they were built)"
        ));
    }
    let peak_sockets = samples.iter().map(|s| s.client_sockets).max().unwrap_or(0);
    println!(
        "client sockets: peak {peak_sockets} (asked for {})",
        args.connections
    );
    if peak_sockets < args.connections as u64 {
        violations.push(format!(
            "at most {peak_sockets} client sockets were open (asked for {})",
            args.connections
        ));
    }
    println!(
        "soak: {}",
        if violations.is_empty() {
            "PASSED"
        } else {
            "FAILED"
        }
    );
    Ok(violations)
}

/// All call ids the providers logged, sorted (one entry per execution).
fn read_call_logs(dir: &Path, names: &[&str]) -> Result<Vec<u64>, Error> {
    let mut ids = Vec::new();
    for name in names {
        let path = dir.join(format!("{name}.calls"));
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        ids.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        );
    }
    ids.sort_unstable();
    Ok(ids)
}

fn check_calls(tallies: &[Tally], executed: &[u64]) -> Vec<String> {
    let runs =
        |id: u64| executed.partition_point(|&x| x <= id) - executed.partition_point(|&x| x < id);
    let mut ok = [0u64; 2];
    let mut failed = [0u64; 2];
    let mut lost = [0u64; 2];
    let mut twice = [0u64; 2];
    let mut failed_but_ran = [0u64; 2];
    let mut latency = [0u64; 32];
    let mut first_errors = Vec::new();
    for tally in tallies {
        let mut failures = tally.failed.iter().map(|(id, _)| *id).peekable();
        for seq in 0..tally.issued {
            let id = tally.client << 32 | seq;
            let kind = kind_of(id);
            let count = runs(id);
            if failures.peek() == Some(&id) {
                failures.next();
                failed[kind] += 1;
                failed_but_ran[kind] += u64::from(count > 0);
                continue;
            }
            ok[kind] += 1;
            lost[kind] += u64::from(count == 0);
            twice[kind] += u64::from(count > 1);
        }
        for (total, n) in latency.iter_mut().zip(tally.latency) {
            *total += n;
        }
        first_errors.extend(tally.failed.iter().take(2).cloned());
    }
    let calls: u64 = latency.iter().sum();
    let quantile = |q: f64| {
        let rank = (q * calls as f64).ceil() as u64;
        let mut seen = 0;
        for (bucket, n) in latency.iter().enumerate() {
            seen += n;
            if seen >= rank.max(1) {
                return Duration::from_micros(1 << bucket);
            }
        }
        Duration::ZERO
    };
    println!("| calls | ok | failed | ok, never ran | ok, ran twice+ | failed, ran |");
    println!("|---|---|---|---|---|---|");
    for kind in 0..2 {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            KINDS[kind], ok[kind], failed[kind], lost[kind], twice[kind], failed_but_ran[kind]
        );
    }
    println!(
        "latency: p50 < {:?}, p99 < {:?}, p99.9 < {:?} (power-of-two buckets)",
        quantile(0.5),
        quantile(0.99),
        quantile(0.999)
    );
    first_errors.truncate(5);
    if !first_errors.is_empty() {
        println!("first failures: {first_errors:?}");
    }
    let mut violations = Vec::new();
    if failed[0] > 0 {
        violations.push(format!("{} idempotent calls failed", failed[0]));
    }
    for kind in 0..2 {
        if lost[kind] + twice[kind] > 0 {
            violations.push(format!(
                "{}: {} acknowledged calls never ran, {} ran more than once",
                KINDS[kind], lost[kind], twice[kind]
            ));
        }
    }
    violations
}

fn check_flat(args: &SoakArgs, samples: &[Sample]) -> Vec<String> {
    let from = (args.duration / 3).min(Duration::from_secs(60));
    let until = from + (args.duration / 10).max(Duration::from_secs(5));
    type Pick = fn(&Sample) -> Option<u64>;
    let series: [(&str, Pick, u64, bool); 5] = [
        ("client RSS", |s| Some(s.client_rss), 8 << 20, true),
        ("client fds", |s| Some(s.client_fds), 16, false),
        ("client tokio tasks", |s| Some(s.tasks), 32, false),
        ("provider RSS (max of 3)", |s| s.provider_rss, 8 << 20, true),
        ("provider fds (max of 3)", |s| s.provider_fds, 16, false),
    ];
    let show = |value: u64, bytes: bool| if bytes { mib(value) } else { value.to_string() };
    println!(
        "| figure | baseline (max {from:?}..{until:?}) | max after | last | bound (+{}% + slack) |",
        args.margin_percent
    );
    println!("|---|---|---|---|---|");
    let mut violations = Vec::new();
    for (name, pick, slack, bytes) in series {
        let values = |range: &dyn Fn(Duration) -> bool| -> Vec<u64> {
            samples
                .iter()
                .filter(|s| range(s.at))
                .filter_map(pick)
                .collect()
        };
        let baseline = values(&|at| at >= from && at < until).into_iter().max();
        let later = values(&|at| at >= until);
        let (Some(baseline), Some(&last)) = (baseline, later.last()) else {
            violations.push(format!("{name}: the run was too short to measure flatness"));
            continue;
        };
        let max_after = later.iter().copied().max().unwrap_or(0);
        let bound = baseline + baseline * args.margin_percent / 100 + slack;
        println!(
            "| {name} | {} | {} | {} | {} |",
            show(baseline, bytes),
            show(max_after, bytes),
            show(last, bytes),
            show(bound, bytes)
        );
        if max_after > bound {
            violations.push(format!(
                "{name} grew to {} (baseline {}, bound {})",
                show(max_after, bytes),
                show(baseline, bytes),
                show(bound, bytes)
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("60").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
