//! The client's view of each service's providers, kept current from the registry.
//!
//! The first call to a service subscribes; a background task then applies every change,
//! building the service's [`Route`] (endpoints and balancer state) once per change.
//! That task runs on the runtime of the call that subscribed; if that runtime ends,
//! the next call resubscribes on its own runtime, keeping the last list meanwhile.
//! An empty list pushed by the registry while providers were known is not applied (the
//! last non-empty list is kept, Dubbo's "empty protection"): a registry that restarts
//! empty or loses its data must not turn into "no provider" for every consumer.
//! Providers listed with weight 0 ("drain", see [`Provider::takes_calls`]) are left
//! out of the list the client balances over; a list of only drained providers is
//! applied as it is (no provider), since the registry stated it.

use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::RwLock;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::route::Route;
use crate::registry::{Provider, Registry};
use crate::service::ServiceKey;
use crate::Error;

struct Entry {
    routes: watch::Receiver<Option<Arc<Route>>>,
    task: JoinHandle<()>,
}

/// Called after any service's provider list lost providers.
pub(crate) type OnChange = Arc<dyn Fn() + Send + Sync>;

/// Builds a service's route from its new provider list and its previous route.
pub(crate) type BuildRoute =
    Arc<dyn Fn(&ServiceKey, Vec<Provider>, Option<&Route>) -> Route + Send + Sync>;

/// Routes per service.
pub(crate) struct Directory {
    registry: Arc<dyn Registry>,
    entries: RwLock<FxHashMap<ServiceKey, Entry>>,
    first_list_wait: Duration,
    build: BuildRoute,
    on_change: OnChange,
}

impl Directory {
    pub(crate) fn new(
        registry: Arc<dyn Registry>,
        first_list_wait: Duration,
        build: BuildRoute,
        on_change: OnChange,
    ) -> Self {
        Self {
            registry,
            entries: RwLock::default(),
            first_list_wait,
            build,
            on_change,
        }
    }

    /// True when some subscribed service currently lists `addr`.
    pub(crate) fn lists(&self, addr: &str) -> bool {
        self.entries.read().values().any(|entry| {
            entry
                .routes
                .borrow()
                .as_ref()
                .is_some_and(|route| route.providers.iter().any(|p| p.addr == addr))
        })
    }

    /// Every subscribed service with its current number of usable providers.
    pub(crate) fn services(&self) -> Vec<(ServiceKey, usize)> {
        self.entries
            .read()
            .iter()
            .map(|(key, entry)| {
                let providers = entry
                    .routes
                    .borrow()
                    .as_ref()
                    .map_or(0, |r| r.providers.len());
                (key.clone(), providers)
            })
            .collect()
    }

    /// The current route of `key`, subscribing on first use.
    pub(crate) async fn route(&self, key: &ServiceKey) -> Result<Arc<Route>, Error> {
        if let Some(route) = self.cached(key) {
            return Ok(route);
        }
        let mut receiver = self.receiver(key);
        if let Some(route) = receiver.borrow().clone() {
            return Ok(route);
        }
        let waited =
            tokio::time::timeout(self.first_list_wait, receiver.wait_for(Option::is_some)).await;
        match waited.map(|r| r.map(|route| route.clone())) {
            Ok(Ok(Some(route))) => Ok(route),
            _ => Err(Error::NoProvider {
                service: format!(
                    "{key} (registry gave no provider list within {:?})",
                    self.first_list_wait
                ),
            }),
        }
    }

    /// The route of a service followed by a live task, without waiting: what
    /// [`Directory::route`] answers at once for every call but a service's first.
    pub(crate) fn cached(&self, key: &ServiceKey) -> Option<Arc<Route>> {
        let entries = self.entries.read();
        let entry = entries.get(key)?;
        let route = entry.routes.borrow().clone()?;
        (!entry.task.is_finished()).then_some(route)
    }

    fn receiver(&self, key: &ServiceKey) -> watch::Receiver<Option<Arc<Route>>> {
        let mut entries = self.entries.write();
        let last = match entries.get(key) {
            Some(entry) if !entry.task.is_finished() => return entry.routes.clone(),
            // The task's runtime has ended: resubscribe here, keeping the last route.
            Some(entry) => entry.routes.borrow().clone(),
            None => None,
        };
        let (sender, receiver) = watch::channel(last);
        let task = tokio::spawn(follow(
            self.registry.clone(),
            key.clone(),
            sender,
            self.build.clone(),
            self.on_change.clone(),
        ));
        entries.insert(
            key.clone(),
            Entry {
                routes: receiver.clone(),
                task,
            },
        );
        receiver
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        for entry in self.entries.get_mut().values() {
            entry.task.abort();
        }
    }
}

/// Subscribes to `key` and publishes its lists, resubscribing when the stream fails.
async fn follow(
    registry: Arc<dyn Registry>,
    key: ServiceKey,
    sender: watch::Sender<Option<Arc<Route>>>,
    build: BuildRoute,
    on_change: OnChange,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match registry.subscribe(&key).await {
            Ok(mut changes) => {
                delay = Duration::from_millis(100);
                while let Some(change) = changes.next().await {
                    let previous = sender.borrow().clone();
                    let known = previous.as_ref().is_some_and(|r| !r.providers.is_empty());
                    if change.all.is_empty() && known {
                        tracing::warn!(service = %key, "registry pushed an empty provider list; keeping the last one");
                        continue;
                    }
                    // Drained providers (weight 0) take no new calls: no balancer sees them.
                    let listed = change.all.len();
                    let usable: Vec<Provider> = change
                        .all
                        .into_iter()
                        .filter(Provider::takes_calls)
                        .collect();
                    tracing::debug!(
                        service = %key,
                        providers = usable.len(),
                        drained = listed - usable.len(),
                        added = change.added.len(),
                        removed = change.removed.len(),
                        "provider list changed"
                    );
                    let drained = usable.len() < listed;
                    let route = build(&key, usable, previous.as_deref());
                    sender.send_replace(Some(Arc::new(route)));
                    if !change.removed.is_empty() || drained {
                        on_change();
                    }
                }
                tracing::warn!(service = %key, "registry subscription ended; resubscribing");
            }
            Err(e) => tracing::warn!(service = %key, error = %e, "subscribe failed; retrying"),
        }
        if sender.is_closed() {
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
