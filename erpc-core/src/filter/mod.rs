//! Filters: the one seam for work around every call (auth, logging, metrics, ...), on
//! each side, in the spirit of Dubbo's `Filter` chain.
//!
//! A filter is an async function of the call and the rest of the chain: it may look at
//! and change the call's metadata, refuse it with a typed error without calling
//! [`ServerNext::run`] / [`ClientNext::run`] (short-circuit), and observe the outcome and
//! the latency of what follows.
//!
//! - Server filters ([`ServerFilter`], attached with [`crate::ServerBuilder::filter`])
//!   run in the call's task after admission (routing, limits, decompression) and before
//!   the handler. A refusal is answered with its error's status; the handler never runs.
//! - Client filters ([`ClientFilter`], [`crate::ClientBuilder::filter`]) run once per
//!   logical call, around provider selection, failover and retries; a refusal sends
//!   nothing.
//!
//! Order: the first filter added is the outermost (it runs first on the way in and
//! last on the way out). Filters named in the configuration (`filters = [..]` in
//! `[server]` / `[client]`, see [`server_filter`] and [`client_filter`]) come before
//! those attached in code, in the order listed.
//!
//! # Why a small trait and not tower
//!
//! tower's `Layer`/`Service` is the ecosystem's convention (tonic, volo), but a call's
//! metadata would have to travel inside the request value, every layer is a generic
//! type (a stack configured from a file needs `BoxService`, one allocation per call
//! per layer plus a `poll_ready` dance that erpc's own admission already does), and a
//! user writes a `Service` impl with an associated future for what is one `async fn`
//! here. The trait object chain costs one boxed future per filter per call, and no
//! filter costs nothing: the server and the client check for an empty chain and take
//! the same path as before filters existed. A filter that acts on some calls only
//! says which in [`ServerFilter::wraps`] / [`ClientFilter::wraps`] (a plain method,
//! asked when the call reaches it): the calls it does not wrap pass it by without a
//! future, and a call no filter wraps takes the path of a client or server without
//! filters.
//!
//! Measured with `cargo bench -p erpc-core --bench filters` (`benches/filters.rs`):
//! ns per server call, pass-through filters that look at the outcome, around a handler
//! that answers at once, context built in every row; best of 7 rounds of 200 000
//! calls, four runs on the shared 2-core build machine (release):
//!
//! | filters | `ServerFilter` chain | tower `BoxCloneService` stack |
//! |---|---:|---:|
//! | 0 | 125–138 (direct path) | 143–234 |
//! | 1 | 126–195 | 202–289 |
//! | 3 | 161–222 | 375–494 |
//!
//! A filter costs about 10–30 ns (one boxed future); a tower layer about 50–90 ns
//! (a boxed future plus a clone of the boxed inner service per call). The same bench
//! runs the handler without a call context, as before contexts existed: 68 ns, so the
//! context itself (one allocation, a few reference counts, the task-local scope) costs
//! about 60 ns per call.

mod access_log;
mod auth;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod bench;
mod handler;
mod spans;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::context::{CallContext, TraceParent};
use crate::protocol::Metadata;
use crate::service::{Reply, ServiceKey};
use crate::Error;

pub use access_log::AccessLog;
pub use auth::{TokenAuth, AUTHORIZATION};
pub(crate) use handler::{panic_message, run_handler, HandlerParts};
pub use spans::Tracing;

/// Names of the filters [`server_filter`] and [`client_filter`] know.
pub const BUILT_IN: &[&str] = &["auth", "access_log", "tracing"];

