//! `erpc bench SERVICE METHOD ARGS -c 64 -d 10s`: a ghz-like load run, one client shared
//! by `-c` callers that each call back to back until the duration is over.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::call::{is_application_error, Prepared};
use crate::args::{BenchArgs, Format, Global};
use crate::error::CliError;
use crate::output;

/// Error kind counted for calls that returned a method's `Err(..)`.
const APPLICATION: &str = "application";
/// Buckets of the printed latency histogram.
const BUCKETS: usize = 10;
/// Width of the longest histogram bar.
const BAR: u64 = 40;

/// What one caller saw.
struct Tally {
    /// Latency of every call, in microseconds.
    latency: Histogram<u64>,
    /// Failed calls by error kind.
    errors: BTreeMap<&'static str, u64>,
}

/// Runs the load, then prints the summary.
pub(crate) async fn run(global: &Global, args: &BenchArgs) -> Result<(), CliError> {
    let prepared = Arc::new(Prepared::new(global, &args.call).await?);
    // A probe call: a misspelt method or bad arguments fail here, once, clearly.
    if let Err(error) = prepared.call().await {
        return Err(prepared.explain(error).await);
    }
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    // ctrl-c ends the run early; the calls made so far are summarised. The handler is
    // in place before the first caller starts.
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = tokio::spawn(set_on_interrupt(interrupted()?, stop.clone()));
    let callers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (prepared, done, failed) = (prepared.clone(), done.clone(), failed.clone());
            let stop = stop.clone();
            tokio::spawn(caller(prepared, deadline, stop, done, failed))
        })
        .collect();
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(progress(args.duration, done.clone(), failed.clone())));
    let mut latency = new_histogram()?;
    let mut errors: BTreeMap<&'static str, u64> = BTreeMap::new();
    for caller in callers {
        let tally = caller
            .await
            .map_err(|e| CliError::remote(format!("a caller task failed: {e}")))??;
        latency
            .add(&tally.latency)
            .map_err(|e| CliError::remote(format!("merging latencies: {e:?}")))?;
        for (kind, count) in tally.errors {
            *errors.entry(kind).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    interrupt.abort();
    if let Some(progress) = progress {
        progress.abort();
        eprint!("\r{:72}\r", "");
    }
    let summary = Summary {
        concurrency: args.concurrency,
        elapsed,
        latency,
        errors,
    };
    let printed = match global.output {
        Format::Json => output::json(&summary.json(&prepared), Format::Json),
        Format::Table => summary.text(&prepared),
    };
    println!("{printed}");
    if summary.ok() == 0 {
        return Err(CliError::remote("every call failed"));
    }
    Ok(())
}

/// A stream of ctrl-c presses, listening from now on.
#[cfg(unix)]
fn interrupted() -> Result<tokio::signal::unix::Signal, CliError> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| CliError::remote(format!("cannot listen for ctrl-c: {e}")))
}

/// Sets `stop` at the first ctrl-c.
#[cfg(unix)]
async fn set_on_interrupt(mut interrupted: tokio::signal::unix::Signal, stop: Arc<AtomicBool>) {
    if interrupted.recv().await.is_some() {
        stop.store(true, Ordering::Relaxed);
    }
}

/// Elsewhere ctrl-c is listened for from the task's first poll.
#[cfg(not(unix))]
fn interrupted() -> Result<(), CliError> {
    Ok(())
}

/// Sets `stop` at the first ctrl-c.
#[cfg(not(unix))]
async fn set_on_interrupt(_: (), stop: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        stop.store(true, Ordering::Relaxed);
    }
}

fn new_histogram() -> Result<Histogram<u64>, CliError> {
    // 1 µs to one hour, three significant digits.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .map_err(|e| CliError::remote(format!("latency histogram: {e:?}")))
}

/// Calls back to back until `deadline` or `stop`.
async fn caller(
    prepared: Arc<Prepared>,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
) -> Result<Tally, CliError> {
    let mut tally = Tally {
        latency: new_histogram()?,
        errors: BTreeMap::new(),
    };
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let result = prepared.call().await;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        tally.latency.saturating_record(micros.max(1));
        let kind = match &result {
            Ok(value) if is_application_error(value) => Some(APPLICATION),
            Ok(_) => None,
            Err(error) => Some(error.kind()),
        };
        if let Some(kind) = kind {
            *tally.errors.entry(kind).or_default() += 1;
            failed.fetch_add(1, Ordering::Relaxed);
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(tally)
}

/// Rewrites one stderr line with the progress and the current rate, four times a second.
async fn progress(total: Duration, done: Arc<AtomicU64>, failed: Arc<AtomicU64>) {
    const TICK: Duration = Duration::from_millis(250);
    let started = Instant::now();
    let mut last = 0;
    let mut ticks = tokio::time::interval(TICK);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = done.load(Ordering::Relaxed);
        let rate = (now - last) as f64 / TICK.as_secs_f64();
        last = now;
        let elapsed = started.elapsed().min(total);
        let filled = (elapsed.as_secs_f64() / total.as_secs_f64() * 20.0) as usize;
        eprint!(
            "\r[{:<20}] {:5.1}s/{:.0}s  {now} calls  {rate:9.0}/s now  {} errors ",
            "=".repeat(filled),
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            failed.load(Ordering::Relaxed),
        );
        let _ = std::io::stderr().flush();
    }
}

