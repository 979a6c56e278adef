//! The Nacos registry against real servers: rnacos always (when built), official Nacos
//! 2.x / 3.x when `ERPC_NACOS2_LIB` / `ERPC_NACOS3_LIB` are set. See `support/mod.rs`.

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use erpc_core::registry::{
    Change, ChangeStream, Provider, Registration, Registry, TLS_PREFIX, TRANSPORT_KEY,
};
use erpc_core::ServiceKey;
use erpc_nacos::{ApiVersion, NacosConfig, NacosError, NacosRegistry};
use futures::StreamExt;
use support::{eventually, Kind, Options, Server};

fn key(test: &str) -> ServiceKey {
    ServiceKey::new(format!("erpc.test.{test}"), "g1", "1.0")
}

fn registration(key: &ServiceKey, port: u16) -> Registration {
    let mut provider = Provider::new(format!("127.0.0.1:{port}"));
    provider.weight = 250;
    provider.metadata = BTreeMap::from([
        ("protocol".to_string(), "erpc".to_string()),
        ("serialization".to_string(), "msgpack".to_string()),
        ("methods".to_string(), "hello,bye".to_string()),
        ("side".to_string(), "provider".to_string()),
    ]);
    Registration {
        key: key.clone(),
        provider,
    }
}

fn config(server: &Server) -> NacosConfig {
    NacosConfig::new([server.addr()])
}

fn registry(config: NacosConfig) -> NacosRegistry {
    NacosRegistry::new(config).expect("valid config")
}

/// Runs `test` with a time bound, so a hang fails instead of blocking CI.
async fn bounded<F: Future<Output = ()>>(kind: Kind, limit: Duration, test: F) {
    eprintln!("--- on {kind:?}");
    if tokio::time::timeout(limit, test).await.is_err() {
        panic!("test on {kind:?} did not finish within {limit:?}");
    }
}

/// The providers of `key` once there are `count` of them (registration is asynchronous
/// on Nacos: an instance shows up in lists up to a second later).
async fn providers_when(registry: &NacosRegistry, key: &ServiceKey, count: usize) -> Vec<Provider> {
    eventually(
        Duration::from_secs(5),
        &format!("{count} providers of {key}"),
        || async {
            registry
                .providers(key)
                .await
                .ok()
                .filter(|p| p.len() == count)
        },
    )
    .await
}

async fn next_change(changes: &mut ChangeStream, within: Duration) -> Option<Change> {
    tokio::time::timeout(within, changes.next())
        .await
        .ok()
        .flatten()
}

fn addrs(change: &Change) -> Vec<&str> {
    change.all.iter().map(|p| p.addr.as_str()).collect()
}

