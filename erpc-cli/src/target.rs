//! Where the commands find services: a registry (`--registry`) or one provider
//! (`--addr`), plus, optionally, the provider's admin listener (`--admin`).

use std::sync::Arc;
use std::time::Duration;

use erpc::nacos::{ListedInstance, NacosRegistry};
use erpc::registry::{Provider, Registry, StaticRegistry};
use erpc::zookeeper::ZookeeperRegistry;
use erpc::ServiceKey;
use futures::StreamExt;

use crate::args::Global;
use crate::error::CliError;

/// The registry or provider the command talks to.
pub(crate) struct Target {
    /// The registry URL (`static://HOST:PORT` for `--addr`).
    url: String,
    /// Set for registries that list their services (`nacos://`, `zookeeper://`): the
    /// catalogue and typed errors come from it.
    catalogue: Option<Catalogue>,
    /// `--admin HOST:PORT`.
    admin: Option<String>,
    /// Bound on every request.
    pub(crate) timeout: Duration,
}

/// A registry that lists the services it knows.
enum Catalogue {
    Nacos(NacosRegistry),
    Zookeeper(ZookeeperRegistry),
}

/// A method as the registry metadata or the admin listener describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MethodInfo {
    /// Wire name.
    pub(crate) name: String,
    /// Argument names, when the admin listener was asked.
    pub(crate) args: Option<Vec<String>>,
    /// Marked idempotent, when the admin listener was asked.
    pub(crate) idempotent: Option<bool>,
}

/// Where a method list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The provider's admin `/services`.
    Admin,
    /// The registry metadata's `methods` key.
    Registry,
}

impl Source {
    /// As shown to users.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::Admin => "admin /services",
            Source::Registry => "registry metadata",
        }
    }
}

impl Target {
    /// Where the global options say services are found: `--registry`, else `--addr`.
    pub(crate) fn new(global: &Global) -> Result<Self, CliError> {
        let url = match (&global.registry, &global.addr) {
            (Some(url), _) => url.clone(),
            (None, Some(addr)) => format!("static://{addr}"),
            (None, None) => return Err(CliError::usage(
                "say where the services are: --registry URL (or ERPC_REGISTRY) or --addr HOST:PORT",
            )),
        };
        let catalogue = if url.starts_with("nacos://") {
            Some(Catalogue::Nacos(NacosRegistry::from_url(&url)?))
        } else if url.starts_with("zookeeper://") {
            Some(Catalogue::Zookeeper(ZookeeperRegistry::from_url(&url)?))
        } else {
            // Validate now, so that a bad URL is a usage error before anything is sent.
            erpc::registry_from_url(&url)?;
            None
        };
        Ok(Self {
            url,
            catalogue,
            admin: global.admin.clone(),
            timeout: global.timeout,
        })
    }

    /// The registry to build clients and subscriptions on.
    pub(crate) fn registry(&self) -> Result<Arc<dyn Registry>, CliError> {
        match &self.catalogue {
            Some(Catalogue::Nacos(nacos)) => Ok(Arc::new(nacos.clone())),
            Some(Catalogue::Zookeeper(zookeeper)) => Ok(Arc::new(zookeeper.clone())),
            None => Ok(erpc::registry_from_url(&self.url)?),
        }
    }

    /// The Nacos registry, when the target is one (governance goes through it).
    pub(crate) fn nacos(&self) -> Option<&NacosRegistry> {
        match &self.catalogue {
            Some(Catalogue::Nacos(nacos)) => Some(nacos),
            _ => None,
        }
    }

    /// The registry URL without credentials, for messages.
    pub(crate) fn shown(&self) -> String {
        erpc::registry::redact_url(&self.url, &["namespace", "group"])
    }

    /// True for a registry that lists its services (Nacos, ZooKeeper).
    pub(crate) fn has_catalogue(&self) -> bool {
        self.catalogue.is_some() || self.admin.is_some()
    }

    /// The providers the registry lists for `key` now (the static addresses for
    /// `static://` and `--addr`).
    pub(crate) async fn providers(&self, key: &ServiceKey) -> Result<Vec<Provider>, CliError> {
        match &self.catalogue {
            Some(Catalogue::Nacos(nacos)) => {
                Ok(self.bounded("Nacos", nacos.providers(key)).await??)
            }
            Some(Catalogue::Zookeeper(zookeeper)) => {
                // The first item of a subscription is the current list.
                let current = async {
                    let mut changes = zookeeper.subscribe(key).await?;
                    Ok::<_, erpc::Error>(changes.next().await.map(|c| c.all).unwrap_or_default())
                };
                Ok(self.bounded("ZooKeeper", current).await??)
            }
            None => Ok(StaticRegistry::from_url(&self.url)?
                .addrs()
                .into_iter()
                .map(Provider::new)
                .collect()),
        }
    }

    /// The instances Nacos keeps for `key` besides `shown` (what consumers call): the
    /// disabled and the unhealthy ones, with their flags
    /// ([`NacosRegistry::instances`]); `None` when the registry is not Nacos.
    pub(crate) async fn unlisted_instances(
        &self,
        key: &ServiceKey,
        shown: &[Provider],
    ) -> Option<Result<Vec<ListedInstance>, CliError>> {
        let nacos = self.nacos()?;
        let listed = self
            .bounded("Nacos", nacos.instances(key))
            .await
            .and_then(|listed| listed.map_err(CliError::from));
        Some(listed.map(|instances| {
            instances
                .into_iter()
                .filter(|i| !(i.enabled && i.healthy))
                .filter(|i| shown.iter().all(|p| p.addr != i.provider.addr))
                .collect()
        }))
    }