/// Work around every call a server serves.
///
/// ```
/// use erpc_core::filter::{ServerCall, ServerFilter, ServerNext};
/// use erpc_core::{async_trait, Error, Reply};
///
/// /// Refuses calls without a `tenant` entry.
/// struct RequireTenant;
///
/// #[async_trait]
/// impl ServerFilter for RequireTenant {
///     async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
///         if call.metadata().get("tenant").is_none() {
///             return Err(Error::Unauthenticated("no tenant".into()));
///         }
///         next.run(call).await
///     }
/// }
/// ```
#[async_trait]
pub trait ServerFilter: Send + Sync + 'static {
    /// Whether this filter wraps `call`; by default every call.
    ///
    /// The chain asks each filter when the call reaches it. A filter that answers
    /// `false` is passed over for this call as if absent: its [`ServerFilter::call`]
    /// does not run and no future is made for it. A filter that acts on a share of
    /// the calls (the built-in [`Tracing`] on sampled ones) says so here, so the other
    /// calls do not pay for it. `call` runs only for calls this accepted; a filter that
    /// delegates to another asks it too.
    fn wraps(&self, call: &mut ServerCall) -> bool {
        let _ = call;
        true
    }

    /// Handles `call`: usually some work, then `next.run(call).await`, then more.
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error>;
}

/// Work around every logical call a client makes (once, whatever the retries).
///
/// The outcome is `Ok(())` when the call succeeded (the value goes to the caller);
/// returning `Ok(())` without calling `next` is an error of the filter and the caller
/// gets [`Error::Config`].
///
/// ```
/// use erpc_core::filter::{ClientCall, ClientFilter, ClientNext};
/// use erpc_core::{async_trait, Error};
///
/// /// Tags every call with the caller's name.
/// struct CallerName(&'static str);
///
/// #[async_trait]
/// impl ClientFilter for CallerName {
///     async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
///         call.metadata_mut().insert("caller", self.0);
///         next.run(call).await
///     }
/// }
/// ```
#[async_trait]
pub trait ClientFilter: Send + Sync + 'static {
    /// Whether this filter wraps `call`; by default every call.
    ///
    /// As [`ServerFilter::wraps`]: a filter that answers `false` is passed over for
    /// this call (no future is made for it). It may still prepare the call here, and
    /// the change stays whatever it answers (the built-in [`Tracing`] writes the
    /// `traceparent` that carries its sampling decision to the provider).
    fn wraps(&self, call: &mut ClientCall<'_>) -> bool {
        let _ = call;
        true
    }

    /// Handles `call`: usually some work, then `next.run(call).await`, then more.
    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error>;
}

/// The first of `filters` that wraps the call (as `wraps` says), and those after it.
pub(crate) fn first_wrapping<F: ?Sized>(
    mut filters: &[Arc<F>],
    mut wraps: impl FnMut(&F) -> bool,
) -> Option<(&Arc<F>, &[Arc<F>])> {
    while let Some((first, rest)) = filters.split_first() {
        if wraps(first) {
            return Some((first, rest));
        }
        filters = rest;
    }
    None
}

/// A call on its way to a handler, as server filters see it.
pub struct ServerCall {
    pub(crate) request_id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) service: Arc<ServiceKey>,
    pub(crate) method: &'static str,
    pub(crate) metadata: Metadata,
    pub(crate) deadline: Option<Instant>,
    /// Set when the call reaches its handler (the metadata moves into it).
    pub(crate) context: Option<CallContext>,
    /// What the handler needs; taken when it starts.
    pub(crate) handler: Option<handler::HandlerParts>,
}

impl ServerCall {
    /// The request id (unique per connection while the call runs).
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// The caller's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The service key the call was sent to.
    pub fn service(&self) -> &ServiceKey {
        &self.service
    }

    /// The method name.
    pub fn method(&self) -> &str {
        self.method
    }

    /// Metadata sent by the caller (as earlier filters left it).
    pub fn metadata(&self) -> &Metadata {
        match &self.context {
            Some(context) => context.metadata(),
            None => &self.metadata,
        }
    }

    /// Metadata to change before the call goes on; the handler sees the changes in its
    /// [`CallContext`]. Changes made after `next.run` returned are seen by no one.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The caller's trace context (its well-formed `traceparent`, parsed when the
    /// request was decoded). A malformed one is `None` here; the handler's context logs
    /// it, once per call that reaches its handler.
    pub(crate) fn incoming_trace(&self) -> Option<TraceParent> {
        self.metadata.trace()
    }

