//! The consumer side: find providers, pick one, send the call, wait with a deadline.
//!
//! A call's path: generated stub → [`Client::call`] (encode once, deadline) → directory
//! (the service's route: provider list, endpoints and balancer state, rebuilt when the
//! registry changes the list) → cluster mode (failover, forking, ...) → the route's
//! picker over the endpoints that are neither ejected nor going away → endpoint
//! (in-flight cap, breaker, one multiplexed connection) → connection → frame codec →
//! socket.

mod blocking;
mod breaker;
mod budget;
mod directory;
mod pool;
mod route;
mod stub;

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use serde::{de::DeserializeOwned, Serialize};
use smallvec::SmallVec;
use tokio::time::Instant;

pub use crate::policy::ClusterMode;
pub use blocking::BlockingClient;
pub use breaker::BreakerPolicy;
pub use budget::RetryBudgetPolicy;
pub use stub::ServiceClient;

use crate::admin::{self, CallMetrics, MethodObserver, Side};
use crate::balance::{Candidates, LoadBalancer, PickContext};
use crate::compress::CompressionPolicy;
use crate::config::{millis, ClientConfig, Layered, Secret};
use crate::filter::{ClientCall, ClientFilter, ClientNext};
use crate::message::{check_status, decode_payload, ArgsWriter, EncodedRequest, OutboundRequest};
use crate::protocol::Frame;
use crate::protocol::Metadata;
use crate::registry::{Registry, StaticRegistry};
use crate::serialize::Serialization;
use crate::service::ServiceKey;
use crate::transport::{ClientTls, Connection, ConnectionSettings};
use crate::{Error, FrameDirection};
use budget::RetryBudget;
use directory::{Directory, SubscriptionSlot};
use pool::{Backoff, Endpoint, EndpointSettings, Pool};
use route::{Route, Tier, View};

/// Per-call settings; the generated stubs keep one per client handle.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Overrides the client's timeout.
    pub timeout: Option<Duration>,
    /// Sent with the request.
    pub metadata: Metadata,
    /// The caller asserts the call is safe to run more than once (retries and forking).
    pub idempotent: bool,
    /// Key for sticky balancers (consistent hash).
    pub hash_key: Option<u64>,
    /// Overrides the client's balancer.
    pub balancer: Option<Arc<dyn LoadBalancer>>,
    /// Overrides the client's cluster mode.
    pub cluster: Option<ClusterMode>,
}

/// A handle to erpc's consumer runtime; clone it freely (all clones share connections).
///
/// ```no_run
/// # async fn run() -> Result<(), erpc_core::Error> {
/// use erpc_core::{registry::StaticRegistry, Client, ServiceKey};
///
/// let client = Client::builder()
///     .registry(StaticRegistry::new(["127.0.0.1:9000"]))
///     .build()?;
/// let key = ServiceKey::new("demo_api::Calculator", "", "1.0");
/// let sum: i64 = client.call(&key, "add", &(1i64, 2i64), &Default::default()).await?;
/// # let _ = sum; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    serialization: Serialization,
    compression: CompressionPolicy,
    cluster: ClusterMode,
    directory: Directory,
    pool: Arc<Pool>,
    balancer: Arc<dyn LoadBalancer>,
    budget: RetryBudget,
    metrics: Option<CallMetrics>,
    /// The admin listener, stopped when the last handle goes.
    admin: Option<admin::Running>,
    /// Filters around every call, outermost first (none: calls are sent directly).
    filters: Box<[Arc<dyn ClientFilter>]>,
}

impl Inner {
    /// Drops endpoints no subscribed service lists any more.
    fn prune(&self) {
        self.pool.retain(|addr| self.directory.lists(addr));
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("serialization", &self.inner.serialization)
            .field("cluster", &self.inner.cluster)
            .field("balancer", &self.inner.balancer)
            .finish_non_exhaustive()
    }
}

/// What a logical call is sent as, besides its request.
/// What a calling handle keeps per method and per service for its calls (nothing when
/// called by key through [`Client::call`]).
#[derive(Default, Clone, Copy)]
pub(crate) struct CallSlots<'a> {
    /// The method's metric handles, resolved on first use.
    pub(crate) observer: Option<&'a OnceLock<MethodObserver>>,
    /// The service's subscription, kept on first use.
    pub(crate) subscription: Option<&'a SubscriptionSlot>,
    /// The request head's names (service key and method) as written on the wire,
    /// encoded once for the handle.
    pub(crate) names: Option<&'a [u8]>,
}

