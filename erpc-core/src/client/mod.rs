//! The consumer side: find providers, pick one, send the call, wait with a deadline.
//!
//! A call's path: generated stub → [`Client::call`] (encode once, deadline) → directory
//! (provider list from the registry) → cluster mode (failover, forking, ...) → balancer
//! over the endpoints that are neither ejected nor going away → endpoint (in-flight cap,
//! breaker, one multiplexed connection) → connection → frame codec → socket.

mod blocking;
mod breaker;
mod budget;
mod cluster;
mod directory;
mod pool;
mod stub;

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use smallvec::SmallVec;
use tokio::time::Instant;

pub use blocking::BlockingClient;
pub use breaker::BreakerPolicy;
pub use budget::RetryBudgetPolicy;
pub use cluster::ClusterMode;
pub use stub::ServiceClient;

use crate::balance::{Candidate, LoadBalancer, PickContext};
use crate::compress::CompressionPolicy;
use crate::config::{millis, ClientConfig};
use crate::message::{decode_response, EncodedRequest, OutboundRequest};
use crate::protocol::Metadata;
use crate::registry::{Provider, Registry, StaticRegistry};
use crate::serialize::Serialization;
use crate::service::ServiceKey;
use crate::transport::{ClientTls, Connection, ConnectionSettings};
use crate::Error;
use budget::RetryBudget;
use directory::Directory;
use pool::{Backoff, Endpoint, EndpointSettings, Pool};

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
    pool: Pool,
    balancer: Arc<dyn LoadBalancer>,
    budget: RetryBudget,
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

