//! The admin listener of servers and clients: `/metrics` counted exactly (parsed from
//! the Prometheus text), `/health` and `/ready` across registration and graceful
//! shutdown, `/services`, the config keys, and metrics that stay off unless asked for.

#[path = "support/down_at_first.rs"]
mod down_at_first;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use down_at_first::DownAtFirst;
use erpc::{BreakerPolicy, CallOptions, Client, Config, Server, ServerConfig, ServiceKey};

/// The service the tests call.
#[erpc::service(group = "obs", version = "2.0")]
pub trait Meter {
    /// Answers `n + 1`.
    async fn ok(&self, n: u32) -> u32;
    /// Panics: the caller gets `HandlerPanicked`.
    async fn boom(&self) -> u32;
}

struct MeterImpl;

impl Meter for MeterImpl {
    async fn ok(&self, n: u32) -> u32 {
        n + 1
    }

    async fn boom(&self) -> u32 {
        panic!("boom on purpose")
    }
}

const WAIT: Duration = Duration::from_secs(20);

fn key() -> ServiceKey {
    ServiceKey::new(METER_DESCRIPTOR.interface, "obs", "2.0")
}

/// A server of `Meter` on a free port, without metrics or admin listener.
async fn spawn_meter() -> erpc::ServerHandle {
    Server::builder()
        .config(server_config())
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .expect("server binds")
        .spawn()
}

/// A server config that ignores `erpc.toml` and `ERPC_*` of the test's environment.
fn server_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.bind = "127.0.0.1:0".into();
    config
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// GET `path` on `addr`: status and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), reqwest::Error> {
    let response = http().get(format!("http://{addr}{path}")).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Polls GET `path` until it answers `status`; panics after [`WAIT`].
