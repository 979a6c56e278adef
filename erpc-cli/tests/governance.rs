//! Governance through the registry, on every Nacos line available (rnacos always; the
//! official Nacos 2.x / 3.x when `ERPC_NACOS2_LIB` / `ERPC_NACOS3_LIB` are set):
//! `NacosRegistry::update_instance`, which `erpc monitor` uses, drains (weight 0),
//! disables and restores a registered instance, keeping its metadata; and
//! `NacosRegistry::instances` lists the disabled instance (on Nacos 2.x/3.x).

#[path = "../../erpc-nacos/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use erpc::nacos::NacosRegistry;
use erpc::registry::{Provider, Registration};
use erpc::ServiceKey;
use support::{eventually, Kind, Options};

/// Generous: Nacos 2.x/3.x apply an update asynchronously, on a loaded machine.
const SETTLE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_and_enabled_on_every_nacos_line() {
    for server in support::servers("governance", Options::default()) {
        let registry =
            NacosRegistry::from_url(&format!("nacos://{}", server.addr())).expect("nacos URL");
        drain_disable_restore(server.kind, &registry).await;
    }
}

/// The same with authentication on: the official lines' `nacos` user (an admin on 3.x,
/// whose governance goes through the admin API), rnacos's `admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_and_enabled_with_auth_on_every_nacos_line() {
    let options = Options {
        auth: true,
        ..Options::default()
    };
    for server in support::servers("governance with auth", options) {
        let (user, password) = server.credentials();
        let url = format!("nacos://{user}:{password}@{}", server.addr());
        let registry = NacosRegistry::from_url(&url).expect("nacos URL");
        // Nacos answers logins with 500 for a few seconds while its user cache fills.
        let key = ServiceKey::new("governance.Ready", "", "1.0");
        eventually(SETTLE, "a first authenticated call", || async {
            registry.providers(&key).await.ok()
        })
        .await;
        drain_disable_restore(server.kind, &registry).await;
    }
}

/// Registers an instance, drains, disables and restores it through `registry`, checking
/// what consumers and governance see after each step.
async fn drain_disable_restore(kind: Kind, registry: &NacosRegistry) {
    let key = ServiceKey::new("governance.Test", "", "1.0");
    let mut provider = Provider::new(format!("127.0.0.1:{}", support::dead_port()));
    provider
        .metadata
        .insert("erpc.admin".into(), "127.0.0.1:9100".into());
    let mut registration = Registration {
        key: key.clone(),
        provider,
    };
    registry
        .register_instance(&registration)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: registers: {e}"));
    let addr = registration.provider.addr.clone();
    // The listed weight (None: not listed) and admin metadata, once as `expected`.
    let listed = |expected: Option<u32>| {
        let (registry, key, addr) = (registry.clone(), key.clone(), addr.clone());
        async move {
            eventually(
                SETTLE,
                &format!("{kind:?}: weight {expected:?}"),
                || async {
                    let list = registry.providers(&key).await.ok()?;
                    let found = list.iter().find(|p| p.addr == addr);
                    (found.map(|p| p.weight) == expected).then(|| found.cloned())
                },
            )
            .await
        }
    };
    listed(Some(100)).await;

    registration.provider.weight = 0;
    registry
        .update_instance(&registration, true)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: drains: {e}"));
    let drained = listed(Some(0)).await.expect("listed");
    assert_eq!(
        drained.metadata.get("erpc.admin").map(String::as_str),
        Some("127.0.0.1:9100"),
        "{kind:?}: metadata kept"
    );

    registry
        .update_instance(&registration, false)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: disables: {e}"));
    listed(None).await;
    // Governance still sees it, disabled (rnacos's open API hides disabled instances).
    let seen = registry
        .instances(&key)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: lists every instance: {e}"));
    let disabled = seen.iter().find(|i| i.provider.addr == addr);
    match kind {
        Kind::Rnacos => assert!(disabled.is_none(), "{kind:?}: {seen:?}"),
        Kind::Nacos2 | Kind::Nacos3 => {
            let disabled = disabled.unwrap_or_else(|| panic!("{kind:?}: listed: {seen:?}"));
            assert!(
                !disabled.enabled && disabled.healthy,
                "{kind:?}: {disabled:?}"
            );
            assert_eq!(
                disabled
                    .provider
                    .metadata
                    .get("erpc.admin")
                    .map(String::as_str),
                Some("127.0.0.1:9100"),
                "{kind:?}: metadata kept"
            );
        }
    }

    // Back to weight 100 (exactly Nacos weight 1.0, which rnacos ignores as such).
    registration.provider.weight = 100;
    registry
        .update_instance(&registration, true)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: enables: {e}"));
    let restored = listed(Some(100)).await.expect("listed");
    let seen = registry
        .instances(&key)
        .await
        .expect("lists every instance");
    assert!(
        seen.iter()
            .any(|i| i.provider.addr == addr && i.enabled && i.provider.weight == 100),
        "{kind:?}: {seen:?}"
    );
    assert_eq!(
        restored.metadata.get("erpc.admin").map(String::as_str),
        Some("127.0.0.1:9100"),
        "{kind:?}: metadata kept"
    );
    registry
        .deregister_instance(&registration)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: deregisters: {e}"));
}