struct Sent<'a> {
    key: &'a ServiceKey,
    /// The calling handle's subscription slot, if it keeps one.
    subscription: Option<&'a SubscriptionSlot>,
    method: &'a str,
    /// The head's names already encoded, if the calling handle keeps them.
    names: Option<&'a [u8]>,
    options: &'a CallOptions,
    hash_key: Option<u64>,
    cluster: ClusterMode,
}

/// The end of the client filter chain: builds the request with the metadata and
/// timeout the filters left, dispatches it and keeps the answer for the caller.
pub(crate) struct Dispatch<'a> {
    client: &'a Client,
    sent: Sent<'a>,
    /// Serializes the arguments straight into the request frame, once the filters
    /// have settled the metadata and timeout that precede them.
    write_args: &'a ArgsWriter<'a>,
    /// The provider of the last attempt, for [`ClientCall::peer`].
    peer: parking_lot::Mutex<Option<Arc<str>>>,
}

impl Dispatch<'_> {
    /// Sends the call; its answer goes to `call.answer`.
    pub(crate) async fn run(&self, call: &mut ClientCall<'_>) -> Result<(), Error> {
        let request = self
            .client
            .outbound(&self.sent, call.timeout, &call.metadata)
            .encode_with(self.write_args)?;
        let frame = self
            .client
            .dispatch(&self.sent, &request, call.timeout, Some(&self.peer))
            .await;
        call.peer = self.peer.lock().take();
        call.answer = Some(frame?);
        Ok(())
    }
}

