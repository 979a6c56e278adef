//! What a server filter chain costs per call: erpc's `ServerFilter` trait chain against
//! the tower alternative (a `BoxCloneService` stack, what a stack assembled from a
//! configuration file needs), with 0, 1 and 3 pass-through filters that observe the
//! outcome, around a handler that answers at once (the call's context is built in
//! every row).
//!
//! A first row runs the handler without a call context, as the server did before
//! contexts existed: the difference to the 0-filter row is what the context costs.
//!
//! `cargo bench -p erpc-core --bench filters` prints ns per call, the best of 7 rounds
//! of 200 000 calls on a current-thread runtime.

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use erpc_core::filter::bench::{context_only, run, run_without_context, Calls};
use erpc_core::filter::{ServerCall, ServerFilter, ServerNext};
use erpc_core::{async_trait, Error, Reply};
use futures::future::BoxFuture;
use tower::util::BoxCloneService;
use tower::{Service, ServiceExt};

const CALLS: u32 = 200_000;
const ROUNDS: usize = 7;

/// Passes the call on and looks at the outcome.
struct Pass;

#[async_trait]
impl ServerFilter for Pass {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        let result = next.run(call).await;
        black_box(result.is_ok());
        result
    }
}

type Stack = BoxCloneService<ServerCall, Reply, Error>;

/// The same pass-through filter as a tower layer.
#[derive(Clone)]
struct PassLayer(Stack);

impl Service<ServerCall> for PassLayer {
    type Response = Reply;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Reply, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, call: ServerCall) -> Self::Future {
        // The ready inner service goes into the future; a clone stays for next time.
        let clone = self.0.clone();
        let mut inner = std::mem::replace(&mut self.0, clone);
        Box::pin(async move {
            let result = inner.call(call).await;
            black_box(result.is_ok());
            result
        })
    }
}

fn tower_stack(layers: usize) -> Stack {
    let mut stack = BoxCloneService::new(tower::service_fn(|mut call: ServerCall| async move {
        run(&mut call, &[]).await
    }));
    for _ in 0..layers {
        stack = BoxCloneService::new(PassLayer(stack));
    }
    stack
}

async fn trait_chain(calls: &Calls, filters: &[Arc<dyn ServerFilter>]) -> Duration {
    let started = Instant::now();
    for _ in 0..CALLS {
        let mut call = calls.call();
        let _ = black_box(run(&mut call, filters).await);
    }
    started.elapsed()
}

async fn tower_chain(calls: &Calls, stack: &Stack) -> Duration {
    let started = Instant::now();
    for _ in 0..CALLS {
        // A server serves calls concurrently: each takes its own clone of the stack.
        let mut service = stack.clone();
        let ready = service.ready().await.map(|s| s.call(calls.call()));
        let _ = black_box(match ready {
            Ok(future) => future.await,
            Err(e) => Err(e),
        });
    }
    started.elapsed()
}

async fn no_context(calls: &Calls) -> Duration {
    let started = Instant::now();
    for _ in 0..CALLS {
        let mut call = calls.call();
        let _ = black_box(run_without_context(&mut call).await);
    }
    started.elapsed()
}

fn best(times: impl Iterator<Item = Duration>) -> f64 {
    let best = times.min().unwrap_or_default();
    best.as_nanos() as f64 / f64::from(CALLS)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let calls = Calls::default();
    let bare = best((0..ROUNDS).map(|_| runtime.block_on(no_context(&calls))));
    println!("handler without a call context (before this change): {bare:.0} ns/call");
    let ctx = best((0..ROUNDS).map(|_| {
        let started = Instant::now();
        for _ in 0..CALLS {
            let mut call = calls.call();
            black_box(context_only(&mut call));
        }
        started.elapsed()
    }));
    println!("a fresh call plus building and dropping its context: {ctx:.0} ns/call");
    println!("| filters | erpc trait chain (ns/call) | tower BoxCloneService stack (ns/call) |");
    println!("|---|---:|---:|");
    for n in [0usize, 1, 3] {
        let filters: Vec<Arc<dyn ServerFilter>> = (0..n)
            .map(|_| Arc::new(Pass) as Arc<dyn ServerFilter>)
            .collect();
        let stack = tower_stack(n);
        let ours = best((0..ROUNDS).map(|_| runtime.block_on(trait_chain(&calls, &filters))));
        let theirs = best((0..ROUNDS).map(|_| runtime.block_on(tower_chain(&calls, &stack))));
        println!("| {n} | {ours:.0} | {theirs:.0} |");
    }
}
