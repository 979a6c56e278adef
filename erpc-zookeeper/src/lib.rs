//! ZooKeeper registry for erpc, in Dubbo's ZooKeeper layout.
//!
//! [`ZookeeperRegistry`] implements [`erpc_core::registry::Registry`]:
//!
//! - **register** creates the EPHEMERAL node
//!   `{root}/{interface}/providers/{url-encoded provider URL}` (root `/dubbo` by
//!   default), the URL being `erpc://host:port/{interface}?group=..&version=..&weight=..`
//!   plus every metadata pair (`protocol=erpc`, `serialization`, `methods`, ...). The
//!   persistent parents are created as needed; two providers creating the same parent
//!   at once is fine. Ephemeral, unlike the Java designs erpc descends from: a provider
//!   that crashes disappears when ZooKeeper expires its session.
//! - **deregister** deletes the node at once (servers call it before draining).
//! - **subscribe** lists the providers directory with a watch, streams each change and
//!   re-arms the watch after every event. Nodes of other protocols (Java Dubbo
//!   `dubbo://` providers share the directory) and of other groups or versions are left
//!   out. While ZooKeeper is unreachable the stream emits nothing, so consumers keep
//!   calling their last list.
//! - **sessions**: one session per registry (shared by its clones). When it expires
//!   (the provider was cut off longer than the session timeout, or the ensemble lost
//!   it), a new session is opened and every registered node is created again, without
//!   the server's help.
//!
//! ```no_run
//! # async fn demo() -> Result<(), erpc_core::Error> {
//! use erpc_core::registry::{Provider, Registration, Registry};
//! use erpc_core::ServiceKey;
//! use futures::StreamExt;
//!
//! let registry = erpc_zookeeper::ZookeeperRegistry::from_url("zookeeper://127.0.0.1:2181?session_timeout_ms=6000")?;
//! let key = ServiceKey::new("demo.HelloService", "test1", "1.0");
//! registry.register(&Registration { key: key.clone(), provider: Provider::new("10.0.0.5:9000") }).await?;
//! let mut changes = registry.subscribe(&key).await?;
//! let first = changes.next().await.expect("the first item is the current list");
//! println!("providers: {:?}", first.all);
//! # Ok(()) }
//! ```
//!
//! ## Why `zookeeper-client`
//! Of the ZooKeeper clients on crates.io, [`zookeeper-client`](https://docs.rs/zookeeper-client)
//! (0.11) is the one that fits: async and runtime-agnostic (its `tokio` feature), written
//! from scratch against the 3.5+ protocol (multi, persistent watches, TLS, SASL), with
//! explicit session states ([`zookeeper_client::SessionState`]: `Disconnected` is
//! recoverable, `Expired` is terminal) and one-shot watches that the client re-arms by
//! itself after a reconnect — exactly the events a registry must act on. The others:
//! `zookeeper` (rust-zookeeper) is blocking, built on its own threads and callbacks;
//! `zookeeper-async` is that code made async, with the same catch-all watcher design;
//! `tokio-zookeeper` is an early experiment (tokio only, a small part of the API). The
//! registry keeps the client's types out of its public API except as error sources.

#![forbid(unsafe_code)]

mod config;
mod error;
mod layout;
mod session;
mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use erpc_core::registry::{ChangeStream, Registration, Registry};
use erpc_core::ServiceKey;

pub use config::{ZookeeperConfig, DEFAULT_ROOT, DEFAULT_SESSION_TIMEOUT};
pub use error::ZookeeperError;

use session::Session;

/// A [`Registry`] backed by one ZooKeeper ensemble.
///
/// Cloning is cheap and shares the session. When the last clone (and every stream it
/// opened) is dropped, the session closes and ZooKeeper deletes its provider nodes at
/// once; call [`Registry::deregister`] to remove one while running.
#[derive(Clone)]
pub struct ZookeeperRegistry {
    session: Arc<Session>,
}

impl std::fmt::Debug for ZookeeperRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZookeeperRegistry")
            .field("servers", &self.session.config.servers)
            .field("root", &self.session.config.root)
            .finish_non_exhaustive()
    }
}

