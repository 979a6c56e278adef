//! Configuration of the Nacos registry and its `nacos://` URL form.

use std::path::PathBuf;
use std::time::Duration;

use crate::{NacosError, Secret};

/// Nacos's default namespace id.
pub const DEFAULT_NAMESPACE: &str = "public";
/// Nacos's default group.
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
/// Nacos's default cluster.
pub const DEFAULT_CLUSTER: &str = "DEFAULT";

/// Which Nacos HTTP API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApiVersion {
    /// Probe the server: the 3.x v3 client API when it answers, v1 otherwise.
    #[default]
    Auto,
    /// The v1 open API (`/nacos/v1/ns/...`): rnacos, Nacos 1.x/2.x, and 3.x in compatibility mode.
    V1,
    /// The Nacos 3.x client API (`/nacos/v3/client/ns/...`).
    V3,
}

/// Settings of a [`NacosRegistry`](crate::NacosRegistry).
///
/// Build it from a URL with [`NacosConfig::from_url`] or from addresses with
/// [`NacosConfig::new`] and the chained setters:
///
/// ```
/// use std::time::Duration;
/// use erpc_nacos::NacosConfig;
///
/// let config = NacosConfig::new(["10.0.0.1:8848", "10.0.0.2:8848"])
///     .namespace("dev")
///     .group("ERPC")
///     .credentials("nacos", "secret")
///     .poll_interval(Duration::from_millis(300));
/// assert_eq!(config.servers.len(), 2);
/// assert_eq!(config.group, "ERPC");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NacosConfig {
    /// Server addresses (`host:port`), tried in order; the one that answered is kept.
    pub servers: Vec<String>,
    /// Namespace id (default `public`; an empty string means the default too).
    pub namespace: String,
    /// Nacos group of registered and watched services (default `DEFAULT_GROUP`).
    pub group: String,
    /// Nacos cluster of registered instances (default `DEFAULT`).
    pub cluster: String,
    /// Username for `POST /nacos/v1/auth/login`; no login when `None`.
    pub username: Option<String>,
    /// Password for the login (never shown by `Debug` or in errors).
    pub password: Option<Secret>,
    /// API line to use (default: probe).
    pub api: ApiVersion,
    /// Mean interval between two polls of a subscribed service's list (±20 % jitter).
    pub poll_interval: Duration,
    /// Heartbeat interval until the server states its own (`clientBeatInterval`).
    pub beat_interval: Duration,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Directory for the last known provider list of each service; none when `None`.
    pub cache_dir: Option<PathBuf>,
    /// Context path of the server (default `/nacos`).
    pub context_path: String,
    /// Speak HTTPS instead of HTTP.
    pub tls: bool,
}

impl Default for NacosConfig {
    fn default() -> Self {
        Self {
            servers: vec!["127.0.0.1:8848".to_string()],
            namespace: DEFAULT_NAMESPACE.to_string(),
            group: DEFAULT_GROUP.to_string(),
            cluster: DEFAULT_CLUSTER.to_string(),
            username: None,
            password: None,
            api: ApiVersion::Auto,
            poll_interval: Duration::from_millis(500),
            beat_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(3),
            cache_dir: None,
            context_path: "/nacos".to_string(),
            tls: false,
        }
    }
}

impl NacosConfig {
    /// Defaults, with the given server addresses.
    pub fn new<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            servers: servers.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the namespace id.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the Nacos group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Sets the Nacos cluster of registered instances.
    pub fn cluster(mut self, cluster: impl Into<String>) -> Self {
        self.cluster = cluster.into();
        self
    }

    /// Sets username and password for the login.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<Secret>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets the API line.
    pub fn api(mut self, api: ApiVersion) -> Self {
        self.api = api;
        self
    }

    /// Sets the mean polling interval of subscriptions.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the heartbeat interval used until the server states one.
    pub fn beat_interval(mut self, interval: Duration) -> Self {
        self.beat_interval = interval;
        self
    }

