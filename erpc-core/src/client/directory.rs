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

/// One service's subscription: its current route, kept by a background task.
pub(crate) struct Subscription {
    routes: watch::Receiver<Option<Arc<Route>>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("live", &!self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The current route, while the task keeping it runs (its runtime may have ended).
    pub(crate) fn route(&self) -> Option<Arc<Route>> {
        let route = self.routes.borrow().clone()?;
        (!self.task.is_finished()).then_some(route)
    }
}

/// Where a handle keeps its service's subscription, so that its calls find their
/// route without the directory's lookup (see [`Directory::cached_in`]).
pub(crate) type SubscriptionSlot = std::sync::OnceLock<Arc<Subscription>>;

/// Called after any service's provider list lost providers.
pub(crate) type OnChange = Arc<dyn Fn() + Send + Sync>;

/// Builds a service's route from its new provider list and its previous route.
pub(crate) type BuildRoute =
    Arc<dyn Fn(&ServiceKey, Vec<Provider>, Option<&Route>) -> Route + Send + Sync>;

/// Routes per service.
pub(crate) struct Directory {
    registry: Arc<dyn Registry>,
    entries: RwLock<FxHashMap<ServiceKey, Arc<Subscription>>>,
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
        self.entries.read().get(key)?.route()
    }

    /// [`Directory::cached`] through a handle's `slot`: the first call that finds the
    /// service subscribed keeps its subscription there, and later calls read the route
    /// from it directly. A slot whose subscription ended (its runtime did) is not
    /// refilled: calls through it use the directory, which resubscribes.
    pub(crate) fn cached_in(
        &self,
        key: &ServiceKey,
        slot: &SubscriptionSlot,
    ) -> Option<Arc<Route>> {
        if let Some(route) = slot.get().and_then(|s| s.route()) {
            return Some(route);
        }
        let subscription = self.entries.read().get(key)?.clone();
        let route = subscription.route()?;
        let _ = slot.set(subscription);
        Some(route)
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
            Arc::new(Subscription {
                routes: receiver.clone(),
                task,
            }),
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
                        tracing::warn!(
                            service = %key,
                            "the registry lists no provider any more; calls keep going to the last ones listed until one registers (empty-list protection)"
                        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::by_name;
    use crate::client::pool::Pool;
    use crate::registry::{MemoryRegistry, Registration};

    fn directory(registry: &MemoryRegistry) -> Directory {
        let pool = Arc::new(Pool::new(super::super::endpoint_settings(
            &Default::default(),
            None,
        )));
        let balancer = by_name("p2c").unwrap();
        let build: BuildRoute = Arc::new(move |key, providers, previous| {
            Route::new(key, providers, &pool, balancer.as_ref(), previous, None)
        });
        Directory::new(
            Arc::new(registry.clone()),
            Duration::from_secs(5),
            build,
            Arc::new(|| {}),
        )
    }

    #[tokio::test]
    async fn a_handle_keeps_its_subscription_until_the_task_behind_it_ends() {
        let registry = MemoryRegistry::new();
        let key = ServiceKey::new("svc", "", "1.0");
        registry
            .register(&Registration {
                key: key.clone(),
                provider: Provider::new("127.0.0.1:1"),
            })
            .await
            .unwrap();
        let directory = directory(&registry);
        let slot = SubscriptionSlot::new();
        assert!(
            directory.cached_in(&key, &slot).is_none(),
            "not subscribed yet"
        );
        assert!(slot.get().is_none());

        directory.route(&key).await.unwrap();
        let route = directory.cached_in(&key, &slot).expect("subscribed");
        assert_eq!(route.providers.len(), 1);
        let kept = slot
            .get()
            .expect("kept by the first call that found it")
            .clone();

        // Its task ends (as when its runtime does): the slot no longer answers, and the
        // directory, which resubscribes, does.
        kept.task.abort();
        while !kept.task.is_finished() {
            tokio::task::yield_now().await;
        }
        assert!(directory.cached_in(&key, &slot).is_none());
        directory.route(&key).await.unwrap();
        assert!(
            directory.cached_in(&key, &slot).is_some(),
            "through the directory"
        );
    }
}
