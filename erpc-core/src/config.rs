//! Settings: defaults, overridden by an `erpc.toml` file, overridden by `ERPC_*` variables.
//!
//! Builders take a [`ClientConfig`] or [`ServerConfig`] and may override single values
//! afterwards, so nothing is hard-coded.
//!
//! ```toml
//! registry = "static://127.0.0.1:9000,127.0.0.1:9001"
//!
//! [client]
//! timeout_ms = 3000
//! serialization = "msgpack"
//! compression = "zstd"
//! compression_threshold = 8192
//!
//! [server]
//! bind = "0.0.0.0:9000"
//! max_concurrency = 10000
//! ```
//!
//! Every field has an environment variable: `ERPC_REGISTRY`, `ERPC_CLIENT_TIMEOUT_MS`,
//! `ERPC_SERVER_BIND`, ... (the table path upper-cased and joined with `_`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{BreakerPolicy, ClusterMode, RetryBudgetPolicy};
use crate::compress::{Compression, CompressionPolicy};
use crate::protocol::DEFAULT_MAX_FRAME;
use crate::serialize::Serialization;
use crate::server::LimitRule;
use crate::Error;

/// All erpc settings.
///
/// `Debug` shows the registry URL without its credentials (see
/// [`crate::registry::redact_url`]).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Registry URL (`static://..`, `nacos://..`).
    pub registry: Option<String>,
    /// Client (consumer) settings.
    pub client: ClientConfig,
    /// Server (provider) settings.
    pub server: ServerConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self
            .registry
            .as_deref()
            .map(|url| crate::registry::redact_url(url, &[]));
        f.debug_struct("Config")
            .field("registry", &registry)
            .field("client", &self.client)
            .field("server", &self.server)
            .finish()
    }
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Per-call timeout, sent to the provider as the deadline.
    pub timeout_ms: u64,
    /// Timeout for opening a TCP connection.
    pub connect_timeout_ms: u64,
    /// Serializer for requests: `msgpack`, `json`, `postcard`.
    pub serialization: String,
    /// Compression for large requests: `none`, `gzip`, `zstd`.
    pub compression: String,
    /// Payload size from which compression applies.
    pub compression_threshold: usize,
    /// Idle time after which the client pings a connection.
    pub heartbeat_interval_ms: u64,
    /// Time a ping may go unanswered before the connection is declared dead.
    pub heartbeat_timeout_ms: u64,
    /// Largest response body accepted.
    pub max_frame_bytes: u32,
    /// First delay before reconnecting to a provider that refused a connection.
    pub reconnect_backoff_ms: u64,
    /// Longest delay between reconnect attempts.
    pub reconnect_backoff_max_ms: u64,
    /// Extra attempts on other providers (for idempotent calls, or calls that provably
    /// never reached a provider).
    pub retries: u32,
    /// Cluster mode: `failover`, `failfast`, `failsafe`, `forking`, `forking:N`.
    pub cluster: String,
    /// Load balancer: `random`, `round_robin`, `consistent_hash`, `least_active`, `p2c`.
    pub balancer: String,
    /// Calls in flight per provider; further callers wait (within their deadline).
    pub max_in_flight_per_provider: usize,
    /// Retries allowed as a share of calls (the retry budget).
    pub retry_budget_ratio: f64,
    /// Consecutive failures that eject a provider (circuit breaker).
    pub breaker_consecutive_failures: u32,
    /// Failure share over the breaker window that ejects a provider.
    pub breaker_error_rate: f64,
    /// Calls needed in the window before the error rate counts.
    pub breaker_min_calls: u32,
    /// First ejection time; doubles while ejections repeat.
    pub breaker_ejection_ms: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 3_000,
            connect_timeout_ms: 1_000,
            serialization: Serialization::default().name().into(),
            compression: Compression::None.name().into(),
            compression_threshold: CompressionPolicy::default().threshold,
            heartbeat_interval_ms: 5_000,
            heartbeat_timeout_ms: 5_000,
            max_frame_bytes: DEFAULT_MAX_FRAME,
            reconnect_backoff_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            retries: 2,
            cluster: ClusterMode::default().name().into(),
            balancer: "p2c".into(),
            max_in_flight_per_provider: 10_000,
            retry_budget_ratio: RetryBudgetPolicy::default().ratio,
            breaker_consecutive_failures: BreakerPolicy::default().consecutive_failures,
            breaker_error_rate: BreakerPolicy::default().error_rate,
            breaker_min_calls: BreakerPolicy::default().min_calls,
            breaker_ejection_ms: BreakerPolicy::default().base_ejection.as_millis() as u64,
        }
    }
}

/// Provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Address registered for consumers (`host:port`); derived from `bind` when absent.
    pub advertise: Option<String>,
    /// Weight registered for weighted balancing.
    pub weight: u32,
    /// Handlers running at once; beyond it calls are answered `Overloaded`.
    pub max_concurrency: usize,
    /// Largest request body accepted.
    pub max_frame_bytes: u32,
    /// Compression for large responses: `none`, `gzip`, `zstd`.
    pub compression: String,
    /// Payload size from which compression applies.
    pub compression_threshold: usize,
    /// A connection with no inbound traffic for this long is closed.
    pub idle_timeout_ms: u64,
    /// Longest wait for in-flight calls on graceful shutdown.
    pub drain_timeout_ms: u64,
    /// After draining, connections keep answering late requests with "shutting down"
    /// this long before closing, so requests already on the wire are refused (and
    /// retried elsewhere) rather than lost.
    pub goaway_grace_ms: u64,
    /// Per-service and per-method limits (`[[server.limits]]` tables).
    pub limits: Vec<LimitRule>,
    /// Extra registry metadata for every hosted service (`[server.metadata]`), e.g.
    /// Nacos's `preserved.heart.beat.timeout`.
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:9000".into(),
            advertise: None,
            weight: crate::registry::DEFAULT_WEIGHT,
            max_concurrency: 10_000,
            max_frame_bytes: DEFAULT_MAX_FRAME,
            compression: Compression::None.name().into(),
            compression_threshold: CompressionPolicy::default().threshold,
            idle_timeout_ms: 60_000,
            drain_timeout_ms: 10_000,
            goaway_grace_ms: 250,
            limits: Vec::new(),
            metadata: Default::default(),
        }
    }
}

impl ClientConfig {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(crate) fn breaker_policy(&self) -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: self.breaker_consecutive_failures.max(1),
            error_rate: self.breaker_error_rate,
            min_calls: self.breaker_min_calls,
            base_ejection: Duration::from_millis(self.breaker_ejection_ms),
            ..BreakerPolicy::default()
        }
    }

    pub(crate) fn compression_policy(&self) -> Result<CompressionPolicy, Error> {
        Ok(CompressionPolicy {
            algorithm: self.compression.parse()?,
            threshold: self.compression_threshold,
        })
    }
}

impl ServerConfig {
    pub(crate) fn compression_policy(&self) -> Result<CompressionPolicy, Error> {
        Ok(CompressionPolicy {
            algorithm: self.compression.parse()?,
            threshold: self.compression_threshold,
        })
    }
}

