//! The typed handle generated stubs wrap: one service, its identity and call options.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::directory::SubscriptionSlot;
use super::{CallOptions, CallSlots, Client, ClusterMode};
use crate::admin::MethodObserver;
use crate::balance::LoadBalancer;
use crate::protocol::encode_names;
use crate::service::{ServiceDescriptor, ServiceKey};
use crate::Error;

/// A client bound to one service (interface, group, version) with its call options.
///
/// `#[erpc::service]` generates `XxxClient` around this; cloning is cheap.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    client: Client,
    descriptor: &'static ServiceDescriptor,
    key: Arc<ServiceKey>,
    options: Arc<CallOptions>,
    /// `options` with `idempotent` set, for methods marked `#[erpc(idempotent)]`.
    idempotent_options: Arc<CallOptions>,
    /// What each method keeps under `key`, by method index.
    methods: Arc<[MethodSlot]>,
    /// The subscription to `key`'s providers, kept on the first call that finds it.
    subscription: Arc<SubscriptionSlot>,
}

impl ServiceClient {
    /// A handle for `descriptor`'s service under its default group and version.
    pub fn new(client: Client, descriptor: &'static ServiceDescriptor) -> Self {
        Self {
            client,
            descriptor,
            key: Arc::new(ServiceKey::new(
                descriptor.interface,
                descriptor.default_group,
                descriptor.default_version,
            )),
            options: Arc::default(),
            idempotent_options: Arc::new(CallOptions {
                idempotent: true,
                ..CallOptions::default()
            }),
            methods: Arc::default(),
            subscription: Arc::default(),
        }
        .with_method_slots()
    }

    /// Fresh per-method slots for the current key (a new group or version starts
    /// with new ones).
    fn with_method_slots(mut self) -> Self {
        let key = &self.key;
        self.methods = self
            .descriptor
            .methods
            .iter()
            .map(|method| MethodSlot {
                observer: OnceLock::new(),
                // A name too long for the head fails each call instead, with its error.
                names: encode_names(key, method.name).ok(),
            })
            .collect();
        self
    }

    fn with_options(mut self, change: impl Fn(&mut CallOptions)) -> Self {
        change(Arc::make_mut(&mut self.options));
        change(Arc::make_mut(&mut self.idempotent_options));
        self
    }

    /// Targets another group.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.key).group = group.into();
        self.subscription = Arc::default();
        self.with_method_slots()
    }

    /// Targets another version.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.key).version = version.into();
        self.subscription = Arc::default();
        self.with_method_slots()
    }

    /// Sets the timeout of every call made through this handle.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_options(|o| o.timeout = Some(timeout))
    }

    /// Adds a metadata pair sent with every call.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_metadata(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.with_options(|o| o.metadata.insert(key.clone(), value.clone()))
    }

    /// Uses `balancer` for calls through this handle.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_balancer(self, balancer: impl LoadBalancer) -> Self {
        let balancer: Arc<dyn LoadBalancer> = Arc::new(balancer);
        self.with_options(|o| o.balancer = Some(balancer.clone()))
    }

    /// Uses `mode` for calls through this handle.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_cluster(self, mode: ClusterMode) -> Self {
        self.with_options(|o| o.cluster = Some(mode))
    }

    /// Routes calls through this handle by `key` (for the consistent-hash balancer).
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_hash_key(self, key: u64) -> Self {
        self.with_options(|o| o.hash_key = Some(key))
    }

    /// Treats every method as idempotent (safe to retry elsewhere), as if each were
    /// marked `#[erpc(idempotent)]`.
    #[must_use = "`with_*` returns the changed handle; the handle it is called on stays as it was"]
    pub fn with_idempotent(self, idempotent: bool) -> Self {
        let mut this = self.with_options(|o| o.idempotent = idempotent);
        Arc::make_mut(&mut this.idempotent_options).idempotent = true;
        this
    }

    /// The service key calls go to.
    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    /// The interface description.
    pub fn descriptor(&self) -> &'static ServiceDescriptor {
        self.descriptor
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Calls method number `method` of the descriptor with the argument tuple `args`.
    pub async fn call<A, R>(&self, method: usize, args: &A) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        self.invoke(method, args, None).await
    }

    /// Like [`ServiceClient::call`], routed by `hash_key` under sticky balancers
    /// (what `#[erpc(hash_key = "arg")]` methods call).
    pub async fn call_hashed<A, R>(
        &self,
        method: usize,
        args: &A,
        hash_key: u64,
    ) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        self.invoke(method, args, Some(hash_key)).await
    }

    async fn invoke<A, R>(&self, method: usize, args: &A, hash_key: Option<u64>) -> Result<R, Error>
    where
        A: Serialize + Sync + ?Sized,
        R: DeserializeOwned,
    {
        let descriptor =
            self.descriptor
                .methods
                .get(method)
                .ok_or_else(|| Error::MethodNotFound {
                    service: self.key.to_string(),
                    method: format!("#{method}"),
                })?;
        let options = if descriptor.idempotent {
            &self.idempotent_options
        } else {
            &self.options
        };
        let slot = self.methods.get(method);
        self.client
            .invoke(
                &self.key,
                descriptor.name,
                args,
                options,
                hash_key,
                CallSlots {
                    observer: slot.map(|slot| &slot.observer),
                    subscription: Some(&self.subscription),
                    names: slot.and_then(|slot| slot.names.as_deref()),
                },
            )
            .await
    }
}

/// What a handle keeps for one method of its service.
#[derive(Debug)]
struct MethodSlot {
    /// The method's metric handles under the handle's key, resolved on its first call.
    observer: OnceLock<MethodObserver>,
    /// The key and method name as every request's head writes them.
    names: Option<Box<[u8]>>,
}
