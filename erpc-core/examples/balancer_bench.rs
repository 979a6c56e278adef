//! Measures the built-in load balancers; the numbers back the default chosen in
//! `erpc_core::balance`.
//!
//! Run with `cargo run --release -p erpc-core --example balancer_bench`. Prints two
//! markdown tables:
//!
//! 1. the cost of one pick with 3, 10 and 100 candidates, and with picks alternating
//!    between two services of 50 providers each (each service has its own picker, as
//!    in a client);
//! 2. a discrete-event simulation (simulated time, no sleeping) of 64 closed-loop
//!    callers sharing one client and three providers, one of them slow: service
//!    times are exponential with a mean of 1 ms (20 ms for the slow one), and each
//!    provider either serves 16 calls at a time with a FIFO queue behind them
//!    (overloaded: 64 callers, 48 slots) or serves any number at once. The client
//!    tracks in-flight calls and a peak-EWMA latency (decay 1 s) per provider,
//!    exactly what `Candidate` carries in production.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use erpc_core::balance::{BalancerKind, Candidate, Candidates, LoadBalancer, PickContext};
use erpc_core::registry::Provider;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn main() {
    println!("## Cost of one pick (ns)\n");
    println!("| balancer | 3 candidates | 10 candidates | 100 candidates | 2 services × 50, alternating |");
    println!("|---|---:|---:|---:|---:|");
    for kind in BalancerKind::ALL {
        let mut cells: Vec<String> = [3, 10, 100]
            .iter()
            .map(|&n| format!("{:.1}", ns_per_pick(kind, &[n])))
            .collect();
        cells.push(format!("{:.1}", ns_per_pick(kind, &[50, 50])));
        println!("| {kind} | {} |", cells.join(" | "));
    }

    for workers in [Some(16), None] {
        let sim = Simulation {
            workers,
            ..Simulation::default()
        };
        let served = workers.map_or("unbounded concurrency".to_owned(), |w| {
            format!("{w} workers each, FIFO queue")
        });
        println!(
            "\n## Simulated latency: {} callers; providers with {served}; mean service {:?} / {:?} / {:?} (slow)\n",
            sim.callers, sim.service[0], sim.service[1], sim.service[2]
        );
        println!("| balancer | p50 | p99 | p99.9 | share to slow | throughput (calls/s) |");
        println!("|---|---:|---:|---:|---:|---:|");
        for kind in BalancerKind::ALL {
            let r = sim.run(kind.build().as_ref());
            println!(
                "| {kind} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1} % | {:.0} |",
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.slow_share * 100.0,
                r.throughput
            );
        }
    }
}

fn providers(n: usize, service: usize) -> Vec<Provider> {
    (0..n)
        .map(|i| Provider::new(format!("10.{service}.{}.{}:20880", i / 250, i % 250 + 1)))
        .collect()
}

/// Nanoseconds per pick: the fastest of 20 rounds of 10 000 picks, so that a busy
/// machine (preemption) does not inflate the figure. With several services (`sizes`
/// lists their provider counts), consecutive picks go to the services in turn.
fn ns_per_pick(kind: BalancerKind, sizes: &[usize]) -> f64 {
    let balancer = kind.build();
    let lists: Vec<Vec<Provider>> = sizes
        .iter()
        .enumerate()
        .map(|(service, &n)| providers(n, service))
        .collect();
    let mut rng = SmallRng::seed_from_u64(sizes.iter().sum::<usize>() as u64);
    let services: Vec<_> = lists
        .iter()
        .map(|providers| {
            let candidates: Vec<Candidate<'_>> = providers
                .iter()
                .map(|provider| Candidate {
                    provider,
                    in_flight: rng.gen_range(0..4),
                    latency: Some(Duration::from_micros(rng.gen_range(500..5_000))),
                })
                .collect();
            (balancer.picker(providers), candidates)
        })
        .collect();
    let mut key = 0u64;
    let mut turn = 0usize;
    let mut pick = || {
        key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
        turn = (turn + 1) % services.len();
        let (picker, candidates) = &services[turn];
        let ctx = PickContext {
            method: "echo",
            hash_key: Some(key),
        };
        black_box(picker.pick(&Candidates::new(black_box(candidates)), &ctx))
    };
    const ROUND: u32 = 10_000;
    (0..21)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUND {
                pick();
            }
            start.elapsed()
        })
        .skip(1) // warm-up
        .min()
        .map_or(f64::NAN, |d| d.as_nanos() as f64 / f64::from(ROUND))
}

/// Closed-loop discrete-event simulation of one client in front of three providers.
struct Simulation {
    callers: usize,
    /// Calls a provider serves at once; `None` for no limit (no queueing).
    workers: Option<usize>,
    service: [Duration; 3],
    /// Index of the slow provider in `service`.
    slow: usize,
    calls: usize,
    warmup: usize,
    /// Decay time of the peak-EWMA latency estimate.
    decay: Duration,
}

