//! The naming operations (register, heartbeat, deregister, list) on either API line.
//!
//! v1 (`/v1/ns/instance`) is served by rnacos, Nacos 1.x/2.x and, in compatibility mode,
//! 3.x. The 3.x client API (`/v3/client/ns/instance`) wraps answers in
//! `{code, message, data}` and has no separate beat: a heartbeat is a register with
//! `heartBeat=true`, answered with code 21003 when the server does not know the instance.

use std::collections::HashSet;
use std::time::Duration;

use erpc_core::registry::Provider;
use reqwest::Method;
use tokio::sync::OnceCell;

use crate::api::{self, BeatAnswer, CatalogPage, InstanceList, ServiceList, V3Result};
use crate::client::{Client, Params};
use crate::error::clip;
use crate::naming::{self, ListedInstance};
use crate::url::ApiVersion;
use crate::{NacosConfig, NacosError};

/// Service name used to probe for the v3 API.
const PROBE_SERVICE: &str = "erpc.api-probe";

/// A registered instance, ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InstanceSpec {
    pub(crate) service: String,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) weight: f64,
    /// Metadata JSON, already shrunk to Nacos's limit.
    pub(crate) metadata: String,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The server knows the instance; beat again after this long if it said so.
    Alive(Option<Duration>),
    /// The server does not know the instance: register it again.
    Unknown,
}

/// Nacos naming API bound to one namespace and group.
pub(crate) struct Naming {
    pub(crate) config: NacosConfig,
    client: Client,
    api: OnceCell<ApiVersion>,
    /// Instances of other protocols already logged, by (service, address).
    foreign: parking_lot::Mutex<HashSet<(String, String)>>,
}

impl Naming {
    pub(crate) fn new(config: NacosConfig) -> Result<Self, NacosError> {
        config.validate()?;
        let client = Client::new(&config)?;
        let api = match config.api {
            ApiVersion::Auto => OnceCell::new(),
            fixed => OnceCell::new_with(Some(fixed)),
        };
        Ok(Self {
            config,
            client,
            api,
            foreign: parking_lot::Mutex::default(),
        })
    }

    /// The API line in use, probing the server the first time.
    pub(crate) async fn api(&self) -> Result<ApiVersion, NacosError> {
        self.api.get_or_try_init(|| self.probe()).await.copied()
    }

    /// v3 when the v3 instance list answers with a v3 result, v1 when the server says the
    /// path is unknown or gone; unreachable servers leave the question open.
    async fn probe(&self) -> Result<ApiVersion, NacosError> {
        let params = self.params(PROBE_SERVICE);
        let api = match self
            .client
            .call(Method::GET, "/v3/client/ns/instance/list", &params)
            .await
        {
            Ok(body) if is_v3_envelope(&body) => ApiVersion::V3,
            Ok(_) => ApiVersion::V1,
            // A v3 failure (say, "service not found") still proves the v3 API is there.
            Err(NacosError::Http {
                status: 400..=499,
                body,
                ..
            }) if is_v3_envelope(&body) => ApiVersion::V3,
            Err(
                error @ NacosError::Http {
                    status: 400..=499, ..
                },
            ) => {
                tracing::debug!(%error, "no Nacos v3 client API");
                ApiVersion::V1
            }
            // Unreachable, or the login failed: ask again next time.
            Err(error) => return Err(error),
        };
        tracing::info!(?api, servers = ?self.config.servers, "Nacos API selected");
        Ok(api)
    }

    /// Namespace, group and service: the parameters every naming call carries.
    fn params(&self, service: &str) -> Params {
        let mut params = vec![
            ("serviceName", service.to_string()),
            ("groupName", self.config.group.clone()),
        ];
        // rnacos and Nacos agree on what no namespace means; they differ on spelling it.
        if !self.config.default_namespace() {
            params.push(("namespaceId", self.config.namespace.clone()));
        }
        params
    }

    fn instance_params(&self, spec: &InstanceSpec) -> Params {
        let mut params = self.params(&spec.service);
        params.extend([
            ("ip", spec.ip.clone()),
            ("port", spec.port.to_string()),
            ("clusterName", self.config.cluster.clone()),
            ("ephemeral", "true".to_string()),
        ]);
        params
    }

