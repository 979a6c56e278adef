//! The registry seam: where providers announce themselves and consumers find them.
//!
//! A [`Registry`] registers and deregisters provider instances and streams each
//! subscribed service's provider list as [`Change`]s. erpc ships a [`StaticRegistry`]
//! (fixed addresses, `static://h1:p1,h2:p2`) and a [`MemoryRegistry`] (in-process, for
//! embedded demos and tests); `erpc-nacos` adds Nacos.

mod memory;
mod static_list;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub use memory::MemoryRegistry;
pub use static_list::StaticRegistry;

use crate::service::ServiceKey;
use crate::Error;

/// One provider of a service, as a registry reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// `host:port` the provider listens on.
    pub addr: String,
    /// Relative weight for weighted balancing (default 100).
    pub weight: u32,
    /// Registry metadata (`protocol`, `serialization`, `methods`, ...).
    pub metadata: BTreeMap<String, String>,
}

impl Provider {
    /// A provider at `addr` with the default weight and no metadata.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            weight: DEFAULT_WEIGHT,
            metadata: BTreeMap::new(),
        }
    }

    /// False when the provider takes no new calls: weight 0 means "drain" (Nacos's and
    /// Dubbo's meaning). Clients leave such providers out before any balancer sees them.
    ///
    /// ```
    /// let mut provider = erpc_core::registry::Provider::new("10.0.0.5:9000");
    /// assert!(provider.takes_calls());
    /// provider.weight = 0;
    /// assert!(!provider.takes_calls());
    /// ```
    pub fn takes_calls(&self) -> bool {
        self.weight > 0
    }
}

/// Address prefix of a provider that only accepts TLS: `tls://host:port`.
///
/// A TLS server registers its address in this form, with [`TRANSPORT_KEY`]` = tls` in
/// the metadata (registries that store host and port apart, like Nacos, keep the
/// metadata and restore the prefix from it).
pub const TLS_PREFIX: &str = "tls://";

/// Metadata key naming the transport a provider speaks: `tls`, or absent for plain TCP.
pub const TRANSPORT_KEY: &str = "transport";

/// Weight given to providers that do not state one.
pub const DEFAULT_WEIGHT: u32 = 100;

/// What a server registers: one hosted service at one address.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The service.
    pub key: ServiceKey,
    /// The provider entry (address, weight, metadata).
    pub provider: Provider,
}

/// A change of a service's provider list.
///
/// `all` is always the complete current list; `added`, `updated` and `removed` say how it
/// differs from the previous one (all of `all` is `added` in the first change).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Change {
    /// The complete provider list now.
    pub all: Vec<Provider>,
    /// Providers new in this change.
    pub added: Vec<Provider>,
    /// Providers whose weight or metadata changed.
    pub updated: Vec<Provider>,
    /// Addresses no longer present.
    pub removed: Vec<String>,
}

impl Change {
    /// The change from `previous` to `current`, keyed by address.
    pub fn between(previous: &[Provider], current: Vec<Provider>) -> Self {
        let mut change = Change::default();
        for p in &current {
            match previous.iter().find(|q| q.addr == p.addr) {
                None => change.added.push(p.clone()),
                Some(q) if q != p => change.updated.push(p.clone()),
                Some(_) => {}
            }
        }
        change.removed = previous
            .iter()
            .filter(|q| !current.iter().any(|p| p.addr == q.addr))
            .map(|q| q.addr.clone())
            .collect();
        change.all = current;
        change
    }

    /// True when nothing differs from the previous list.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }
}

/// A stream of provider-list changes for one service; it ends when the registry closes.
pub type ChangeStream = BoxStream<'static, Change>;

/// A service registry (Nacos, static list, in-memory, ...).
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Announces a provider; called by servers for every hosted service on start.
    async fn register(&self, registration: &Registration) -> Result<(), Error>;
    /// Withdraws a provider; called by servers on shutdown, before draining.
    async fn deregister(&self, registration: &Registration) -> Result<(), Error>;
    /// Follows a service's providers. The first item is the current list.
    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, Error>;
}

