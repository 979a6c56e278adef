//! The call context inside handlers, over real servers: metadata, peer, service,
//! method, request id and deadline; per-call metadata with `context::attach`; and
//! propagation through a chain of providers that are consumers (A → B → C): the trace
//! id and the deadline travel, a malformed `traceparent` is ignored, a call outside any
//! scope carries no trace.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use erpc::context::{self, CallContext, TraceParent, TRACEPARENT};
use erpc::{Client, Metadata, ServerHandle};
use support::{bounded, direct, eventually, server, spawn, TEST_LIMIT};

/// A service whose handler calls the next hop.
#[erpc::service]
pub trait Hop {
    /// Records the call's context; calls the next hop, if any; returns how many hops
    /// ran from here on.
    async fn relay(&self) -> u32;
    /// Records the call's context from a task the handler spawned with its scope.
    async fn spawned(&self) -> bool;
    /// Hands a watcher of its cancellation to a spawned task, then sleeps a minute.
    async fn linger(&self);
}

#[derive(Clone, Default)]
struct HopImpl {
    seen: Arc<Mutex<Vec<CallContext>>>,
    cancelled: Arc<AtomicBool>,
    next: Option<HopClient>,
}

impl Hop for HopImpl {
    async fn relay(&self) -> u32 {
        let ctx = context::current().expect("a handler runs inside its call's context");
        self.seen.lock().unwrap().push(ctx);
        match &self.next {
            Some(next) => next.relay().await.expect("next hop answers") + 1,
            None => 1,
        }
    }

    async fn spawned(&self) -> bool {
        let ctx = context::current().expect("handler context");
        let outside = tokio::spawn(async { context::current().is_none() });
        let inside = tokio::spawn(ctx.clone().scope(async { context::current() }));
        let carried = inside.await.unwrap().expect("scope carries the context");
        self.seen.lock().unwrap().push(carried);
        outside.await.unwrap()
    }