    /// The v1 beat's `beat` parameter: the whole instance, as the Java client sends it.
    /// A server that lost the instance (restarted empty, or it was deleted) re-creates it
    /// from this, weight and metadata included: rnacos does so from any beat, and a bare
    /// beat would bring back an instance with neither.
    fn beat_info(&self, spec: &InstanceSpec) -> String {
        // The metadata was encoded by `naming::metadata_json`: always an object.
        let metadata: serde_json::Value =
            serde_json::from_str(&spec.metadata).unwrap_or_else(|_| serde_json::json!({}));
        serde_json::json!({
            "ip": spec.ip,
            "port": spec.port,
            "cluster": self.config.cluster,
            "weight": spec.weight,
            "metadata": metadata,
        })
        .to_string()
    }

    pub(crate) async fn register(&self, spec: &InstanceSpec) -> Result<(), NacosError> {
        let mut params = self.instance_params(spec);
        params.extend([
            ("weight", spec.weight.to_string()),
            ("enabled", "true".to_string()),
            ("healthy", "true".to_string()),
            ("metadata", spec.metadata.clone()),
        ]);
        match self.api().await? {
            ApiVersion::V3 => {
                params.push(("heartBeat", "false".to_string()));
                self.v3(Method::POST, "register", &params).await.map(drop)
            }
            _ => self.v1_ok(Method::POST, "/v1/ns/instance", &params).await,
        }
    }

    /// Sets an instance's weight, enabled flag and metadata: v1 `PUT /v1/ns/instance`,
    /// or on 3.x (where that answers 410) the admin API's `PUT /v3/admin/ns/instance`.
    pub(crate) async fn update(
        &self,
        spec: &InstanceSpec,
        enabled: bool,
    ) -> Result<(), NacosError> {
        // rnacos 0.8 takes an update's weight of exactly 1.0 (its default) for "weight
        // not sent" and keeps the old one, so that setting weight 100 back after a drain
        // would do nothing; a hair above 1.0 reads back as erpc weight 100 everywhere.
        let weight = if spec.weight == 1.0 {
            1.000_001
        } else {
            spec.weight
        };
        let mut params = self.instance_params(spec);
        params.extend([
            ("weight", weight.to_string()),
            ("enabled", enabled.to_string()),
            ("metadata", spec.metadata.clone()),
        ]);
        match self.api().await? {
            ApiVersion::V3 => self.v3(Method::PUT, "update", &params).await.map(drop),
            _ => self.v1_ok(Method::PUT, "/v1/ns/instance", &params).await,
        }
    }

    pub(crate) async fn deregister(&self, spec: &InstanceSpec) -> Result<(), NacosError> {
        let params = self.instance_params(spec);
        match self.api().await? {
            ApiVersion::V3 => self
                .v3(Method::DELETE, "deregister", &params)
                .await
                .map(drop),
            _ => self.v1_ok(Method::DELETE, "/v1/ns/instance", &params).await,
        }
    }