/// One call in progress: what it goes to and until when.
struct Call<'a> {
    key: &'a ServiceKey,
    method: &'a str,
    request: &'a EncodedRequest,
    options: &'a CallOptions,
    idempotent: bool,
    hash_key: Option<u64>,
    deadline: Instant,
    timeout: Duration,
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
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.invoke(key, method, args, options, None).await
    }

    /// [`Client::call`] with a per-call hash key overriding the options' one.
    pub(crate) async fn invoke<A, R>(
        &self,
        key: &ServiceKey,
        method: &str,
        args: &A,
        options: &CallOptions,
        hash_key: Option<u64>,
    ) -> Result<R, Error>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let timeout = options
            .timeout
            .unwrap_or_else(|| self.inner.config.timeout());
        let request = OutboundRequest {
            key,
            method,
            timeout,
            metadata: &options.metadata,
            serialization: self.inner.serialization,
            compression: self.inner.compression,
            max_frame: self.inner.config.max_frame_bytes,
        }
        .encode(args)?;
        let call = Call {
            key,
            method,
            request: &request,
            options,
            idempotent: options.idempotent,
            hash_key: hash_key.or(options.hash_key),
            deadline: Instant::now() + timeout,
            timeout,
        };
        self.inner.budget.deposit();
        match options.cluster.unwrap_or(self.inner.cluster) {
            ClusterMode::Failover => self.failover(&call, self.inner.config.retries).await,
            ClusterMode::Failfast => self.failover(&call, 0).await,
            ClusterMode::Failsafe => match self.failover(&call, 0).await {
                Ok(value) => Ok(value),
                Err(e) => failsafe_value(e, key, method),
            },
            ClusterMode::Forking(n) if call.idempotent && n > 1 => self.forking(&call, n).await,
            ClusterMode::Forking(_) => self.failover(&call, self.inner.config.retries).await,
        }
    }

    /// Tries providers one after another while the failure allows another attempt.
    async fn failover<R: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        retries: u32,
    ) -> Result<R, Error> {
        let providers = self.providers(call).await?;
        let mut tried: Vec<&str> = Vec::new();
        let mut last_error = None;
        for attempt in 0..=retries {
            let Some((provider, endpoint)) = self.pick(&providers, &tried, call)? else {
                break;
            };
            if attempt > 0 && !self.inner.budget.withdraw() {
                tracing::debug!(service = %call.key, "retry budget spent; not retrying");
                break;
            }
            match self.attempt(&endpoint, call).await {
                Err(e) if may_retry(&e, call.idempotent) && Instant::now() < call.deadline => {
                    tracing::debug!(addr = %provider.addr, error = %e, "attempt failed; trying another provider");
                    tried.push(&provider.addr);
                    last_error = Some(e);
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NoProvider {
            service: call.key.to_string(),
        }))
    }

    /// Sends to `n` providers at once; the first success wins, the rest are cancelled.
    async fn forking<R: DeserializeOwned>(&self, call: &Call<'_>, n: usize) -> Result<R, Error> {
        let providers = self.providers(call).await?;
        let mut chosen: Vec<&str> = Vec::new();
        let mut attempts = FuturesUnordered::new();
        for _ in 0..n {
            let Some((provider, endpoint)) = self.pick(&providers, &chosen, call)? else {
                break;
            };
            chosen.push(&provider.addr);
            attempts.push(async move { self.attempt::<R>(&endpoint, call).await });
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

    async fn providers(&self, call: &Call<'_>) -> Result<Arc<Vec<Provider>>, Error> {
        match tokio::time::timeout_at(call.deadline, self.inner.directory.providers(call.key)).await
        {
            Ok(result) => result,
            Err(_) => Err(timeout_error(call)),
        }
    }

    /// One attempt on one provider, bounded by the call's deadline.
    async fn attempt<R: DeserializeOwned>(
        &self,
        endpoint: &Endpoint,
        call: &Call<'_>,
    ) -> Result<R, Error> {
        // Waiting for an in-flight slot or a connection says nothing about the
        // provider's health (a failed connect is recorded by the endpoint itself).
        let _slot = match endpoint.try_acquire() {
            Some(slot) => slot,
            None => within(call, endpoint.acquire()).await?,
        };
        let connection = match endpoint.usable() {
            Some(connection) => connection,
            None => within(call, endpoint.connection(&self.inner.pool.settings)).await?,
        };
        if !endpoint.begin() {
            return Err(Error::CircuitOpen {
                service: call.key.to_string(),
            });
        }
        let mut verdict = Verdict {
            endpoint,
            started: Instant::now(),
            done: false,
        };
        let result = within(call, self.exchange(&connection, call)).await;
        verdict.finish(&result);
        result
    }

    async fn exchange<R: DeserializeOwned>(
        &self,
        connection: &Connection,
        call: &Call<'_>,
    ) -> Result<R, Error> {
        let frame = connection.call(call.request).await?;
        decode_response(
            &frame,
            call.key,
            call.method,
            connection.addr(),
            self.inner.config.max_frame_bytes as usize,
        )
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

    /// Chooses among providers not yet tried and not ejected, preferring those not
    /// avoided (goaway, reconnect backoff). Fails with [`Error::CircuitOpen`] when every
    /// provider is ejected.
    fn pick<'a>(
        &self,
        providers: &'a [Provider],
        tried: &[&str],
        call: &Call<'_>,
    ) -> Result<Option<(&'a Provider, Arc<Endpoint>)>, Error> {
        let mut fresh: SmallVec<[(&'a Provider, Arc<Endpoint>); 8]> = SmallVec::new();
        let mut ejected = 0;
        for provider in providers
            .iter()
            .filter(|p| !tried.contains(&p.addr.as_str()))
        {
            let endpoint = self.inner.pool.endpoint(&provider.addr);
            if endpoint.admits() {
                fresh.push((provider, endpoint));
            } else {
                ejected += 1;
            }
        }
        if fresh.is_empty() {
            return if ejected > 0 && tried.is_empty() {
                Err(Error::CircuitOpen {
                    service: call.key.to_string(),
                })
            } else {
                Ok(None)
            };
        }
        let avoided: SmallVec<[bool; 8]> = fresh.iter().map(|(_, e)| e.is_avoided()).collect();
        if avoided.iter().any(|a| !a) {
            let mut flags = avoided.iter();
            fresh.retain(|_| flags.next() == Some(&false));
        }
        let candidates: SmallVec<[Candidate<'_>; 8]> = fresh
            .iter()
            .map(|(provider, endpoint)| Candidate {
                provider,
                in_flight: endpoint.in_flight(),
                latency: endpoint.latency(),
            })
            .collect();
        let ctx = PickContext {
            method: call.method,
            hash_key: call.hash_key,
        };
        let balancer = call
            .options
            .balancer
            .as_ref()
            .unwrap_or(&self.inner.balancer);
        Ok(balancer
            .pick(&candidates, &ctx)
            .map(|i| fresh.swap_remove(i)))
    }
}

/// Records an attempt's outcome in its endpoint's breaker and latency estimate; an
/// attempt dropped before finishing (cancelled, or lost a forking race) records nothing.
struct Verdict<'a> {
    endpoint: &'a Endpoint,
    started: Instant,
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
            Err(Error::Overloaded(_) | Error::GoingAway { .. }) => self.endpoint.abandon(),
            Err(e) if counts_against_provider(e) => self.record(false),
            _ => self.record(true),
        }
    }
}

impl Drop for Verdict<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.endpoint.abandon();
        }
    }
}