    async fn linger(&self) {
        let ctx = context::current().expect("handler context");
        let cancelled = self.cancelled.clone();
        tokio::spawn(ctx.clone().scope(async move {
            let ctx = context::current().expect("carried");
            ctx.cancelled().await;
            cancelled.store(ctx.is_cancelled(), Ordering::SeqCst);
        }));
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

async fn hop(next: Option<HopClient>) -> (ServerHandle, Arc<Mutex<Vec<CallContext>>>) {
    let (server, hop) = hop_with(next).await;
    (server, hop.seen)
}

async fn hop_with(next: Option<HopClient>) -> (ServerHandle, HopImpl) {
    let hop = HopImpl {
        next,
        ..HopImpl::default()
    };
    let server = spawn(server().add_service(HopServer::new(hop.clone()))).await;
    (server, hop)
}

fn client_of(server: &ServerHandle) -> Client {
    direct(server.local_addr()).build().unwrap()
}

fn last(seen: &Mutex<Vec<CallContext>>) -> CallContext {
    seen.lock()
        .unwrap()
        .last()
        .cloned()
        .expect("the hop was called")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_reads_its_calls_metadata_peer_service_and_deadline() {
    bounded(TEST_LIMIT, async {
        assert!(context::current().is_none(), "no context outside a handler");
        let (server, seen) = hop(None).await;
        let hop = HopClient::new(client_of(&server))
            .with_timeout(Duration::from_secs(20))
            .with_metadata("user", "ann");
        let mut attached = Metadata::new();
        attached.insert("tenant", "blue");
        let sent_at = Instant::now();
        assert_eq!(context::attach(attached, hop.relay()).await.unwrap(), 1);
        let answered_at = Instant::now();

        let ctx = last(&seen);
        assert_eq!(ctx.metadata().get("user"), Some("ann"), "handle metadata");
        assert_eq!(
            ctx.metadata().get("tenant"),
            Some("blue"),
            "attached metadata"
        );
        assert!(ctx.peer().ip().is_loopback());
        assert_ne!(
            ctx.peer(),
            server.local_addr(),
            "the caller's address, not ours"
        );
        assert_eq!(ctx.service().interface, HopClient::descriptor().interface);
        assert_eq!(ctx.method(), "relay");
        let deadline = ctx.deadline().expect("the caller sent a deadline");
        // Relative to the request's arrival: between the send and the answer.
        assert!(deadline <= answered_at + Duration::from_secs(20));
        assert!(deadline > sent_at + Duration::from_secs(5), "{deadline:?}");
        assert!(ctx.remaining().unwrap() <= Duration::from_secs(20));
        assert!(!ctx.is_cancelled(), "the call ended with an answer");
        assert!(ctx.trace().is_none(), "no traceparent was sent");

        // Attached pairs are for the calls inside `attach` only.
        hop.relay().await.unwrap();
        let second = last(&seen);
        assert_eq!(second.metadata().get("tenant"), None);
        assert_ne!(
            second.request_id(),
            ctx.request_id(),
            "one id per call in flight"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_work_leaves_the_scope_unless_carried() {
    bounded(TEST_LIMIT, async {
        let (server, seen) = hop(None).await;
        let hop = HopClient::new(client_of(&server)).with_metadata("user", "bo");
        assert!(
            hop.spawned().await.unwrap(),
            "tokio::spawn leaves the scope"
        );
        assert_eq!(last(&seen).metadata().get("user"), Some("bo"));
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Test → A → B → C, each hop a real server whose handler calls the next with a
/// generous timeout of its own (30 s): the test's short deadline and its trace id must
/// reach C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_and_trace_travel_through_three_hops() {
    bounded(TEST_LIMIT, async {
        let long = Duration::from_secs(30);
        let (c, seen_c) = hop(None).await;
        let (b, seen_b) = hop(Some(HopClient::new(client_of(&c)).with_timeout(long))).await;
        let (a, seen_a) = hop(Some(HopClient::new(client_of(&b)).with_timeout(long))).await;
        let entry = HopClient::new(client_of(&a)).with_timeout(Duration::from_secs(8));

        let origin = TraceParent::random();
        let mut metadata = Metadata::new();
        metadata.insert(TRACEPARENT, origin.to_string());
        let sent_at = Instant::now();
        assert_eq!(context::attach(metadata, entry.relay()).await.unwrap(), 3);
        let elapsed = sent_at.elapsed();

        let (ctx_a, ctx_b, ctx_c) = (last(&seen_a), last(&seen_b), last(&seen_c));
        let mut spans = Vec::new();
        for (name, ctx) in [("A", &ctx_a), ("B", &ctx_b), ("C", &ctx_c)] {
            let trace = ctx.trace().unwrap_or_else(|| panic!("{name} got no trace"));
            assert_eq!(trace.trace_id(), origin.trace_id(), "{name}'s trace id");
            spans.push(trace.span_id());
        }
        assert_eq!(spans[0], origin.span_id(), "A sees the caller's own span");
        assert!(
            spans[1] != spans[0] && spans[2] != spans[1],
            "each hop a new span"
        );

        let (da, db, dc) = (
            ctx_a.deadline().unwrap(),
            ctx_b.deadline().unwrap(),
            ctx_c.deadline().unwrap(),
        );
        // A deadline travels as the time left (no clock skew between hosts), so each
        // hop's is its caller's plus the one-way transit, which the whole exchange
        // bounds; without propagation C would have its caller's 30 s.
        let origin_deadline = sent_at + Duration::from_secs(8);
        for (name, d) in [("A", da), ("B", db), ("C", dc)] {
            assert!(
                d <= origin_deadline + elapsed,
                "{name}'s deadline is {:?} past the caller's",
                d - origin_deadline
            );
        }
        assert!(db <= da + elapsed && dc <= db + elapsed);
        assert!(ctx_c.remaining().unwrap() <= Duration::from_secs(8));

        // Outside any scope nothing is invented; a malformed traceparent is ignored.
        assert_eq!(entry.relay().await.unwrap(), 3);
        assert!(
            last(&seen_c).trace().is_none(),
            "a call outside a scope has no trace"
        );
        let mut bad = Metadata::new();
        bad.insert(TRACEPARENT, "00-nothex-00f067aa0ba902b7-01");
        assert_eq!(context::attach(bad, entry.relay()).await.unwrap(), 3);
        assert!(last(&seen_a).trace().is_none());
        assert!(last(&seen_c).trace().is_none());
        for server in [a, b, c] {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_spawned_in_scope_learns_that_the_caller_gave_up() {
    bounded(TEST_LIMIT, async {
        let (server, hop) = hop_with(None).await;
        let client = HopClient::new(client_of(&server)).with_timeout(Duration::from_millis(300));
        assert!(matches!(
            client.linger().await,
            Err(erpc::Error::Timeout { .. })
        ));
        assert!(
            eventually(Duration::from_secs(20), || hop
                .cancelled
                .load(Ordering::SeqCst))
            .await,
            "the spawned task never saw the cancellation"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}
