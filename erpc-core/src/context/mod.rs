//! The context of the call being served: what a handler can know about its caller, and
//! what travels on to the calls it makes.
//!
//! Inside a handler, [`current`] gives the call's [`CallContext`]: the metadata the
//! caller sent, its address, the service key and method, the request id, the remaining
//! deadline, its trace context and whether the caller is gone. Trait methods stay plain
//! `async fn`s.
//!
//! ```no_run
//! #[erpc_core::async_trait]
//! trait Greeter { async fn hello(&self) -> String; }
//!
//! struct Impl;
//! #[erpc_core::async_trait]
//! impl Greeter for Impl {
//!     async fn hello(&self) -> String {
//!         let ctx = erpc_core::context::current().expect("called through erpc");
//!         let user = ctx.metadata().get("user").unwrap_or("stranger");
//!         format!("hello {user} from {} (request {}, {:?} left)", ctx.peer(), ctx.request_id(), ctx.remaining())
//!     }
//! }
//! ```
//!
//! # Why a task-local
//!
//! tarpc passes a `Context` as every method's first argument: explicit, but every trait
//! signature (and every caller of the trait used as a plain Rust trait) changes, and a
//! handler that calls another service must thread it by hand. Dubbo's `RpcContext` is a
//! thread-local: no signature changes, but in async Rust a task moves between worker
//! threads at every `.await`, so a thread-local would show one call's context to
//! another call's task. A `tokio::task_local!` belongs to the task's future instead: the
//! server sets it around the handler's future, it is visible wherever that future is
//! polled, on whatever thread, and it costs one `Arc` per call and a pointer swap per
//! poll: about 60 ns per call in `erpc-core/benches/filters.rs` (see [`crate::filter`]).
//!
//! Its limit: work the handler moves to another task with `tokio::spawn` leaves the
//! scope ([`current`] is `None` there). Carry it over with [`CallContext::scope`]:
//! `tokio::spawn(ctx.scope(work))`.
//!
//! # Propagation
//!
//! A [`crate::Client`] call made inside the scope (a provider that is itself a
//! consumer) inherits the remaining deadline (its timeout becomes the smaller of its
//! own and what is left of the incoming call's) and, when the incoming call carried a
//! W3C `traceparent`, sends the same trace id with a new span id ([`TraceParent`]). A
//! call made outside any scope sends no trace context. The deadline travels as the
//! time left, as in tarpc (immune to clock skew between hosts), so each hop's deadline
//! is its caller's plus the one-way transit time. Per-call metadata for outgoing
//! calls, without changing a client handle, is set with [`attach`].

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::protocol::Metadata;
use crate::protocol::ServiceKey;

pub(crate) use crate::protocol::trace::random as random_id;
pub use crate::protocol::trace::{TraceParent, TRACEPARENT};

tokio::task_local! {
    static CURRENT: CallContext;
    static OUTGOING: Metadata;
}

/// The context of the call the current task serves; cheap to clone (one `Arc`).
///
/// Obtained with [`current`] inside a handler, or from [`crate::filter::ServerCall`]
/// once the call reached its handler.
#[derive(Clone)]
pub struct CallContext(Arc<Inner>);

struct Inner {
    request_id: u64,
    peer: SocketAddr,
    service: Arc<ServiceKey>,
    method: &'static str,
    metadata: Metadata,
    deadline: Option<Instant>,
    trace: Option<TraceParent>,
    cancelled: AtomicBool,
    cancel: Notify,
}

/// What the server knows of a call when its handler starts.
pub(crate) struct CallFacts {
    pub(crate) request_id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) service: Arc<ServiceKey>,
    pub(crate) method: &'static str,
    pub(crate) metadata: Metadata,
    pub(crate) deadline: Option<Instant>,
}

/// The trace context a caller sent: its `traceparent`, when well formed (parsed as the
/// request was decoded; a malformed one is logged at debug and ignored).
pub(crate) fn incoming_trace(metadata: &Metadata, peer: SocketAddr) -> Option<TraceParent> {
    let parsed = metadata.trace();
    if parsed.is_none() {
        if let Some(value) = metadata.get(TRACEPARENT) {
            tracing::debug!(%peer, value, "ignoring a malformed traceparent");
        }
    }
    parsed
}

/// The context of the call the current task serves, or `None` outside a handler (or
/// in a task spawned from one without [`CallContext::scope`]).
///
/// ```
/// assert!(erpc_core::context::current().is_none());
/// ```
pub fn current() -> Option<CallContext> {
    CURRENT.try_with(CallContext::clone).ok()
}

