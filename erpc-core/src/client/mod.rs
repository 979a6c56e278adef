//! The consumer side: find providers, pick one, send the call, wait with a deadline.
//!
//! A call's path: generated stub → [`Client::call`] (encode once, deadline) → directory
//! (provider list from the registry) → balancer → pool (one multiplexed connection per
//! provider) → connection → frame codec → socket.

mod blocking;
mod directory;
mod pool;
mod stub;

use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

pub use blocking::BlockingClient;
pub use stub::ServiceClient;

use crate::balance::{Candidate, LoadBalancer, PickContext, WeightedRandom};
use crate::compress::CompressionPolicy;
use crate::config::ClientConfig;
use crate::message::{decode_response, EncodedRequest, OutboundRequest};
use crate::protocol::Metadata;
use crate::registry::{Provider, Registry, StaticRegistry};
use crate::serialize::Serialization;
use crate::service::ServiceKey;
use crate::transport::ConnectionSettings;
use crate::Error;
use directory::Directory;
use pool::{Backoff, Pool};

/// Per-call settings; the generated stubs keep one per client.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Overrides the client's timeout.
    pub timeout: Option<Duration>,
    /// Sent with the request.
    pub metadata: Metadata,
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
    directory: Directory,
    pool: Pool,
    balancer: Arc<dyn LoadBalancer>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("serialization", &self.inner.serialization)
            .field("balancer", &self.inner.balancer)
            .finish_non_exhaustive()
    }
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
    /// The call is encoded once; it goes to a provider chosen by the balancer, and when
    /// it provably never reached one (connect refused, goaway, overloaded) it is sent to
    /// another, up to the configured retries. The whole call is bounded by the timeout;
    /// on timeout the provider is told to cancel the handler.
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
        }
        .encode(args)?;
        match tokio::time::timeout(timeout, self.send(key, method, &request)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                service: key.to_string(),
                method: method.to_string(),
                after: timeout,
            }),
        }
    }

    async fn send<R: DeserializeOwned>(
        &self,
        key: &ServiceKey,
        method: &str,
        request: &EncodedRequest,
    ) -> Result<R, Error> {
        let providers = self.inner.directory.providers(key).await?;
        let mut tried: Vec<&str> = Vec::new();
        let mut last_error = None;
        for _ in 0..=self.inner.config.retries {
            let Some(provider) = self.pick(&providers, &tried, method) else {
                break;
            };
            match self.attempt(provider, key, method, request).await {
                Err(e) if e.never_reached_provider() => {
                    tracing::debug!(addr = %provider.addr, error = %e, "call did not reach provider; trying another");
                    tried.push(&provider.addr);
                    last_error = Some(e);
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| Error::NoProvider {
            service: key.to_string(),
        }))
    }

    async fn attempt<R: DeserializeOwned>(
        &self,
        provider: &Provider,
        key: &ServiceKey,
        method: &str,
        request: &EncodedRequest,
    ) -> Result<R, Error> {
        let connection = self.inner.pool.get(&provider.addr).await?;
        let frame = connection.call(request).await?;
        decode_response(
            &frame,
            key,
            method,
            connection.addr(),
            self.inner.config.max_frame_bytes as usize,
        )
    }

    /// Chooses among providers not yet tried, preferring those not avoided (goaway or
    /// reconnect backoff); avoided ones are used only when nothing else is left.
    fn pick<'a>(
        &self,
        providers: &'a [Provider],
        tried: &[&str],
        method: &str,
    ) -> Option<&'a Provider> {
        let fresh: Vec<&Provider> = providers
            .iter()
            .filter(|p| !tried.contains(&p.addr.as_str()))
            .collect();
        let preferred: Vec<&Provider> = fresh
            .iter()
            .copied()
            .filter(|p| !self.inner.pool.is_avoided(&p.addr))
            .collect();
        let pool = if preferred.is_empty() {
            fresh
        } else {
            preferred
        };
        let candidates: Vec<Candidate<'_>> = pool
            .iter()
            .map(|p| Candidate {
                provider: p,
                in_flight: self.inner.pool.in_flight(&p.addr),
            })
            .collect();
        let ctx = PickContext {
            method,
            hash_key: None,
        };
        self.inner.balancer.pick(&candidates, &ctx).map(|i| pool[i])
    }
}

/// Builds a [`Client`].
#[derive(Default)]
pub struct ClientBuilder {
    config: ClientConfig,
    registry: Option<Arc<dyn Registry>>,
    balancer: Option<Arc<dyn LoadBalancer>>,
}

impl ClientBuilder {
    /// Takes every setting from `config` (see [`crate::Config::load`]).
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Where providers are found.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Where providers are found, as a shared handle.
    pub fn registry_arc(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Default per-call timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout_ms = millis(timeout);
        self
    }

    /// Serializer for requests.
    pub fn serialization(mut self, serialization: Serialization) -> Self {
        self.config.serialization = serialization.name().to_string();
        self
    }

    /// Compression for requests at or above `policy.threshold` bytes.
    pub fn compression(mut self, policy: CompressionPolicy) -> Self {
        self.config.compression = policy.algorithm.name().to_string();
        self.config.compression_threshold = policy.threshold;
        self
    }

    /// Idle time before a ping, and the time a ping may go unanswered.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.heartbeat_interval_ms = millis(interval);
        self.config.heartbeat_timeout_ms = millis(timeout);
        self
    }

    /// Extra attempts for calls that never reached a provider.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }

    /// The load balancer (default: weighted random).
    pub fn balancer(mut self, balancer: impl LoadBalancer) -> Self {
        self.balancer = Some(Arc::new(balancer));
        self
    }

    /// Builds the client; connections open lazily on first call.
    ///
    /// Fails when no registry was given or a setting is invalid.
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config;
        let registry = self.registry.ok_or_else(|| {
            Error::Config("a client needs a registry (e.g. static://host:port)".into())
        })?;
        let serialization: Serialization = config.serialization.parse()?;
        let compression = config.compression_policy()?;
        let settings = ConnectionSettings {
            connect_timeout: Duration::from_millis(config.connect_timeout_ms),
            heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms.max(1)),
            heartbeat_timeout: Duration::from_millis(config.heartbeat_timeout_ms.max(1)),
            max_frame: config.max_frame_bytes,
        };
        let backoff = Backoff {
            initial: Duration::from_millis(config.reconnect_backoff_ms),
            max: Duration::from_millis(config.reconnect_backoff_max_ms),
        };
        let first_list_wait = config.timeout().max(Duration::from_secs(1));
        Ok(Client {
            inner: Arc::new(Inner {
                serialization,
                compression,
                directory: Directory::new(registry, first_list_wait),
                pool: Pool::new(settings, backoff),
                balancer: self
                    .balancer
                    .unwrap_or_else(|| Arc::new(WeightedRandom::new())),
                config,
            }),
        })
    }

    /// Shorthand: a client for fixed provider addresses.
    pub fn direct<I, S>(self, addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.registry(StaticRegistry::new(addrs))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