impl Config {
    /// Defaults, then `erpc.toml` (or the file named by `ERPC_CONFIG`) if present, then
    /// `ERPC_*` environment variables.
    pub fn load() -> Result<Self, Error> {
        let path = std::env::var("ERPC_CONFIG").unwrap_or_else(|_| "erpc.toml".into());
        let mut config = if Path::new(&path).exists() {
            Self::from_file(&path)?
        } else if std::env::var_os("ERPC_CONFIG").is_some() {
            return Err(Error::Config(format!(
                "ERPC_CONFIG names {path:?}, which does not exist"
            )));
        } else {
            Self::default()
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Reads a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Self::from_toml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text.
    ///
    /// ```
    /// let config = erpc_core::Config::from_toml("[client]\ntimeout_ms = 500").unwrap();
    /// assert_eq!(config.client.timeout_ms, 500);
    /// assert_eq!(config.server.max_concurrency, 10_000);
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Overrides fields from variables looked up by `var` (`ERPC_CLIENT_TIMEOUT_MS`, ...).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        if let Some(v) = var("ERPC_REGISTRY") {
            self.registry = Some(v);
        }
        let c = &mut self.client;
        set(&var, "ERPC_CLIENT_TIMEOUT_MS", &mut c.timeout_ms)?;
        set(
            &var,
            "ERPC_CLIENT_CONNECT_TIMEOUT_MS",
            &mut c.connect_timeout_ms,
        )?;
        set(&var, "ERPC_CLIENT_SERIALIZATION", &mut c.serialization)?;
        set(&var, "ERPC_CLIENT_COMPRESSION", &mut c.compression)?;
        set(
            &var,
            "ERPC_CLIENT_COMPRESSION_THRESHOLD",
            &mut c.compression_threshold,
        )?;
        set(
            &var,
            "ERPC_CLIENT_HEARTBEAT_INTERVAL_MS",
            &mut c.heartbeat_interval_ms,
        )?;
        set(
            &var,
            "ERPC_CLIENT_HEARTBEAT_TIMEOUT_MS",
            &mut c.heartbeat_timeout_ms,
        )?;
        set(&var, "ERPC_CLIENT_MAX_FRAME_BYTES", &mut c.max_frame_bytes)?;
        set(
            &var,
            "ERPC_CLIENT_RECONNECT_BACKOFF_MS",
            &mut c.reconnect_backoff_ms,
        )?;
        set(
            &var,
            "ERPC_CLIENT_RECONNECT_BACKOFF_MAX_MS",
            &mut c.reconnect_backoff_max_ms,
        )?;
        set(&var, "ERPC_CLIENT_RETRIES", &mut c.retries)?;
        set(&var, "ERPC_CLIENT_CLUSTER", &mut c.cluster)?;
        set(&var, "ERPC_CLIENT_BALANCER", &mut c.balancer)?;
        set(
            &var,
            "ERPC_CLIENT_MAX_IN_FLIGHT_PER_PROVIDER",
            &mut c.max_in_flight_per_provider,
        )?;
        set(
            &var,
            "ERPC_CLIENT_RETRY_BUDGET_RATIO",
            &mut c.retry_budget_ratio,
        )?;
        set(
            &var,
            "ERPC_CLIENT_BREAKER_CONSECUTIVE_FAILURES",
            &mut c.breaker_consecutive_failures,
        )?;
        set(
            &var,
            "ERPC_CLIENT_BREAKER_ERROR_RATE",
            &mut c.breaker_error_rate,
        )?;
        set(
            &var,
            "ERPC_CLIENT_BREAKER_MIN_CALLS",
            &mut c.breaker_min_calls,
        )?;
        set(
            &var,
            "ERPC_CLIENT_BREAKER_EJECTION_MS",
            &mut c.breaker_ejection_ms,
        )?;
        let s = &mut self.server;
        set(&var, "ERPC_SERVER_BIND", &mut s.bind)?;
        if let Some(v) = var("ERPC_SERVER_ADVERTISE") {
            s.advertise = Some(v);
        }
        set(&var, "ERPC_SERVER_WEIGHT", &mut s.weight)?;
        set(&var, "ERPC_SERVER_MAX_CONCURRENCY", &mut s.max_concurrency)?;
        set(&var, "ERPC_SERVER_MAX_FRAME_BYTES", &mut s.max_frame_bytes)?;
        set(&var, "ERPC_SERVER_COMPRESSION", &mut s.compression)?;
        set(
            &var,
            "ERPC_SERVER_COMPRESSION_THRESHOLD",
            &mut s.compression_threshold,
        )?;
        set(&var, "ERPC_SERVER_IDLE_TIMEOUT_MS", &mut s.idle_timeout_ms)?;
        set(
            &var,
            "ERPC_SERVER_DRAIN_TIMEOUT_MS",
            &mut s.drain_timeout_ms,
        )?;
        self.validate()
    }

    /// Checks names that are only known at run time (serializer, compression).
    pub fn validate(&self) -> Result<(), Error> {
        Serialization::from_str(&self.client.serialization)?;
        ClusterMode::from_str(&self.client.cluster)?;
        crate::balance::by_name(&self.client.balancer)?;
        Compression::from_str(&self.client.compression)?;
        Compression::from_str(&self.server.compression)?;
        if self.server.max_concurrency == 0 {
            return Err(Error::Config(
                "server.max_concurrency must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn set<T: FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut T,
) -> Result<(), Error>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = var(name) {
        *slot = value
            .trim()
            .parse()
            .map_err(|e| Error::Config(format!("{name}={value:?}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_registry_credentials() {
        let config = Config {
            registry: Some("nacos://nacos:S3cret-pw@h:8848?password=S3cret-pw".into()),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("S3cret-pw"), "{shown}");
        assert!(shown.contains("nacos://nacos:***@h:8848"), "{shown}");
    }

    #[test]
    fn env_overrides_file_and_bad_values_are_named() {
        let mut config =
            Config::from_toml("registry = \"static://a:1\"\n[client]\ntimeout_ms = 10").unwrap();
        config
            .apply_env(|name| match name {
                "ERPC_CLIENT_TIMEOUT_MS" => Some("20".into()),
                "ERPC_SERVER_BIND" => Some("0.0.0.0:1".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.client.timeout_ms, 20);
        assert_eq!(config.server.bind, "0.0.0.0:1");
        assert_eq!(config.registry.as_deref(), Some("static://a:1"));
        let err = config
            .apply_env(|name| (name == "ERPC_CLIENT_RETRIES").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("ERPC_CLIENT_RETRIES"), "{err}");
    }

    #[test]
    fn unknown_keys_and_names_are_rejected() {
        assert!(Config::from_toml("[client]\ntimeout = 1").is_err());
        assert!(Config::from_toml("[client]\nserialization = \"kryo\"").is_err());
        assert!(Config::from_toml("[server]\nmax_concurrency = 0").is_err());
        let limits = Config::from_toml(
            "[[server.limits]]\nservice = \"a::B\"\nmethod = \"m\"\nmax_concurrency = 3",
        )
        .unwrap();
        assert_eq!(limits.server.limits[0].max_concurrency, Some(3));
    }
}
