//! A registry with a fixed provider list: every service is at every listed address.

use async_trait::async_trait;
use futures::StreamExt;

use super::{redact_url, Change, ChangeStream, Provider, Registration, Registry};
use crate::service::ServiceKey;
use crate::Error;

/// Fixed addresses from `static://h1:p1,h2:p2`; registration is a no-op.
#[derive(Debug, Clone)]
pub struct StaticRegistry {
    providers: Vec<Provider>,
}

impl StaticRegistry {
    /// A registry listing `addrs` for every service.
    pub fn new<I, S>(addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            providers: addrs.into_iter().map(Provider::new).collect(),
        }
    }

    /// Parses `static://h1:p1,h2:p2`.
    ///
    /// ```
    /// let r = erpc_core::registry::StaticRegistry::from_url("static://127.0.0.1:9000").unwrap();
    /// assert_eq!(r.addrs(), vec!["127.0.0.1:9000"]);
    /// ```
    pub fn from_url(url: &str) -> Result<Self, Error> {
        // Messages show the URL without anything that looks like a credential.
        let shown = redact_url(url, &[]);
        let list = url
            .strip_prefix("static://")
            .ok_or_else(|| Error::Config(format!("{shown:?} is not a static:// URL")))?;
        let list = list.split(['?', '/']).next().unwrap_or_default();
        let mut addrs = Vec::new();
        for addr in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let bad = |why: &str| {
                let addr = redact_url(addr, &[]);
                Error::Config(format!("{addr:?} in {shown:?} {why}"))
            };
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("lacks a port"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("is not host:port"));
            }
            addrs.push(addr.to_string());
        }
        if addrs.is_empty() {
            return Err(Error::Config(format!("{shown:?} lists no address")));
        }
        Ok(Self::new(addrs))
    }

    /// The listed addresses.
    pub fn addrs(&self) -> Vec<&str> {
        self.providers.iter().map(|p| p.addr.as_str()).collect()
    }
}

#[async_trait]
impl Registry for StaticRegistry {
    async fn register(&self, _: &Registration) -> Result<(), Error> {
        Ok(())
    }

    async fn deregister(&self, _: &Registration) -> Result<(), Error> {
        Ok(())
    }

    async fn subscribe(&self, _: &ServiceKey) -> Result<ChangeStream, Error> {
        let first = Change::between(&[], self.providers.clone());
        Ok(futures::stream::once(async move { first })
            .chain(futures::stream::pending())
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let r = StaticRegistry::from_url("static://a:1, b:2").unwrap();
        assert_eq!(r.addrs(), vec!["a:1", "b:2"]);
        for bad in [
            "static://",
            "static://a",
            "static://a:x",
            "nacos://a:1",
            "static://:1",
        ] {
            assert!(StaticRegistry::from_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn subscription_yields_the_list() {
        let r = StaticRegistry::new(["a:1"]);
        let mut s = r.subscribe(&ServiceKey::new("i", "", "1.0")).await.unwrap();
        let change = s.next().await.unwrap();
        assert_eq!(change.all, vec![Provider::new("a:1")]);
        assert_eq!(change.added.len(), 1);
    }
}
