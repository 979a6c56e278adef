//! An in-process registry: providers and consumers in one process find each other.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::{Change, ChangeStream, Provider, Registration, Registry};
use crate::service::ServiceKey;
use crate::Error;

/// A registry held in memory; clone it to share between servers and clients.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use erpc_core::registry::{MemoryRegistry, Provider, Registration, Registry};
/// use erpc_core::ServiceKey;
/// use futures::StreamExt;
///
/// let registry = MemoryRegistry::new();
/// let key = ServiceKey::new("demo::Hello", "", "1.0");
/// let mut changes = registry.subscribe(&key).await.unwrap();
/// assert!(changes.next().await.unwrap().all.is_empty());
/// registry
///     .register(&Registration { key: key.clone(), provider: Provider::new("127.0.0.1:9000") })
///     .await
///     .unwrap();
/// assert_eq!(changes.next().await.unwrap().added[0].addr, "127.0.0.1:9000");
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryRegistry {
    services: Arc<Mutex<HashMap<ServiceKey, watch::Sender<Vec<Provider>>>>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn channel(&self, key: &ServiceKey) -> watch::Sender<Vec<Provider>> {
        self.services
            .lock()
            .entry(key.clone())
            .or_insert_with(|| watch::channel(Vec::new()).0)
            .clone()
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn register(&self, registration: &Registration) -> Result<(), Error> {
        self.channel(&registration.key).send_modify(|list| {
            list.retain(|p| p.addr != registration.provider.addr);
            list.push(registration.provider.clone());
        });
        Ok(())
    }

    async fn deregister(&self, registration: &Registration) -> Result<(), Error> {
        self.channel(&registration.key)
            .send_modify(|list| list.retain(|p| p.addr != registration.provider.addr));
        Ok(())
    }

    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, Error> {
        let receiver = self.channel(key).subscribe();
        let mut previous: Vec<Provider> = Vec::new();
        Ok(WatchStream::new(receiver)
            .map(move |current| {
                let change = Change::between(&previous, current.clone());
                previous = current;
                change
            })
            .boxed())
    }
}
