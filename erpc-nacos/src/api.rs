//! Wire types of the Nacos HTTP API, read leniently.
//!
//! Servers differ in what they send (rnacos omits `groupName`, `valid` and the
//! heartbeat fields; the v3 API wraps everything in `{code, message, data}`), so every
//! field has a default and each host is decoded on its own: one odd host is skipped
//! instead of failing the whole list.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/ns/instance/list`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct InstanceList {
    /// Each host as sent; decoded one by one by [`decode_hosts`].
    pub(crate) hosts: Vec<Value>,
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Instance {
    pub(crate) ip: String,
    pub(crate) port: i64,
    pub(crate) weight: f64,
    pub(crate) healthy: bool,
    pub(crate) enabled: bool,
    pub(crate) metadata: BTreeMap<String, Value>,
}

impl Default for Instance {
    fn default() -> Self {
        Self {
            ip: String::new(),
            port: 0,
            weight: 1.0,
            healthy: true,
            enabled: true,
            metadata: BTreeMap::new(),
        }
    }
}

impl Instance {
    /// Metadata as strings (non-string JSON values in their JSON text).
    pub(crate) fn string_metadata(&self) -> BTreeMap<String, String> {
        self.metadata
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

/// Decodes hosts one by one, skipping (and logging) the ones that do not parse.
pub(crate) fn decode_hosts(hosts: Vec<Value>) -> Vec<Instance> {
    hosts
        .into_iter()
        .filter_map(
            |host| match serde_json::from_value::<Instance>(host.clone()) {
                Ok(instance) => Some(instance),
                Err(error) => {
                    tracing::debug!(%error, %host, "skipping a Nacos host that does not parse");
                    None
                }
            },
        )
        .collect()
}

/// `PUT /v1/ns/instance/beat`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct BeatAnswer {
    pub(crate) code: i64,
    pub(crate) client_beat_interval: i64,
}

/// Beat answer code: the server does not know the instance.
pub(crate) const CODE_RESOURCE_NOT_FOUND: i64 = 20404;
/// v3 result code: the instance of a heartbeat is unknown.
pub(crate) const CODE_INSTANCE_NOT_FOUND: i64 = 21003;

/// The v2/v3 result envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct V3Result {
    pub(crate) code: i64,
    pub(crate) message: String,
    pub(crate) data: Value,
}

/// `POST /v1/auth/login` (no `Debug`: it holds the token).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct LoginAnswer {
    pub(crate) access_token: String,
    /// Seconds.
    pub(crate) token_ttl: u64,
}

/// `GET /v1/ns/catalog/instances`: one page of a cluster's instances, disabled ones
/// included.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CatalogPage {
    /// Each instance as sent; decoded one by one by [`decode_hosts`].
    pub(crate) list: Vec<Value>,
    /// Instances in all pages.
    pub(crate) count: u64,
}

/// `GET /v1/ns/service/list`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ServiceList {
    pub(crate) count: u64,
    pub(crate) doms: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rnacos_list_with_missing_fields() {
        let body = r#"{"name":"DEFAULT_GROUP@@S","clusters":"","cacheMillis":10000,"hosts":[
            {"ip":"127.0.0.1","port":9000,"clusterName":"DEFAULT","weight":1.5,"healthy":true,
             "instanceId":"127.0.0.1#9000","metadata":{"protocol":"erpc","n":3},"enabled":true,"ephemeral":true},
            {"ip":"127.0.0.2","port":"bad"},
            {"ip":"127.0.0.3","port":9001}],"lastRefTime":1,"checksum":"x"}"#;
        let list: InstanceList = serde_json::from_str(body).unwrap();
        let hosts = decode_hosts(list.hosts);
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].weight, 1.5);
        assert_eq!(hosts[0].string_metadata()["n"], "3");
        assert_eq!(
            hosts[1],
            Instance {
                ip: "127.0.0.3".into(),
                port: 9001,
                ..Instance::default()
            }
        );
    }

    #[test]
    fn beat_and_v3_answers() {
        let beat: BeatAnswer = serde_json::from_str(
            r#"{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}"#,
        )
        .unwrap();
        assert_eq!((beat.code, beat.client_beat_interval), (10200, 5000));
        let v3: V3Result =
            serde_json::from_str(r#"{"code":21003,"message":"instance not found","data":null}"#)
                .unwrap();
        assert_eq!(v3.code, CODE_INSTANCE_NOT_FOUND);
    }
}
