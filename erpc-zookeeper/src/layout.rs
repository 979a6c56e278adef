//! Dubbo's ZooKeeper layout: `{root}/{interface}/providers/{url-encoded provider URL}`.
//!
//! The provider URL is `erpc://host:port/{interface}?group=..&version=..&weight=..&...`
//! with every metadata pair (`protocol=erpc`, `serialization`, `methods`, ...) as a
//! query parameter, form-encoded as a whole into the node name (what Dubbo's
//! `URL.encode` does), so Dubbo tooling lists erpc providers beside Java ones.

use std::collections::BTreeMap;

use erpc_core::registry::{Provider, Registration, DEFAULT_WEIGHT, TLS_PREFIX, TRANSPORT_KEY};
use erpc_core::ServiceKey;

use crate::ZookeeperError;

/// The protocol (URL scheme and `protocol` parameter) of erpc providers.
pub(crate) const PROTOCOL: &str = "erpc";
const PROTOCOL_KEY: &str = "protocol";
const WEIGHT_KEY: &str = "weight";
const GROUP_KEY: &str = "group";
const VERSION_KEY: &str = "version";

/// `{root}/{interface}/providers`, the directory of `key`'s providers.
pub(crate) fn providers_dir(root: &str, key: &ServiceKey) -> Result<String, ZookeeperError> {
    let interface = &key.interface;
    let invalid = |reason| ZookeeperError::Layout {
        value: interface.clone(),
        reason,
    };
    if interface.is_empty() {
        return Err(invalid("the interface is empty"));
    }
    if interface.contains('/') || interface == "." || interface == ".." {
        return Err(invalid(
            "an interface name cannot hold '/' or be '.' or '..'",
        ));
    }
    Ok(format!("{root}/{interface}/providers"))
}

/// The provider URL of `registration` (not yet encoded).
pub(crate) fn provider_url(registration: &Registration) -> Result<String, ZookeeperError> {
    let provider = &registration.provider;
    let addr = provider
        .addr
        .strip_prefix(TLS_PREFIX)
        .unwrap_or(&provider.addr);
    let mut url =
        url::Url::parse(&format!("{PROTOCOL}://{addr}/")).map_err(|_| ZookeeperError::Layout {
            value: provider.addr.clone(),
            reason: "a provider address must be host:port",
        })?;
    if url.port().is_none() || url.host_str().is_none_or(str::is_empty) {
        return Err(ZookeeperError::Layout {
            value: provider.addr.clone(),
            reason: "a provider address must be host:port",
        });
    }
    url.set_path(&registration.key.interface);
    {
        let mut query = url.query_pairs_mut();
        let mut metadata = provider.metadata.clone();
        metadata.insert(GROUP_KEY.into(), registration.key.group.clone());
        metadata.insert(VERSION_KEY.into(), registration.key.version.clone());
        metadata.insert(WEIGHT_KEY.into(), provider.weight.to_string());
        metadata.insert(PROTOCOL_KEY.into(), PROTOCOL.into());
        if provider.addr.starts_with(TLS_PREFIX) {
            metadata.insert(TRANSPORT_KEY.into(), "tls".into());
        }
        for (key, value) in &metadata {
            query.append_pair(key, value);
        }
    }
    Ok(url.into())
}

/// The node name of `registration`: its provider URL, form-encoded.
pub(crate) fn provider_node(registration: &Registration) -> Result<String, ZookeeperError> {
    Ok(form_urlencoded::byte_serialize(provider_url(registration)?.as_bytes()).collect())
}

/// Why a child of a providers directory is not an erpc provider of the key.
#[derive(Debug, PartialEq)]
pub(crate) enum Skip {
    /// Another protocol's provider (a Dubbo `dubbo://` or `tri://` one).
    Protocol(String),
    /// An erpc provider of another group or version of the interface.
    OtherKey,
    /// Not a URL this layout understands.
    Malformed(&'static str),
}

/// The URL and parameters of an erpc provider node.
fn decode(node: &str) -> Result<(url::Url, BTreeMap<String, String>), Skip> {
    let mut decoded = form_urlencoded::parse(node.as_bytes());
    let url = match (decoded.next(), decoded.next()) {
        (Some((url, rest)), None) if rest.is_empty() => url,
        _ => return Err(Skip::Malformed("not one form-encoded URL")),
    };
    let url = url::Url::parse(&url).map_err(|_| Skip::Malformed("not a URL"))?;
    let params: BTreeMap<String, String> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if url.scheme() != PROTOCOL {
        return Err(Skip::Protocol(url.scheme().to_string()));
    }
    if let Some(protocol) = params.get(PROTOCOL_KEY).filter(|p| *p != PROTOCOL) {
        return Err(Skip::Protocol(protocol.clone()));
    }
    Ok((url, params))
}

fn param<'a>(params: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    params.get(name).map(String::as_str).unwrap_or("")
}

