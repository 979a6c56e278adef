//! The typed handle generated stubs wrap: one service, its identity and call options.

use std::sync::Arc;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use super::{CallOptions, Client};
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
        }
    }

    /// Targets another group.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.key).group = group.into();
        self
    }

    /// Targets another version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.key).version = version.into();
        self
    }

    /// Sets the timeout of every call made through this handle.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.options).timeout = Some(timeout);
        self
    }

    /// Adds a metadata pair sent with every call.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.options).metadata.insert(key, value);
        self
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
        let name = self
            .descriptor
            .methods
            .get(method)
            .map(|m| m.name)
            .ok_or_else(|| Error::MethodNotFound {
                service: self.key.to_string(),
                method: format!("#{method}"),
            })?;
        self.client.call(&self.key, name, args, &self.options).await
    }
}
