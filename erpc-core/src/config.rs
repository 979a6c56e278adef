//! Settings: defaults, overridden by an `erpc.toml` file, overridden by `ERPC_*`
//! variables, overridden by code.
//!
//! `Client::builder()` and `Server::builder()` start from [`Config::load`] (file, then
//! environment) unless given a config explicitly with `.config(..)`; every builder call
//! (`.timeout(..)`, `.bind(..)`, ...) wins over both, whatever the order of the calls.
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
//! admin = "0.0.0.0:9100"   # /metrics, /health, /ready, /services (see erpc_core::admin)
//! ```
//!
//! Every field has an environment variable: `ERPC_REGISTRY`, `ERPC_CLIENT_TIMEOUT_MS`,
//! `ERPC_SERVER_BIND`, ... (the table path upper-cased and joined with `_`; the list is
//! derived from the structs themselves, see [`Config::env_vars`]). Values are read as
//! JSON where they parse as such (numbers, booleans, `[..]`, `{..}` for
//! `ERPC_SERVER_LIMITS` and `ERPC_SERVER_METADATA`), else as plain strings.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compress::{Compression, CompressionPolicy};
use crate::policy::{BreakerPolicy, ClusterMode, Dispatch, LimitRule, RetryBudgetPolicy};
use crate::protocol::DEFAULT_MAX_FRAME;
use crate::serialize::Serialization;
use crate::Error;

/// All erpc settings.
///
/// `Debug` shows the registry URL without its credentials (see
/// [`crate::registry::redact_url`]).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct ClientConfig {
    /// Per-call timeout, sent to the provider as the deadline.
    pub timeout_ms: u64,
    /// Timeout for opening a TCP connection.
    pub connect_timeout_ms: u64,
    /// Serializer for requests: `msgpack`, `json`, `postcard`.
    #[serde(with = "by_name")]
    pub serialization: Serialization,
    /// Compression for large requests: `none`, `gzip`, `zstd`.
    #[serde(with = "by_name")]
    pub compression: Compression,
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
    #[serde(with = "by_name")]
    pub cluster: ClusterMode,
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
    /// Length of the window the error rate is measured over.
    pub breaker_window_ms: u64,
    /// First ejection time; doubles while ejections repeat.
    pub breaker_ejection_ms: u64,
    /// Longest ejection time.
    pub breaker_max_ejection_ms: u64,
    /// Address of the admin HTTP listener (`/metrics`, `/health`, ...); none when absent.
    pub admin: Option<String>,
    /// Call metrics; when absent, on exactly when `admin` is set.
    pub metrics: Option<bool>,
    /// Built-in filters around every call, outermost first, by name (`auth`,
    /// `access_log`; see [`crate::filter`]): a list, or in the environment a
    /// comma-separated string (`ERPC_CLIENT_FILTERS=auth,access_log`).
    #[serde(deserialize_with = "filter_names")]
    pub filters: Vec<String>,
    /// The shared token of the `auth` filter; a secret, never shown by `Debug`.
    pub auth_token: Option<Secret>,
    /// Share of the traces started here that the `tracing` filter records, 0.0 to
    /// 1.0 (traces continued from a caller follow the caller's decision; see
    /// [`crate::filter::Tracing::sampled`]).
    pub trace_sample_ratio: f64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 3_000,
            connect_timeout_ms: 1_000,
            serialization: Serialization::default(),
            compression: Compression::None,
            compression_threshold: CompressionPolicy::default().threshold,
            heartbeat_interval_ms: 5_000,
            heartbeat_timeout_ms: 5_000,
            max_frame_bytes: DEFAULT_MAX_FRAME,
            reconnect_backoff_ms: 100,
            reconnect_backoff_max_ms: 5_000,
            retries: 2,
            cluster: ClusterMode::default(),
            balancer: "p2c".into(),
            max_in_flight_per_provider: 10_000,
            retry_budget_ratio: RetryBudgetPolicy::default().ratio,
            breaker_consecutive_failures: BreakerPolicy::default().consecutive_failures,
            breaker_error_rate: BreakerPolicy::default().error_rate,
            breaker_min_calls: BreakerPolicy::default().min_calls,
            breaker_window_ms: millis(BreakerPolicy::default().window),
            breaker_ejection_ms: millis(BreakerPolicy::default().base_ejection),
            breaker_max_ejection_ms: millis(BreakerPolicy::default().max_ejection),
            admin: None,
            metrics: None,
            filters: Vec::new(),
            auth_token: None,
            trace_sample_ratio: 1.0,
        }
    }
}