    /// When the caller stops waiting; `None` when it sent no deadline.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.map(Instant::into_std)
    }

    /// The handler's context, once the call reached its handler (after `next.run`).
    pub fn context(&self) -> Option<&CallContext> {
        self.context.as_ref()
    }
}

impl std::fmt::Debug for ServerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCall")
            .field("request_id", &self.request_id)
            .field("peer", &self.peer)
            .field("service", &self.service)
            .field("method", &self.method)
            .field("metadata", self.metadata())
            .finish_non_exhaustive()
    }
}

/// The rest of the server chain: the filters after this one, then the handler.
pub struct ServerNext<'a> {
    pub(crate) rest: &'a [Arc<dyn ServerFilter>],
}

impl ServerNext<'_> {
    /// Runs the rest of the chain on `call`.
    pub async fn run(self, call: &mut ServerCall) -> Result<Reply, Error> {
        match first_wrapping(self.rest, |filter| filter.wraps(call)) {
            Some((filter, rest)) => filter.call(call, ServerNext { rest }).await,
            None => handler::run_handler(call).await,
        }
    }
}

impl std::fmt::Debug for ServerNext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerNext")
            .field("filters_left", &self.rest.len())
            .finish()
    }
}

/// A logical call on its way out, as client filters see it.
#[derive(Debug)]
pub struct ClientCall<'a> {
    pub(crate) service: &'a ServiceKey,
    pub(crate) method: &'a str,
    pub(crate) metadata: Metadata,
    pub(crate) timeout: Duration,
    pub(crate) idempotent: bool,
    /// Set by the call once it reached a provider.
    pub(crate) peer: Option<Arc<str>>,
    /// The provider's answer, once the call succeeded.
    pub(crate) answer: Option<crate::protocol::Frame>,
}

impl ClientCall<'_> {
    /// The service key the call goes to.
    pub fn service(&self) -> &ServiceKey {
        self.service
    }

    /// The method name.
    pub fn method(&self) -> &str {
        self.method
    }

    /// Metadata to be sent: the handle's, [`crate::context::attach`]ed pairs and the
    /// propagated trace context.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Metadata to change before the call is sent.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The call's timeout (already capped by an incoming call's remaining deadline).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the call's timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Whether the call may be retried after it reached a provider.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }

    /// The provider (`host:port`) the last attempt went to, once `next.run` returned;
    /// `None` before, or when no provider was reached.
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }
}

/// The rest of the client chain: the filters after this one, then the call itself.
pub struct ClientNext<'a> {
    pub(crate) rest: &'a [Arc<dyn ClientFilter>],
    pub(crate) terminal: &'a crate::client::Dispatch<'a>,
}

impl ClientNext<'_> {
    /// Runs the rest of the chain on `call`.
    pub async fn run(self, call: &mut ClientCall<'_>) -> Result<(), Error> {
        match first_wrapping(self.rest, |filter| filter.wraps(call)) {
            Some((filter, rest)) => {
                let next = ClientNext {
                    rest,
                    terminal: self.terminal,
                };
                filter.call(call, next).await
            }
            // The dispatch's future is part of this one: the last filter's boxed
            // future holds it, and no other allocation is made for it.
            None => self.terminal.run(call).await,
        }
    }
}

impl std::fmt::Debug for ClientNext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNext")
            .field("filters_left", &self.rest.len())
            .finish()
    }
}

/// What the built-in filters take from configuration ([`server_filter`],
/// [`client_filter`]).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BuiltInSettings<'a> {
    /// The shared token of `auth` (required by it).
    pub auth_token: Option<&'a str>,
    /// The share of traces `tracing` records where they start ([`Tracing::sampled`]).
    pub trace_sample_ratio: f64,
}

impl Default for BuiltInSettings<'_> {
    /// No token; every trace recorded.
    fn default() -> Self {
        Self {
            auth_token: None,
            trace_sample_ratio: 1.0,
        }
    }
}

impl<'a> BuiltInSettings<'a> {
    /// These settings with `token` for `auth`.
    pub fn with_auth_token(mut self, token: &'a str) -> Self {
        self.auth_token = Some(token);
        self
    }

