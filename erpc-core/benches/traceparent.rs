//! What the `traceparent` costs per call: formatting the one a call sends, parsing the
//! one a provider receives, and deriving a child for a call made inside a handler.
//!
//! `cargo bench -p erpc-core --bench traceparent` prints ns per operation, the best of
//! 7 rounds of 1 000 000.

use std::hint::black_box;
use std::time::Instant;

use erpc_core::context::TraceParent;

const OPS: u32 = 1_000_000;
const ROUNDS: usize = 7;

/// Best ns per operation of `op` over the rounds.
fn best(mut op: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..OPS {
                op();
            }
            started.elapsed().as_nanos() as f64 / f64::from(OPS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let parent = TraceParent::random();
    let header = parent.to_string();
    let rows = [
        (
            "format (to_string)",
            best(|| drop(black_box(black_box(parent).to_string()))),
        ),
        (
            "parse",
            best(|| {
                black_box(TraceParent::parse(black_box(&header)));
            }),
        ),
        (
            "child + format",
            best(|| drop(black_box(parent.child().to_string()))),
        ),
        (
            "random + format",
            best(|| drop(black_box(TraceParent::random().to_string()))),
        ),
    ];
    println!("| operation | ns |\n|---|---:|");
    for (name, ns) in rows {
        println!("| {name} | {ns:.1} |");
    }
}
