//! Where a builder's settings come from: code beats `ERPC_*` variables, which beat
//! `erpc.toml`, which beats the defaults, and builder calls win whatever their order.
//!
//! This binary holds a single test because it sets process environment variables.

mod support;

use std::time::Duration;

use erpc::{Client, ClientConfig, Server, ServerConfig};
use support::{bounded, LabClient, LabImpl, LabServer, TEST_LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builders_take_file_then_environment_then_code() {
    bounded(TEST_LIMIT, async {
        let path =
            std::env::temp_dir().join(format!("erpc-precedence-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[client]\ntimeout_ms = 5000\nretries = 0\nheartbeat_interval_ms = 1234\n",
        )
        .unwrap();
        std::env::set_var("ERPC_CONFIG", &path);
        std::env::set_var("ERPC_CLIENT_TIMEOUT_MS", "500");
        std::env::set_var("ERPC_CLIENT_COMPRESSION", "zstd");
        std::env::set_var("ERPC_SERVER_BIND", "127.0.0.1:0");

        let plain = Client::builder().direct(["127.0.0.1:1"]).build().unwrap();
        let config = plain.config();
        assert_eq!(config.timeout_ms, 500, "the environment beats the file");
        assert_eq!(config.compression, erpc::Compression::Zstd);
        assert_eq!(config.retries, 0, "the file beats the defaults");
        assert_eq!(config.heartbeat_interval_ms, 1234);

        let coded = Client::builder()
            .timeout(Duration::from_secs(2))
            .direct(["127.0.0.1:1"])
            .build()
            .unwrap();
        assert_eq!(
            coded.config().timeout_ms,
            2_000,
            "code beats the environment"
        );

        // An explicit config replaces file and environment, but not the other calls,
        // whichever comes first.
        for explicit_first in [true, false] {
            let builder = Client::builder().direct(["127.0.0.1:1"]);
            let builder = if explicit_first {
                builder
                    .config(ClientConfig::default())
                    .timeout(Duration::from_secs(2))
            } else {
                builder
                    .timeout(Duration::from_secs(2))
                    .config(ClientConfig::default())
            };
            let config = builder.build().unwrap().config().clone();
            assert_eq!(config.timeout_ms, 2_000, "explicit_first={explicit_first}");
            assert_eq!(config.retries, ClientConfig::default().retries);
        }

        // ERPC_SERVER_BIND picks a free port instead of the default 127.0.0.1:9000.
        let server = Server::builder()
            .add_service(LabServer::new(LabImpl::new("lab")))
            .build()
            .await
            .unwrap();
        assert_ne!(server.local_addr().port(), 9000);
        // ERPC_REGISTRY is where a client with no registry in code finds providers.
        std::env::set_var("ERPC_REGISTRY", format!("static://{}", server.local_addr()));
        let server = server.spawn();
        let lab = LabClient::new(Client::builder().build().unwrap());
        assert_eq!(lab.whoami().await.unwrap(), "lab");
        server.shutdown().await.unwrap();
        std::env::remove_var("ERPC_REGISTRY");
        std::env::set_var("ERPC_SERVER_BIND", "not an address");
        let mut defaults = ServerConfig::default();
        defaults.bind = "also not an address".into();
        let coded = Server::builder()
            .bind("127.0.0.1:0")
            .config(defaults)
            .add_service(LabServer::new(LabImpl::new("lab")))
            .build()
            .await
            .unwrap();
        assert_eq!(coded.local_addr().ip().to_string(), "127.0.0.1");
        let _ = std::fs::remove_file(&path);
    })
    .await;
}
