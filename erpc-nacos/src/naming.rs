//! How erpc services and providers look in Nacos: Dubbo-style service names, metadata
//! that fits Nacos's size limit, and the weight scale.

use std::collections::BTreeMap;

use erpc_core::registry::{Provider, TLS_PREFIX, TRANSPORT_KEY};
use erpc_core::ServiceKey;

use crate::api::Instance;
use crate::NacosError;

/// Nacos refuses metadata whose keys plus values exceed this many characters.
pub const METADATA_LIMIT: usize = 1024;
/// Longest service name Nacos accepts.
const SERVICE_NAME_LIMIT: usize = 512;
/// Prefix of provider services in Dubbo's naming convention.
const PROVIDERS: &str = "providers";
/// Metadata key naming an instance's protocol.
pub(crate) const PROTOCOL_KEY: &str = "protocol";
/// The protocol erpc providers register.
pub(crate) const PROTOCOL: &str = "erpc";
/// Metadata key dropped first when the metadata is too large.
const METHODS_KEY: &str = "methods";

/// The Nacos service name of `key`: `providers:{interface}:{version}:{group}` (Dubbo's form).
///
/// ```
/// use erpc_core::ServiceKey;
/// let key = ServiceKey::new("demo.HelloService", "test1", "1.0");
/// assert_eq!(erpc_nacos::service_name(&key).unwrap(), "providers:demo.HelloService:1.0:test1");
/// ```
pub fn service_name(key: &ServiceKey) -> Result<String, NacosError> {
    let name = format!(
        "{PROVIDERS}:{}:{}:{}",
        key.interface, key.version, key.group
    );
    let invalid = |reason| NacosError::ServiceName {
        name: name.clone(),
        reason,
    };
    if key.interface.is_empty() {
        return Err(invalid("the interface is empty"));
    }
    if name.chars().count() > SERVICE_NAME_LIMIT {
        return Err(invalid("longer than 512 characters"));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(invalid("contains whitespace"));
    }
    if name.contains("@@") {
        return Err(invalid("contains @@"));
    }
    Ok(name)
}

/// The service key of a Nacos service name made by [`service_name`], if it is one.
///
/// The interface may itself hold colons (`crate::module::Trait`), so version and group
/// are taken from the right.
///
/// ```
/// let key = erpc_nacos::parse_service_name("providers:demo::Hello:1.0:").unwrap();
/// assert_eq!((key.interface.as_str(), key.version.as_str(), key.group.as_str()), ("demo::Hello", "1.0", ""));
/// ```
pub fn parse_service_name(name: &str) -> Option<ServiceKey> {
    let rest = name.strip_prefix(PROVIDERS)?.strip_prefix(':')?;
    let (rest, group) = rest.rsplit_once(':')?;
    let (interface, version) = rest.rsplit_once(':')?;
    (!interface.is_empty()).then(|| ServiceKey::new(interface, group, version))
}

/// Metadata as the JSON object Nacos stores, shrunk to [`METADATA_LIMIT`].
///
/// `methods` goes first (it is the largest and only informative); if that is not enough,
/// the longest remaining entries go, each with a log line.
pub(crate) fn metadata_json(metadata: &BTreeMap<String, String>) -> String {
    let mut metadata = metadata.clone();
    let size = |m: &BTreeMap<String, String>| -> usize {
        m.iter()
            .map(|(k, v)| k.chars().count() + v.chars().count())
            .sum()
    };
    if size(&metadata) > METADATA_LIMIT && metadata.remove(METHODS_KEY).is_some() {
        tracing::debug!(
            limit = METADATA_LIMIT,
            "dropped the `methods` metadata entry: Nacos metadata is limited in size"
        );
    }
    while size(&metadata) > METADATA_LIMIT {
        let Some(longest) = metadata
            .iter()
            .max_by_key(|(k, v)| k.chars().count() + v.chars().count())
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        tracing::warn!(key = %longest, limit = METADATA_LIMIT, "dropped a metadata entry: Nacos metadata is limited in size");
        metadata.remove(&longest);
    }
    serde_json::Value::Object(
        metadata
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect(),
    )
    .to_string()
}

/// erpc weight (100 = normal) → Nacos weight (1.0 = normal, at most 10000).
pub fn to_nacos_weight(weight: u32) -> f64 {
    (f64::from(weight) / 100.0).min(10_000.0)
}

