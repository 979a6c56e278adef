//! Nacos registry for erpc, over the Nacos HTTP open API.
//!
//! [`NacosRegistry`] implements [`erpc_core::registry::Registry`]:
//!
//! - **register** adds an ephemeral instance to the service
//!   `providers:{interface}:{version}:{group}` (Dubbo's naming, so the services read
//!   familiarly in the Nacos console), with the provider's metadata (shrunk to Nacos's
//!   1024-character limit, `protocol=erpc` added when absent) and weight (erpc 100 =
//!   Nacos 1.0), then keeps it alive with a heartbeat task that re-registers when the
//!   server has lost it;
//! - **deregister** stops the heartbeat and removes the instance;
//! - **subscribe** polls the instance list and streams the changes, keeping the last list
//!   (and optionally a file cache) when Nacos is unreachable. Disabled and unhealthy
//!   instances are left out, and so are instances whose `protocol` metadata is not
//!   `erpc` (Java Dubbo providers share the service names); instances with weight 0
//!   are listed, and the client sends them no new calls (drain).
//!
//! It speaks the v1 API (rnacos, Nacos 1.x/2.x, 3.x in compatibility mode) or the
//! Nacos 3.x client API, chosen by probing the server; with several server addresses it
//! fails over between them; with a username it logs in and renews its token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), erpc_core::Error> {
//! use erpc_core::registry::{Provider, Registration, Registry};
//! use erpc_core::ServiceKey;
//! use futures::StreamExt;
//!
//! let registry = erpc_nacos::NacosRegistry::from_url("nacos://127.0.0.1:8848?namespace=public")?;
//! let key = ServiceKey::new("demo.HelloService", "test1", "1.0");
//! registry.register(&Registration { key: key.clone(), provider: Provider::new("10.0.0.5:9000") }).await?;
//! let mut changes = registry.subscribe(&key).await?;
//! let first = changes.next().await.expect("the first item is the current list");
//! println!("providers: {:?}", first.all);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod api;
mod beat;
mod client;
mod error;
mod naming;
mod ops;
mod secret;
mod url;
mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use erpc_core::registry::{ChangeStream, Provider, Registration, Registry};
use erpc_core::ServiceKey;

pub use error::NacosError;
pub use naming::{
    from_nacos_weight, parse_service_name, service_name, to_nacos_weight, ListedInstance,
    METADATA_LIMIT,
};
pub use secret::Secret;
pub use url::{ApiVersion, NacosConfig, DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE};

use beat::BeatTasks;
use ops::{InstanceSpec, Naming};

/// A [`Registry`] backed by one Nacos cluster (one namespace and group).
///
/// Cloning is cheap and shares the heartbeat tasks; when the last clone is dropped, the
/// heartbeats stop (the instances then expire on the server after about 30 s; call
/// [`Registry::deregister`] for an immediate removal).
#[derive(Clone)]
pub struct NacosRegistry {
    naming: Arc<Naming>,
    beats: Arc<BeatTasks>,
}

impl std::fmt::Debug for NacosRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NacosRegistry")
            .field("servers", &self.naming.config.servers)
            .field("namespace", &self.naming.config.namespace)
            .field("group", &self.naming.config.group)
            .finish_non_exhaustive()
    }
}

