//! A client configured only through `Config::load`: an `erpc.toml` named by
//! `ERPC_CONFIG`, overridden by `ERPC_*` variables, including the registry URL. The
//! tiny timeout from the environment is the one the calls obey.
//!
//! This binary holds a single test because it sets process environment variables.

mod support;

use std::time::{Duration, Instant};

use erpc::{Client, Config, Error};
use support::{bounded, start, LabClient, LabImpl, TEST_LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_built_from_config_obeys_its_timeout() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let path = std::env::temp_dir().join(format!("erpc-config-{}.toml", std::process::id()));
        std::fs::write(&path, "[client]\ntimeout_ms = 5000\nretries = 0\n").unwrap();
        std::env::set_var("ERPC_CONFIG", &path);
        std::env::set_var("ERPC_CLIENT_TIMEOUT_MS", "150");
        std::env::set_var("ERPC_REGISTRY", format!("static://{}", server.local_addr()));
        let config = Config::load();
        let _ = std::fs::remove_file(&path);
        let config = config.unwrap();
        assert_eq!(config.client.timeout_ms, 150, "environment beats the file");
        assert_eq!(config.client.retries, 0, "the file beats the defaults");

        let registry = erpc::registry_from_url(config.registry.as_deref().unwrap()).unwrap();
        let client = Client::builder()
            .config(config.client)
            .registry(registry)
            .build()
            .unwrap();
        let lab = LabClient::new(client);
        assert_eq!(lab.whoami().await.unwrap(), "lab");

        let started = Instant::now();
        let error = lab.hold(5_000).await.unwrap_err();
        assert!(
            matches!(&error, Error::Timeout { after, .. } if *after == Duration::from_millis(150)),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        server.shutdown().await.unwrap();
    })
    .await;
}
