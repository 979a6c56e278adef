//! Drives one benchmark cell: N tasks each keep one call in flight for a fixed time.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tonic::transport::Channel;

use crate::peers::{erpc_echo, raw::RawClient, tarpc_echo, tls, tonic_echo};
use crate::stats::{self, Pid};
use crate::Framework;

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// A connected client of one framework; clones share the framework's connection.
#[derive(Clone)]
pub(crate) enum Caller {
    Erpc(erpc_echo::EchoClient),
    Tarpc(tarpc_echo::EchoClient),
    Tonic(tonic::client::Grpc<Channel>),
    Raw(Arc<RawClient>),
}

impl Caller {
    /// Connects to the server of `framework` at `addr`.
    pub(crate) async fn connect(framework: Framework, addr: &str) -> Result<Self, String> {
        Ok(match framework {
            Framework::Erpc
            | Framework::ErpcPostcard
            | Framework::ErpcTls
            | Framework::ErpcMetrics
            | Framework::ErpcTracing
            | Framework::ErpcObserved => {
                let serialization = match framework {
                    Framework::ErpcPostcard => erpc::Serialization::Postcard,
                    _ => erpc::Serialization::MsgPack,
                };
                let tls = match framework {
                    Framework::ErpcTls => Some(tls::client_config()?),
                    _ => None,
                };
                let observed = framework == Framework::ErpcObserved;
                let extras = erpc_echo::Extras {
                    metrics: observed || framework == Framework::ErpcMetrics,
                    tracing: observed || framework == Framework::ErpcTracing,
                    scrape: observed,
                };
                Self::Erpc(erpc_echo::client(addr, serialization, tls, extras)?)
            }
            Framework::Tarpc => Self::Tarpc(tarpc_echo::client(addr).await?),
            Framework::Tonic => Self::Tonic(tonic_echo::client(addr).await?),
            Framework::Raw => Self::Raw(Arc::new(RawClient::connect(addr).await?)),
        })
    }

    /// One echo call; fails when the reply's length differs from the payload's.
    pub(crate) async fn call(&mut self, payload: &[u8]) -> Result<(), String> {
        let len = match self {
            Self::Erpc(client) => erpc_echo::call(client, payload).await?,
            Self::Tarpc(client) => tarpc_echo::call(client, payload).await?,
            Self::Tonic(client) => tonic_echo::call(client, payload).await?,
            Self::Raw(client) => client.call(payload).await?,
        };
        if len == payload.len() {
            Ok(())
        } else {
            Err(format!("echo returned {len} bytes for {}", payload.len()))
        }
    }
}

/// What one cell measured.
pub(crate) struct Measured {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) seconds: f64,
    /// Latency in nanoseconds.
    pub(crate) latency: Histogram<u64>,
    pub(crate) client_cpu: f64,
    pub(crate) server_cpu: f64,
}

impl Measured {
    /// Adds `other`, a later slice of the same cell, to this one.
    pub(crate) fn merge(&mut self, other: Measured) {
        self.calls += other.calls;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.seconds += other.seconds;
        let _ = self.latency.add(&other.latency);
        self.client_cpu += other.client_cpu;
        self.server_cpu += other.server_cpu;
    }
}

struct Worker {
    calls: u64,
    errors: u64,
    first_error: Option<String>,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs `concurrency` callers for `warmup`, then measures for `duration`.
pub(crate) async fn run(
    caller: &Caller,
    payload: usize,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    server: Pid,
) -> Measured {
    let payload: Arc<[u8]> = (0..payload).map(|i| i as u8).collect();
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut caller = caller.clone();
            let payload = payload.clone();
            let phase = phase.clone();
            tokio::spawn(async move {
                let mut worker = Worker {
                    calls: 0,
                    errors: 0,
                    first_error: None,
                    latency: histogram(),
                };
                loop {
                    let started_in = phase.load(Ordering::Acquire);
                    if started_in == STOP {
                        break;
                    }
                    let start = Instant::now();
                    let result = caller.call(&payload).await;
                    let elapsed = start.elapsed();
                    if started_in != MEASURE || phase.load(Ordering::Acquire) != MEASURE {
                        continue;
                    }
                    match result {
                        Ok(()) => {
                            worker.calls += 1;
                            worker
                                .latency
                                .saturating_record(elapsed.as_nanos().max(1) as u64);
                        }
                        Err(e) => {
                            worker.errors += 1;
                            worker.first_error.get_or_insert(e);
                        }
                    }
                }
                worker
            })
        })
        .collect();
    tokio::time::sleep(warmup).await;
    let (client_start, server_start) =
        (stats::cpu_seconds(Pid::Current), stats::cpu_seconds(server));
    let start = Instant::now();
    phase.store(MEASURE, Ordering::Release);
    tokio::time::sleep(duration).await;
    phase.store(STOP, Ordering::Release);
    let seconds = start.elapsed().as_secs_f64();
    let (client_end, server_end) = (stats::cpu_seconds(Pid::Current), stats::cpu_seconds(server));
    let mut measured = Measured {
        calls: 0,
        errors: 0,
        first_error: None,
        seconds,
        latency: histogram(),
        client_cpu: client_end - client_start,
        server_cpu: server_end - server_start,
    };
    for worker in workers {
        let Ok(worker) = worker.await else {
            measured.errors += 1;
            continue;
        };
        measured.calls += worker.calls;
        measured.errors += worker.errors;
        if measured.first_error.is_none() {
            measured.first_error = worker.first_error;
        }
        let _ = measured.latency.add(&worker.latency);
    }
    measured
}

#[cfg(test)]
mod tests {
    use super::{histogram, Measured};

    fn slice(calls: u64, errors: u64, error: Option<&str>, latency_ns: u64) -> Measured {
        let mut latency = histogram();
        for _ in 0..calls {
            latency.record(latency_ns).expect("in bounds");
        }
        Measured {
            calls,
            errors,
            first_error: error.map(str::to_string),
            seconds: 0.5,
            latency,
            client_cpu: 0.25,
            server_cpu: 0.125,
        }
    }

    #[test]
    fn slices_of_a_cell_add_up_and_keep_the_first_error() {
        let mut cell = slice(100, 0, None, 1_000);
        cell.merge(slice(300, 2, Some("first"), 9_000));
        cell.merge(slice(0, 1, Some("second"), 1));
        assert_eq!((cell.calls, cell.errors), (400, 3));
        assert_eq!(cell.first_error.as_deref(), Some("first"));
        assert!((cell.seconds - 1.5).abs() < 1e-9);
        assert!((cell.client_cpu - 0.75).abs() < 1e-9);
        assert!((cell.server_cpu - 0.375).abs() < 1e-9);
        assert_eq!(cell.latency.len(), 400);
        // A quarter of the calls took 1 µs, the rest 9 µs.
        assert!(cell.latency.value_at_quantile(0.2) < 1_100);
        assert!(cell.latency.value_at_quantile(0.5) > 8_900);
    }
}
