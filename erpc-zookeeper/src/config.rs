//! `zookeeper://h1:2181,h2:2181?root=/dubbo&session_timeout_ms=..` parsed.

use std::time::Duration;

use crate::ZookeeperError;

/// Root of the Dubbo layout when the URL names none.
pub const DEFAULT_ROOT: &str = "/dubbo";
/// Session timeout asked of the ensemble when the URL names none (the server clamps it
/// to its `minSessionTimeout`..`maxSessionTimeout`, by default 2 to 20 ticks).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the ensemble is and how to talk to it.
#[derive(Debug, Clone, PartialEq)]
pub struct ZookeeperConfig {
    /// `host:port` of every ensemble member.
    pub servers: Vec<String>,
    /// Root node of the layout (`/dubbo`): providers live under
    /// `{root}/{interface}/providers/`.
    pub root: String,
    /// Session timeout asked of the ensemble: how long after a crash a provider's nodes
    /// stay, and how long an outage a session survives.
    pub session_timeout: Duration,
    /// How long one connection attempt to a server may take (the client's default when
    /// `None`).
    pub connection_timeout: Option<Duration>,
}

impl ZookeeperConfig {
    /// Parses `zookeeper://h1:2181,h2:2181?root=/dubbo&session_timeout_ms=..&connection_timeout_ms=..`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use erpc_zookeeper::ZookeeperConfig;
    ///
    /// let config = ZookeeperConfig::from_url("zookeeper://10.0.0.1:2181,10.0.0.2:2181?session_timeout_ms=4000").unwrap();
    /// assert_eq!(config.servers, ["10.0.0.1:2181", "10.0.0.2:2181"]);
    /// assert_eq!(config.root, "/dubbo");
    /// assert_eq!(config.session_timeout, Duration::from_secs(4));
    ///
    /// assert!(ZookeeperConfig::from_url("zookeeper://h:2181?root=relative").is_err());
    /// assert!(ZookeeperConfig::from_url("zookeeper://h:2181?sesion_timeout_ms=1").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ZookeeperError> {
        let shown = || {
            erpc_core::registry::redact_url(
                url,
                &["root", "session_timeout_ms", "connection_timeout_ms"],
            )
        };
        let rest = url.strip_prefix("zookeeper://").ok_or_else(|| {
            ZookeeperError::config(shown(), "expected zookeeper://host:port[,host:port...]")
        })?;
        let (hosts, query) = match rest.split_once('?') {
            Some((hosts, query)) => (hosts, query),
            None => (rest, ""),
        };
        let hosts = hosts.trim_end_matches('/');
        if hosts.contains('@') {
            return Err(ZookeeperError::config(
                shown(),
                "credentials in the URL are not supported",
            ));
        }
        let mut servers = Vec::new();
        for host in hosts.split(',') {
            let valid = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ZookeeperError::config(
                    shown(),
                    format!("server {host:?} is not host:port"),
                ));
            }
            servers.push(host.to_string());
        }
        let mut config = ZookeeperConfig {
            servers,
            root: DEFAULT_ROOT.to_string(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connection_timeout: None,
        };
        let millis = |key: &str, value: &str| {
            value
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ZookeeperError::config(
                        shown(),
                        format!("{key} must be a positive number of milliseconds"),
                    )
                })
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "root" => config.root = normalize_root(&value).ok_or_else(|| {
                    ZookeeperError::config(shown(), "root must be an absolute path such as /dubbo")
                })?,
                "session_timeout_ms" => config.session_timeout = millis(&key, &value)?,
                "connection_timeout_ms" => config.connection_timeout = Some(millis(&key, &value)?),
                other => {
                    return Err(ZookeeperError::config(
                        shown(),
                        format!("unknown parameter {other:?} (known: root, session_timeout_ms, connection_timeout_ms)"),
                    ))
                }
            }
        }
        Ok(config)
    }

    /// The connect string of the client: `h1:2181,h2:2181`.
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }
}

/// `/dubbo/` → `/dubbo`, `/` → `` (nodes directly under the ZooKeeper root).
fn normalize_root(root: &str) -> Option<String> {
    let trimmed = root.trim_end_matches('/');
    let valid = root.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
    valid.then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_hosts() {
        let config =
            ZookeeperConfig::from_url("zookeeper://a:1/?root=/x/y/&connection_timeout_ms=500")
                .unwrap();
        assert_eq!(config.root, "/x/y");
        assert_eq!(config.connection_timeout, Some(Duration::from_millis(500)));
        assert_eq!(config.connect_string(), "a:1");
        assert_eq!(
            ZookeeperConfig::from_url("zookeeper://a:1?root=/")
                .unwrap()
                .root,
            ""
        );
        for bad in [
            "zk://a:1",
            "zookeeper://",
            "zookeeper://a",
            "zookeeper://a:0",
            "zookeeper://a:1,,b:2",
            "zookeeper://a:1?root=/x/../y",
            "zookeeper://a:1?session_timeout_ms=0",
            "zookeeper://u:pw@a:1",
        ] {
            assert!(ZookeeperConfig::from_url(bad).is_err(), "{bad}");
        }
        let error = ZookeeperConfig::from_url("zookeeper://u:S3cret@a:1").unwrap_err();
        assert!(!error.to_string().contains("S3cret"), "{error}");
    }
}