/// One call in progress: what it goes to and until when.
struct Call<'a> {
    key: &'a ServiceKey,
    subscription: Option<&'a SubscriptionSlot>,
    method: &'a str,
    request: &'a EncodedRequest,
    options: &'a CallOptions,
    idempotent: bool,
    hash_key: Option<u64>,
    /// When the call was dispatched: the clock reading its first attempts share.
    began: Instant,
    deadline: Instant,
    timeout: Duration,
    /// Where to note each attempt's provider (only when client filters run).
    peer: Option<&'a parking_lot::Mutex<Option<Arc<str>>>>,
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The client's call metrics, when on.
    pub fn metrics(&self) -> Option<&CallMetrics> {
        self.inner.metrics.as_ref()
    }

    /// The admin listener's bound address, when one was configured.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.admin.as_ref().map(admin::Running::addr)
    }

    /// Calls `method` of service `key` with the argument tuple `args`.
    ///
    /// The call is encoded once and bounded by one deadline. Under the cluster mode it
    /// may be sent to several providers, but only when that cannot run it twice (see
    /// [`ClusterMode`]). On timeout the provider is told to cancel the handler.
    pub async fn call<A, R>(
        &self,
        key: &ServiceKey,
        method: &str,
        args: &A,
        options: &CallOptions,
    ) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        self.invoke(key, method, args, options, None, CallSlots::default())
            .await
    }

    /// [`Client::call`] with a per-call hash key overriding the options' one; observed
    /// as one call when metrics are on, through the method's handles in `observer`
    /// (resolved on first use and kept by the caller) when given.
    pub(crate) async fn invoke<A, R>(
        &self,
        key: &ServiceKey,
        method: &str,
        args: &A,
        options: &CallOptions,
        hash_key: Option<u64>,
        slots: CallSlots<'_>,
    ) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        let Some(metrics) = &self.inner.metrics else {
            return self
                .invoke_unobserved(key, method, args, options, hash_key, slots)
                .await;
        };
        let observed = match slots.observer {
            Some(slot) => slot
                .get_or_init(|| metrics.method(Side::Consumer, key, method))
                .begin(),
            None => metrics.begin(Side::Consumer, key, method),
        };
        let result = self
            .invoke_unobserved(key, method, args, options, hash_key, slots)
            .await;
        observed.finish(result.as_ref().map(|_| ()).map_err(Error::kind));
        result
    }

    async fn invoke_unobserved<A, R>(
        &self,
        key: &ServiceKey,
        method: &str,
        args: &A,
        options: &CallOptions,
        hash_key: Option<u64>,
        slots: CallSlots<'_>,
    ) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        let mut timeout = options
            .timeout
            .unwrap_or_else(|| self.inner.config.timeout());
        // Inside a handler: its deadline and trace; attached pairs. Borrowed otherwise.
        let mut metadata = Cow::Borrowed(&options.metadata);
        crate::context::outgoing(&mut timeout, &mut metadata);
        let cluster = options.cluster.unwrap_or(self.inner.cluster);
        let sent = Sent {
            key,
            subscription: slots.subscription,
            method,
            names: slots.names,
            options,
            hash_key,
            cluster,
        };
        let result = if self.inner.filters.is_empty() {
            let request = self.outbound(&sent, timeout, &metadata).encode(args)?;
            self.dispatch(&sent, &request, timeout, None).await
        } else {
            let serialization = self.inner.serialization;
            let write_args = |buf: &mut bytes::BytesMut| serialization.encode(args, buf);
            self.filtered(sent, &write_args, timeout, metadata).await
        };
        let max_len = self.inner.config.max_frame_bytes as usize;
        let value = result.and_then(|frame| decode_payload(&frame, max_len));
        match (value, cluster) {
            // A request that cannot be encoded is the caller's error, even under failsafe.
            (Err(e), ClusterMode::Failsafe) if !is_unsendable(&e) => failsafe_value(e, key, method),
            (value, _) => value,
        }
    }

    /// Runs the client filters around the dispatch; the request (arguments written by
    /// `write_args`) is built after the filters changed the metadata and timeout.
    async fn filtered(
        &self,
        sent: Sent<'_>,
        write_args: &ArgsWriter<'_>,
        timeout: Duration,
        metadata: Cow<'_, Metadata>,
    ) -> Result<Frame, Error> {
        let (key, method) = (sent.key, sent.method);
        let mut call = ClientCall {
            service: key,
            method,
            metadata: metadata.into_owned(),
            timeout,
            idempotent: sent.options.idempotent,
            peer: None,
            answer: None,
        };
        let Some((filter, rest)) =
            crate::filter::first_wrapping(&self.inner.filters, |filter| filter.wraps(&mut call))
        else {
            // No filter wraps this call: it goes as without filters, with what their
            // `wraps` prepared.
            let request = self
                .outbound(&sent, call.timeout, &call.metadata)
                .encode_with(write_args)?;
            return self.dispatch(&sent, &request, call.timeout, None).await;
        };
        let terminal = Dispatch {
            client: self,
            sent,
            write_args,
            peer: parking_lot::Mutex::new(None),
        };
        let next = ClientNext {
            rest,
            terminal: &terminal,
        };
        filter.call(&mut call, next).await?;
        call.answer.ok_or_else(|| {
            Error::Config(format!(
                "a client filter ended {key}.{method} with Ok without running the call \
                 (a filter may refuse a call only with an error)"
            ))
        })
    }

    fn outbound<'a>(
        &self,
        sent: &Sent<'a>,
        timeout: Duration,
        metadata: &'a Metadata,
    ) -> OutboundRequest<'a> {
        OutboundRequest {
            key: sent.key,
            method: sent.method,
            names: sent.names,
            timeout,
            metadata,
            serialization: self.inner.serialization,
            compression: self.inner.compression,
            max_frame: self.inner.config.max_frame_bytes,
        }
    }

    /// Sends an encoded request under the call's cluster mode; the answer's status is
    /// checked, its payload not yet decoded.
    async fn dispatch(
        &self,
        sent: &Sent<'_>,
        request: &EncodedRequest,
        timeout: Duration,
        peer: Option<&parking_lot::Mutex<Option<Arc<str>>>>,
    ) -> Result<Frame, Error> {
        let (key, method, options) = (sent.key, sent.method, sent.options);
        let began = Instant::now();
        let call = Call {
            key,
            subscription: sent.subscription,
            method,
            request,
            options,
            idempotent: options.idempotent,
            hash_key: sent.hash_key.or(options.hash_key),
            began,
            deadline: began + timeout,
            timeout,
            peer,
        };
        self.inner.budget.deposit();
        match sent.cluster {
            ClusterMode::Failover => self.failover(&call, self.inner.config.retries).await,
            ClusterMode::Failfast | ClusterMode::Failsafe => self.failover(&call, 0).await,
            ClusterMode::Forking(_) if !call.idempotent => Err(Error::Config(format!(
                "forking refused for {key}.{method}: it sends a call to several providers \
                 at once, so it may run more than once; use it only for idempotent methods \
                 (`#[erpc(idempotent)]` or `.with_idempotent(true)`)"
            ))),
            ClusterMode::Forking(n) => self.forking(&call, n).await,
        }
    }

    /// Tries providers one after another while the failure allows another attempt.
    async fn failover(&self, call: &Call<'_>, retries: u32) -> Result<Frame, Error> {
        let route = self.route(call).await?;
        let mut tried: SmallVec<[usize; 4]> = SmallVec::new();
        let mut last_error = None;
        for attempt in 0..=retries {
            let Some((i, tier)) = self.pick(&route, &tried, call)? else {
                break;
            };
            if attempt > 0 && !self.inner.budget.withdraw() {
                tracing::debug!(service = %call.key, "retry budget spent; not retrying");
                break;
            }
            if let Some(metrics) = self.inner.metrics.as_ref().filter(|_| attempt > 0) {
                metrics.retry(call.key, call.method);
            }
            match self
                .attempt(&route.endpoints[i], tier, call, attempt == 0)
                .await
            {
                Err(e) if may_retry(&e, call.idempotent) && Instant::now() < call.deadline => {
                    tracing::debug!(addr = %route.providers[i].addr, error = %e, "attempt failed; trying another provider");
                    tried.push(i);
                    last_error = Some(e);
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NoProvider {
            service: call.key.to_string(),
        }))
    }

    /// Sends to up to `n` providers at once; the first success wins, the rest are
    /// cancelled. Every copy after the first is paid from the retry budget.
    async fn forking(&self, call: &Call<'_>, n: usize) -> Result<Frame, Error> {
        let route = self.route(call).await?;
        let mut chosen: SmallVec<[usize; 4]> = SmallVec::new();
        let mut attempts = FuturesUnordered::new();
        for copy in 0..n.max(1) {
            let Some((i, tier)) = self.pick(&route, &chosen, call)? else {
                break;
            };
            if copy > 0 && !self.inner.budget.withdraw() {
                tracing::debug!(service = %call.key, "retry budget spent; forking fewer copies");
                break;
            }
            if let Some(metrics) = self.inner.metrics.as_ref().filter(|_| copy > 0) {
                metrics.retry(call.key, call.method);
            }
            chosen.push(i);
            let endpoint = &route.endpoints[i];
            attempts.push(async move { self.attempt(endpoint, tier, call, true).await });
        }
        let mut last_error = None;
        while let Some(result) = attempts.next().await {
            match result {
                Ok(value) => return Ok(value),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NoProvider {
            service: call.key.to_string(),
        }))
    }

    async fn route(&self, call: &Call<'_>) -> Result<Arc<Route>, Error> {
        // A subscribed service answers at once: no timer, and no directory future in
        // the call's (boxed below: only a service's first calls wait for its list).
        let directory = &self.inner.directory;
        let cached = match call.subscription {
            Some(slot) => directory.cached_in(call.key, slot),
            None => directory.cached(call.key),
        };
        if let Some(route) = cached {
            return Ok(route);
        }
        let lookup = self.inner.directory.route(call.key);
        match Box::pin(tokio::time::timeout_at(call.deadline, lookup)).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error(call)),
        }
    }

    /// One attempt on one provider, bounded by the call's deadline.
    async fn attempt(
        &self,
        endpoint: &Endpoint,
        tier: Tier,
        call: &Call<'_>,
        first: bool,
    ) -> Result<Frame, Error> {
        // Waiting for an in-flight slot or a connection says nothing about the
        // provider's health (a failed connect is recorded by the endpoint itself).
        // The waits are boxed: most attempts need neither, and a connect future inline
        // would make every call's future (moved on each await) several times larger.
        let mut waited = false;
        let _slot = match endpoint.try_acquire() {
            Some(slot) => slot,
            None => {
                waited = true;
                Box::pin(within(call, endpoint.acquire())).await?
            }
        };
        let connection = match endpoint.usable() {
            Some(connection) => connection,
            None => {
                waited = true;
                let settings = &self.inner.pool.settings;
                Box::pin(within(call, endpoint.connection(settings, call.deadline))).await?
            }
        };
        if let Some(peer) = call.peer {
            *peer.lock() = Some(connection.shared_addr());
        }
        // In panic mode every provider is ejected and the call goes through anyway.
        if !endpoint.begin() && tier != Tier::Panic {
            return Err(Error::CircuitOpen {
                service: call.key.to_string(),
            });
        }
        // A first attempt that found its slot and connection at once starts when the
        // call began (one clock reading less per call); any other reads the clock.
        let (started, timeout) = match first && !waited {
            true => (call.began, call.timeout),
            false => {
                let now = Instant::now();
                (now, call.deadline.saturating_duration_since(now))
            }
        };
        let mut verdict = Verdict {
            endpoint,
            started,
            timeout,
            done: false,
        };
        // The connection keeps the deadline (one timer per connection, not per call).
        let result = self.exchange(&connection, call).await;
        verdict.finish(&result);
        result
    }

    async fn exchange(&self, connection: &Connection, call: &Call<'_>) -> Result<Frame, Error> {
        let frame = connection
            .call(call.request, call.deadline)
            .await
            .map_err(|e| match e {
                Error::Timeout { .. } => timeout_error(call),
                other => other,
            })?;
        check_status(&frame, call.key, call.method, connection.addr())
            .map(|()| frame)
            .map_err(|e| match e {
                // The provider's copy of the deadline ran out first (it can win the race
                // with the caller's timer): the same timeout, so the same error.
                Error::Remote {
                    status: crate::protocol::Status::DeadlineExceeded,
                    ..
                } => timeout_error(call),
                other => other,
            })
    }

    /// Chooses a provider of `route` not in `tried`: one that is admitted and not
    /// avoided (goaway, reconnect backoff) if the picker finds any, else one that is
    /// admitted, else — every untried provider being ejected — any untried one.
    /// `None` when every provider was tried.
    fn pick(
        &self,
        route: &Route,
        tried: &[usize],
        call: &Call<'_>,
    ) -> Result<Option<(usize, Tier)>, Error> {
        let picker = route.picker(call.options.balancer.as_ref());
        let ctx = PickContext {
            method: call.method,
            hash_key: call.hash_key,
        };
        // The first picks of a call use its start; a retry's reads the clock.
        let now = match tried.is_empty() {
            true => call.began,
            false => Instant::now(),
        };
        for tier in Tier::ALL {
            let view = View {
                route,
                tried,
                tier,
                now,
            };
            let candidates = Candidates::live(&view);
            match picker.pick(&candidates, &ctx) {
                // Eligibility is not checked again: it may have changed since the
                // picker looked (another call's connect failed, a breaker tripped).
                Some(i) if i < candidates.len() && !tried.contains(&i) => {
                    route.count_pick(i);
                    return Ok(Some((i, tier)));
                }
                Some(i) => {
                    let balancer: &dyn std::fmt::Debug = match &call.options.balancer {
                        Some(b) => b,
                        None => &self.inner.balancer,
                    };
                    return Err(Error::Config(format!(
                        "load balancer {balancer:?} picked index {i} for {}, which has {} \
                         providers{} (a picker must return an index for which \
                         `Candidates::is_eligible` holds)",
                        call.key,
                        candidates.len(),
                        if i < candidates.len() {
                            " and this call already tried that one"
                        } else {
                            ""
                        }
                    )));
                }
                None => {}
            }
        }
        Ok(None)
    }
}

