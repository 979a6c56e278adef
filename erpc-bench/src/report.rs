//! Results: the markdown tables, the CSV file and the target check.

use std::fmt::Write;

use crate::idle::IdleResult;
use crate::load::Measured;
use crate::Framework;

/// One measured cell.
pub(crate) struct Row {
    framework: Framework,
    payload: usize,
    concurrency: usize,
    calls: u64,
    pub(crate) errors: u64,
    seconds: f64,
    qps: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    client_cpu_per_100k: f64,
    server_cpu_per_100k: f64,
    server_peak_rss_kib: u64,
}

impl Row {
    /// Calls per second.
    pub(crate) fn qps(&self) -> f64 {
        self.qps
    }

    pub(crate) fn new(
        framework: Framework,
        payload: usize,
        concurrency: usize,
        measured: &Measured,
        server_peak_rss_kib: u64,
    ) -> Self {
        let us = |q: f64| measured.latency.value_at_quantile(q) as f64 / 1_000.0;
        let per_100k = |cpu: f64| {
            if measured.calls == 0 {
                0.0
            } else {
                cpu * 100_000.0 / measured.calls as f64
            }
        };
        Self {
            framework,
            payload,
            concurrency,
            calls: measured.calls,
            errors: measured.errors,
            seconds: measured.seconds,
            qps: measured.calls as f64 / measured.seconds.max(1e-9),
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            client_cpu_per_100k: per_100k(measured.client_cpu),
            server_cpu_per_100k: per_100k(measured.server_cpu),
            server_peak_rss_kib,
        }
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The line printed while the run goes on.
pub(crate) fn progress_line(row: &Row) -> String {
    format!(
        "{:<14} {:>7} x{:<4} {:>9.0} qps  p50 {:>8.1} us  p99 {:>8.1} us  cpu/100k {:.2}+{:.2} s{}",
        row.framework.name(),
        size(row.payload),
        row.concurrency,
        row.qps,
        row.p50_us,
        row.p99_us,
        row.client_cpu_per_100k,
        row.server_cpu_per_100k,
        if row.errors > 0 {
            format!("  ERRORS {}", row.errors)
        } else {
            String::new()
        }
    )
}

fn find(rows: &[Row], f: Framework, payload: usize, concurrency: usize) -> Option<&Row> {
    rows.iter()
        .find(|r| r.framework == f && r.payload == payload && r.concurrency == concurrency)
}

/// All tables: results, erpc's ratios, targets, idle connections.
pub(crate) fn markdown(rows: &[Row], idle: Option<&IdleResult>) -> String {
    let mut out = String::new();
    out.push_str("### Results\n\n");
    out.push_str("| framework | payload | in flight | QPS | p50 µs | p99 µs | p99.9 µs | client CPU s/100k | server CPU s/100k | total CPU s/100k | server peak RSS MiB | errors |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            r.framework.name(),
            size(r.payload),
            r.concurrency,
            r.qps,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.client_cpu_per_100k,
            r.server_cpu_per_100k,
            r.client_cpu_per_100k + r.server_cpu_per_100k,
            r.server_peak_rss_kib as f64 / 1024.0,
            r.errors
        );
    }
    out.push_str(&ratios(rows));
    out.push_str(&targets(rows, idle));
    if let Some(idle) = idle {
        out.push('\n');
        out.push_str(&idle_markdown(idle));
    }
    out
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".to_string(),
    }
}

/// erpc's QPS and p99 relative to each peer, per cell.
fn ratios(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("\n### erpc relative to its peers\n\n");
    out.push_str("QPS ratio > 1 and p99 ratio < 1 favour erpc.\n\n");
    out.push_str("| erpc variant | payload | in flight | QPS ×tarpc | QPS ×tonic | QPS ×raw | p99 ×tarpc | p99 ×tonic | p50 ×tarpc | CPU/call ×tarpc |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        if !matches!(
            r.framework,
            Framework::Erpc
                | Framework::ErpcPostcard
                | Framework::ErpcTls
                | Framework::ErpcMetrics
                | Framework::ErpcTracing
                | Framework::ErpcObserved
        ) {
            continue;
        }
        let peer = |f| find(rows, f, r.payload, r.concurrency);
        let qps = |f| peer(f).map(|p: &Row| p.qps);
        let p99 = |f| peer(f).map(|p: &Row| p.p99_us);
        let cpu = |row: &Row| row.client_cpu_per_100k + row.server_cpu_per_100k;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.framework.name(),
            size(r.payload),
            r.concurrency,
            ratio(Some(r.qps), qps(Framework::Tarpc)),
            ratio(Some(r.qps), qps(Framework::Tonic)),
            ratio(Some(r.qps), qps(Framework::Raw)),
            ratio(Some(r.p99_us), p99(Framework::Tarpc)),
            ratio(Some(r.p99_us), p99(Framework::Tonic)),
            ratio(
                Some(r.p50_us),
                peer(Framework::Tarpc).map(|p: &Row| p.p50_us)
            ),
            ratio(Some(cpu(r)), peer(Framework::Tarpc).map(cpu)),
        );
    }
    out
}

