//! The client's view of each service's providers, kept current from the registry.
//!
//! The first call to a service subscribes; a background task then applies every change.
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
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::{Provider, Registry};
use crate::service::ServiceKey;
use crate::Error;

/// A provider list snapshot.
pub(crate) type Providers = Arc<Vec<Provider>>;

struct Entry {
    providers: watch::Receiver<Option<Providers>>,
    task: JoinHandle<()>,
}

/// Called after any service's provider list changed.
pub(crate) type OnChange = Arc<dyn Fn() + Send + Sync>;

/// Provider lists per service.
pub(crate) struct Directory {
    registry: Arc<dyn Registry>,
    entries: Mutex<FxHashMap<ServiceKey, Entry>>,
    first_list_wait: Duration,
    on_change: OnChange,
}

impl Directory {
    pub(crate) fn new(
        registry: Arc<dyn Registry>,
        first_list_wait: Duration,
        on_change: OnChange,
    ) -> Self {
        Self {
            registry,
            entries: Mutex::default(),
            first_list_wait,
            on_change,
        }
    }

    /// True when some subscribed service currently lists `addr`.
    pub(crate) fn lists(&self, addr: &str) -> bool {
        self.entries.lock().values().any(|entry| {
            entry
                .providers
                .borrow()
                .as_ref()
                .is_some_and(|list| list.iter().any(|p| p.addr == addr))
        })
    }

    /// The current providers of `key`, subscribing on first use.
    pub(crate) async fn providers(&self, key: &ServiceKey) -> Result<Providers, Error> {
        let mut receiver = self.receiver(key);
        if let Some(list) = receiver.borrow().clone() {
            return Ok(list);
        }
        let waited =
            tokio::time::timeout(self.first_list_wait, receiver.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(list)) => Ok(list.clone().unwrap_or_default()),
            _ => Err(Error::NoProvider {
                service: format!(
                    "{key} (registry gave no provider list within {:?})",
                    self.first_list_wait
                ),
            }),
        }
    }

    fn receiver(&self, key: &ServiceKey) -> watch::Receiver<Option<Providers>> {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.get(key) {
            return entry.providers.clone();
        }
        let (sender, receiver) = watch::channel(None);
        let task = tokio::spawn(follow(
            self.registry.clone(),
            key.clone(),
            sender,
            self.on_change.clone(),
        ));
        entries.insert(
            key.clone(),
            Entry {
                providers: receiver.clone(),
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
    sender: watch::Sender<Option<Providers>>,
    on_change: OnChange,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match registry.subscribe(&key).await {
            Ok(mut changes) => {
                delay = Duration::from_millis(100);
                while let Some(change) = changes.next().await {
                    let known = sender.borrow().as_ref().is_some_and(|l| !l.is_empty());
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
                    sender.send_replace(Some(Arc::new(usable)));
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