/// Records an attempt's outcome in its endpoint's breaker and latency estimate; an
/// attempt dropped before finishing (cancelled, or lost a forking race) records nothing.
struct Verdict<'a> {
    endpoint: &'a Endpoint,
    started: Instant,
    /// The time the caller left this attempt.
    timeout: Duration,
    done: bool,
}

impl Verdict<'_> {
    fn record(&self, success: bool) {
        let now = Instant::now();
        self.endpoint.record(success, now - self.started, now);
    }

    fn finish<R>(&mut self, result: &Result<R, Error>) {
        self.done = true;
        match result {
            // Refusals say nothing about the provider's health.
            // Nor do refused credentials: every provider would refuse them.
            Err(Error::Overloaded(_) | Error::GoingAway { .. } | Error::Unauthenticated(_)) => {
                self.endpoint.abandon()
            }
            // Nor does running out of a timeout the caller chose tighter than what the
            // provider has been taking.
            Err(Error::Timeout { .. }) if !self.timeout_was_generous() => self.endpoint.abandon(),
            Err(e) if counts_against_provider(e) => self.record(false),
            _ => self.record(true),
        }
    }

    /// A timeout shows the provider unhealthy only when the caller allowed at least
    /// [`GENEROUS_TIMEOUT`] and twice the provider's observed (peak-EWMA) latency.
    fn timeout_was_generous(&self) -> bool {
        let observed = self.endpoint.latency().unwrap_or_default();
        self.timeout >= GENEROUS_TIMEOUT.max(observed.saturating_mul(2))
    }
}

