//! A registry that refuses registrations until it is told it is up (a registry that is
//! down when a provider starts), for tests of what waits on registration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use erpc::registry::{ChangeStream, MemoryRegistry, Registration, Registry};
use erpc::ServiceKey;

/// Refuses `register` until [`DownAtFirst::come_up`]; everything else is a
/// [`MemoryRegistry`]'s.
#[derive(Clone, Default)]
pub(crate) struct DownAtFirst {
    inner: MemoryRegistry,
    up: Arc<AtomicBool>,
}

impl DownAtFirst {
    /// A registry that is down.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// From now on, registrations are accepted.
    pub(crate) fn come_up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[erpc::async_trait]
impl Registry for DownAtFirst {
    async fn register(&self, registration: &Registration) -> Result<(), erpc::Error> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(erpc::Error::Registry("down".into()));
        }
        self.inner.register(registration).await
    }

    async fn deregister(&self, registration: &Registration) -> Result<(), erpc::Error> {
        self.inner.deregister(registration).await
    }

    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, erpc::Error> {
        self.inner.subscribe(key).await
    }
}