/// The targets, checked against default-serializer erpc.
fn targets(rows: &[Row], idle: Option<&IdleResult>) -> String {
    let mut checks: Vec<(String, String, bool)> = Vec::new();
    let erpc = |p, c| find(rows, Framework::Erpc, p, c);
    for c in [64, 256] {
        let Some(e) = erpc(64, c) else { continue };
        for (peer, min) in [
            (Framework::Tarpc, 2.0),
            (Framework::Tonic, 2.0),
            (Framework::Raw, 0.6),
        ] {
            if let Some(p) = find(rows, peer, 64, c) {
                let got = e.qps / p.qps;
                checks.push((
                    format!("64 B x{c}: QPS ≥ {min}× {}", peer.name()),
                    format!("{got:.2}×"),
                    got >= min,
                ));
            }
        }
        if let Some(t) = find(rows, Framework::Tarpc, 64, c) {
            checks.push((
                format!("64 B x{c}: p99 ≤ tarpc"),
                format!("{:.1} vs {:.1} µs", e.p99_us, t.p99_us),
                e.p99_us <= t.p99_us,
            ));
        }
    }
    let mut payloads: Vec<usize> = rows.iter().map(|r| r.payload).collect();
    payloads.dedup();
    for p in payloads {
        if let (Some(e), Some(t)) = (erpc(p, 1), find(rows, Framework::Tarpc, p, 1)) {
            checks.push((
                format!("{} x1: p50 ≤ tarpc", size(p)),
                format!("{:.1} vs {:.1} µs", e.p50_us, t.p50_us),
                e.p50_us <= t.p50_us,
            ));
        }
    }
    for r in rows
        .iter()
        .filter(|r| r.framework == Framework::Erpc && r.payload == 65536)
    {
        if let Some(raw) = find(rows, Framework::Raw, r.payload, r.concurrency) {
            let got = r.qps / raw.qps;
            checks.push((
                format!("64 KiB x{}: QPS ≥ 0.85× raw", r.concurrency),
                format!("{got:.2}×"),
                got >= 0.85,
            ));
        }
    }
    if let Some(idle) = idle {
        let got = idle.kib_per_conn();
        checks.push((
            "idle connection < 16 KiB server RSS".to_string(),
            format!("{got:.1} KiB"),
            got < 16.0,
        ));
    }
    let mut out = String::new();
    if checks.is_empty() {
        return out;
    }
    out.push_str("\n### Targets (erpc with its default serializer)\n\n| target | measured | met |\n|---|---|---|\n");
    for (what, got, met) in checks {
        let _ = writeln!(
            out,
            "| {what} | {got} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    out
}

/// The idle-connection table.
pub(crate) fn idle_markdown(r: &IdleResult) -> String {
    format!(
        "### Idle erpc connections\n\n\
         | connections | server RSS before MiB | after MiB | KiB per connection | server fds before | after | opened in s |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2} |\n",
        r.conns,
        r.rss_before_kib as f64 / 1024.0,
        r.rss_after_kib as f64 / 1024.0,
        r.kib_per_conn(),
        r.fds_before,
        r.fds_after,
        r.seconds_to_open
    )
}

/// Every row as CSV.
pub(crate) fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "framework,payload_bytes,concurrency,calls,errors,seconds,qps,p50_us,p99_us,p999_us,client_cpu_s_per_100k,server_cpu_s_per_100k,server_peak_rss_kib\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.1},{:.1},{:.1},{:.1},{:.4},{:.4},{}",
            r.framework.name(),
            r.payload,
            r.concurrency,
            r.calls,
            r.errors,
            r.seconds,
            r.qps,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.client_cpu_per_100k,
            r.server_cpu_per_100k,
            r.server_peak_rss_kib
        );
    }
    out
}