/// The URL schemes [`from_url`] opens (the `erpc` facade adds `nacos` with its `nacos`
/// feature).
pub const SCHEMES: &[&str] = &["static"];

/// Opens a registry from a URL with a built-in scheme: `static://h1:p1,h2:p2`.
///
/// The `erpc` facade extends this with `nacos://` when its `nacos` feature is on.
///
/// ```
/// let registry = erpc_core::registry::from_url("static://127.0.0.1:9000,127.0.0.1:9001").unwrap();
/// # let _ = registry;
/// let refused = erpc_core::registry::from_url("zk://127.0.0.1:2181").err().unwrap();
/// assert!(refused.to_string().contains("static://"));
/// ```
pub fn from_url(url: &str) -> Result<Arc<dyn Registry>, Error> {
    let (scheme, _) = url.split_once("://").ok_or_else(|| {
        Error::Config(format!(
            "registry URL {:?} lacks a scheme (static://...)",
            redact_url(url, &[])
        ))
    })?;
    match scheme {
        "static" => Ok(Arc::new(StaticRegistry::from_url(url)?)),
        other => Err(Error::Config(format!(
            "unsupported registry scheme {other:?}; erpc-core opens static:// (the erpc crate adds nacos:// with its `nacos` feature)"
        ))),
    }
}

/// A shared registry is a registry: `Arc<dyn Registry>` (what [`from_url`] returns) goes
/// wherever a registry is taken.
#[async_trait]
impl<R: Registry + ?Sized> Registry for Arc<R> {
    async fn register(&self, registration: &Registration) -> Result<(), Error> {
        (**self).register(registration).await
    }

    async fn deregister(&self, registration: &Registration) -> Result<(), Error> {
        (**self).deregister(registration).await
    }

    async fn subscribe(&self, key: &ServiceKey) -> Result<ChangeStream, Error> {
        (**self).subscribe(key).await
    }
}

/// `url` fit for messages and logs: the password in its user info and the values of
/// every query parameter not named in `shown` become `***`.
///
/// ```
/// use erpc_core::registry::redact_url;
/// assert_eq!(
///     redact_url("nacos://nacos:pw@h:8848?namespace=dev&password=pw", &["namespace"]),
///     "nacos://nacos:***@h:8848?namespace=dev&password=***",
/// );
/// assert_eq!(redact_url("zk://token@h:2181", &[]), "zk://***@h:2181");
/// ```
pub fn redact_url(url: &str, shown: &[&str]) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (&url[..scheme.len() + 3], rest),
        None => ("", url),
    };
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match location.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***@");
                }
                None => out.push_str("***@"),
            }
            out.push_str(hosts);
        }
        None => out.push_str(location),
    }
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if !shown.contains(&key) => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_between_lists() {
        let a = Provider::new("a:1");
        let b = Provider::new("b:1");
        let mut b2 = b.clone();
        b2.weight = 5;
        let c = Provider::new("c:1");
        let change = Change::between(&[a.clone(), b], vec![b2.clone(), c.clone()]);
        assert_eq!(change.added, vec![c]);
        assert_eq!(change.updated, vec![b2]);
        assert_eq!(change.removed, vec!["a:1".to_string()]);
        assert!(Change::between(std::slice::from_ref(&a), vec![a.clone()]).is_empty());
    }

    #[test]
    fn unknown_scheme_is_a_config_error() {
        assert!(matches!(from_url("zk://x"), Err(Error::Config(_))));
        assert!(matches!(from_url("127.0.0.1:1"), Err(Error::Config(_))));
    }

    #[test]
    fn redacted_urls() {
        assert_eq!(redact_url("static://a:1,b:2", &[]), "static://a:1,b:2");
        assert_eq!(redact_url("u:p@h:1?x", &[]), "u:***@h:1?x");
        assert_eq!(
            redact_url("nacos://u:p:q@r@h:1/ctx?a=1&b=2&c", &["a"]),
            "nacos://u:***@h:1/ctx?a=1&b=***&c"
        );
    }
}