impl NacosRegistry {
    /// Opens a registry from `nacos://h1:8848,h2:8848?namespace=..&group=..&username=..&password=..`
    /// (see [`NacosConfig::from_url`] for every parameter). Nothing is sent until the
    /// first operation.
    ///
    /// ```
    /// use erpc_nacos::{ApiVersion, NacosRegistry};
    ///
    /// let registry = NacosRegistry::from_url(
    ///     "nacos://10.0.0.1:8848,10.0.0.2:8848?namespace=dev&group=ERPC&username=nacos&password=nacos",
    /// )
    /// .unwrap();
    /// let config = registry.config();
    /// assert_eq!(config.servers, ["10.0.0.1:8848", "10.0.0.2:8848"]);
    /// assert_eq!((config.namespace.as_str(), config.group.as_str()), ("dev", "ERPC"));
    /// assert_eq!(config.api, ApiVersion::Auto);
    ///
    /// assert!(NacosRegistry::from_url("nacos://no-port").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, NacosError> {
        Self::new(NacosConfig::from_url(url)?)
    }

    /// Opens a registry with `config`.
    pub fn new(config: NacosConfig) -> Result<Self, NacosError> {
        Ok(Self {
            naming: Arc::new(Naming::new(config)?),
            beats: Arc::new(BeatTasks::default()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &NacosConfig {
        &self.naming.config
    }

    /// The API line in use (probing the server on first use when configured `Auto`).
    pub async fn api_version(&self) -> Result<ApiVersion, NacosError> {
        self.naming.api().await
    }

    /// The current healthy, enabled erpc providers of `key`, read once.
    pub async fn providers(&self, key: &ServiceKey) -> Result<Vec<Provider>, NacosError> {
        self.naming.providers(&service_name(key)?).await
    }

    /// Every erpc instance of `key` as Nacos keeps it, disabled and unhealthy ones
    /// included, with its flags: what governance needs to see (a provider disabled from
    /// the Nacos console, say), where [`NacosRegistry::providers`] lists what consumers
    /// call.
    ///
    /// Read from the 3.x admin API (`/v3/admin/ns/instance/list`: with auth on, the user
    /// needs admin rights), or on older lines from the console catalog
    /// (`/v1/ns/catalog/instances`, of the configured cluster). rnacos 0.8 answers the
    /// catalog without its disabled instances (only its own console, on another port,
    /// lists them), so there a disabled instance is not seen.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), erpc_nacos::NacosError> {
    /// use erpc_core::ServiceKey;
    /// use erpc_nacos::NacosRegistry;
    ///
    /// let registry = NacosRegistry::from_url("nacos://127.0.0.1:8848")?;
    /// let key = ServiceKey::new("demo_api::Calculator", "", "1.0");
    /// for instance in registry.instances(&key).await? {
    ///     let state = if instance.enabled { "enabled" } else { "disabled" };
    ///     println!("{} weight {} {state}", instance.provider.addr, instance.provider.weight);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn instances(&self, key: &ServiceKey) -> Result<Vec<ListedInstance>, NacosError> {
        self.naming.listed(&service_name(key)?).await
    }

    /// Every erpc service registered in the namespace and group (services whose name does
    /// not follow `providers:{interface}:{version}:{group}` are left out).
    pub async fn services(&self) -> Result<Vec<ServiceKey>, NacosError> {
        let names = self.naming.service_names().await?;
        Ok(names.iter().filter_map(|n| parse_service_name(n)).collect())
    }

    /// Registers `registration` and starts its heartbeat.
    pub async fn register_instance(&self, registration: &Registration) -> Result<(), NacosError> {
        let spec = self.spec(registration)?;
        self.naming.register(&spec).await?;
        tracing::debug!(service = %spec.service, ip = %spec.ip, port = spec.port, "registered with Nacos");
        self.beats.start(self.naming.clone(), spec);
        Ok(())
    }

    /// Stops the heartbeat of `registration` and removes it from Nacos.
    pub async fn deregister_instance(&self, registration: &Registration) -> Result<(), NacosError> {
        let spec = self.spec(registration)?;
        self.beats.stop(&spec);
        self.naming.deregister(&spec).await?;
        tracing::debug!(service = %spec.service, ip = %spec.ip, port = spec.port, "deregistered from Nacos");
        Ok(())
    }

    /// Governance: sets the weight (`registration.provider.weight`, 0 drains it) and
    /// the enabled flag of a registered instance, with the metadata given (pass the
    /// listed one to keep it). Consumers follow within their polling interval: a
    /// disabled instance is no longer listed, one with weight 0 gets no new calls. The
    /// provider's heartbeats keep both (rnacos at once; Nacos 2.x applies an update
    /// within a second or two, and keeps it across the provider's re-registrations).
    ///
    /// Sent over the v1 API (rnacos, Nacos 1.x/2.x), or the admin API on Nacos 3.x
    /// (`/v3/admin/ns/instance`: with auth on, the user needs admin rights).
    pub async fn update_instance(
        &self,
        registration: &Registration,
        enabled: bool,
    ) -> Result<(), NacosError> {
        let spec = self.spec(registration)?;
        self.naming.update(&spec, enabled).await?;
        tracing::info!(service = %spec.service, ip = %spec.ip, port = spec.port, weight = spec.weight, enabled, "instance updated in Nacos");
        Ok(())
    }

    fn spec(&self, registration: &Registration) -> Result<InstanceSpec, NacosError> {
        let (ip, port) = naming::split_addr(&registration.provider.addr)?;
        // Consumers skip instances of other protocols: say that this one speaks erpc.
        let mut metadata = registration.provider.metadata.clone();
        metadata
            .entry(naming::PROTOCOL_KEY.to_string())
            .or_insert_with(|| naming::PROTOCOL.to_string());
        Ok(InstanceSpec {
            service: service_name(&registration.key)?,
            ip,
            port,
            weight: to_nacos_weight(registration.provider.weight),
            metadata: naming::metadata_json(&metadata),
        })
    }
}

#[async_trait]
impl Registry for NacosRegistry {
    async fn register(&self, registration: &Registration) -> Result<(), erpc_core::Error> {
        Ok(self.register_instance(registration).await?)
    }

    async fn deregister(&self, registration: &Registration) -> Result<(), erpc_core::Error> {
        Ok(self.deregister_instance(registration).await?)
    }

    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, erpc_core::Error> {
        Ok(watch::subscribe(self.naming.clone(), service_name(key)?).await?)
    }
}