    pub(crate) async fn beat(&self, spec: &InstanceSpec) -> Result<Beat, NacosError> {
        let mut params = self.instance_params(spec);
        match self.api().await? {
            ApiVersion::V3 => {
                params.push(("heartBeat", "true".to_string()));
                match self.v3(Method::POST, "heartbeat", &params).await {
                    Ok(_) => Ok(Beat::Alive(None)),
                    Err(NacosError::Refused {
                        code: api::CODE_INSTANCE_NOT_FOUND,
                        ..
                    }) => Ok(Beat::Unknown),
                    Err(error) => Err(error),
                }
            }
            _ => {
                params.push(("beat", self.beat_info(spec)));
                let body = match self
                    .client
                    .call(Method::PUT, "/v1/ns/instance/beat", &params)
                    .await
                {
                    Ok(body) => body,
                    Err(NacosError::Http { status: 404, .. }) => return Ok(Beat::Unknown),
                    Err(error) => return Err(error),
                };
                let answer: BeatAnswer = decode("/v1/ns/instance/beat", &body)?;
                if answer.code == api::CODE_RESOURCE_NOT_FOUND {
                    return Ok(Beat::Unknown);
                }
                let interval = u64::try_from(answer.client_beat_interval)
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis);
                Ok(Beat::Alive(interval))
            }
        }
    }

    /// The current healthy, enabled providers of `service`.
    pub(crate) async fn providers(&self, service: &str) -> Result<Vec<Provider>, NacosError> {
        let mut params = self.params(service);
        let hosts = match self.api().await? {
            ApiVersion::V3 => {
                let data = self.v3(Method::GET, "list", &params).await?;
                hosts_of(data, "/v3/client/ns/instance/list")?
            }
            _ => {
                // rnacos defaults healthyOnly to true and Nacos to false: always say it.
                params.push(("healthyOnly", "true".to_string()));
                let body = self
                    .client
                    .call(Method::GET, "/v1/ns/instance/list", &params)
                    .await?;
                decode::<InstanceList>("/v1/ns/instance/list", &body)?.hosts
            }
        };
        let hosts = api::decode_hosts(hosts);
        Ok(naming::providers(hosts, |addr, protocol| {
            self.skipped_foreign(service, addr, protocol)
        }))
    }

    /// Every erpc instance of `service`, disabled and unhealthy ones included: the 3.x
    /// admin API's list, or the 1.x/2.x console catalog of the configured cluster
    /// (paged).
    pub(crate) async fn listed(&self, service: &str) -> Result<Vec<ListedInstance>, NacosError> {
        let hosts = match self.api().await? {
            ApiVersion::V3 => {
                let mut params = self.params(service);
                params.push(("healthyOnly", "false".to_string()));
                let data = self.v3(Method::GET, "all", &params).await?;
                hosts_of(data, "/v3/admin/ns/instance/list")?
            }
            _ => self.catalog(service).await?,
        };
        let hosts = api::decode_hosts(hosts);
        Ok(naming::listed(hosts, |addr, protocol| {
            self.skipped_foreign(service, addr, protocol)
        }))
    }

    /// `GET /v1/ns/catalog/instances`, every page.
    async fn catalog(&self, service: &str) -> Result<Vec<serde_json::Value>, NacosError> {
        const PATH: &str = "/v1/ns/catalog/instances";
        const PAGE_SIZE: usize = 500;
        let mut hosts = Vec::new();
        for page in 1.. {
            let mut params = self.params(service);
            params.extend([
                ("clusterName", self.config.cluster.clone()),
                ("pageNo", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
            ]);
            let body = self.client.call(Method::GET, PATH, &params).await?;
            let page: CatalogPage = decode(PATH, &body)?;
            let got = page.list.len();
            hosts.extend(page.list);
            if got < PAGE_SIZE || hosts.len() as u64 >= page.count {
                break;
            }
        }
        Ok(hosts)
    }

    /// Logs (once per instance) that a provider of another protocol was left out.
    fn skipped_foreign(&self, service: &str, addr: &str, protocol: &str) {
        /// Instances remembered; past this many the memory starts over (and each is
        /// logged once more), so that churning foreign instances cannot grow it forever.
        const REMEMBERED: usize = 4096;
        let mut seen = self.foreign.lock();
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        if seen.insert((service.to_string(), addr.to_string())) {
            tracing::debug!(%service, %addr, %protocol, "skipping a provider that does not speak erpc");
        }
    }

    /// Names of all services in the group (one page of up to `page_size` per request).
    pub(crate) async fn service_names(&self) -> Result<Vec<String>, NacosError> {
        const PAGE_SIZE: usize = 500;
        let mut names = Vec::new();
        for page in 1.. {
            let mut params = vec![
                ("pageNo", page.to_string()),
                ("pageSize", PAGE_SIZE.to_string()),
                ("groupName", self.config.group.clone()),
            ];
            if !self.config.default_namespace() {
                params.push(("namespaceId", self.config.namespace.clone()));
            }
            let body = self
                .client
                .call(Method::GET, "/v1/ns/service/list", &params)
                .await?;
            let list: ServiceList = decode("/v1/ns/service/list", &body)?;
            let got = list.doms.len();
            names.extend(list.doms);
            if got < PAGE_SIZE || names.len() as u64 >= list.count {
                break;
            }
        }
        Ok(names)
    }

    /// A v1 call answered `ok` (or any 2xx).
    async fn v1_ok(&self, method: Method, path: &str, params: &Params) -> Result<(), NacosError> {
        self.client.call(method, path, params).await.map(drop)
    }

    /// A v3 client-API call; a non-zero result code is an error.
    async fn v3(
        &self,
        method: Method,
        operation: &'static str,
        params: &Params,
    ) -> Result<serde_json::Value, NacosError> {
        let path = match operation {
            "list" => "/v3/client/ns/instance/list",
            // Disabled instances too: the client API leaves them out.
            "all" => "/v3/admin/ns/instance/list",
            // The client API cannot change an instance: the admin API can.
            "update" => "/v3/admin/ns/instance",
            _ => "/v3/client/ns/instance",
        };
        let body = match self.client.call(method, path, params).await {
            Ok(body) => body,
            Err(error) => {
                // Nacos 3 answers failures with 4xx and the same envelope.
                if let NacosError::Http {
                    status: 400..=499,
                    body,
                    url,
                    ..
                } = &error
                {
                    if let Ok(result) = serde_json::from_str::<V3Result>(body) {
                        if result.code != 0 {
                            return result_error(operation, url.clone(), result);
                        }
                    }
                }
                return Err(error);
            }
        };
        let result: V3Result = decode(path, &body)?;
        if result.code != 0 {
            return result_error(operation, path.to_string(), result);
        }
        Ok(result.data)
    }
}