/// The service key of an erpc provider node in `interface`'s providers directory.
pub(crate) fn provider_key(node: &str, interface: &str) -> Option<ServiceKey> {
    let (_, params) = decode(node).ok()?;
    Some(ServiceKey::new(
        interface,
        param(&params, GROUP_KEY),
        param(&params, VERSION_KEY),
    ))
}

/// The provider a node name describes, if it is an erpc provider of `key`.
pub(crate) fn parse_provider_node(node: &str, key: &ServiceKey) -> Result<Provider, Skip> {
    let (url, params) = decode(node)?;
    let param = |name: &str| param(&params, name);
    if param(GROUP_KEY) != key.group || param(VERSION_KEY) != key.version {
        return Err(Skip::OtherKey);
    }
    let (Some(host), Some(port)) = (url.host_str(), url.port()) else {
        return Err(Skip::Malformed("no host:port"));
    };
    let tls = param(TRANSPORT_KEY) == "tls";
    let addr = format!("{}{host}:{port}", if tls { TLS_PREFIX } else { "" });
    let weight = match params.get(WEIGHT_KEY) {
        Some(w) => w
            .parse()
            .map_err(|_| Skip::Malformed("weight is not a number"))?,
        None => DEFAULT_WEIGHT,
    };
    let mut metadata = params;
    metadata.remove(WEIGHT_KEY);
    Ok(Provider {
        addr,
        weight,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(addr: &str) -> Registration {
        let mut provider = Provider::new(addr);
        provider.weight = 7;
        provider
            .metadata
            .insert("methods".into(), "hello,bye".into());
        provider
            .metadata
            .insert("serialization".into(), "msgpack,json".into());
        provider.metadata.insert("odd".into(), "a&b=c /d".into());
        Registration {
            key: ServiceKey::new("demo::Hello", "g1", "1.0"),
            provider,
        }
    }

    #[test]
    fn provider_nodes_round_trip() {
        let reg = registration("10.0.0.5:9000");
        let url = provider_url(&reg).unwrap();
        assert!(
            url.starts_with("erpc://10.0.0.5:9000/demo::Hello?"),
            "{url}"
        );
        assert!(
            url.contains("protocol=erpc") && url.contains("group=g1") && url.contains("weight=7"),
            "{url}"
        );
        let node = provider_node(&reg).unwrap();
        assert!(!node.contains('/') && !node.contains('&'), "{node}");
        let parsed = parse_provider_node(&node, &reg.key).unwrap();
        assert_eq!(parsed.addr, "10.0.0.5:9000");
        assert_eq!(parsed.weight, 7);
        assert_eq!(parsed.metadata["odd"], "a&b=c /d");
        assert_eq!(parsed.metadata["protocol"], "erpc");
        assert_eq!(parsed.metadata["methods"], "hello,bye");
        assert!(!parsed.metadata.contains_key("weight"));

        let other = ServiceKey::new("demo::Hello", "g1", "2.0");
        assert_eq!(parse_provider_node(&node, &other), Err(Skip::OtherKey));
        assert_eq!(provider_key(&node, "demo::Hello"), Some(reg.key.clone()));
    }

    #[test]
    fn tls_and_ipv6_addresses() {
        for addr in ["tls://10.0.0.5:9000", "[::1]:9000"] {
            let reg = registration(addr);
            let parsed = parse_provider_node(&provider_node(&reg).unwrap(), &reg.key).unwrap();
            assert_eq!(parsed.addr, addr);
        }
        assert!(provider_url(&registration("no-port")).is_err());
    }

    #[test]
    fn other_protocols_and_garbage_are_skipped() {
        let key = ServiceKey::new("demo.Hello", "", "1.0");
        let dubbo: String = form_urlencoded::byte_serialize(
            b"dubbo://10.0.0.9:20880/demo.Hello?version=1.0&protocol=dubbo",
        )
        .collect();
        assert_eq!(
            parse_provider_node(&dubbo, &key),
            Err(Skip::Protocol("dubbo".into()))
        );
        assert!(matches!(
            parse_provider_node("not%20a%20url", &key),
            Err(Skip::Malformed(_))
        ));
        assert!(providers_dir("/dubbo", &ServiceKey::new("a/b", "", "1.0")).is_err());
        assert_eq!(
            providers_dir("/dubbo", &key).unwrap(),
            "/dubbo/demo.Hello/providers"
        );
    }
}