impl Drop for Verdict<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.endpoint.abandon();
        }
    }
}

/// The shortest caller timeout whose expiry counts against a provider.
const GENEROUS_TIMEOUT: Duration = Duration::from_millis(100);

/// Failures that say the provider (or the path to it) is unhealthy (timeouts only
/// when the caller's timeout was generous, see `Verdict::timeout_was_generous`).
fn counts_against_provider(error: &Error) -> bool {
    matches!(
        error,
        Error::Connect { .. }
            | Error::ConnectionLost { .. }
            | Error::Timeout { .. }
            | Error::HandlerPanicked(_)
            | Error::Protocol(_)
    )
}

/// Whether a failed attempt may be sent to another provider.
fn may_retry(error: &Error, idempotent: bool) -> bool {
    error.never_reached_provider()
        || (idempotent
            && matches!(
                error,
                Error::ConnectionLost { .. } | Error::HandlerPanicked(_) | Error::Remote { .. }
            ))
}

/// Runs `step` until the call's deadline; past it the call has timed out.
///
/// A combinator rather than an `async fn`: an `async fn` would keep `step` twice in its
/// state (as its argument and inside the timeout), and call futures are moved whole.
fn within<'c, T>(
    call: &'c Call<'_>,
    step: impl std::future::Future<Output = Result<T, Error>> + 'c,
) -> impl std::future::Future<Output = Result<T, Error>> + 'c {
    tokio::time::timeout_at(call.deadline, step)
        .map(move |finished| finished.unwrap_or_else(|_| Err(timeout_error(call))))
}

