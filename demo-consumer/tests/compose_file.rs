//! Keeps `docker-compose.yml` and the `Dockerfile` consistent with the demo binaries:
//! every service's image or build target exists, every command line parses with the
//! binary's own flags, registry URLs name the Nacos service, and start-up waits for a
//! healthy Nacos. (Docker itself cannot run here; this stops the file from rotting.)

use clap::Parser;
use demo_consumer::ConsumerArgs;
use demo_provider::ProviderArgs;
use yaml_rust2::{Yaml, YamlLoader};

fn root_file(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../").to_string() + name;
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn compose() -> Yaml {
    let mut docs = YamlLoader::load_from_str(&root_file("docker-compose.yml")).expect("valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .expect("a list")
        .iter()
        .map(|item| item.as_str().expect("a string").to_string())
        .collect()
}

fn flag<'a>(command: &'a [String], name: &str) -> Option<&'a str> {
    let i = command.iter().position(|c| c == name)?;
    command.get(i + 1).map(String::as_str)
}

#[test]
fn nacos_is_pinned_published_and_health_checked() {
    let nacos = &compose()["services"]["nacos"];
    let image = nacos["image"].as_str().expect("nacos image");
    let (_, tag) = image.rsplit_once(':').expect("image has a tag");
    assert!(
        !tag.is_empty() && tag != "latest",
        "pin the Nacos version, got {image}"
    );
    assert!(strings(&nacos["ports"])
        .iter()
        .any(|p| p.starts_with("8848:")));
    assert!(
        !strings(&nacos["healthcheck"]["test"]).is_empty(),
        "healthcheck needed for service_healthy"
    );
    assert_eq!(nacos["environment"]["MODE"].as_str(), Some("standalone"));
}

#[test]
fn providers_and_consumer_match_the_binaries_and_the_dockerfile() {
    let doc = compose();
    let services = doc["services"].as_hash().expect("services");
    let dockerfile = root_file("Dockerfile");
    let mut providers = Vec::new();
    let mut consumers = 0;
    for (name, service) in services {
        let name = name.as_str().expect("service name");
        // Services of a profile (`zookeeper`) are checked by their own test.
        if name == "nacos" || !service["profiles"].is_badvalue() {
            continue;
        }
        let target = service["build"]["target"].as_str().expect("build target");
        assert!(
            dockerfile.contains(&format!(" AS {target}\n")),
            "Dockerfile lacks stage {target}"
        );
        assert!(
            dockerfile.contains(&format!("/usr/local/bin/{target}")),
            "Dockerfile does not install {target}"
        );
        let registry = service["environment"]["ERPC_REGISTRY"]
            .as_str()
            .expect("ERPC_REGISTRY");
        let host = registry
            .trim_start_matches("nacos://")
            .split([':', '/', '?'])
            .next()
            .unwrap_or_default();
        assert!(
            registry.starts_with("nacos://") && services.contains_key(&Yaml::String(host.into())),
            "{registry}"
        );
        assert_eq!(
            service["depends_on"]["nacos"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} must wait for a healthy Nacos"
        );
        let mut argv = vec![target.to_string()];
        argv.extend(strings(&service["command"]));
        match target {
            "demo-provider" => {
                let args =
                    ProviderArgs::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
                let advertise = args
                    .advertise
                    .expect("providers advertise their service name");
                assert_eq!(
                    advertise,
                    format!("{name}:{}", args.port.expect("port")),
                    "{name}"
                );
                assert_eq!(args.host, "0.0.0.0", "{name} must listen beyond loopback");
                assert_eq!(
                    flag(&argv, "--port"),
                    args.port.map(|p| p.to_string()).as_deref()
                );
                providers.push(name.to_string());
            }
            "demo-consumer" => {
                ConsumerArgs::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
                consumers += 1;
                for provider in &providers {
                    assert!(
                        !service["depends_on"][provider.as_str()].is_badvalue(),
                        "consumer should start after {provider}"
                    );
                }
            }
            other => panic!("unknown build target {other}"),
        }
    }
    assert_eq!(providers.len(), 2, "two provider replicas");
    assert_eq!(consumers, 1);
}

#[test]
fn the_zookeeper_profile_runs_the_demo_on_zookeeper() {
    let doc = compose();
    let services = doc["services"].as_hash().expect("services");
    let profiled: Vec<(&str, &Yaml)> = services
        .iter()
        .filter(|(_, s)| !s["profiles"].is_badvalue())
        .map(|(n, s)| (n.as_str().expect("service name"), s))
        .collect();
    let names: Vec<&str> = profiled.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["zookeeper", "zk-provider-1", "zk-provider-2", "zk-consumer"]
    );
    for (name, service) in &profiled {
        assert_eq!(strings(&service["profiles"]), ["zookeeper"], "{name}");
        if *name == "zookeeper" {
            let image = service["image"].as_str().expect("zookeeper image");
            assert!(
                image.starts_with("zookeeper:") && !image.ends_with(":latest"),
                "pin the official image, got {image}"
            );
            assert!(!strings(&service["healthcheck"]["test"]).is_empty());
            continue;
        }
        assert_eq!(
            service["environment"]["ERPC_REGISTRY"].as_str(),
            Some("zookeeper://zookeeper:2181"),
            "{name}"
        );
        assert_eq!(
            service["depends_on"]["zookeeper"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} must wait for a healthy ZooKeeper"
        );
        let target = service["build"]["target"].as_str().expect("build target");
        let mut argv = vec![target.to_string()];
        argv.extend(strings(&service["command"]));
        let registry = match target {
            "demo-provider" => {
                let args =
                    ProviderArgs::try_parse_from(&argv).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(args.advertise.as_deref(), Some(&*format!("{name}:9000")));
                args.registry
            }
            "demo-consumer" => {
                ConsumerArgs::try_parse_from(&argv)
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .registry
            }
            other => panic!("unknown build target {other}"),
        };
        // The URL the binaries will get from ERPC_REGISTRY opens in this build.
        let url = registry.unwrap_or_else(|| "zookeeper://zookeeper:2181".into());
        erpc::registry_from_url(&url).unwrap_or_else(|e| panic!("{name}: {url}: {e}"));
    }
}
