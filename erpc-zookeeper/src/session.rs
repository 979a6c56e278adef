//! One ZooKeeper session shared by a registry's clones, replaced when it expires, and
//! the provider nodes it owns, re-created on every new session.
//!
//! The client reconnects within a session by itself (and re-arms watches). A session
//! ends for good when the ensemble expires it (the provider was unreachable for longer
//! than the session timeout) or the client gives up reconnecting; its EPHEMERAL nodes
//! are then gone. A supervisor task per session notices, opens a new session and
//! re-creates every registered node; it also checks them after each reconnect.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zookeeper_client::{Acls, Client, CreateMode, SessionState, StateWatcher};

use crate::{ZookeeperConfig, ZookeeperError};

/// First delay between failed attempts; doubles up to [`MAX_BACKOFF`].
pub(crate) const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between failed attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(3);

pub(crate) struct Session {
    pub(crate) config: ZookeeperConfig,
    current: tokio::sync::Mutex<Option<Client>>,
    /// Paths of the provider nodes this registry keeps.
    registrations: parking_lot::Mutex<BTreeSet<String>>,
    /// Serialises node writes, so a re-creation cannot undo a deregistration.
    writes: tokio::sync::Mutex<()>,
    /// Cancelled when the registry is dropped: ends the supervisor tasks.
    closed: CancellationToken,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl Session {
    pub(crate) fn new(config: ZookeeperConfig) -> Self {
        Self {
            config,
            current: tokio::sync::Mutex::new(None),
            registrations: parking_lot::Mutex::new(BTreeSet::new()),
            writes: tokio::sync::Mutex::new(()),
            closed: CancellationToken::new(),
        }
    }

    /// How long one operation may wait for an answer.
    pub(crate) fn op_timeout(&self) -> Duration {
        self.config.session_timeout.max(Duration::from_secs(2))
    }

    /// Runs `op` on `path` within [`Self::op_timeout`].
    pub(crate) async fn bounded<T>(
        &self,
        operation: &'static str,
        path: &str,
        op: impl Future<Output = Result<T, zookeeper_client::Error>>,
    ) -> Result<T, ZookeeperError> {
        let after = self.op_timeout();
        match tokio::time::timeout(after, op).await {
            Ok(result) => result.map_err(ZookeeperError::op(operation, path)),
            Err(_) => Err(ZookeeperError::Timeout {
                operation,
                path: path.to_string(),
                after,
            }),
        }
    }

    /// The live session's client, opening a new session when there is none or the last
    /// one ended.
    ///
    /// Boxed: it spawns the session's supervisor, which calls it again.
    pub(crate) fn client(
        self: &Arc<Self>,
    ) -> futures::future::BoxFuture<'_, Result<Client, ZookeeperError>> {
        Box::pin(self.open())
    }

    async fn open(self: &Arc<Self>) -> Result<Client, ZookeeperError> {
        let mut current = self.current.lock().await;
        if let Some(client) = current.as_ref() {
            if !client.state().is_terminated() {
                return Ok(client.clone());
            }
        }
        let client = self.connect().await?;
        let replaced = current.replace(client.clone()).is_some();
        drop(current);
        tracing::info!(session = %client.session_id(), timeout = ?client.session_timeout(), replaced, "ZooKeeper session established");
        tokio::spawn(supervise(
            Arc::downgrade(self),
            client.state_watcher(),
            self.closed.clone(),
        ));
        Ok(client)
    }