async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = get(addr, path).await.map(|(s, _)| s);
        if matches!(seen, Ok(s) if s == status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never answered {status} (last: {seen:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A small parser of the Prometheus text format (0.0.4): comment lines skipped, each
/// sample line `name{label="value",...} value [timestamp]`, label values unescaped.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample line has a value");
        let name = line[..name_end].to_string();
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            let consumed = loop {
                let (i, c) = chars.next().expect("label set closes");
                match c {
                    '}' => break i + 1,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().expect("label value closes").1 {
                                '"' => break,
                                '\\' => match chars.next().expect("escape").1 {
                                    'n' => value.push('\n'),
                                    other => value.push(other),
                                },
                                other => value.push(other),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    other => key.push(other),
                }
            };
            rest = &body[consumed..];
        }
        let value = rest
            .split_whitespace()
            .next()
            .expect("sample value")
            .parse::<f64>()
            .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    samples
}

/// Parsed samples with lookup by name and exact label set.
struct Scrape(Vec<Sample>);

impl Scrape {
    async fn of(addr: SocketAddr) -> Self {
        let response = http()
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status().as_u16(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        Self(parse_exposition(&response.text().await.expect("body")))
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0
            .iter()
            .find(|s| s.name == name && s.labels == wanted)
            .map(|s| s.value)
    }

    /// Every sample named `name`.
    fn all(&self, name: &str) -> Vec<&Sample> {
        self.0.iter().filter(|s| s.name == name).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_errors_and_latency_on_both_sides() {
    let server = Server::builder()
        .config(server_config())
        .admin("127.0.0.1:0")
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .expect("server binds")
        .spawn();
    let server_admin = server.admin_addr().expect("server admin bound");
    let provider = server.local_addr().to_string();
    let client = Client::builder()
        .config(Default::default())
        .direct([provider.clone()])
        .admin("127.0.0.1:0")
        .build()
        .expect("client builds");
    let client_admin = client.admin_addr().expect("client admin bound");
    let meter = MeterClient::new(client.clone());
    for n in 0..5 {
        assert_eq!(meter.ok(n).await.unwrap(), n + 1);
    }
    for _ in 0..2 {
        let err = meter.boom().await.unwrap_err();
        assert!(matches!(err, erpc::Error::HandlerPanicked(_)), "{err}");
    }
    let missing: Result<u32, _> = client
        .call(&key(), "missing", &(), &CallOptions::default())
        .await;
    assert!(matches!(missing, Err(erpc::Error::MethodNotFound { .. })));

    let service = key().to_string();
    let labels = |side: &'static str, method: &'static str| {
        vec![
            ("side", side),
            ("service", service.as_str()),
            ("method", method),
        ]
    };
    let with_kind = |side, method, kind| {
        let mut l = labels(side, method);
        l.push(("kind", kind));
        l
    };

    let scrape = Scrape::of(server_admin).await;
    assert_eq!(
        scrape.value("erpc_calls_total", &labels("server", "ok")),
        Some(5.0)
    );
    assert_eq!(
        scrape.value("erpc_calls_total", &labels("server", "boom")),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "erpc_call_errors_total",
            &with_kind("server", "boom", "handler_panicked")
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.all("erpc_call_errors_total").len(),
        1,
        "only the panics failed on the server (an unknown method never reaches one): {:?}",
        scrape.all("erpc_call_errors_total")
    );
    assert_eq!(
        scrape.value("erpc_call_duration_seconds_count", &labels("server", "ok")),
        Some(5.0)
    );
    let mut inf = labels("server", "ok");
    inf.push(("le", "+Inf"));
    assert_eq!(
        scrape.value("erpc_call_duration_seconds_bucket", &inf),
        Some(5.0)
    );
    assert_eq!(
        scrape.value("erpc_calls_in_flight", &labels("server", "ok")),
        Some(0.0)
    );
    assert!(scrape.all("erpc_client_picks_total").is_empty());

    let scrape = Scrape::of(client_admin).await;
    assert_eq!(
        scrape.value("erpc_calls_total", &labels("client", "ok")),
        Some(5.0)
    );
    assert_eq!(
        scrape.value("erpc_calls_total", &labels("client", "boom")),
        Some(2.0)
    );
    assert_eq!(
        scrape.value("erpc_calls_total", &labels("client", "missing")),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "erpc_call_errors_total",
            &with_kind("client", "boom", "handler_panicked")
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "erpc_call_errors_total",
            &with_kind("client", "missing", "method_not_found")
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "erpc_call_errors_total",
            &with_kind("client", "ok", "timeout")
        ),
        None
    );
    assert_eq!(
        scrape.value(
            "erpc_call_duration_seconds_count",
            &labels("client", "boom")
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "erpc_client_picks_total",
            &[
                ("service", service.as_str()),
                ("provider", provider.as_str())
            ]
        ),
        Some(8.0)
    );
    assert!(scrape.all("erpc_client_retries_total").is_empty());
    server.shutdown().await.unwrap();
}

/// An address nothing listens on.
async fn dead_addr() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metrics_count_retries_picks_and_ejections() {
    let (a, b) = (dead_addr().await, dead_addr().await);
    let client = Client::builder()
        .config(Default::default())
        .direct([a.clone(), b.clone()])
        .retries(1)
        .breaker(BreakerPolicy {
            consecutive_failures: 2,
            ..BreakerPolicy::default()
        })
        .metrics(true)
        .build()
        .expect("client builds");
    assert_eq!(client.admin_addr(), None, "metrics alone open no listener");
    let meter = MeterClient::new(client.clone());
    for _ in 0..2 {
        let err = meter.ok(1).await.unwrap_err();
        assert!(matches!(err, erpc::Error::Connect { .. }), "{err}");
    }
    let text = client.metrics().expect("metrics on").encode();
    let scrape = Scrape(parse_exposition(&text));
    let service = key().to_string();
    let call = [
        ("side", "client"),
        ("service", service.as_str()),
        ("method", "ok"),
    ];
    assert_eq!(scrape.value("erpc_calls_total", &call), Some(2.0), "{text}");
    let mut connect = call.to_vec();
    connect.push(("kind", "connect"));
    assert_eq!(scrape.value("erpc_call_errors_total", &connect), Some(2.0));
    assert_eq!(scrape.value("erpc_client_retries_total", &call), Some(2.0));
    for provider in [&a, &b] {
        let pick = [
            ("service", service.as_str()),
            ("provider", provider.as_str()),
        ];
        assert_eq!(
            scrape.value("erpc_client_picks_total", &pick),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            scrape.value(
                "erpc_client_ejections_total",
                &[("provider", provider.as_str())]
            ),
            Some(1.0),
            "two consecutive connect failures eject {provider}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_registration_and_graceful_shutdown() {
    let registry = DownAtFirst::new();
    let server = Server::builder()
        .config(server_config())
        .advertise("127.0.0.1:3")
        .registry(registry.clone())
        .admin("127.0.0.1:0")
        // Keeps the server in its shutdown for a while after deregistering.
        .goaway_grace(Duration::from_secs(2))
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .expect("server binds")
        .spawn();
    let admin = server.admin_addr().expect("admin bound");

    assert_eq!(get(admin, "/health").await.unwrap().0, 200);
    let (status, body) = get(admin, "/ready").await.unwrap();
    assert_eq!(status, 503, "ready while the registry refuses: {body}");
    assert_eq!(get(admin, "/nope").await.unwrap().0, 404);

    registry.come_up();
    wait_for_status(admin, "/ready", 200).await;
    tokio::time::timeout(WAIT, server.registered())
        .await
        .expect("registered");

    let stopping = tokio::spawn(server.shutdown());
    wait_for_status(admin, "/ready", 503).await;
    assert!(
        !stopping.is_finished(),
        "the grace should outlast the check"
    );
    assert_eq!(
        get(admin, "/health").await.unwrap().0,
        200,
        "live while shutting down"
    );
    stopping.await.unwrap().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while get(admin, "/health").await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the admin listener outlived its server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_list_hosted_and_subscribed_services() {
    let server = Server::builder()
        .config(server_config())
        .admin("127.0.0.1:0")
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .expect("server binds")
        .spawn();
    let (status, body) = get(server.admin_addr().unwrap(), "/services")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["side"], "server");
    let services = doc["services"].as_array().expect("a list");
    assert_eq!(services.len(), 1, "{doc}");
    let meter = &services[0];
    assert_eq!(meter["service"], key().to_string());
    assert_eq!(meter["interface"], METER_DESCRIPTOR.interface);
    assert_eq!(meter["group"], "obs");
    assert_eq!(meter["version"], "2.0");
    assert_eq!(meter["descriptor"]["default_group"], "obs");
    let methods: Vec<(&str, usize)> = meter["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["args"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(methods, [("ok", 1), ("boom", 0)]);

    let client = Client::builder()
        .config(Default::default())
        .direct([server.local_addr().to_string()])
        .admin("127.0.0.1:0")
        .build()
        .unwrap();
    let client_admin = client.admin_addr().unwrap();
    assert_eq!(get(client_admin, "/ready").await.unwrap().0, 200);
    let (_, body) = get(client_admin, "/services").await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["services"].as_array().map(Vec::len), Some(0), "{doc}");
    MeterClient::new(client.clone()).ok(1).await.unwrap();
    let (_, body) = get(client_admin, "/services").await.unwrap();
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["side"], "client");
    assert_eq!(doc["services"][0]["service"], key().to_string(), "{doc}");
    assert_eq!(doc["services"][0]["providers"], 1, "{doc}");

    // The listener lives as long as the client's handles.
    drop(client);
    let deadline = tokio::time::Instant::now() + WAIT;
    while get(client_admin, "/health").await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client's admin listener outlived the client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await.unwrap();
}

/// A port that was free a moment ago.
async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_variables_select_the_admin_address() {
    let vars = Config::env_vars();
    for name in [
        "ERPC_SERVER_ADMIN",
        "ERPC_CLIENT_ADMIN",
        "ERPC_SERVER_METRICS",
    ] {
        assert!(vars.iter().any(|v| v == name), "{name} missing");
    }
    let (server_port, client_port) = (free_port().await, free_port().await);
    let mut config = Config::from_toml(&format!(
        "[server]\nbind = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:{server_port}\""
    ))
    .unwrap();
    config
        .apply_env(|name| (name == "ERPC_CLIENT_ADMIN").then(|| format!("127.0.0.1:{client_port}")))
        .unwrap();
    let server = Server::builder()
        .config(config.server)
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .unwrap()
        .spawn();
    assert_eq!(server.admin_addr().map(|a| a.port()), Some(server_port));
    assert!(
        server.metrics().is_some(),
        "an admin address turns metrics on"
    );
    assert_eq!(
        get(server.admin_addr().unwrap(), "/health")
            .await
            .unwrap()
            .0,
        200
    );
    let client = Client::builder()
        .config(config.client)
        .direct([server.local_addr().to_string()])
        .build()
        .unwrap();
    assert_eq!(client.admin_addr().map(|a| a.port()), Some(client_port));
    assert_eq!(
        get(client.admin_addr().unwrap(), "/health")
            .await
            .unwrap()
            .0,
        200
    );

    // A port in use is an error that names the admin listener.
    let taken = Client::builder()
        .config(Default::default())
        .direct(["127.0.0.1:1"])
        .admin(format!("127.0.0.1:{client_port}"))
        .build()
        .unwrap_err();
    assert!(taken.to_string().contains("admin listener"), "{taken}");
    server.shutdown().await.unwrap();
}

/// A stub keeps each method's metric handles after its first call; a handle moved to
/// another group or version counts under its new key, not the one it was cloned from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_moved_to_another_group_or_version_counts_under_its_new_key() {
    let server = spawn_meter().await;
    let client = Client::builder()
        .config(Default::default())
        .direct([server.local_addr().to_string()])
        .metrics(true)
        .build()
        .unwrap();
    let meter = MeterClient::new(client.clone());
    for n in 0..3 {
        meter.ok(n).await.unwrap();
    }
    // Nobody serves these keys: the calls fail, and are counted where they went.
    let blue = meter.clone().with_group("blue");
    let v3 = meter.clone().with_version("3.0");
    assert!(blue.ok(1).await.is_err());
    for _ in 0..2 {
        assert!(v3.ok(1).await.is_err());
    }
    meter.ok(9).await.unwrap();
    let scrape = Scrape(parse_exposition(&client.metrics().unwrap().encode()));
    let count = |key: ServiceKey| {
        let service = key.to_string();
        let labels = [
            ("side", "client"),
            ("service", service.as_str()),
            ("method", "ok"),
        ];
        scrape.value("erpc_calls_total", &labels)
    };
    let interface = METER_DESCRIPTOR.interface;
    assert_eq!(count(key()), Some(4.0));
    assert_eq!(count(ServiceKey::new(interface, "blue", "2.0")), Some(1.0));
    assert_eq!(count(ServiceKey::new(interface, "obs", "3.0")), Some(2.0));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_off_unless_asked_for() {
    let plain = spawn_meter().await;
    assert!(plain.metrics().is_none() && plain.admin_addr().is_none());
    let client = Client::builder()
        .config(Default::default())
        .direct([plain.local_addr().to_string()])
        .build()
        .unwrap();
    MeterClient::new(client.clone()).ok(1).await.unwrap();
    assert!(client.metrics().is_none() && client.admin_addr().is_none());

    // An admin listener with metrics turned off: the other endpoints, no /metrics.
    let quiet = Server::builder()
        .config(server_config())
        .admin("127.0.0.1:0")
        .metrics(false)
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .unwrap()
        .spawn();
    assert!(quiet.metrics().is_none());
    let admin = quiet.admin_addr().unwrap();
    assert_eq!(get(admin, "/metrics").await.unwrap().0, 404);
    assert_eq!(get(admin, "/health").await.unwrap().0, 200);

    // Metrics without a listener record calls.
    let counted = Server::builder()
        .config(server_config())
        .metrics(true)
        .add_service(MeterServer::new(MeterImpl))
        .build()
        .await
        .unwrap()
        .spawn();
    let client = Client::builder()
        .config(Default::default())
        .direct([counted.local_addr().to_string()])
        .build()
        .unwrap();
    MeterClient::new(client).ok(1).await.unwrap();
    let scrape = Scrape(parse_exposition(&counted.metrics().unwrap().encode()));
    let service = key().to_string();
    let call = [
        ("side", "server"),
        ("service", service.as_str()),
        ("method", "ok"),
    ];
    assert_eq!(scrape.value("erpc_calls_total", &call), Some(1.0));
    for server in [plain, quiet, counted] {
        server.shutdown().await.unwrap();
    }
}

#[test]
fn the_parser_reads_labels_escapes_and_values() {
    let samples = parse_exposition(
        "# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"q\\\"uote\",b=\"1\"} 3\nup 1 1700000000\n",
    );
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].name, "x_total");
    assert_eq!(samples[0].labels["a"], "q\"uote");
    assert_eq!(samples[0].value, 3.0);
    assert_eq!(samples[1].name, "up");
    assert!(samples[1].labels.is_empty());
}