fn timeout_error(call: &Call<'_>) -> Error {
    Error::Timeout {
        service: call.key.to_string(),
        method: call.method.to_string(),
        after: call.timeout,
    }
}

/// Whether `error` says the request could not be built (its arguments do not encode, or
/// it is over the frame limit): the caller's mistake, which failsafe does not hide.
fn is_unsendable(error: &Error) -> bool {
    matches!(
        error,
        Error::Encode(_)
            | Error::FrameTooLarge {
                direction: FrameDirection::Request,
                ..
            }
    )
}

/// Failsafe's answer: `()` or `None` where the return type allows it, else the error.
fn failsafe_value<R: DeserializeOwned>(
    error: Error,
    key: &ServiceKey,
    method: &str,
) -> Result<R, Error> {
    let unit: serde::de::value::UnitDeserializer<serde::de::value::Error> =
        serde::de::value::UnitDeserializer::new();
    match R::deserialize(unit) {
        Ok(value) => {
            tracing::warn!(service = %key, method, error = %error, "failsafe: call failed; returning an empty value");
            Ok(value)
        }
        Err(_) => Err(error),
    }
}

/// Builds a [`Client`].
///
/// Settings start from [`crate::Config::load`] (defaults, `erpc.toml`, `ERPC_*`
/// variables, including the `registry` URL), or from the config given to
/// [`ClientBuilder::config`]; every other builder call wins over them, whatever the
/// order of the calls.
#[derive(Default)]
#[must_use = "a client builder does nothing until `.build()`"]
pub struct ClientBuilder {
    settings: Layered<ClientConfig>,
    registry: Option<Arc<dyn Registry>>,
    balancer: Option<Arc<dyn LoadBalancer>>,
    tls: ClientTls,
    retry_budget: Option<RetryBudgetPolicy>,
    filters: Vec<Arc<dyn ClientFilter>>,
}