    /// Sets the timeout of one HTTP request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Keeps the last provider list of each service under `dir`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Parses `nacos://[user:pass@]h1:8848[,h2:8848][/context]?key=value&...`.
    ///
    /// Keys: `namespace`, `group`, `cluster`, `username`, `password`, `api`
    /// (`auto`, `v1`, `v3`), `poll_interval_ms`, `beat_interval_ms`, `timeout_ms`,
    /// `cache_dir`, `context_path`, `tls` (`true` for HTTPS). Values are percent-decoded.
    ///
    /// ```
    /// use erpc_nacos::NacosConfig;
    ///
    /// let c = NacosConfig::from_url("nacos://h1:8848,h2:8848?namespace=dev&username=u&password=p%40ss").unwrap();
    /// assert_eq!(c.servers, ["h1:8848", "h2:8848"]);
    /// assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("p@ss"));
    /// // Errors and `Debug` output leave the password out.
    /// assert!(!format!("{c:?}").contains("p@ss"));
    /// let error = NacosConfig::from_url("nacos://u:p%40ss@h1?password=p%40ss").unwrap_err();
    /// assert!(!error.to_string().contains("p%40ss"));
    /// ```
    pub fn from_url(url: &str) -> Result<Self, NacosError> {
        // Errors show the URL without its password and the values of unknown parameters
        // (a misspelt `password=` must not end up in a log either).
        let shown = &erpc_core::registry::redact_url(url, SHOWN_PARAMETERS);
        let rest = url
            .strip_prefix("nacos://")
            .ok_or_else(|| NacosError::config(shown, "expected a nacos:// URL"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        // User info ends at the last `@`, so that a password holding `/` is not mistaken
        // for the start of the context path.
        let mut config = Self::default();
        let location = match location.rsplit_once('@') {
            Some((userinfo, location)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                config.username = Some(decode(user));
                config.password = Some(Secret::new(decode(pass)));
                location
            }
            None => location,
        };
        let (hosts, path) = match location.find('/') {
            Some(i) => (&location[..i], &location[i..]),
            None => (location, ""),
        };
        config.servers = hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| normalize_server(shown, h))
            .collect::<Result<_, _>>()?;
        if config.servers.is_empty() {
            return Err(NacosError::config(shown, "no server address"));
        }
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            config.context_path = path.to_string();
        }
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            config.set(shown, &key, value.into_owned())?;
        }
        config.validate()?;
        Ok(config)
    }

    fn set(&mut self, url: &str, key: &str, value: String) -> Result<(), NacosError> {
        let millis = |value: &str| {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| {
                    NacosError::config(
                        url,
                        format!("{key}={value:?} is not a number of milliseconds"),
                    )
                })
        };
        match key {
            "namespace" | "namespaceId" => self.namespace = value,
            "group" | "groupName" => self.group = value,
            "cluster" | "clusterName" => self.cluster = value,
            "username" => self.username = Some(value),
            "password" => self.password = Some(Secret::new(value)),
            "api" => {
                self.api = match value.to_ascii_lowercase().as_str() {
                    "auto" | "" => ApiVersion::Auto,
                    "v1" => ApiVersion::V1,
                    "v3" => ApiVersion::V3,
                    _ => {
                        return Err(NacosError::config(
                            url,
                            format!("api={value:?}: expected auto, v1 or v3"),
                        ))
                    }
                }
            }
            "poll_interval_ms" => self.poll_interval = millis(&value)?,
            "beat_interval_ms" => self.beat_interval = millis(&value)?,
            "timeout_ms" => self.request_timeout = millis(&value)?,
            "cache_dir" => self.cache_dir = Some(PathBuf::from(value)),
            "context_path" => self.context_path = value,
            "tls" => {
                self.tls = value.parse().map_err(|_| {
                    NacosError::config(url, format!("tls={value:?}: expected true or false"))
                })?
            }
            other => {
                return Err(NacosError::config(
                    url,
                    format!("unknown parameter {other:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks values that would only fail later, on the wire.
    pub(crate) fn validate(&self) -> Result<(), NacosError> {
        let input = format!("{self:?}");
        if self.servers.is_empty() {
            return Err(NacosError::config(input, "no server address"));
        }
        let group_ok = self
            .group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
        if !group_ok {
            return Err(NacosError::config(
                &self.group,
                "group may hold only a-z A-Z 0-9 - _ : .",
            ));
        }
        if self.poll_interval.is_zero()
            || self.beat_interval.is_zero()
            || self.request_timeout.is_zero()
        {
            return Err(NacosError::config(
                input,
                "intervals and timeouts must be positive",
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(NacosError::config(
                input,
                "username and password go together",
            ));
        }
        Ok(())
    }

    /// True when the namespace is Nacos's default (`public` or empty).
    pub(crate) fn default_namespace(&self) -> bool {
        self.namespace.is_empty() || self.namespace == DEFAULT_NAMESPACE
    }
}

/// Query parameters whose values may appear in error messages (all but `password`).
const SHOWN_PARAMETERS: &[&str] = &[
    "namespace",
    "namespaceId",
    "group",
    "groupName",
    "cluster",
    "clusterName",
    "username",
    "api",
    "poll_interval_ms",
    "beat_interval_ms",
    "timeout_ms",
    "cache_dir",
    "context_path",
    "tls",
];

/// Checks that `server` is `host:port`.
fn normalize_server(url: &str, server: &str) -> Result<String, NacosError> {
    let port_ok = server
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(NacosError::config(
            url,
            format!("{server:?} is not host:port"),
        ));
    }
    Ok(server.to_string())
}

fn decode(value: &str) -> String {
    form_urlencoded::parse(format!("x={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let c = NacosConfig::from_url(
            "nacos://h1:8848,h2:8849?namespace=dev&group=G1&username=nacos&password=a%26b&api=v3&poll_interval_ms=200&beat_interval_ms=1000&timeout_ms=700&cache_dir=/tmp/x&cluster=C",
        )
        .unwrap();
        assert_eq!(c.servers, ["h1:8848", "h2:8849"]);
        assert_eq!(c.namespace, "dev");
        assert_eq!(c.group, "G1");
        assert_eq!(c.cluster, "C");
        assert_eq!(c.username.as_deref(), Some("nacos"));
        assert_eq!(c.password, Some(Secret::from("a&b")));
        assert_eq!(c.api, ApiVersion::V3);
        assert_eq!(c.poll_interval, Duration::from_millis(200));
        assert_eq!(c.beat_interval, Duration::from_secs(1));
        assert_eq!(c.request_timeout, Duration::from_millis(700));
        assert_eq!(c.cache_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn defaults() {
        let c = NacosConfig::from_url("nacos://127.0.0.1:8848").unwrap();
        assert_eq!(c, NacosConfig::default());
        assert!(c.default_namespace());
        assert!(NacosConfig::default().namespace("").default_namespace());
        assert!(!NacosConfig::default().namespace("dev").default_namespace());
    }

    #[test]
    fn userinfo_context_path_and_tls() {
        let c =
            NacosConfig::from_url("nacos://u:p%3Aq@a:1,[::1]:2/custom/?group=X&tls=true").unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password, Some(Secret::from("p:q")));
        assert_eq!(c.servers, ["a:1", "[::1]:2"]);
        assert_eq!(c.context_path, "/custom");
        assert!(c.tls);
        let c = NacosConfig::from_url("nacos://u:p/q@a:1/ctx").unwrap();
        assert_eq!(c.password, Some(Secret::from("p/q")));
        assert_eq!(
            (c.servers[0].as_str(), c.context_path.as_str()),
            ("a:1", "/ctx")
        );
    }

    /// Every way a configuration shows itself (Debug, validation errors, URL errors in
    /// Display and Debug, and as the core error) leaves the password out.
    #[test]
    fn secrets_never_show_in_debug_or_errors() {
        const SECRET: &str = "S3cret";
        let config = NacosConfig::new(["h:1"]).credentials("nacos", SECRET);
        let mut shown = vec![format!("{config:?}"), format!("{config:#?}")];
        let invalid = [
            config.clone().poll_interval(Duration::ZERO),
            NacosConfig {
                servers: Vec::new(),
                ..config.clone()
            },
            NacosConfig {
                username: None,
                ..config.clone()
            },
        ];
        let mut errors: Vec<NacosError> = invalid
            .iter()
            .map(|c| c.validate().expect_err("invalid"))
            .collect();
        for url in [
            "nacos://nacos:S3cret-pw@h",
            "nacos://nacos:S3cret-pw@h:1?bogus=1",
            "nacos://nacos:S3cret-pw@h:1?api=v9",
            "nacos://nacos:S3cret-pw@h:1?poll_interval_ms=0",
            "nacos://nacos:S3cret-pw@h:1?group=a%20b",
            "nacos://h:1?password=S3cret-pw&tls=maybe",
            "nacos://h:1?password=S3cret-pw&timeout_ms=soon",
            "nacos://h:1?password=S3cret-pw",
            "nacos://h:1?pasword=S3cret-pw",
            "nacos://h:1?username=nacos&passwd=S3cret-pw",
            "nacos://h?username=nacos&password=S3cret-pw",
            "nacos://nacos:S3cret/pw@h",
        ] {
            errors.push(NacosConfig::from_url(url).expect_err(url));
        }
        for error in errors {
            shown.push(error.to_string());
            shown.push(format!("{error:?}"));
            let core = erpc_core::Error::from(error);
            shown.push(core.to_string());
            shown.push(format!("{core:?}"));
        }
        for text in shown {
            assert!(!text.contains(SECRET), "the password shows in: {text}");
        }
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://h:1",
            "nacos://",
            "nacos://h",
            "nacos://h:notaport",
            "nacos://h:1?bogus=1",
            "nacos://h:1?api=v2",
            "nacos://h:1?poll_interval_ms=soon",
            "nacos://h:1?poll_interval_ms=0",
            "nacos://h:1?group=a%20b",
            "nacos://h:1?username=only",
            "nacos://h:1?tls=maybe",
        ] {
            let err = NacosConfig::from_url(bad).unwrap_err();
            assert!(matches!(err, NacosError::Config { .. }), "{bad}: {err}");
        }
    }
}