impl ZookeeperRegistry {
    /// Opens a registry from `zookeeper://h1:2181,h2:2181?root=/dubbo&session_timeout_ms=..`
    /// (see [`ZookeeperConfig::from_url`]). Nothing is sent until the first operation.
    ///
    /// ```
    /// let registry = erpc_zookeeper::ZookeeperRegistry::from_url("zookeeper://10.0.0.1:2181,10.0.0.2:2181?root=/erpc").unwrap();
    /// assert_eq!(registry.config().root, "/erpc");
    /// assert!(erpc_zookeeper::ZookeeperRegistry::from_url("zookeeper://no-port").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, ZookeeperError> {
        Ok(Self::new(ZookeeperConfig::from_url(url)?))
    }

    /// Opens a registry with `config`.
    pub fn new(config: ZookeeperConfig) -> Self {
        Self {
            session: Arc::new(Session::new(config)),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ZookeeperConfig {
        &self.session.config
    }

    /// Creates the provider node of `registration` and keeps it across sessions.
    pub async fn register_provider(
        &self,
        registration: &Registration,
    ) -> Result<(), ZookeeperError> {
        let path = self.node_path(registration)?;
        self.session.register(path.clone()).await?;
        tracing::debug!(%path, "registered with ZooKeeper");
        Ok(())
    }

    /// Deletes the provider node of `registration`.
    pub async fn deregister_provider(
        &self,
        registration: &Registration,
    ) -> Result<(), ZookeeperError> {
        let path = self.node_path(registration)?;
        self.session.deregister(&path).await?;
        tracing::debug!(%path, "deregistered from ZooKeeper");
        Ok(())
    }

    /// Every erpc service that has providers now: the interfaces under the root, with
    /// the group and version of each erpc provider node (nodes of other protocols are
    /// left out), sorted.
    pub async fn services(&self) -> Result<Vec<ServiceKey>, ZookeeperError> {
        let session = &self.session;
        let client = session.client().await?;
        let root = if session.config.root.is_empty() {
            "/"
        } else {
            session.config.root.as_str()
        };
        let interfaces = match session
            .bounded("list children", root, client.list_children(root))
            .await
        {
            Ok(interfaces) => interfaces,
            Err(ZookeeperError::Operation {
                source: zookeeper_client::Error::NoNode,
                ..
            }) => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut keys = std::collections::BTreeSet::new();
        for interface in interfaces {
            let dir = format!("{}/{interface}/providers", session.config.root);
            let nodes = match session
                .bounded("list children", &dir, client.list_children(&dir))
                .await
            {
                Ok(nodes) => nodes,
                Err(ZookeeperError::Operation {
                    source: zookeeper_client::Error::NoNode,
                    ..
                }) => continue,
                Err(error) => return Err(error),
            };
            keys.extend(
                nodes
                    .iter()
                    .filter_map(|node| layout::provider_key(node, &interface)),
            );
        }
        Ok(keys.into_iter().collect())
    }

    /// The ZooKeeper path of `registration`'s provider node.
    ///
    /// ```
    /// use erpc_core::registry::{Provider, Registration};
    /// use erpc_core::ServiceKey;
    ///
    /// let registry = erpc_zookeeper::ZookeeperRegistry::from_url("zookeeper://127.0.0.1:2181").unwrap();
    /// let registration = Registration {
    ///     key: ServiceKey::new("demo.Hello", "g", "1.0"),
    ///     provider: Provider::new("10.0.0.5:9000"),
    /// };
    /// let path = registry.node_path(&registration).unwrap();
    /// assert!(path.starts_with("/dubbo/demo.Hello/providers/erpc%3A%2F%2F10.0.0.5%3A9000%2Fdemo.Hello%3F"), "{path}");
    /// ```
    pub fn node_path(&self, registration: &Registration) -> Result<String, ZookeeperError> {
        let dir = layout::providers_dir(&self.session.config.root, &registration.key)?;
        Ok(format!("{dir}/{}", layout::provider_node(registration)?))
    }

    /// The ZooKeeper path of the directory holding `key`'s providers:
    /// `{root}/{interface}/providers`.
    pub fn providers_path(&self, key: &ServiceKey) -> Result<String, ZookeeperError> {
        layout::providers_dir(&self.session.config.root, key)
    }
}

#[async_trait]
impl Registry for ZookeeperRegistry {
    async fn register(&self, registration: &Registration) -> Result<(), erpc_core::Error> {
        Ok(self.register_provider(registration).await?)
    }

    async fn deregister(&self, registration: &Registration) -> Result<(), erpc_core::Error> {
        Ok(self.deregister_provider(registration).await?)
    }

    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, erpc_core::Error> {
        let dir = self.providers_path(key)?;
        Ok(watch::subscribe(self.session.clone(), key.clone(), dir).await?)
    }
}