/// Failures that say the provider (or the path to it) is unhealthy.
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
async fn within<T>(
    call: &Call<'_>,
    step: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(call.deadline, step)
        .await
        .unwrap_or_else(|_| Err(timeout_error(call)))
}

fn timeout_error(call: &Call<'_>) -> Error {
    Error::Timeout {
        service: call.key.to_string(),
        method: call.method.to_string(),
        after: call.timeout,
    }
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

/// A builder call's change to the settings, applied over the file and environment.
type Edit = Box<dyn FnOnce(&mut ClientConfig) + Send>;

/// Builds a [`Client`].
///
/// Settings start from [`crate::Config::load`] (defaults, `erpc.toml`, `ERPC_*`
/// variables, including the `registry` URL), or from the config given to
/// [`ClientBuilder::config`]; every other builder call wins over them, whatever the
/// order of the calls.
#[derive(Default)]
#[must_use = "a client builder does nothing until `.build()`"]
pub struct ClientBuilder {
    base: Option<ClientConfig>,
    edits: Vec<Edit>,
    registry: Option<Arc<dyn Registry>>,
    balancer: Option<Arc<dyn LoadBalancer>>,
    tls: ClientTls,
}

impl ClientBuilder {
    /// Starts from `config` instead of the file and environment; the builder's own
    /// calls still win over it.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.base = Some(config);
        self
    }

    fn edit(mut self, edit: impl FnOnce(&mut ClientConfig) + Send + 'static) -> Self {
        self.edits.push(Box::new(edit));
        self
    }

    /// The settings this builder will build with, and the registry URL of the file
    /// or environment when no explicit config was given.
    fn settings(&mut self) -> Result<(ClientConfig, Option<String>), Error> {
        let (mut config, registry) = match self.base.take() {
            Some(config) => (config, None),
            None => {
                let loaded = crate::Config::load()?;
                (loaded.client, loaded.registry)
            }
        };
        for edit in self.edits.drain(..) {
            edit(&mut config);
        }
        Ok((config, registry))
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

    /// The load balancer (default: see [`crate::balance`]).
    pub fn balancer(mut self, balancer: impl LoadBalancer) -> Self {
        self.balancer = Some(Arc::new(balancer));
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

    /// Builds the client; connections open lazily on first call.
    ///
    /// Fails when no registry was given or a setting is invalid.
    pub fn build(mut self) -> Result<Client, Error> {
        let (config, registry_url) = self.settings()?;
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
        let balancer = match self.balancer {
            Some(balancer) => balancer,
            None => crate::balance::by_name(&config.balancer)?,
        };
        let settings = EndpointSettings {
            connection: ConnectionSettings {
                connect_timeout: Duration::from_millis(config.connect_timeout_ms),
                heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms.max(1)),
                heartbeat_timeout: Duration::from_millis(config.heartbeat_timeout_ms.max(1)),
                max_frame: config.max_frame_bytes,
                tls: self.tls,
            },
            backoff: Backoff {
                initial: Duration::from_millis(config.reconnect_backoff_ms),
                max: Duration::from_millis(config.reconnect_backoff_max_ms),
            },
            breaker: config.breaker_policy(),
            max_in_flight: config.max_in_flight_per_provider,
        };
        let budget = RetryBudget::new(RetryBudgetPolicy {
            ratio: config.retry_budget_ratio,
            ..RetryBudgetPolicy::default()
        });
        let first_list_wait = config.timeout().max(Duration::from_secs(1));
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            let on_change = Arc::new(move || {
                if let Some(inner) = weak.upgrade() {
                    inner.prune();
                }
            });
            Inner {
                serialization,
                compression,
                cluster,
                directory: Directory::new(registry, first_list_wait, on_change),
                pool: Pool::new(settings),
                balancer,
                budget,
                config,
            }
        });
        Ok(Client { inner })
    }
}