/// The instance with `port` from a raw v1 list call (healthyOnly=false), as JSON.
fn raw_instance(
    server: &Server,
    key: &ServiceKey,
    group: &str,
    port: u16,
) -> Option<serde_json::Value> {
    let name = erpc_nacos::service_name(key).unwrap();
    let path = format!(
        "/nacos/v1/ns/instance/list?serviceName={name}&groupName={group}&healthyOnly=false"
    );
    let (status, body) = support::http(server.port, "GET", &path, "")?;
    if status != 200 {
        return None;
    }
    let list: serde_json::Value = serde_json::from_str(&body).ok()?;
    list["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["port"] == port)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_makes_the_instance_visible_with_metadata() {
    for server in support::servers(
        "register_makes_the_instance_visible_with_metadata",
        Options::default(),
    ) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server));
            let key = key("visible");
            let port = support::free_port(false);
            registry.register(&registration(&key, port)).await.unwrap();

            let host = eventually(
                Duration::from_secs(5),
                "the instance in the raw list",
                || async { raw_instance(&server, &key, "DEFAULT_GROUP", port) },
            )
            .await;
            assert_eq!(host["metadata"]["protocol"], "erpc");
            assert_eq!(host["metadata"]["serialization"], "msgpack");
            assert_eq!(host["weight"], 2.5);
            assert_eq!(host["ephemeral"], true);

            let providers = registry.providers(&key).await.unwrap();
            assert_eq!(
                providers,
                vec![registration(&key, port).provider],
                "weight and metadata map back"
            );
            let services = registry.services().await.unwrap();
            assert!(services.contains(&key), "{key:?} listed in {services:?}");
            let api = registry.api_version().await.unwrap();
            match server.kind {
                Kind::Rnacos | Kind::Nacos2 => assert_eq!(api, ApiVersion::V1),
                Kind::Nacos3 => assert_eq!(api, ApiVersion::V3),
            }

            // Forced v1 works too (3.x keeps the v1 client API open for compatibility).
            let v1 = NacosRegistry::new(config(&server).api(ApiVersion::V1)).unwrap();
            let other = support::free_port(false);
            v1.register(&registration(&key, other)).await.unwrap();
            providers_when(&v1, &key, 2).await;
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_discovers_two_providers() {
    for server in support::servers("subscribe_discovers_two_providers", Options::default()) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server));
            let key = key("two");
            let mut changes = registry.subscribe(&key).await.unwrap();
            let first = next_change(&mut changes, Duration::from_secs(1))
                .await
                .expect("first item");
            assert!(first.all.is_empty(), "nothing registered yet: {first:?}");

            let (a, b) = (support::free_port(false), support::free_port(false));
            registry.register(&registration(&key, a)).await.unwrap();
            registry.register(&registration(&key, b)).await.unwrap();
            let mut expected = vec![format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}")];
            expected.sort();
            let mut seen = Vec::new();
            while seen != expected {
                let change = next_change(&mut changes, Duration::from_secs(5))
                    .await
                    .expect("a change with both providers");
                assert!(!change.is_empty(), "only changes are emitted");
                seen = addrs(&change).into_iter().map(String::from).collect();
            }
            // A second subscriber starts from the full list.
            let mut late = registry.subscribe(&key).await.unwrap();
            let first = next_change(&mut late, Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(first.added.len(), 2);
            assert_eq!(first.all[0].metadata["protocol"], "erpc");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregister_removes_the_provider_within_one_second() {
    for server in support::servers(
        "deregister_removes_the_provider_within_one_second",
        Options::default(),
    ) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server));
            let key = key("deregister");
            let (a, b) = (support::free_port(false), support::free_port(false));
            let (ra, rb) = (registration(&key, a), registration(&key, b));
            registry.register(&ra).await.unwrap();
            registry.register(&rb).await.unwrap();
            let mut changes = registry.subscribe(&key).await.unwrap();
            let mut all = 0;
            while all < 2 {
                all = next_change(&mut changes, Duration::from_secs(5))
                    .await
                    .expect("both providers")
                    .all
                    .len();
            }

            // Polling every 500 ms ±20 % notices a change within 1 s of the server showing
            // it. rnacos shows it at once; Nacos 2.x/3.x refresh their list cache in a push
            // task delayed by 500 ms (`PushConfig.pushTaskDelay`), which adds to that.
            let limit = match server.kind {
                Kind::Rnacos => Duration::from_secs(1),
                Kind::Nacos2 | Kind::Nacos3 => Duration::from_millis(1600),
            };
            registry.deregister(&ra).await.unwrap();
            let started = Instant::now();
            let change = next_change(&mut changes, limit)
                .await
                .unwrap_or_else(|| panic!("removal not seen within {limit:?}"));
            eprintln!("removal seen after {:?}", started.elapsed());
            assert_eq!(change.removed, vec![ra.provider.addr.clone()], "{change:?}");
            assert_eq!(addrs(&change), [rb.provider.addr.as_str()]);

            // The last provider leaving is a real, empty list: it is emitted.
            registry.deregister(&rb).await.unwrap();
            let change = next_change(&mut changes, limit)
                .await
                .expect("the empty list");
            assert!(
                change.all.is_empty() && change.removed == vec![rb.provider.addr.clone()],
                "{change:?}"
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_keeps_the_last_list_while_nacos_is_unreachable() {
    for mut server in support::servers(
        "subscription_keeps_the_last_list_while_nacos_is_unreachable",
        Options::default(),
    ) {
        let kind = server.kind;
        let cache = tempfile::tempdir().unwrap();
        bounded(kind, Duration::from_secs(40), async {
            let cached = registry(
                config(&server)
                    .cache_dir(cache.path())
                    .request_timeout(Duration::from_millis(500)),
            );
            let uncached = registry(config(&server).request_timeout(Duration::from_millis(500)));
            let key = key("unreachable");
            let port = support::free_port(false);
            cached.register(&registration(&key, port)).await.unwrap();
            let mut changes = cached.subscribe(&key).await.unwrap();
            let mut first = next_change(&mut changes, Duration::from_secs(1))
                .await
                .unwrap();
            while first.all.is_empty() {
                first = next_change(&mut changes, Duration::from_secs(5))
                    .await
                    .expect("the provider");
            }

            tokio::task::block_in_place(|| server.kill());
            // Several failed polls: nothing may come out, least of all an empty list.
            let during = next_change(&mut changes, Duration::from_secs(3)).await;
            assert!(during.is_none(), "emitted while Nacos was down: {during:?}");

            // A new subscription starts from the disk cache, or fails clearly without one.
            let mut from_cache = cached
                .subscribe(&key)
                .await
                .expect("subscribe from the cache");
            let first_cached = next_change(&mut from_cache, Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(first_cached.all, first.all);
            let error = match uncached.subscribe(&key).await {
                Ok(_) => panic!("subscribing without Nacos and without a cache must fail"),
                Err(error) => error.to_string(),
            };
            assert!(error.contains("cannot reach Nacos"), "{error}");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_empty_gets_the_registration_back() {
    for mut server in support::servers(
        "a_server_restarted_empty_gets_the_registration_back",
        Options::default(),
    ) {
        let kind = server.kind;
        bounded(kind, Duration::from_secs(240), async {
            let registry = registry(config(&server));
            let key = key("restart");
            let port = support::free_port(false);
            registry.register(&registration(&key, port)).await.unwrap();
            providers_when(&registry, &key, 1).await;

            // Down for longer than a beat (as a real restart is), then back with no data.
            tokio::task::block_in_place(|| server.kill());
            tokio::time::sleep(Duration::from_secs(6)).await;
            tokio::task::block_in_place(|| server.start_again_empty());
            let back = Instant::now();
            let providers = listed_again(
                &registry,
                &key,
                Duration::from_secs(7),
                "the registration back within a beat",
            )
            .await;
            eprintln!("registration back {:?} after the restart", back.elapsed());
            assert_eq!(
                providers,
                vec![registration(&key, port).provider],
                "with its metadata"
            );
        })
        .await;
    }
}

/// The providers of `key` once the registry lists any again (within `limit`).
async fn listed_again(
    registry: &NacosRegistry,
    key: &ServiceKey,
    limit: Duration,
    what: &str,
) -> Vec<Provider> {
    eventually(limit, what, || async {
        registry.providers(key).await.ok().filter(|p| !p.is_empty())
    })
    .await
}

/// What a lost instance comes back as. Nacos answers the beat "not found" and the
/// registry registers again, or re-creates the instance from the beat's full info: the
/// same instance either way. rnacos re-creates it from the beat and takes everything but
/// the weight from it, so there the weight is its default (1.0, erpc weight 100).
fn back_from_a_beat(kind: Kind, providers: Vec<Provider>, registered: Provider) {
    let expected = match kind {
        Kind::Rnacos => Provider {
            weight: 100,
            ..registered
        },
        Kind::Nacos2 | Kind::Nacos3 => registered,
    };
    assert_eq!(providers, vec![expected], "back with its metadata");
}

/// Only rnacos restarts faster than a beat (a JVM server takes longer, so a beat fails
/// first and the registry registers again, as the test above checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rnacos_restarted_between_two_beats_gets_the_instance_back_with_its_metadata() {
    let test = "rnacos_restarted_between_two_beats_gets_the_instance_back_with_its_metadata";
    let mut server = match Server::start(Kind::Rnacos, Options::default()) {
        Ok(server) => server,
        Err(support::Unavailable(why)) => return support::skipped(test, Kind::Rnacos, &why),
    };
    bounded(Kind::Rnacos, Duration::from_secs(60), async {
        let registry = registry(config(&server));
        let key = key("quick-restart");
        let port = support::free_port(false);
        registry.register(&registration(&key, port)).await.unwrap();
        providers_when(&registry, &key, 1).await;

        // Back at once, so that the next beat (not a failed one) is the first to reach it.
        tokio::task::block_in_place(|| server.start_again_empty());
        let providers = listed_again(
            &registry,
            &key,
            Duration::from_secs(12),
            "the instance back from the next beat",
        )
        .await;
        back_from_a_beat(Kind::Rnacos, providers, registration(&key, port).provider);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_lost_by_the_server_is_registered_again() {
    for server in support::servers(
        "an_instance_lost_by_the_server_is_registered_again",
        Options::default(),
    ) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server));
            let key = key("lost");
            let port = support::free_port(false);
            registry.register(&registration(&key, port)).await.unwrap();
            providers_when(&registry, &key, 1).await;

            // Removed behind the registry's back: the next beat finds it unknown.
            let name = erpc_nacos::service_name(&key).unwrap();
            let path = format!(
                "/nacos/v1/ns/instance?serviceName={name}&groupName=DEFAULT_GROUP&ip=127.0.0.1&port={port}&ephemeral=true"
            );
            let (status, body) = support::http(server.port, "DELETE", &path, "").expect("delete");
            assert_eq!(status, 200, "{body}");
            eventually(Duration::from_secs(3), "the instance gone", || async {
                registry.providers(&key).await.ok().filter(|p| p.is_empty())
            })
            .await;

            let providers = listed_again(&registry, &key, Duration::from_secs(7), "the instance back within a beat").await;
            back_from_a_beat(server.kind, providers, registration(&key, port).provider);
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_the_instance_and_a_silent_one_expires() {
    for server in support::servers(
        "heartbeats_keep_the_instance_and_a_silent_one_expires",
        Options::default(),
    ) {
        let kind = server.kind;
        bounded(kind, kind.expiry() + Duration::from_secs(30), async {
            let alive = registry(config(&server));
            let crashed = registry(config(&server));
            let key = key("expiry");
            let (a, b) = (support::free_port(false), support::free_port(false));
            alive.register(&registration(&key, a)).await.unwrap();
            crashed.register(&registration(&key, b)).await.unwrap();
            providers_when(&alive, &key, 2).await;
            // Dropping the registry stops its heartbeats, as a crash would.
            drop(crashed);
            let providers = eventually(kind.expiry(), "the silent instance to expire", || async {
                alive.providers(&key).await.ok().filter(|p| p.len() == 1)
            })
            .await;
            assert_eq!(
                providers[0].addr,
                format!("127.0.0.1:{a}"),
                "the beating instance stays"
            );
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_with_right_and_wrong_credentials() {
    let options = Options {
        auth: true,
        token_ttl: Some(12),
        ..Options::default()
    };
    for server in support::servers("auth_with_right_and_wrong_credentials", options) {
        bounded(server.kind, Duration::from_secs(60), async {
            let (user, password) = server.credentials();
            let key = key("auth");
            let port = support::free_port(false);

            let anonymous = registry(config(&server));
            let error = anonymous
                .register(&registration(&key, port))
                .await
                .unwrap_err()
                .to_string();
            assert!(error.contains("403"), "{error}");

            let wrong = registry(config(&server).credentials(user, "wrong-password"));
            let error = wrong
                .register_instance(&registration(&key, port))
                .await
                .unwrap_err();
            // 403 on rnacos and 2.x; 3.x answers a wrong password with 500.
            assert!(matches!(error, NacosError::Login { .. }), "{error}");
            let message = erpc_core::Error::from(error).to_string();
            assert!(
                message.contains("login") && message.contains(user),
                "{message}"
            );

            let right = registry(config(&server).credentials(user, password));
            if let Err(error) = right.register(&registration(&key, port)).await {
                // Nacos 2.x/3.x answer logins with 500 for a few seconds while their user
                // cache refreshes (scripts/NACOS-SERVERS.md); rnacos never should.
                assert_ne!(server.kind, Kind::Rnacos, "{error}");
                eprintln!("first login failed ({error}); retrying as Nacos's own clients do");
                eventually(Duration::from_secs(20), "a successful login", || async {
                    right.register(&registration(&key, port)).await.ok()
                })
                .await;
            }
            let mut changes = right.subscribe(&key).await.unwrap();
            let mut change = next_change(&mut changes, Duration::from_secs(1))
                .await
                .unwrap();
            while change.all.is_empty() {
                change = next_change(&mut changes, Duration::from_secs(5))
                    .await
                    .expect("the provider");
            }
            if server.kind == Kind::Rnacos {
                // Past the 12 s token lifetime: renewed tokens keep beats and polls working.
                let quiet = next_change(&mut changes, Duration::from_secs(14)).await;
                assert!(quiet.is_none(), "nothing changed: {quiet:?}");
                assert_eq!(right.providers(&key).await.unwrap().len(), 1);
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_and_groups_are_isolated() {
    for server in support::servers("namespaces_and_groups_are_isolated", Options::default()) {
        bounded(server.kind, Duration::from_secs(30), async {
            let key = key("isolated");
            let default = registry(config(&server));
            let public = registry(config(&server).namespace("public"));
            let other_group = registry(config(&server).group("OTHER_GROUP"));
            let other_namespace = registry(config(&server).namespace("erpc-test-ns"));
            let (a, b, c) = (
                support::free_port(false),
                support::free_port(false),
                support::free_port(false),
            );
            default.register(&registration(&key, a)).await.unwrap();
            other_group.register(&registration(&key, b)).await.unwrap();
            other_namespace
                .register(&registration(&key, c))
                .await
                .unwrap();

            let only = |port: u16| vec![format!("127.0.0.1:{port}")];
            let seen = |providers: Vec<Provider>| {
                providers.into_iter().map(|p| p.addr).collect::<Vec<_>>()
            };
            assert_eq!(seen(providers_when(&default, &key, 1).await), only(a));
            assert_eq!(
                seen(providers_when(&public, &key, 1).await),
                only(a),
                "`public` is the default namespace"
            );
            assert_eq!(seen(providers_when(&other_group, &key, 1).await), only(b));
            assert_eq!(
                seen(providers_when(&other_namespace, &key, 1).await),
                only(c)
            );
            assert!(raw_instance(&server, &key, "OTHER_GROUP", b).is_some());
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_from_a_dead_address() {
    for server in support::servers("fails_over_from_a_dead_address", Options::default()) {
        bounded(server.kind, Duration::from_secs(30), async {
            let dead = format!("127.0.0.1:{}", support::dead_port());
            let url = format!("nacos://{dead},{}?poll_interval_ms=200", server.addr());
            let registry = NacosRegistry::from_url(&url).unwrap();
            let key = key("failover");
            let port = support::free_port(false);
            registry.register(&registration(&key, port)).await.unwrap();
            let mut changes = registry.subscribe(&key).await.unwrap();
            let mut change = next_change(&mut changes, Duration::from_secs(1))
                .await
                .unwrap();
            while change.all.is_empty() {
                change = next_change(&mut changes, Duration::from_secs(5))
                    .await
                    .expect("the provider");
            }
            assert_eq!(addrs(&change), [format!("127.0.0.1:{port}").as_str()]);

            let all_dead = NacosRegistry::from_url(&format!(
                "nacos://{dead},127.0.0.1:{}",
                support::dead_port()
            ))
            .unwrap();
            let error = all_dead.providers(&key).await.unwrap_err();
            assert!(error.is_unreachable(), "{error}");
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_provider_comes_back_as_tls_host_port() {
    for server in support::servers(
        "a_tls_provider_comes_back_as_tls_host_port",
        Options::default(),
    ) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server));
            let key = key("tls");
            let port = support::free_port(false);
            let mut tls = registration(&key, port);
            tls.provider.addr = format!("{TLS_PREFIX}127.0.0.1:{port}");
            tls.provider
                .metadata
                .insert(TRANSPORT_KEY.to_string(), "tls".to_string());
            registry.register(&tls).await.unwrap();

            // Nacos stores ip and port apart; the metadata brings the scheme back.
            let host = eventually(
                Duration::from_secs(5),
                "the instance in the raw list",
                || async { raw_instance(&server, &key, "DEFAULT_GROUP", port) },
            )
            .await;
            assert_eq!(host["ip"], "127.0.0.1");
            assert_eq!(host["metadata"][TRANSPORT_KEY], "tls");
            let providers = providers_when(&registry, &key, 1).await;
            assert_eq!(providers, vec![tls.provider.clone()]);

            registry.deregister(&tls).await.unwrap();
            providers_when(&registry, &key, 0).await;
        })
        .await;
    }
}

/// Registers an instance through the Nacos open API with `metadata` (JSON), as a
/// non-erpc provider (a Java Dubbo one) does.
fn raw_register(server: &Server, key: &ServiceKey, port: u16, metadata: &str) {
    let name = erpc_nacos::service_name(key).unwrap();
    let metadata: String = form_urlencoded::byte_serialize(metadata.as_bytes()).collect();
    let path = format!(
        "/nacos/v1/ns/instance?serviceName={name}&groupName=DEFAULT_GROUP&ip=127.0.0.1&port={port}&ephemeral=true&metadata={metadata}"
    );
    let (status, body) = support::http(server.port, "POST", &path, "").expect("Nacos answers");
    assert_eq!(status, 200, "POST {path}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_of_other_protocols_are_never_discovered() {
    for server in support::servers(
        "instances_of_other_protocols_are_never_discovered",
        Options::default(),
    ) {
        bounded(server.kind, Duration::from_secs(30), async {
            let registry = registry(config(&server).poll_interval(Duration::from_millis(200)));
            let key = key("foreign");
            // A Java Dubbo provider of the same interface, under Dubbo's (and erpc's)
            // service name, with the metadata Dubbo registers.
            let dubbo = support::free_port(false);
            raw_register(
                &server,
                &key,
                dubbo,
                r#"{"protocol":"dubbo","side":"provider","dubbo":"2.0.2","release":"3.2.0"}"#,
            );
            let erpc = support::free_port(false);
            registry.register(&registration(&key, erpc)).await.unwrap();
            for port in [dubbo, erpc] {
                eventually(
                    Duration::from_secs(5),
                    "both instances in the raw list",
                    || async { raw_instance(&server, &key, "DEFAULT_GROUP", port) },
                )
                .await;
            }

            let erpc_only = vec![registration(&key, erpc).provider];
            assert_eq!(registry.providers(&key).await.unwrap(), erpc_only);
            let mut changes = registry.subscribe(&key).await.unwrap();
            let first = next_change(&mut changes, Duration::from_secs(1))
                .await
                .unwrap();
            assert_eq!(first.all, erpc_only);
            // Several polls later the Dubbo instance has still not shown up.
            let later = next_change(&mut changes, Duration::from_secs(1)).await;
            assert!(later.is_none(), "{later:?}");
        })
        .await;
    }
}
