//! What erpc writes into a real ZooKeeper and what it reads back: Dubbo's layout with
//! EPHEMERAL provider nodes under persistent parents (created by racing providers),
//! nodes of other protocols, versions and garbage skipped, an answered empty list
//! emitted as empty, deregistration deleting the node, and the service catalogue.

mod support;

use std::time::Duration;

use erpc::registry::{Provider, Registration, Registry};
use erpc_zookeeper::ZookeeperRegistry;
use futures::StreamExt;
use support::ZooKeeper;
use zookeeper_client::{Acls, Client, CreateMode};

fn registration(interface: &str, addr: &str, version: &str) -> Registration {
    let mut provider = Provider::new(addr);
    provider.weight = 42;
    provider.metadata.insert("protocol".into(), "erpc".into());
    provider
        .metadata
        .insert("serialization".into(), "msgpack,json".into());
    provider.metadata.insert("methods".into(), "hello".into());
    Registration {
        key: erpc::ServiceKey::new(interface, "g1", version),
        provider,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dubbo_layout_with_ephemeral_nodes_and_foreign_nodes_skipped() {
    let Some(zk) = ZooKeeper::start("dubbo_layout_with_ephemeral_nodes_and_foreign_nodes_skipped")
    else {
        return;
    };
    let url = zk.url(10_000);
    let interface = "demo.layout.Hello";
    let (one, two) = (
        ZookeeperRegistry::from_url(&url).unwrap(),
        ZookeeperRegistry::from_url(&url).unwrap(),
    );
    let (a, b) = (
        registration(interface, "127.0.0.1:9001", "1.0"),
        registration(interface, "127.0.0.1:9002", "1.0"),
    );
    // Two providers create /dubbo, /dubbo/{interface} and .../providers at once.
    let (ra, rb) = tokio::join!(one.register(&a), two.register(&b));
    ra.expect("first registration");
    rb.expect("second registration");

    // The nodes: Dubbo's path, EPHEMERAL, the URL carrying what a Dubbo tool reads.
    let raw = Client::connect(&zk.addr()).await.expect("raw client");
    let dir = format!("/dubbo/{interface}/providers");
    assert_eq!(one.providers_path(&a.key).unwrap(), dir);
    let path = one.node_path(&a).unwrap();
    let stat = raw
        .check_stat(&path)
        .await
        .unwrap()
        .expect("the provider node exists");
    assert_ne!(stat.ephemeral_owner, 0, "provider nodes must be EPHEMERAL");
    let parent = raw
        .check_stat(&dir)
        .await
        .unwrap()
        .expect("the providers directory exists");
    assert_eq!(parent.ephemeral_owner, 0, "directories must be persistent");
    let children = raw.list_children(&dir).await.unwrap();
    assert_eq!(children.len(), 2, "{children:?}");
    let decoded: String = form_urlencoded::parse(children[0].as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    assert!(decoded.starts_with("erpc://127.0.0.1:900"), "{decoded}");
    for part in [
        "protocol=erpc",
        "group=g1",
        "version=1.0",
        "weight=42",
        "serialization=msgpack%2Cjson",
        "methods=hello",
    ] {
        assert!(decoded.contains(part), "{part} missing from {decoded}");
    }

    // Foreign nodes beside them: a Java Dubbo provider, an erpc provider of another
    // version, and something that is not a URL.
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let dubbo: String = form_urlencoded::byte_serialize(
        format!("dubbo://10.0.0.9:20880/{interface}?group=g1&version=1.0&protocol=dubbo")
            .as_bytes(),
    )
    .collect();
    let other_version = one
        .node_path(&registration(interface, "127.0.0.1:9003", "2.0"))
        .unwrap();
    for node in [
        format!("{dir}/{dubbo}"),
        other_version,
        format!("{dir}/not-a-url"),
    ] {
        raw.create(&node, &[], &ephemeral)
            .await
            .expect("create a foreign node");
    }

    let consumer = ZookeeperRegistry::from_url(&url).unwrap();
    // The catalogue: one erpc service per (interface, group, version) with providers;
    // the Dubbo node and the garbage add nothing.
    let services = consumer.services().await.expect("services");
    let listed: Vec<(&str, &str, &str)> = services
        .iter()
        .map(|k| (k.interface.as_str(), k.group.as_str(), k.version.as_str()))
        .collect();
    assert_eq!(listed, [(interface, "g1", "1.0"), (interface, "g1", "2.0")]);
    let mut changes = consumer.subscribe(&a.key).await.expect("subscribe");
    let first = changes
        .next()
        .await
        .expect("the first item is the current list");
    let addrs: Vec<&str> = first.all.iter().map(|p| p.addr.as_str()).collect();
    assert_eq!(addrs, ["127.0.0.1:9001", "127.0.0.1:9002"]);
    assert_eq!(first.all[0].weight, 42);
    assert_eq!(first.all[0].metadata["protocol"], "erpc");
    assert_eq!(first.added.len(), 2);

    // Deregistration deletes the node; the consumer hears of it through its watch.
    one.deregister(&a).await.expect("deregister");
    assert!(
        raw.check_stat(&path).await.unwrap().is_none(),
        "the node is deleted at once"
    );
    let change = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open");
    assert_eq!(change.removed, ["127.0.0.1:9001"]);
    // Deregistering again is fine (the node is already gone).
    one.deregister(&a).await.expect("deregister twice");

    // Every erpc provider gone, answered by ZooKeeper: an empty list is emitted.
    two.deregister(&b).await.expect("deregister");
    let change = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open");
    assert!(change.all.is_empty(), "{change:?}");

    // A subscription to a service nobody registered yet starts empty and sees the first.
    let key = erpc::ServiceKey::new("demo.layout.Later", "g1", "1.0");
    let mut later = consumer
        .subscribe(&key)
        .await
        .expect("subscribe before any provider");
    assert!(later.next().await.expect("first item").all.is_empty());
    one.register(&registration("demo.layout.Later", "127.0.0.1:9004", "1.0"))
        .await
        .expect("register");
    let change = tokio::time::timeout(Duration::from_secs(10), later.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open");
    assert_eq!(change.added.len(), 1);
}