/// The outcome of a run.
struct Summary {
    concurrency: u32,
    elapsed: Duration,
    latency: Histogram<u64>,
    errors: BTreeMap<&'static str, u64>,
}

impl Summary {
    fn calls(&self) -> u64 {
        self.latency.len()
    }

    fn ok(&self) -> u64 {
        self.calls() - self.errors.values().sum::<u64>()
    }

    fn rate(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64()
    }

    /// min, mean, p50, p90, p99, max in milliseconds.
    fn percentiles(&self) -> [(&'static str, f64); 6] {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let h = &self.latency;
        [
            ("min", ms(h.min())),
            ("mean", h.mean() / 1000.0),
            ("p50", ms(h.value_at_quantile(0.50))),
            ("p90", ms(h.value_at_quantile(0.90))),
            ("p99", ms(h.value_at_quantile(0.99))),
            ("max", ms(h.max())),
        ]
    }

    /// Counts in `BUCKETS` buckets spaced evenly on a log scale from min to max:
    /// (upper bound in ms, count).
    fn histogram(&self) -> Vec<(f64, u64)> {
        let (min, max) = (
            self.latency.min().max(1) as f64,
            self.latency.max().max(1) as f64,
        );
        let ratio = (max / min).max(1.0 + 1e-9);
        let bounds: Vec<f64> = (1..=BUCKETS)
            .map(|i| min * ratio.powf(i as f64 / BUCKETS as f64))
            .collect();
        let mut counts = vec![0u64; BUCKETS];
        for value in self.latency.iter_recorded() {
            let v = self.latency.highest_equivalent(value.value_iterated_to()) as f64;
            let i = bounds.iter().position(|b| v <= *b).unwrap_or(BUCKETS - 1);
            counts[i] += value.count_at_value();
        }
        bounds.iter().map(|b| b / 1000.0).zip(counts).collect()
    }

    fn json(&self, prepared: &Prepared) -> serde_json::Value {
        let latency: serde_json::Map<_, _> = self
            .percentiles()
            .iter()
            .map(|(name, ms)| (name.to_string(), serde_json::json!(round(*ms))))
            .collect();
        let histogram: Vec<_> = self
            .histogram()
            .iter()
            .map(|(up_to, count)| serde_json::json!({"up_to_ms": round(*up_to), "count": count}))
            .collect();
        serde_json::json!({
            "service": prepared.key.to_string(),
            "method": prepared.method,
            "concurrency": self.concurrency,
            "duration_s": round(self.elapsed.as_secs_f64()),
            "calls": self.calls(),
            "ok": self.ok(),
            "rate": round(self.rate()),
            "errors": self.errors,
            "latency_ms": latency,
            "histogram": histogram,
        })
    }

    fn text(&self, prepared: &Prepared) -> String {
        let mut out = format!(
            "{}.{}: {} calls in {:.2} s from {} callers\n",
            prepared.key,
            prepared.method,
            self.calls(),
            self.elapsed.as_secs_f64(),
            self.concurrency
        );
        out += &format!(
            "  rate    {:.1} calls/s\n  ok      {}\n  errors  {}\n",
            self.rate(),
            self.ok(),
            self.errors.values().sum::<u64>()
        );
        out += "\nLatency (ms):\n ";
        for (name, ms) in self.percentiles() {
            out += &format!(" {name} {ms:.3}");
        }
        out += "\n\nLatency histogram (ms, calls):\n";
        let histogram = self.histogram();
        let most = histogram.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1);
        for (up_to, count) in &histogram {
            let bar = "∎".repeat((count * BAR).div_ceil(most) as usize);
            out += &format!("  <= {up_to:9.3}  {count:>9}  {bar}\n");
        }
        if !self.errors.is_empty() {
            out += "\nErrors by kind:\n";
            let rows: Vec<Vec<String>> = self
                .errors
                .iter()
                .map(|(kind, count)| vec![format!("  {kind}"), count.to_string()])
                .collect();
            out += &output::table(&["  KIND", "CALLS"], &rows);
            out += "\n";
        }
        out.trim_end().to_string()
    }
}

/// `x` to three decimals, for JSON.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_hold_every_call() {
        let mut latency = new_histogram().unwrap();
        for micros in [100, 150, 200, 1_000, 10_000] {
            latency.record(micros).unwrap();
        }
        let summary = Summary {
            concurrency: 1,
            elapsed: Duration::from_secs(1),
            latency,
            errors: BTreeMap::from([("timeout", 1)]),
        };
        let histogram = summary.histogram();
        assert_eq!(histogram.len(), BUCKETS);
        assert_eq!(histogram.iter().map(|(_, c)| c).sum::<u64>(), 5);
        assert!(
            (histogram[BUCKETS - 1].0 - 10.0).abs() < 0.01,
            "{histogram:?}"
        );
        assert_eq!(summary.ok(), 4);
    }
}