/// Provider settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
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
    #[serde(with = "by_name")]
    pub compression: Compression,
    /// Payload size from which compression applies.
    pub compression_threshold: usize,
    /// A connection with no inbound traffic and no call running for this long is closed.
    pub idle_timeout_ms: u64,
    /// Calls in flight on one connection; at the limit the server stops reading it.
    pub max_in_flight_per_connection: usize,
    /// Bytes one connection may hold (requests being handled, answers not yet
    /// written); at the limit the server stops reading it.
    pub connection_memory_bytes: usize,
    /// Request bytes (inflated) all handlers together may hold; beyond it requests are
    /// refused `Overloaded` before their body is decompressed or decoded.
    pub memory_budget_bytes: usize,
    /// A connection whose peer accepts no bytes for this long is closed.
    pub write_timeout_ms: u64,
    /// Where handlers run: `adaptive` (a call's first poll on the connection's reader,
    /// the default) or `spawn` (every call its own task); see [`Dispatch`].
    #[serde(with = "by_name")]
    pub dispatch: Dispatch,
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
    /// Address of the admin HTTP listener (`/metrics`, `/health`, `/ready`,
    /// `/services`); none when absent.
    pub admin: Option<String>,
    /// Call metrics; when absent, on exactly when `admin` is set.
    pub metrics: Option<bool>,
    /// Built-in filters around every call, outermost first, by name (`auth`,
    /// `access_log`; see [`crate::filter`]): a list, or in the environment a
    /// comma-separated string (`ERPC_SERVER_FILTERS=auth,access_log`).
    #[serde(deserialize_with = "filter_names")]
    pub filters: Vec<String>,
    /// The shared token of the `auth` filter; a secret, never shown by `Debug`.
    pub auth_token: Option<Secret>,
    /// Share of the traces started here that the `tracing` filter records, 0.0 to
    /// 1.0 (traces continued from a caller follow the caller's decision; see
    /// [`crate::filter::Tracing::sampled`]).
    pub trace_sample_ratio: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:9000".into(),
            advertise: None,
            weight: crate::registry::DEFAULT_WEIGHT,
            max_concurrency: 10_000,
            max_frame_bytes: DEFAULT_MAX_FRAME,
            compression: Compression::None,
            compression_threshold: CompressionPolicy::default().threshold,
            idle_timeout_ms: 60_000,
            max_in_flight_per_connection: 1_024,
            connection_memory_bytes: 64 * 1024 * 1024,
            memory_budget_bytes: 1024 * 1024 * 1024,
            write_timeout_ms: 10_000,
            dispatch: Dispatch::default(),
            drain_timeout_ms: 10_000,
            goaway_grace_ms: 250,
            limits: Vec::new(),
            metadata: Default::default(),
            admin: None,
            metrics: None,
            filters: Vec::new(),
            auth_token: None,
            trace_sample_ratio: 1.0,
        }
    }
}

impl ClientConfig {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The circuit-breaker policy these fields describe.
    pub fn breaker_policy(&self) -> BreakerPolicy {
        BreakerPolicy {
            consecutive_failures: self.breaker_consecutive_failures.max(1),
            error_rate: self.breaker_error_rate,
            min_calls: self.breaker_min_calls,
            window: Duration::from_millis(self.breaker_window_ms.max(1)),
            base_ejection: Duration::from_millis(self.breaker_ejection_ms),
            max_ejection: Duration::from_millis(self.breaker_max_ejection_ms),
        }
    }

    /// Sets every breaker field from `policy`.
    pub fn set_breaker_policy(&mut self, policy: BreakerPolicy) {
        self.breaker_consecutive_failures = policy.consecutive_failures;
        self.breaker_error_rate = policy.error_rate;
        self.breaker_min_calls = policy.min_calls;
        self.breaker_window_ms = millis(policy.window);
        self.breaker_ejection_ms = millis(policy.base_ejection);
        self.breaker_max_ejection_ms = millis(policy.max_ejection);
    }

    /// Whether calls are recorded: `metrics` if set, else whether `admin` is.
    pub fn metrics_enabled(&self) -> bool {
        self.metrics.unwrap_or(self.admin.is_some())
    }

    /// Request compression: algorithm and threshold.
    pub fn compression_policy(&self) -> CompressionPolicy {
        CompressionPolicy {
            algorithm: self.compression,
            threshold: self.compression_threshold,
        }
    }
}

impl ServerConfig {
    /// Whether calls are recorded: `metrics` if set, else whether `admin` is.
    pub fn metrics_enabled(&self) -> bool {
        self.metrics.unwrap_or(self.admin.is_some())
    }

