//! The `erpc` command against a real demo provider: calls with JSON arguments (including
//! a struct and an application error), lists providers, and fails clearly on bad input.

use std::process::Command;

fn erpc(registry: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_erpc"))
        .arg("--registry")
        .arg(registry)
        .args(args)
        .env_remove("ERPC_REGISTRY")
        .output()
        .expect("the erpc binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_lists_a_real_provider() {
    let mut config = erpc::ServerConfig::default();
    config.bind = "127.0.0.1:0".into();
    let server = demo_provider::build_server(config, None)
        .await
        .expect("provider binds");
    let registry = format!("static://{}", server.local_addr());
    let handle = server.spawn();

    let registry_for_calls = registry.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let r = registry_for_calls.as_str();
        [
            erpc(r, &["call", "demo_api::Calculator", "add", "[2, 3]"]),
            erpc(r, &["call", "demo_api::Calculator", "divide", "[1, 0]"]),
            erpc(
                r,
                &[
                    "call",
                    "--group",
                    "test1",
                    "demo_api::HelloService",
                    "hello",
                    r#"[{"message": "hi", "description": "from the CLI"}]"#,
                ],
            ),
            erpc(r, &["providers", "demo_api::Calculator"]),
            erpc(r, &["call", "demo_api::Calculator", "nope", "[]"]),
            erpc(r, &["call", "demo_api::Calculator", "add", "{not json"]),
            erpc(r, &["services"]),
        ]
    })
    .await
    .expect("the CLI runs");
    handle.shutdown().await.expect("provider stops");

    let [add, divide, hello, providers, unknown, bad_json, services] = outputs;
    assert!(add.0, "add failed: {}", add.2);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&add.1).unwrap(),
        serde_json::json!({"Ok": 5})
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&divide.1).unwrap(),
        serde_json::json!({"Err": "DivisionByZero"})
    );
    assert!(
        hello.1.contains("Hello description is from the CLI"),
        "{hello:?}"
    );
    assert!(
        providers.0
            && providers
                .1
                .contains(registry.trim_start_matches("static://")),
        "{providers:?}"
    );
    assert!(
        !unknown.0 && unknown.2.contains("method nope not found"),
        "{unknown:?}"
    );
    assert!(
        !bad_json.0 && bad_json.2.contains("not JSON"),
        "{bad_json:?}"
    );
    assert!(
        !services.0 && services.2.contains("nacos://"),
        "{services:?}"
    );
}