impl ClientBuilder {
    /// Starts from `config` instead of the file and environment; the builder's own
    /// calls still win over it.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.settings.set_base(config);
        self
    }

    fn edit(mut self, edit: impl FnOnce(&mut ClientConfig) + Send + 'static) -> Self {
        self.settings.edit(edit);
        self
    }

    /// Where providers are found: any [`Registry`], or a shared `Arc<dyn Registry>`
    /// such as [`crate::registry::from_url`] returns.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Shorthand: a client for fixed provider addresses.
    pub fn direct<I, S>(self, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registry(StaticRegistry::new(addrs))
    }

    /// Default per-call timeout.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.edit(move |c| c.timeout_ms = millis(timeout))
    }

    /// Timeout for opening a connection to a provider.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.edit(move |c| c.connect_timeout_ms = millis(timeout))
    }

    /// Serializer for requests.
    pub fn serialization(self, serialization: Serialization) -> Self {
        self.edit(move |c| c.serialization = serialization)
    }

    /// Compression for requests at or above `policy.threshold` bytes.
    pub fn compression(self, policy: CompressionPolicy) -> Self {
        self.edit(move |c| {
            c.compression = policy.algorithm;
            c.compression_threshold = policy.threshold;
        })
    }

    /// Idle time before a ping, and the time a ping may go unanswered.
    pub fn heartbeat(self, interval: Duration, timeout: Duration) -> Self {
        self.edit(move |c| {
            c.heartbeat_interval_ms = millis(interval);
            c.heartbeat_timeout_ms = millis(timeout);
        })
    }

    /// Largest response body accepted.
    pub fn max_frame_bytes(self, limit: u32) -> Self {
        self.edit(move |c| c.max_frame_bytes = limit)
    }

    /// First and longest delay between reconnect attempts to a provider that refused.
    pub fn reconnect_backoff(self, initial: Duration, max: Duration) -> Self {
        self.edit(move |c| {
            c.reconnect_backoff_ms = millis(initial);
            c.reconnect_backoff_max_ms = millis(max);
        })
    }

    /// Extra attempts on other providers.
    pub fn retries(self, retries: u32) -> Self {
        self.edit(move |c| c.retries = retries)
    }

    /// Retries allowed as a share of calls (the retry budget).
    pub fn retry_budget_ratio(self, ratio: f64) -> Self {
        self.edit(move |c| c.retry_budget_ratio = ratio)
    }

    /// The circuit breaker's policy (every field).
    pub fn breaker(self, policy: BreakerPolicy) -> Self {
        self.edit(move |c| c.set_breaker_policy(policy))
    }

    /// The cluster mode (default failover).
    pub fn cluster(self, mode: ClusterMode) -> Self {
        self.edit(move |c| c.cluster = mode)
    }

    /// Adds a filter around every call (see [`crate::filter`]): the first added is the
    /// outermost; filters named in the configuration's `filters` come before these.
    pub fn filter(mut self, filter: impl ClientFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// The load balancer (default: see [`crate::balance`]).
    pub fn balancer(mut self, balancer: impl LoadBalancer) -> Self {
        self.balancer = Some(Arc::new(balancer));
        self
    }

    /// How many retries (and forked copies) the client may add to its call volume.
    pub fn retry_budget(mut self, policy: RetryBudgetPolicy) -> Self {
        self.retry_budget = Some(policy);
        self
    }

    /// Calls in flight per provider before further callers wait.
    pub fn max_in_flight_per_provider(self, limit: usize) -> Self {
        self.edit(move |c| c.max_in_flight_per_provider = limit)
    }

    /// Speaks TLS to every provider, verifying its certificate with `config` (and
    /// presenting a client certificate when `config` has one). Without this, providers
    /// registered as `tls://host:port` are refused at once. See [`crate::TlsClientConfig`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::TlsClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Serves `/metrics`, `/health`, `/ready` and `/services` over HTTP on `addr` until
    /// the last handle of the client is dropped (see [`crate::admin`]); turns metrics
    /// on unless [`ClientBuilder::metrics`] turned them off. Binding needs a tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), erpc_core::Error> {
    /// let client = erpc_core::Client::builder()
    ///     .direct(["127.0.0.1:9000"])
    ///     .admin("127.0.0.1:0")
    ///     .build()?;
    /// assert!(client.admin_addr().is_some());
    /// assert!(client.metrics().is_some());
    /// # Ok(()) }
    /// ```
    pub fn admin(self, addr: impl Into<String>) -> Self {
        let addr = addr.into();
        self.edit(move |c| c.admin = Some(addr))
    }

    /// Records call metrics (see [`crate::admin::CallMetrics`]), with or without an
    /// admin listener; off by default unless an admin address is set.
    pub fn metrics(self, on: bool) -> Self {
        self.edit(move |c| c.metrics = Some(on))
    }

    /// Builds the client; connections open lazily on first call.
    ///
    /// Fails when no registry was given, a setting is invalid, or the admin listener
    /// cannot bind.
    pub fn build(mut self) -> Result<Client, Error> {
        let (config, registry_url) = self.settings.resolve(|c| c.client)?;
        let registry = match (self.registry, registry_url) {
            (Some(registry), _) => registry,
            (None, Some(url)) => crate::registry::from_url(&url)?,
            (None, None) => {
                return Err(Error::Config(
                    "a client needs a registry: .registry(..), .direct(..), or `registry` in \
                     erpc.toml / ERPC_REGISTRY (e.g. static://host:port)"
                        .into(),
                ))
            }
        };
        let serialization = config.serialization;
        let compression = config.compression_policy();
        let cluster = config.cluster;
        if let ClusterMode::Forking(n) = cluster {
            return Err(Error::Config(format!(
                "cluster mode forking:{n} cannot be the client-wide default: forking sends \
                 a call to several providers at once, so it may run more than once, and \
                 is only for idempotent methods; set it on handles of idempotent methods \
                 (`.with_cluster(ClusterMode::Forking({n}))` with `#[erpc(idempotent)]` or \
                 `.with_idempotent(true)`)"
            )));
        }
        let balancer = match self.balancer {
            Some(balancer) => balancer,
            None => crate::balance::by_name(&config.balancer)?,
        };
        let builtin = crate::filter::BuiltInSettings {
            auth_token: config.auth_token.as_ref().map(Secret::expose),
            trace_sample_ratio: config.trace_sample_ratio,
        };
        let mut filters = config
            .filters
            .iter()
            .map(|name| crate::filter::client_filter(name, &builtin))
            .collect::<Result<Vec<_>, Error>>()?;
        filters.append(&mut self.filters);
        let metrics = config.metrics_enabled().then(CallMetrics::new);
        let admin = config.admin.as_deref().map(admin::bind).transpose()?;
        let mut settings = endpoint_settings(&config, self.tls);
        settings.metrics = metrics.clone();
        let budget = RetryBudget::new(self.retry_budget.unwrap_or(RetryBudgetPolicy {
            ratio: config.retry_budget_ratio,
            ..RetryBudgetPolicy::default()
        }));
        let first_list_wait = config.timeout().max(Duration::from_secs(1));
        let pool = Arc::new(Pool::new(settings));
        let build_route = {
            let (pool, balancer, metrics) = (pool.clone(), balancer.clone(), metrics.clone());
            Arc::new(
                move |key: &ServiceKey, providers, previous: Option<&Route>| {
                    let metrics = metrics.as_ref();
                    Route::new(key, providers, &pool, balancer.as_ref(), previous, metrics)
                },
            )
        };
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let admin_view = weak.clone();
            let weak = weak.clone();
            let on_change = Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.prune();
                }
            });
            let admin = admin.map(|listener| {
                let weak = admin_view.clone();
                listener.start(admin::View {
                    ready: Box::new(|| true),
                    services: Box::new(move || {
                        let services: Vec<_> = weak
                            .upgrade()
                            .map(|inner| inner.directory.services())
                            .unwrap_or_default()
                            .iter()
                            .map(|(key, providers)| admin::subscribed_service(key, *providers))
                            .collect();
                        serde_json::json!({"side": "client", "services": services})
                    }),
                    metrics: metrics.clone(),
                })
            });
            Inner {
                metrics,
                admin,
                serialization,
                compression,
                cluster,
                directory: Directory::new(registry, first_list_wait, build_route, on_change),
                pool,
                balancer,
                budget,
                config,
                filters: filters.into(),
            }
        });
        Ok(Client { inner })
    }
}

