//! Cluster modes: what a call does when its provider fails (Dubbo's cluster strategies).

use std::str::FromStr;

use crate::Error;

/// Failure handling across providers.
///
/// Whatever the mode, a call is only ever sent again if that cannot run it twice: the
/// method is idempotent (`#[erpc(idempotent)]` or client configuration), or the failure
/// proves the request never reached a provider's handler (connect refused, goaway,
/// overloaded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterMode {
    /// Retry on another provider, up to the configured retries (default).
    #[default]
    Failover,
    /// One attempt; any failure is returned at once.
    Failfast,
    /// Like failfast, but a failure of a method returning `()` or `Option<T>` is logged
    /// and answered with `()` / `None` (Dubbo's failsafe returns null). Other return
    /// types still get the error: there is no value to invent.
    Failsafe,
    /// Send an idempotent call to this many providers at once; the first success wins
    /// and the others are cancelled. Each copy after the first is paid from the retry
    /// budget (fewer copies go out when it is spent). A non-idempotent call is refused
    /// with [`Error::Config`], and forking cannot be a client's default mode: set it on
    /// handles of idempotent methods.
    Forking(usize),
}

impl ClusterMode {
    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Failover => "failover",
            Self::Failfast => "failfast",
            Self::Failsafe => "failsafe",
            Self::Forking(_) => "forking",
        }
    }
}

impl std::fmt::Display for ClusterMode {
    /// The name [`FromStr`] reads back: `failover`, ..., `forking:N`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Forking(n) => write!(f, "forking:{n}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for ClusterMode {
    type Err = Error;

    /// `failover`, `failfast`, `failsafe`, `forking` (2 providers) or `forking:N`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "failover" => Ok(Self::Failover),
            "failfast" => Ok(Self::Failfast),
            "failsafe" => Ok(Self::Failsafe),
            "forking" => Ok(Self::Forking(2)),
            other => match other.strip_prefix("forking:").map(str::parse::<usize>) {
                Some(Ok(n)) if n >= 1 => Ok(Self::Forking(n)),
                _ => Err(Error::Config(format!(
                    "unknown cluster mode {s:?} (failover, failfast, failsafe, forking, forking:N)"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(
            "Failover".parse::<ClusterMode>().unwrap(),
            ClusterMode::Failover
        );
        assert_eq!(
            "forking".parse::<ClusterMode>().unwrap(),
            ClusterMode::Forking(2)
        );
        assert_eq!(
            "forking:3".parse::<ClusterMode>().unwrap(),
            ClusterMode::Forking(3)
        );
        for bad in ["forking:0", "forking:x", "broadcast"] {
            assert!(bad.parse::<ClusterMode>().is_err(), "{bad}");
        }
    }
}