    /// Every service the registry (or the admin listener) knows; `None` when neither
    /// keeps a catalogue.
    pub(crate) async fn services(&self) -> Result<Option<Vec<ServiceKey>>, CliError> {
        match &self.catalogue {
            Some(Catalogue::Nacos(nacos)) => {
                return Ok(Some(self.bounded("Nacos", nacos.services()).await??));
            }
            Some(Catalogue::Zookeeper(zookeeper)) => {
                return Ok(Some(
                    self.bounded("ZooKeeper", zookeeper.services()).await??,
                ));
            }
            None => {}
        }
        Ok(self
            .admin_services()
            .await?
            .map(|hosted| hosted.into_iter().map(|(key, _)| key).collect()))
    }

    /// The methods of `key` and where the list came from: the admin listener's (with
    /// argument names) when `--admin` is given, else the registry metadata's.
    pub(crate) async fn methods(
        &self,
        key: &ServiceKey,
    ) -> Result<Option<(Vec<MethodInfo>, Source)>, CliError> {
        if let Some(hosted) = self.admin_services().await? {
            return Ok(hosted
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, methods)| (methods, Source::Admin)));
        }
        let providers = self.providers(key).await?;
        Ok(providers
            .iter()
            .find_map(|p| p.metadata.get("methods"))
            .map(|list| {
                let methods = list
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(|name| MethodInfo {
                        name: name.to_string(),
                        args: None,
                        idempotent: None,
                    })
                    .collect();
                (methods, Source::Registry)
            }))
    }

    /// The services and methods the admin listener's `/services` shows; `None` without
    /// `--admin`.
    pub(crate) async fn admin_services(
        &self,
    ) -> Result<Option<Vec<(ServiceKey, Vec<MethodInfo>)>>, CliError> {
        let Some(admin) = &self.admin else {
            return Ok(None);
        };
        let url = format!("http://{admin}/services");
        let fetched = async {
            let response = reqwest::Client::new().get(&url).send().await?;
            response
                .error_for_status()?
                .json::<serde_json::Value>()
                .await
        };
        let document = match self.bounded("the admin listener", fetched).await? {
            Ok(document) => document,
            Err(e) if e.is_connect() || e.is_timeout() => {
                return Err(CliError::unreachable(format!(
                    "cannot reach the admin listener at {admin}: {e}"
                )))
            }
            Err(e) => {
                return Err(CliError::remote(format!(
                    "the admin listener at {admin} gave no service list: {e}"
                )))
            }
        };
        Ok(Some(parse_hosted(&document)))
    }

    /// `work`, or an unreachable error after the timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, CliError> {
        tokio::time::timeout(self.timeout, work).await.map_err(|_| {
            CliError::unreachable(format!(
                "{what} did not answer within {}",
                humantime::format_duration(self.timeout)
            ))
        })
    }
}

/// The hosted services of an admin `/services` document
/// (`{"side": "server", "services": [{"interface", "group", "version", "methods": [{"name", "args", "idempotent"}]}]}`).
fn parse_hosted(document: &serde_json::Value) -> Vec<(ServiceKey, Vec<MethodInfo>)> {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|s| s.as_str()).map(String::from);
    let services = document.get("services").and_then(|s| s.as_array());
    services
        .into_iter()
        .flatten()
        .filter_map(|service| {
            let key = ServiceKey::new(
                text(service, "interface")?,
                text(service, "group")?,
                text(service, "version")?,
            );
            let methods = service.get("methods").and_then(|m| m.as_array());
            let methods = methods
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let args = m.get("args").and_then(|a| a.as_array()).map(|args| {
                        args.iter()
                            .filter_map(|a| a.as_str().map(String::from))
                            .collect()
                    });
                    Some(MethodInfo {
                        name: text(m, "name")?,
                        args,
                        idempotent: m.get("idempotent").and_then(|i| i.as_bool()),
                    })
                })
                .collect();
            Some((key, methods))
        })
        .collect()
}

/// True when a TCP connection to `addr` (`host:port` or `tls://host:port`) opens within
/// `timeout`.
pub(crate) async fn accepts_connections(addr: &str, timeout: Duration) -> bool {
    let addr = addr
        .strip_prefix(erpc::registry::TLS_PREFIX)
        .unwrap_or(addr);
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_admin_services_document() {
        let document = serde_json::json!({"side": "server", "services": [{
            "service": "demo_api::Calculator:1.0", "interface": "demo_api::Calculator",
            "group": "", "version": "1.0",
            "methods": [{"name": "add", "args": ["a", "b"], "idempotent": true}],
        }]});
        let hosted = parse_hosted(&document);
        assert_eq!(hosted.len(), 1);
        assert_eq!(
            hosted[0].0,
            ServiceKey::new("demo_api::Calculator", "", "1.0")
        );
        assert_eq!(
            hosted[0].1,
            [MethodInfo {
                name: "add".into(),
                args: Some(vec!["a".into(), "b".into()]),
                idempotent: Some(true),
            }]
        );
    }
}