/// Nacos weight → erpc weight; nonsense (negative, NaN) becomes 0.
pub fn from_nacos_weight(weight: f64) -> u32 {
    if weight.is_finite() && weight > 0.0 {
        // In range by the clamp; the cast cannot truncate meaningfully.
        (weight * 100.0).round().min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// `host:port` of a provider address, split for the Nacos `ip` and `port` parameters.
/// The `tls://` prefix of a TLS provider is dropped: its metadata says `transport=tls`.
pub(crate) fn split_addr(addr: &str) -> Result<(String, u16), NacosError> {
    let bad = || NacosError::Address {
        addr: addr.to_string(),
    };
    let host_port = addr.strip_prefix(TLS_PREFIX).unwrap_or(addr);
    let (host, port) = host_port.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The usable providers among `instances`: enabled, healthy, with a valid port, and
/// speaking erpc; sorted by address so that equal lists compare equal. A provider with
/// the metadata `transport=tls` gets its `tls://host:port` address back.
///
/// Dubbo's service names are shared with Java Dubbo providers, so an instance whose
/// `protocol` metadata names another protocol is left out and handed to `foreign` with
/// its address and protocol. An instance without `protocol` is kept: erpc always
/// registers it, but a server that re-creates a lost instance from a heartbeat (rnacos)
/// does so without metadata.
pub(crate) fn providers(
    instances: Vec<Instance>,
    mut foreign: impl FnMut(&str, &str),
) -> Vec<Provider> {
    let mut providers: Vec<Provider> = instances
        .into_iter()
        .filter(|i| i.enabled && i.healthy)
        .filter_map(|i| provider_of(&i, &mut foreign))
        .collect();
    providers.sort_by(|a, b| a.addr.cmp(&b.addr));
    providers.dedup_by(|a, b| a.addr == b.addr);
    providers
}

/// Every erpc instance among `instances`, enabled or not, healthy or not, with its
/// flags (as [`providers`] reads them otherwise); sorted by address.
pub(crate) fn listed(
    instances: Vec<Instance>,
    mut foreign: impl FnMut(&str, &str),
) -> Vec<ListedInstance> {
    let mut listed: Vec<ListedInstance> = instances
        .into_iter()
        .filter_map(|i| {
            provider_of(&i, &mut foreign).map(|provider| ListedInstance {
                provider,
                enabled: i.enabled,
                healthy: i.healthy,
            })
        })
        .collect();
    listed.sort_by(|a, b| a.provider.addr.cmp(&b.provider.addr));
    listed.dedup_by(|a, b| a.provider.addr == b.provider.addr);
    listed
}

/// The erpc provider an instance stands for: `None` without an address or a valid port,
/// or (handed to `foreign`) when it speaks another protocol.
fn provider_of(i: &Instance, foreign: &mut impl FnMut(&str, &str)) -> Option<Provider> {
    if i.ip.is_empty() {
        return None;
    }
    let port = u16::try_from(i.port).ok().filter(|p| *p != 0)?;
    let host = if i.ip.contains(':') {
        format!("[{}]", i.ip)
    } else {
        i.ip.clone()
    };
    let metadata = i.string_metadata();
    let scheme = match metadata.get(TRANSPORT_KEY).map(String::as_str) {
        Some("tls") => TLS_PREFIX,
        _ => "",
    };
    let provider = Provider {
        addr: format!("{scheme}{host}:{port}"),
        weight: from_nacos_weight(i.weight),
        metadata,
    };
    match provider.metadata.get(PROTOCOL_KEY) {
        Some(protocol) if protocol != PROTOCOL => {
            foreign(&provider.addr, protocol);
            None
        }
        _ => Some(provider),
    }
}

/// An instance as Nacos keeps it: the provider it stands for and its flags, what
/// governance needs to see ([`NacosRegistry::instances`](crate::NacosRegistry::instances)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ListedInstance {
    /// Address, weight (0 to 100 per cent of normal) and metadata.
    pub provider: Provider,
    /// `false`: disabled (consumers do not see it).
    pub enabled: bool,
    /// `false`: its heartbeats stopped (consumers do not see it).
    pub healthy: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let key = ServiceKey::new("demo_api::HelloService", "g", "1.0");
        let name = service_name(&key).unwrap();
        assert_eq!(name, "providers:demo_api::HelloService:1.0:g");
        assert_eq!(parse_service_name(&name), Some(key));
        assert_eq!(parse_service_name("consumers:a:1:g"), None);
        assert_eq!(parse_service_name("providers:a"), None);
    }

    #[test]
    fn invalid_names() {
        assert!(service_name(&ServiceKey::new("a b", "", "1")).is_err());
        assert!(service_name(&ServiceKey::new("a@@b", "", "1")).is_err());
        assert!(service_name(&ServiceKey::new("", "", "1")).is_err());
        assert!(service_name(&ServiceKey::new("x".repeat(600), "", "1")).is_err());
    }

    #[test]
    fn metadata_is_shrunk_methods_first() {
        let mut m = BTreeMap::new();
        m.insert("protocol".to_string(), "erpc".to_string());
        m.insert("methods".to_string(), "m".repeat(2000));
        let json: BTreeMap<String, String> = serde_json::from_str(&metadata_json(&m)).unwrap();
        assert_eq!(json.keys().collect::<Vec<_>>(), ["protocol"]);

        m.insert("methods".to_string(), "hello,bye".to_string());
        let json: BTreeMap<String, String> = serde_json::from_str(&metadata_json(&m)).unwrap();
        assert_eq!(json, m);

        m.insert("huge".to_string(), "h".repeat(1100));
        let json: BTreeMap<String, String> = serde_json::from_str(&metadata_json(&m)).unwrap();
        assert!(!json.contains_key("huge") && json.contains_key("protocol"));
    }

    #[test]
    fn weights() {
        assert_eq!(to_nacos_weight(100), 1.0);
        assert_eq!(to_nacos_weight(250), 2.5);
        assert_eq!(from_nacos_weight(1.0), 100);
        assert_eq!(from_nacos_weight(0.015), 2);
        assert_eq!(from_nacos_weight(-1.0), 0);
        assert_eq!(from_nacos_weight(f64::NAN), 0);
        assert_eq!(to_nacos_weight(u32::MAX), 10_000.0);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_addr("10.0.0.1:9000").unwrap(),
            ("10.0.0.1".to_string(), 9000)
        );
        assert_eq!(split_addr("[::1]:9000").unwrap(), ("::1".to_string(), 9000));
        assert!(split_addr("10.0.0.1").is_err());
        assert!(split_addr(":9000").is_err());
    }

    #[test]
    fn provider_filter() {
        let ok = Instance {
            ip: "10.0.0.2".into(),
            port: 1,
            ..Instance::default()
        };
        let sick = Instance {
            healthy: false,
            ..ok.clone()
        };
        let off = Instance {
            enabled: false,
            ip: "10.0.0.3".into(),
            ..ok.clone()
        };
        let bad_port = Instance {
            port: 70000,
            ip: "10.0.0.4".into(),
            ..ok.clone()
        };
        let v6 = Instance {
            ip: "::1".into(),
            port: 2,
            weight: 0.5,
            ..Instance::default()
        };
        let mut dubbo = Instance {
            ip: "10.0.0.5".into(),
            ..ok.clone()
        };
        dubbo.metadata.insert("protocol".into(), "dubbo".into());
        let mut erpc = Instance {
            ip: "10.0.0.6".into(),
            ..ok.clone()
        };
        erpc.metadata.insert("protocol".into(), "erpc".into());
        let mut skipped = Vec::new();
        let list = providers(vec![ok, sick, off, bad_port, v6, dubbo, erpc], |addr, p| {
            skipped.push(format!("{addr} {p}"))
        });
        let addrs: Vec<_> = list.iter().map(|p| (p.addr.as_str(), p.weight)).collect();
        assert_eq!(
            addrs,
            [("10.0.0.2:1", 100), ("10.0.0.6:1", 100), ("[::1]:2", 50)]
        );
        assert_eq!(skipped, ["10.0.0.5:1 dubbo"]);
    }

    #[test]
    fn governance_lists_disabled_and_unhealthy_erpc_instances_with_their_flags() {
        let ok = Instance {
            ip: "10.0.0.2".into(),
            port: 1,
            ..Instance::default()
        };
        let off = Instance {
            enabled: false,
            ip: "10.0.0.1".into(),
            ..ok.clone()
        };
        let sick = Instance {
            healthy: false,
            ip: "10.0.0.3".into(),
            ..ok.clone()
        };
        let mut dubbo = Instance {
            ip: "10.0.0.5".into(),
            enabled: false,
            ..ok.clone()
        };
        dubbo.metadata.insert("protocol".into(), "dubbo".into());
        let mut skipped = Vec::new();
        let list = listed(vec![ok, off, sick, dubbo], |addr, p| {
            skipped.push(format!("{addr} {p}"))
        });
        let flags: Vec<_> = list
            .iter()
            .map(|i| (i.provider.addr.as_str(), i.enabled, i.healthy))
            .collect();
        assert_eq!(
            flags,
            [
                ("10.0.0.1:1", false, true),
                ("10.0.0.2:1", true, true),
                ("10.0.0.3:1", true, false)
            ]
        );
        assert_eq!(skipped, ["10.0.0.5:1 dubbo"]);
    }

    #[test]
    fn tls_providers_keep_their_scheme_through_nacos() {
        // Registered: the prefix is dropped from ip/port, the metadata keeps it.
        assert_eq!(
            split_addr("tls://10.0.0.1:9000").unwrap(),
            ("10.0.0.1".to_string(), 9000)
        );
        let mut tls = Instance {
            ip: "10.0.0.1".into(),
            port: 9000,
            ..Instance::default()
        };
        tls.metadata
            .insert(TRANSPORT_KEY.into(), serde_json::Value::from("tls"));
        let plain = Instance {
            ip: "10.0.0.2".into(),
            port: 9000,
            ..Instance::default()
        };
        let list = providers(vec![tls, plain], |_, _| {});
        let addrs: Vec<_> = list.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(addrs, ["10.0.0.2:9000", "tls://10.0.0.1:9000"]);
    }
}
