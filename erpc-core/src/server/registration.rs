//! What a server announces in the registry, and announcing it robustly.

use std::sync::Arc;
use std::time::Duration;

use super::router::Router;
use crate::registry::{Provider, Registration, Registry};
use crate::serialize::Serialization;

/// This build's erpc version, registered so operators can see what runs where.
const ERPC_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Registry metadata key of the provider's admin listener (`host:port`), when it runs one.
pub(crate) const ADMIN_KEY: &str = "erpc.admin";

/// The admin listener's address as others reach it: its bound address, or, when bound
/// to every interface (`0.0.0.0`, `[::]`), the advertised host with the admin port.
pub(crate) fn admin_advertised(admin: std::net::SocketAddr, advertised: &str) -> String {
    if !admin.ip().is_unspecified() {
        return admin.to_string();
    }
    let advertised = advertised
        .strip_prefix(crate::registry::TLS_PREFIX)
        .unwrap_or(advertised);
    match advertised.rsplit_once(':') {
        Some((host, _)) => format!("{host}:{}", admin.port()),
        None => admin.to_string(),
    }
}

/// The registrations of every hosted service at one address.
#[derive(Debug, Clone)]
pub(crate) struct Registrations(Arc<Vec<Registration>>);

impl Registrations {
    pub(crate) fn new(
        router: &Router,
        addr: &str,
        weight: u32,
        extra: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        let serializations: Vec<&str> = Serialization::ALL.iter().map(|s| s.name()).collect();
        let list = router
            .services()
            .map(|service| {
                let key = service.key();
                let methods: Vec<&str> = service
                    .descriptor()
                    .methods
                    .iter()
                    .map(|m| m.name)
                    .collect();
                let mut provider = Provider::new(addr);
                provider.weight = weight;
                let meta = &mut provider.metadata;
                meta.insert("erpc.version".into(), ERPC_VERSION.into());
                meta.insert("interface".into(), key.interface.clone());
                meta.insert("group".into(), key.group.clone());
                meta.insert("version".into(), key.version.clone());
                meta.insert("serialization".into(), serializations.join(","));
                meta.insert("methods".into(), methods.join(","));
                meta.insert("side".into(), "provider".into());
                meta.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                // Consumers skip instances of other protocols: user metadata cannot change it.
                meta.insert("protocol".into(), "erpc".into());
                Registration { key, provider }
            })
            .collect();
        Self(Arc::new(list))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Registers every service, retrying each failure with backoff until it succeeds
    /// (a registry that is down at start must not keep the provider unannounced).
    pub(crate) async fn register_all(self, registry: Arc<dyn Registry>) {
        for registration in self.0.iter() {
            let mut delay = Duration::from_millis(200);
            loop {
                match registry.register(registration).await {
                    Ok(()) => {
                        tracing::info!(service = %registration.key, addr = %registration.provider.addr, "registered");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(service = %registration.key, error = %e, retry_in = ?delay, "registration failed");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }
    }

    /// Deregisters every service, each bounded in time so shutdown cannot hang on it.
    pub(crate) async fn deregister_all(&self, registry: &dyn Registry) {
        for registration in self.0.iter() {
            match tokio::time::timeout(Duration::from_secs(3), registry.deregister(registration))
                .await
            {
                Ok(Ok(())) => tracing::info!(service = %registration.key, "deregistered"),
                Ok(Err(e)) => {
                    tracing::warn!(service = %registration.key, error = %e, "deregistration failed")
                }
                Err(_) => tracing::warn!(service = %registration.key, "deregistration timed out"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_address_as_others_reach_it() {
        let bound = |a: &str| a.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(
            admin_advertised(bound("127.0.0.1:9100"), "10.0.0.5:9000"),
            "127.0.0.1:9100"
        );
        assert_eq!(
            admin_advertised(bound("0.0.0.0:9100"), "tls://10.0.0.5:9000"),
            "10.0.0.5:9100"
        );
        assert_eq!(
            admin_advertised(bound("[::]:9100"), "[fe80::1]:9000"),
            "[fe80::1]:9100"
        );
    }
}
