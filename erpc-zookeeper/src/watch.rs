//! Subscriptions: watch a service's providers directory and stream the changes.
//!
//! Each round lists the children and sets a one-shot watch in the same request, so no
//! change between two rounds is missed; the watch fires on a child change or when the
//! session ends, and the next round re-arms it (after a reconnect the client re-arms
//! it by itself). The rules that keep consumers working when ZooKeeper is not:
//! - a failed round emits nothing: the consumer keeps its last list, and the round is
//!   retried with backoff;
//! - an error is never turned into an empty list; only an empty directory *answered* by
//!   ZooKeeper (every provider gone) is emitted as one.

use std::collections::HashSet;
use std::sync::Arc;

use erpc_core::registry::{Change, ChangeStream, Provider};
use erpc_core::ServiceKey;
use futures::StreamExt;
use zookeeper_client::OneshotWatcher;

use crate::layout::{parse_provider_node, Skip};
use crate::session::{Session, MAX_BACKOFF, MIN_BACKOFF};
use crate::ZookeeperError;

/// Opens the stream of `key`'s provider changes; the first item is the current list.
pub(crate) async fn subscribe(
    session: Arc<Session>,
    key: ServiceKey,
    dir: String,
) -> Result<ChangeStream, ZookeeperError> {
    let mut state = Watch {
        session,
        key,
        dir,
        previous: Vec::new(),
        watcher: None,
        skipped: HashSet::new(),
        failing: false,
    };
    let first = state.list().await?;
    state.previous = first.clone();
    let first = futures::stream::iter([Change::between(&[], first)]);
    let rest = futures::stream::unfold(state, |mut state| async move {
        let change = state.next_change().await;
        Some((change, state))
    });
    Ok(first.chain(rest).boxed())
}

struct Watch {
    session: Arc<Session>,
    key: ServiceKey,
    dir: String,
    previous: Vec<Provider>,
    watcher: Option<OneshotWatcher>,
    /// Nodes already logged as skipped (logged once each).
    skipped: HashSet<String>,
    failing: bool,
}

impl Watch {
    /// The current providers, with the watch for the next change armed.
    async fn list(&mut self) -> Result<Vec<Provider>, ZookeeperError> {
        let client = self.session.client().await?;
        let session = &self.session;
        let listed = session
            .bounded(
                "list children",
                &self.dir,
                client.list_and_watch_children(&self.dir),
            )
            .await;
        let (children, watcher) = match listed {
            Err(ZookeeperError::Operation {
                source: zookeeper_client::Error::NoNode,
                ..
            }) => {
                // No provider has ever registered: create the directory to watch it.
                session.ensure_dir(&client, &self.dir).await?;
                session
                    .bounded(
                        "list children",
                        &self.dir,
                        client.list_and_watch_children(&self.dir),
                    )
                    .await?
            }
            other => other?,
        };
        self.watcher = Some(watcher);
        let mut providers: Vec<Provider> = Vec::with_capacity(children.len());
        for child in children {
            match parse_provider_node(&child, &self.key) {
                Ok(provider) => {
                    if !providers.iter().any(|p| p.addr == provider.addr) {
                        providers.push(provider);
                    }
                }
                Err(Skip::OtherKey) => {}
                Err(skip) => {
                    if self.skipped.insert(child.clone()) {
                        tracing::debug!(node = %child, dir = %self.dir, reason = ?skip, "skipping a node that is not an erpc provider");
                    }
                }
            }
        }
        providers.sort_by(|a, b| a.addr.cmp(&b.addr));
        Ok(providers)
    }

    /// Waits for the watch (or retries after a failure) until the list differs.
    async fn next_change(&mut self) -> Change {
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.watcher.take() {
                Some(watcher) => {
                    let event = watcher.changed().await;
                    tracing::trace!(?event, dir = %self.dir, "providers watch fired");
                }
                None => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            let current = match self.list().await {
                Ok(current) => current,
                Err(error) => {
                    if !self.failing {
                        tracing::warn!(%error, dir = %self.dir, "watching ZooKeeper failed; keeping the last provider list");
                    }
                    self.failing = true;
                    continue;
                }
            };
            backoff = MIN_BACKOFF;
            if self.failing {
                tracing::info!(dir = %self.dir, "watching ZooKeeper works again");
                self.failing = false;
            }
            if current == self.previous {
                continue;
            }
            let previous = std::mem::replace(&mut self.previous, current.clone());
            return Change::between(&previous, current);
        }
    }
}