/// Runs `future` with `metadata` added to every erpc call it makes (and to those of
/// nested `attach` scopes, whose pairs win): per-call metadata without changing or
/// cloning a client handle. Client filters see these pairs in
/// [`crate::filter::ClientCall::metadata`].
///
/// ```no_run
/// # async fn run(client: erpc_core::Client, key: erpc_core::ServiceKey) -> Result<(), erpc_core::Error> {
/// use erpc_core::{context, Metadata};
///
/// let mut metadata = Metadata::new();
/// metadata.insert("tenant", "blue");
/// let sum: i64 = context::attach(metadata, client.call(&key, "add", &(1, 2), &Default::default())).await?;
/// # let _ = sum; Ok(()) }
/// ```
pub async fn attach<F: Future>(metadata: Metadata, future: F) -> F::Output {
    let merged = OUTGOING
        .try_with(|outer| {
            let mut merged = outer.clone();
            for (k, v) in metadata.iter() {
                merged.insert(k, v);
            }
            merged
        })
        .unwrap_or(metadata);
    OUTGOING.scope(merged, future).await
}

impl CallContext {
    pub(crate) fn new(facts: CallFacts) -> Self {
        let trace = incoming_trace(&facts.metadata, facts.peer);
        Self(Arc::new(Inner {
            request_id: facts.request_id,
            peer: facts.peer,
            service: facts.service,
            method: facts.method,
            metadata: facts.metadata,
            deadline: facts.deadline,
            trace,
            cancelled: AtomicBool::new(false),
            cancel: Notify::new(),
        }))
    }

    /// The request id (unique per connection while the call runs).
    pub fn request_id(&self) -> u64 {
        self.0.request_id
    }

    /// The caller's address.
    pub fn peer(&self) -> SocketAddr {
        self.0.peer
    }

    /// The service key the call was sent to.
    pub fn service(&self) -> &ServiceKey {
        &self.0.service
    }

    /// The method name.
    pub fn method(&self) -> &str {
        self.0.method
    }

    /// Metadata sent by the caller (Dubbo's attachments), as server filters left it.
    pub fn metadata(&self) -> &Metadata {
        &self.0.metadata
    }

    /// When the caller stops waiting, measured from the request's arrival; `None` when
    /// it sent no deadline.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.0.deadline.map(Instant::into_std)
    }

    /// Time left before [`CallContext::deadline`] (zero once it passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The caller's trace context, when it sent a well-formed `traceparent`.
    pub fn trace(&self) -> Option<&TraceParent> {
        self.0.trace.as_ref()
    }

    /// True once nobody waits for this call's answer: the caller cancelled it, its
    /// deadline passed on the provider, or the connection closed.
    ///
    /// The server drops (aborts) the handler's own future at that moment, so the
    /// handler never sees `true` itself; this is for work it handed off with
    /// [`CallContext::scope`] and `tokio::spawn`, which outlives it.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Completes when [`CallContext::is_cancelled`] becomes true; never completes for a
    /// call that ends with an answer.
    pub async fn cancelled(&self) {
        let notified = self.0.cancel.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        notified.await;
    }

    pub(crate) fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        self.0.cancel.notify_waiters();
    }

    /// Runs `future` inside this context, e.g. work spawned by a handler:
    /// `tokio::spawn(ctx.scope(work))`, so [`current`] and propagation work there too.
    pub fn scope<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, future)
    }
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("request_id", &self.0.request_id)
            .field("peer", &self.0.peer)
            .field("service", &self.0.service)
            .field("method", &self.0.method)
            .field("metadata", &self.0.metadata)
            .field("deadline", &self.0.deadline)
            .field("trace", &self.0.trace)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Applies the scope of the current task to an outgoing call: the incoming call's
/// remaining deadline caps `timeout`, its trace continues with a new span id, and
/// [`attach`]ed pairs join the metadata. Outside any scope nothing changes (and nothing
/// is allocated).
pub(crate) fn outgoing(timeout: &mut Duration, metadata: &mut Cow<'_, Metadata>) {
    let _ = CURRENT.try_with(|ctx| {
        if let Some(left) = ctx.remaining() {
            *timeout = (*timeout).min(left);
        }
        if let Some(trace) = ctx.trace() {
            metadata.to_mut().set_trace(trace.child());
        }
    });
    let _ = OUTGOING.try_with(|attached| {
        for (k, v) in attached.iter() {
            metadata.to_mut().insert(k, v);
        }
    });
}