/// The per-endpoint settings of `config`.
fn endpoint_settings(config: &ClientConfig, tls: ClientTls) -> EndpointSettings {
    EndpointSettings {
        connection: ConnectionSettings {
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms.max(1)),
            heartbeat_timeout: Duration::from_millis(config.heartbeat_timeout_ms.max(1)),
            max_frame: config.max_frame_bytes,
            tls,
        },
        backoff: Backoff {
            initial: Duration::from_millis(config.reconnect_backoff_ms),
            max: Duration::from_millis(config.reconnect_backoff_max_ms),
        },
        breaker: config.breaker_policy(),
        max_in_flight: config.max_in_flight_per_provider,
        metrics: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ends one attempt on `endpoint` with a timeout, `left` having been its time.
    fn time_out(endpoint: &Endpoint, left: Duration) {
        let mut verdict = Verdict {
            endpoint,
            started: Instant::now(),
            timeout: left,
            done: false,
        };
        verdict.finish::<()>(&Err(Error::Timeout {
            service: "s".into(),
            method: "m".into(),
            after: left,
        }));
    }

    #[tokio::test]
    async fn refused_credentials_do_not_eject_the_provider() {
        let pool = Pool::new(endpoint_settings(
            &ClientConfig::default(),
            ClientTls::default(),
        ));
        let endpoint = pool.endpoint("127.0.0.1:1");
        for _ in 0..10 * BreakerPolicy::default().consecutive_failures {
            let mut verdict = Verdict {
                endpoint: &endpoint,
                started: Instant::now(),
                timeout: Duration::from_secs(1),
                done: false,
            };
            verdict.finish::<()>(&Err(Error::Unauthenticated("wrong token".into())));
        }
        assert!(endpoint.admits(Instant::now()));
        assert!(!may_retry(&Error::Unauthenticated("x".into()), true));
    }

    #[tokio::test]
    async fn only_timeouts_the_caller_made_generous_count_against_the_provider() {
        let pool = Pool::new(endpoint_settings(
            &ClientConfig::default(),
            ClientTls::default(),
        ));
        let endpoint = pool.endpoint("127.0.0.1:1");
        let rtt = Duration::from_millis(80);
        endpoint.record(true, rtt, Instant::now());
        // Tighter than the floor, or than twice what the provider has been taking.
        for left in [Duration::from_millis(1), Duration::from_millis(150)] {
            for _ in 0..50 {
                time_out(&endpoint, left);
            }
            assert!(endpoint.admits(Instant::now()), "{left:?} timeouts ejected");
        }
        // Generous timeouts that run out do show an unhealthy provider.
        let consecutive = BreakerPolicy::default().consecutive_failures;
        for _ in 0..consecutive {
            time_out(&endpoint, Duration::from_secs(1));
        }
        assert!(!endpoint.admits(Instant::now()));
    }
}