impl Default for Simulation {
    fn default() -> Self {
        Self {
            callers: 64,
            workers: Some(16),
            service: [
                Duration::from_millis(1),
                Duration::from_millis(1),
                Duration::from_millis(20),
            ],
            slow: 2,
            calls: 300_000,
            warmup: 20_000,
            decay: Duration::from_secs(1),
        }
    }
}

struct Outcome {
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    slow_share: f64,
    throughput: f64,
}

/// Completions as (time, provider, call start time), earliest first.
type Events = BinaryHeap<Reverse<(u64, usize, u64)>>;

/// Client-side view of one provider, plus the provider's own queue.
#[derive(Default)]
struct Node {
    in_flight: usize,
    ewma_ns: Option<f64>,
    ewma_at: u64,
    busy: usize,
    queue: VecDeque<u64>,
}

impl Node {
    /// Peak-EWMA: jump up to a slower sample at once, decay towards faster ones.
    fn observe(&mut self, now: u64, rtt: u64, decay: Duration) {
        let rtt = rtt as f64;
        self.ewma_ns = Some(match self.ewma_ns {
            Some(old) if rtt <= old => {
                let elapsed = now.saturating_sub(self.ewma_at) as f64;
                let w = (-elapsed / decay.as_nanos() as f64).exp();
                old * w + rtt * (1.0 - w)
            }
            _ => rtt,
        });
        self.ewma_at = now;
    }
}

impl Simulation {
    fn run(&self, balancer: &dyn LoadBalancer) -> Outcome {
        let providers = providers(self.service.len(), 0);
        let picker = balancer.picker(&providers);
        let mut nodes: Vec<Node> = providers.iter().map(|_| Node::default()).collect();
        let mut rng = SmallRng::seed_from_u64(42);
        let mut events = Events::new();
        let mut latencies = Vec::with_capacity(self.calls);
        let mut to_slow = 0usize;
        let mut measured_from = 0u64;

        let start_call = |now: u64, nodes: &mut [Node], events: &mut Events, rng: &mut SmallRng| {
            let mut candidates = [Candidate {
                provider: &providers[0],
                in_flight: 0,
                latency: None,
            }; 3];
            for (i, c) in candidates.iter_mut().enumerate() {
                c.provider = &providers[i];
                c.in_flight = nodes[i].in_flight;
                c.latency = nodes[i].ewma_ns.map(|ns| Duration::from_nanos(ns as u64));
            }
            let ctx = PickContext {
                method: "echo",
                hash_key: None,
            };
            let p = picker
                .pick(&Candidates::new(&candidates), &ctx)
                .unwrap_or(0);
            let node = &mut nodes[p];
            node.in_flight += 1;
            if node.busy < self.workers.unwrap_or(usize::MAX) {
                node.busy += 1;
                let done = now + self.service_time(p, rng);
                events.push(Reverse((done, p, now)));
            } else {
                node.queue.push_back(now);
            }
            p
        };

        for _ in 0..self.callers {
            start_call(0, &mut nodes, &mut events, &mut rng);
        }
        let mut completed = 0usize;
        let mut now = 0;
        while let Some(Reverse((at, p, started))) = events.pop() {
            now = at;
            let node = &mut nodes[p];
            node.in_flight -= 1;
            node.observe(now, now - started, self.decay);
            match node.queue.pop_front() {
                Some(queued) => {
                    let done = now + self.service_time(p, &mut rng);
                    events.push(Reverse((done, p, queued)));
                }
                None => node.busy -= 1,
            }
            completed += 1;
            if completed == self.warmup {
                measured_from = now;
            }
            if completed > self.warmup {
                latencies.push(now - started);
            }
            if completed >= self.calls {
                break;
            }
            // The caller sends its next call at once.
            let chosen = start_call(now, &mut nodes, &mut events, &mut rng);
            if completed > self.warmup && chosen == self.slow {
                to_slow += 1;
            }
        }
        latencies.sort_unstable();
        let quantile = |q: f64| {
            let i = ((latencies.len() as f64 * q) as usize).min(latencies.len() - 1);
            latencies[i] as f64 / 1e6
        };
        Outcome {
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
            slow_share: to_slow as f64 / latencies.len() as f64,
            throughput: latencies.len() as f64 / ((now - measured_from) as f64 / 1e9),
        }
    }

    /// Exponentially distributed service time of provider `p`, in nanoseconds.
    fn service_time(&self, p: usize, rng: &mut SmallRng) -> u64 {
        let mean = self.service[p].as_nanos() as f64;
        let u: f64 = rng.gen_range(f64::EPSILON..1.0);
        (-mean * u.ln()) as u64
    }
}