    /// Response compression: algorithm and threshold.
    pub fn compression_policy(&self) -> CompressionPolicy {
        CompressionPolicy {
            algorithm: self.compression,
            threshold: self.compression_threshold,
        }
    }
}

/// A builder's settings: an explicit config or the file and environment, with the
/// builder's own calls applied on top at build time (so they win whatever their order).
pub(crate) struct Layered<C> {
    base: Option<C>,
    edits: Vec<Edit<C>>,
}

/// One builder call's change to the settings.
type Edit<C> = Box<dyn FnOnce(&mut C) + Send>;

impl<C> Default for Layered<C> {
    fn default() -> Self {
        Self {
            base: None,
            edits: Vec::new(),
        }
    }
}

impl<C> Layered<C> {
    /// Starts from `config` instead of the file and environment.
    pub(crate) fn set_base(&mut self, config: C) {
        self.base = Some(config);
    }

    /// Records a builder call.
    pub(crate) fn edit(&mut self, edit: impl FnOnce(&mut C) + Send + 'static) {
        self.edits.push(Box::new(edit));
    }

    /// The settings to build with, and the registry URL of the file or environment
    /// when no explicit config was given; `section` picks the builder's part.
    pub(crate) fn resolve(
        &mut self,
        section: impl FnOnce(Config) -> C,
    ) -> Result<(C, Option<String>), Error> {
        let (mut config, registry) = match self.base.take() {
            Some(config) => (config, None),
            None => {
                let mut loaded = Config::load()?;
                let registry = loaded.registry.take();
                (section(loaded), registry)
            }
        };
        for edit in self.edits.drain(..) {
            edit(&mut config);
        }
        Ok((config, registry))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Serde for settings written by name (`"zstd"`, `"forking:3"`): `Display` out,
/// `FromStr` in.
/// A secret setting (a token, a password): `Debug` shows `<redacted>`, never the value.
///
/// ```
/// let secret = erpc_core::config::Secret::new("s3cret");
/// assert_eq!(secret.expose(), "s3cret");
/// assert!(!format!("{secret:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

/// Filter names from a list or a comma-separated string.
fn filter_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
    }
    let names = match Names::deserialize(d)? {
        Names::List(names) => names,
        Names::Text(text) => text.split(',').map(|s| s.trim().to_string()).collect(),
    };
    Ok(names.into_iter().filter(|n| !n.is_empty()).collect())
}