    /// These settings with `ratio` for `tracing`.
    pub fn with_trace_sample_ratio(mut self, ratio: f64) -> Self {
        self.trace_sample_ratio = ratio;
        self
    }
}

/// The built-in server filter called `name` ([`BUILT_IN`]); `auth` needs a token.
///
/// ```
/// use erpc_core::filter::{server_filter, BuiltInSettings};
/// let settings = BuiltInSettings::default();
/// assert!(server_filter("access_log", &settings).is_ok());
/// assert!(server_filter("auth", &settings).is_err()); // no token configured
/// assert!(server_filter("auth", &settings.with_auth_token("t0ken")).is_ok());
/// let Err(unknown) = server_filter("nope", &settings) else { panic!("accepted") };
/// assert!(unknown.to_string().contains("access_log"));
/// ```
pub fn server_filter(
    name: &str,
    settings: &BuiltInSettings<'_>,
) -> Result<Arc<dyn ServerFilter>, Error> {
    match name {
        "auth" => Ok(Arc::new(TokenAuth::new(required_token(
            settings.auth_token,
            "server",
        )?))),
        "access_log" => Ok(Arc::new(AccessLog)),
        "tracing" => Ok(Arc::new(Tracing::sampled(settings.trace_sample_ratio))),
        other => Err(unknown(other)),
    }
}

/// The built-in client filter called `name` ([`BUILT_IN`]); `auth` needs a token.
pub fn client_filter(
    name: &str,
    settings: &BuiltInSettings<'_>,
) -> Result<Arc<dyn ClientFilter>, Error> {
    match name {
        "auth" => Ok(Arc::new(TokenAuth::new(required_token(
            settings.auth_token,
            "client",
        )?))),
        "access_log" => Ok(Arc::new(AccessLog)),
        "tracing" => Ok(Arc::new(Tracing::sampled(settings.trace_sample_ratio))),
        other => Err(unknown(other)),
    }
}

fn required_token<'t>(token: Option<&'t str>, side: &str) -> Result<&'t str, Error> {
    token.filter(|t| !t.is_empty()).ok_or_else(|| {
        Error::Config(format!(
            "filter `auth` needs a token: `auth_token` in [{side}] of erpc.toml or ERPC_{}_AUTH_TOKEN",
            side.to_ascii_uppercase()
        ))
    })
}

fn unknown(name: &str) -> Error {
    Error::Config(format!(
        "unknown filter `{name}`; built-in filters are: {}",
        BUILT_IN.join(", ")
    ))
}

/// A short name for a call's outcome, for logs: `ok` or the error's kind.
pub(crate) fn outcome_name<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use super::*;
    use crate::context::TRACEPARENT;

    fn call_with(traceparent: &str) -> ServerCall {
        let mut metadata = Metadata::new();
        metadata.insert(TRACEPARENT, traceparent);
        ServerCall {
            request_id: 1,
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
            service: Arc::new(ServiceKey::new("S", "", "1.0")),
            method: "m",
            metadata,
            deadline: None,
            context: None,
            handler: None,
        }
    }

    #[test]
    fn the_incoming_trace_is_what_the_metadata_holds_now() {
        let sent = TraceParent::random();
        let mut call = call_with(&sent.to_string());
        assert_eq!(call.incoming_trace(), Some(sent));
        // A filter replaces it with a malformed value: seen as no trace at all, by the
        // filters after it and by the handler's context.
        call.metadata_mut().insert(TRACEPARENT, "00-garbage");
        assert_eq!(call.incoming_trace(), None);
        assert_eq!(CallContext::new(call.take_facts()).trace(), None);
        // And a valid one set by a filter is the handler's trace.
        let mut call = call_with("00-garbage");
        let replaced = TraceParent::random();
        call.metadata_mut()
            .insert(TRACEPARENT, replaced.to_string());
        assert_eq!(CallContext::new(call.take_facts()).trace(), Some(&replaced));
    }
}
