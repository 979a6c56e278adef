//! The error type of the ZooKeeper registry.

use std::time::Duration;

/// Everything that can go wrong talking to ZooKeeper, with the context to act on it.
///
/// At the [`erpc_core::registry::Registry`] boundary every variant becomes
/// [`erpc_core::Error::Registry`] with this message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZookeeperError {
    /// The `zookeeper://` URL or a configuration value could not be used.
    #[error("invalid ZooKeeper configuration {input:?}: {reason}")]
    Config {
        /// The URL or value given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No session could be established with the ensemble.
    #[error("cannot connect to ZooKeeper at {servers}: {source}")]
    Connect {
        /// The connect string tried.
        servers: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A ZooKeeper operation failed.
    #[error("ZooKeeper {operation} {path}: {source}")]
    Operation {
        /// What was attempted (`create`, `delete`, `list children`, ...).
        operation: &'static str,
        /// The node it was attempted on.
        path: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A ZooKeeper operation got no answer in time (the ensemble is unreachable or has
    /// no quorum).
    #[error("ZooKeeper {operation} {path}: no answer within {after:?}")]
    Timeout {
        /// What was attempted.
        operation: &'static str,
        /// The node it was attempted on.
        path: String,
        /// How long it waited.
        after: Duration,
    },
    /// A service key or provider address cannot be written in the Dubbo layout.
    #[error("{value:?} cannot be stored in ZooKeeper: {reason}")]
    Layout {
        /// The offending value.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl ZookeeperError {
    pub(crate) fn config(input: impl Into<String>, reason: impl Into<String>) -> Self {
        ZookeeperError::Config {
            input: input.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn op<'a>(
        operation: &'static str,
        path: &'a str,
    ) -> impl FnOnce(zookeeper_client::Error) -> Self + 'a {
        move |source| ZookeeperError::Operation {
            operation,
            path: path.to_string(),
            source,
        }
    }
}

impl From<ZookeeperError> for erpc_core::Error {
    fn from(error: ZookeeperError) -> Self {
        erpc_core::Error::Registry(error.to_string())
    }
}