mod by_name {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let name = String::deserialize(d)?;
        name.parse().map_err(de::Error::custom)
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
    ///
    /// Every field has its variable, named after its path (see [`Config::env_vars`]).
    ///
    /// ```
    /// let mut config = erpc_core::Config::default();
    /// config
    ///     .apply_env(|name| match name {
    ///         "ERPC_CLIENT_TIMEOUT_MS" => Some("250".into()),
    ///         "ERPC_CLIENT_COMPRESSION" => Some("zstd".into()),
    ///         _ => None,
    ///     })
    ///     .unwrap();
    /// assert_eq!(config.client.timeout_ms, 250);
    /// assert_eq!(config.client.compression, erpc_core::Compression::Zstd);
    /// ```
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let mut tree = serde_json::to_value(&*self)
            .map_err(|e| Error::Config(format!("settings do not serialize: {e}")))?;
        for (name, path) in env_paths(&tree) {
            let Some(raw) = var(&name) else { continue };
            tree = with_env_value(&tree, &path, &raw)
                .map_err(|e| Error::Config(format!("{name}={raw:?}: {e}")))?;
        }
        *self = serde_json::from_value(tree)
            .map_err(|e| Error::Config(format!("settings from the environment: {e}")))?;
        self.validate()
    }

    /// The name of every environment variable that sets a field, derived from the
    /// structs: `ERPC_` + the field's path upper-cased and joined with `_`.
    ///
    /// ```
    /// let vars = erpc_core::Config::env_vars();
    /// assert!(vars.iter().any(|v| v == "ERPC_CLIENT_TIMEOUT_MS"));
    /// assert!(vars.iter().any(|v| v == "ERPC_SERVER_GOAWAY_GRACE_MS"));
    /// ```
    pub fn env_vars() -> Vec<String> {
        serde_json::to_value(Config::default())
            .map(|tree| env_paths(&tree).into_iter().map(|(name, _)| name).collect())
            .unwrap_or_default()
    }

    /// Checks what types alone cannot (balancer names, limits of at least one).
    pub fn validate(&self) -> Result<(), Error> {
        crate::balance::by_name(&self.client.balancer)?;
        for (names, token, ratio) in [
            (
                &self.client.filters,
                &self.client.auth_token,
                self.client.trace_sample_ratio,
            ),
            (
                &self.server.filters,
                &self.server.auth_token,
                self.server.trace_sample_ratio,
            ),
        ] {
            let settings = crate::filter::BuiltInSettings {
                auth_token: token.as_ref().map(Secret::expose),
                trace_sample_ratio: ratio,
            };
            for name in names {
                crate::filter::server_filter(name, &settings)?;
            }
        }
        if self.server.max_concurrency == 0 {
            return Err(Error::Config(
                "server.max_concurrency must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Every leaf setting of `tree` (tables `client` and `server`, and top-level values)
/// with its variable name.
fn env_paths(tree: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let Some(top) = tree.as_object() else {
        return out;
    };
    for (key, value) in top {
        match value.as_object() {
            Some(section) => {
                for field in section.keys() {
                    let name = format!("ERPC_{key}_{field}").to_ascii_uppercase();
                    out.push((name, vec![key.clone(), field.clone()]));
                }
            }
            None => out.push((
                format!("ERPC_{key}").to_ascii_uppercase(),
                vec![key.clone()],
            )),
        }
    }
    out
}

/// `tree` with the setting at `path` read from a variable's text: as JSON where that
/// makes a valid setting (numbers, booleans, lists, tables), else as the text itself.
fn with_env_value(tree: &Value, path: &[String], raw: &str) -> Result<Value, String> {
    let text = raw.trim();
    let as_json = serde_json::from_str(text).ok();
    let mut problem = String::from("not a valid value");
    for candidate in as_json.into_iter().chain([Value::String(text.to_string())]) {
        let mut trial = tree.clone();
        let slot = path
            .iter()
            .try_fold(&mut trial, |node, key| node.get_mut(key.as_str()))
            .ok_or("no such setting")?;
        *slot = candidate;
        match serde_json::from_value::<Config>(trial.clone()) {
            Ok(_) => return Ok(trial),
            Err(e) => problem = e.to_string(),
        }
    }
    Err(problem)
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
    fn every_field_has_a_variable_that_reads_back_its_own_value() {
        let vars = Config::env_vars();
        for expected in [
            "ERPC_REGISTRY",
            "ERPC_CLIENT_CLUSTER",
            "ERPC_CLIENT_BREAKER_MAX_EJECTION_MS",
            "ERPC_SERVER_GOAWAY_GRACE_MS",
            "ERPC_SERVER_WRITE_TIMEOUT_MS",
            "ERPC_SERVER_LIMITS",
            "ERPC_SERVER_METADATA",
            "ERPC_SERVER_ADMIN",
            "ERPC_CLIENT_ADMIN",
            "ERPC_SERVER_METRICS",
        ] {
            assert!(vars.iter().any(|v| v == expected), "{expected} missing");
        }
        let tree = serde_json::to_value(Config::default()).unwrap();
        let fields: usize = tree
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_object().map_or(1, |section| section.len()))
            .sum();
        assert_eq!(vars.len(), fields, "one variable per field");
        // A non-default value for every field, given as its variable's text.
        let mut changed = Config {
            registry: Some("static://a:1".into()),
            ..Config::default()
        };
        changed.client.timeout_ms = 7;
        changed.client.serialization = Serialization::Postcard;
        changed.client.cluster = ClusterMode::Forking(3);
        changed.client.balancer = "round_robin".into();
        changed.client.breaker_error_rate = 0.25;
        changed.server.goaway_grace_ms = 9;
        changed.server.advertise = Some("10.0.0.1:9".into());
        changed.server.metadata.insert("zone".into(), "a".into());
        changed.server.admin = Some("127.0.0.1:9100".into());
        changed.server.metrics = Some(false);
        changed.client.admin = Some("0.0.0.0:9101".into());
        changed.client.metrics = Some(true);
        let mut rule = LimitRule::service("a::B");
        rule.max_concurrency = Some(3);
        changed.server.limits.push(rule);
        let texts = serde_json::to_value(&changed).unwrap();
        let mut read = Config::default();
        read.apply_env(|name| {
            let path = env_paths(&texts).into_iter().find(|(n, _)| n == name)?.1;
            let value = path.iter().try_fold(&texts, |node, key| node.get(key))?;
            Some(match value {
                Value::String(text) => text.clone(),
                Value::Null => return None,
                other => other.to_string(),
            })
        })
        .unwrap();
        assert_eq!(read, changed);
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