/// The hosts of a v3 list's `data` (`null`: none), read from `url`.
fn hosts_of(data: serde_json::Value, url: &str) -> Result<Vec<serde_json::Value>, NacosError> {
    match data {
        serde_json::Value::Array(hosts) => Ok(hosts),
        serde_json::Value::Null => Ok(Vec::new()),
        other => Err(NacosError::Decode {
            url: url.to_string(),
            reason: "data is not a list".to_string(),
            body: clip(&other.to_string()),
        }),
    }
}

/// A `{code, message, data}` object: what the v2/v3 APIs answer (Spring's own error
/// pages, which a server without those APIs sends, have no `code`).
fn is_v3_envelope(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("code").is_some_and(|c| c.is_i64()) && v.get("message").is_some())
}

fn result_error<T>(
    operation: &'static str,
    url: String,
    result: V3Result,
) -> Result<T, NacosError> {
    Err(NacosError::Refused {
        operation,
        url,
        code: result.code,
        message: result.message,
    })
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &str) -> Result<T, NacosError> {
    serde_json::from_str(body).map_err(|e| NacosError::Decode {
        url: path.to_string(),
        reason: e.to_string(),
        body: clip(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured log output.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<parking_lot::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_foreign_instance_is_logged_once() {
        let naming = Naming::new(NacosConfig::default()).unwrap();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                naming.skipped_foreign("providers:a:1.0:", "10.0.0.1:20880", "dubbo");
                naming.skipped_foreign("providers:a:1.0:", "10.0.0.2:20880", "tri");
            }
        });
        let text = String::from_utf8_lossy(&logs.0.lock()).into_owned();
        assert_eq!(text.matches("does not speak erpc").count(), 2, "{text}");
        assert!(
            text.contains("10.0.0.1:20880") && text.contains("tri"),
            "{text}"
        );
    }

    #[test]
    fn v3_envelopes() {
        assert!(is_v3_envelope(
            r#"{"code":0,"message":"success","data":[]}"#
        ));
        assert!(is_v3_envelope(
            r#"{"code":20004,"message":"service not found","data":null}"#
        ));
        let spring = r#"{"timestamp":"x","status":404,"error":"Not Found","message":"","path":"/nacos/v3/client/ns/instance/list"}"#;
        assert!(!is_v3_envelope(spring));
        assert!(!is_v3_envelope("Not Found"));
    }
}