    /// Opens a new session, trying every server in turn with backoff for up to
    /// [`Self::op_timeout`] (a server that is starting refuses sessions for a moment).
    async fn connect(&self) -> Result<Client, ZookeeperError> {
        let servers = self.config.connect_string();
        let mut connector = Client::connector()
            .with_session_timeout(self.config.session_timeout)
            .with_fail_eagerly();
        if let Some(timeout) = self.config.connection_timeout {
            connector = connector.with_connection_timeout(timeout);
        }
        let deadline = tokio::time::Instant::now() + self.op_timeout();
        let mut backoff = MIN_BACKOFF;
        loop {
            let attempt = connector.clone().connect(&servers);
            let error = match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(client)) => return Ok(client),
                Ok(Err(source)) => source,
                Err(_) => zookeeper_client::Error::Timeout,
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(ZookeeperError::Connect {
                    servers,
                    source: error,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Creates the EPHEMERAL node `path` (parents as needed) and keeps it across sessions.
    pub(crate) async fn register(self: &Arc<Self>, path: String) -> Result<(), ZookeeperError> {
        let _writes = self.writes.lock().await;
        self.registrations.lock().insert(path.clone());
        let client = self.client().await?;
        self.ensure_node(&client, &path).await
    }

    /// Forgets `path` and deletes its node.
    pub(crate) async fn deregister(self: &Arc<Self>, path: &str) -> Result<(), ZookeeperError> {
        let _writes = self.writes.lock().await;
        self.registrations.lock().remove(path);
        let client = self.client().await?;
        match self
            .bounded("delete", path, client.delete(path, None))
            .await
        {
            Ok(()) => Ok(()),
            Err(ZookeeperError::Operation {
                source: zookeeper_client::Error::NoNode,
                ..
            }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Creates the persistent directory `path` and its parents; nodes that exist already
    /// (another provider made them first) are fine.
    pub(crate) async fn ensure_dir(
        &self,
        client: &Client,
        path: &str,
    ) -> Result<(), ZookeeperError> {
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        self.bounded("create directory", path, client.mkdir(path, &options))
            .await
    }

    /// Makes sure this session owns the EPHEMERAL node `path`: creates it, or replaces a
    /// node left by an earlier session of this registry.
    async fn ensure_node(&self, client: &Client, path: &str) -> Result<(), ZookeeperError> {
        let parent = path
            .rsplit_once('/')
            .map(|(dir, _)| dir)
            .unwrap_or_default();
        let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        let own = client.session_id().0;
        for _ in 0..3 {
            match self
                .bounded("create", path, client.create(path, &[], &options))
                .await
            {
                Ok(_) => {
                    tracing::debug!(path, session = %client.session_id(), "provider node created");
                    return Ok(());
                }
                Err(ZookeeperError::Operation {
                    source: zookeeper_client::Error::NoNode,
                    ..
                }) => self.ensure_dir(client, parent).await?,
                Err(ZookeeperError::Operation {
                    source: zookeeper_client::Error::NodeExists,
                    ..
                }) => match self.bounded("stat", path, client.check_stat(path)).await? {
                    Some(stat) if stat.ephemeral_owner == own => return Ok(()),
                    Some(stat) => {
                        // Left by this registry's previous session, which ZooKeeper has
                        // not expired yet (or by an old process at the same address).
                        tracing::info!(
                            path,
                            owner = stat.ephemeral_owner,
                            "replacing a provider node of another session"
                        );
                        match self
                            .bounded("delete", path, client.delete(path, Some(stat.version)))
                            .await
                        {
                            Ok(())
                            | Err(ZookeeperError::Operation {
                                source:
                                    zookeeper_client::Error::NoNode
                                    | zookeeper_client::Error::BadVersion,
                                ..
                            }) => {}
                            Err(error) => return Err(error),
                        }
                    }
                    None => {}
                },
                Err(error) => return Err(error),
            }
        }
        Err(ZookeeperError::Operation {
            operation: "create",
            path: path.to_string(),
            source: zookeeper_client::Error::NodeExists,
        })
    }

    /// Creates every registered node this session does not own yet; true when all exist.
    async fn reconcile(self: &Arc<Self>, client: &Client) -> bool {
        let _writes = self.writes.lock().await;
        let paths: Vec<String> = self.registrations.lock().iter().cloned().collect();
        let mut complete = true;
        for path in paths {
            if let Err(error) = self.ensure_node(client, &path).await {
                tracing::warn!(%error, path, "re-creating a provider node failed; will retry");
                complete = false;
            }
        }
        complete
    }
}

/// Follows one session: re-creates the provider nodes after each reconnect and, when
/// the session ends, opens the next one (which gets its own supervisor).
async fn supervise(session: Weak<Session>, mut states: StateWatcher, closed: CancellationToken) {
    let mut state = states.state();
    loop {
        match state {
            SessionState::SyncConnected => {
                let mut backoff = MIN_BACKOFF;
                loop {
                    let Some(strong) = session.upgrade() else {
                        return;
                    };
                    let Ok(client) = strong.client().await else {
                        break;
                    };
                    if client.state_watcher().peek_state() != SessionState::SyncConnected
                        || strong.reconcile(&client).await
                    {
                        break;
                    }
                    drop((strong, client));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = closed.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            terminal if terminal.is_terminated() => {
                tracing::warn!(state = %terminal, "ZooKeeper session ended; opening a new one and registering again");
                let mut backoff = MIN_BACKOFF;
                loop {
                    let Some(strong) = session.upgrade() else {
                        return;
                    };
                    match strong.client().await {
                        Ok(_) => return,
                        Err(error) => {
                            tracing::warn!(%error, retry_in = ?backoff, "opening a new ZooKeeper session failed")
                        }
                    }
                    drop(strong);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = closed.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            other => tracing::info!(state = %other, "ZooKeeper session state"),
        }
        state = tokio::select! {
            state = states.changed() => state,
            _ = closed.cancelled() => return,
        };
    }
}
