//! Built-in filters chosen by name in the configuration: `erpc.toml` puts `auth` and
//! `access_log` on the server, `ERPC_CLIENT_FILTERS` / `ERPC_CLIENT_AUTH_TOKEN` put
//! `auth` on a client; the access log writes one `erpc::access` event per call; an
//! unknown name is refused with the list of known ones; the token never shows in
//! `Debug` output.
//!
//! This binary holds a single test because it sets process environment variables.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use erpc::{Client, Config, Error, Server};
use support::{bounded, TEST_LIMIT};

#[erpc::service]
/// A service to call.
pub trait Ping {
    /// Answers `n + 1`.
    async fn ping(&self, n: u32) -> u32;
}

struct PingImpl;

impl Ping for PingImpl {
    async fn ping(&self, n: u32) -> u32 {
        n + 1
    }
}

/// Collects what the `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().map(str::to_string).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_named_in_the_configuration_guard_and_log_calls() {
    let captured = Captured::default();
    let sink = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("erpc::access=info")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();
    bounded(TEST_LIMIT, async {
        let path = std::env::temp_dir().join(format!("erpc-filters-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[server]\nbind = \"127.0.0.1:0\"\nfilters = [\"access_log\", \"auth\"]\nauth_token = \"t0ken\"\n",
        )
        .unwrap();
        std::env::set_var("ERPC_CONFIG", &path);
        std::env::set_var("ERPC_CLIENT_FILTERS", "auth");
        std::env::set_var("ERPC_CLIENT_AUTH_TOKEN", "t0ken");
        let config = Config::load();
        let _ = std::fs::remove_file(&path);
        let config = config.unwrap();
        assert_eq!(config.server.filters, ["access_log", "auth"]);
        assert_eq!(config.client.filters, ["auth"]);
        assert!(
            !format!("{config:?}").contains("t0ken"),
            "the token shows in Debug output"
        );

        let server = Server::builder()
            .config(config.server.clone())
            .add_service(PingServer::new(PingImpl))
            .build()
            .await
            .unwrap()
            .spawn();
        let addr = server.local_addr().to_string();
        let configured = Client::builder()
            .config(config.client.clone())
            .direct([addr.clone()])
            .build()
            .unwrap();
        assert_eq!(PingClient::new(configured).ping(1).await.unwrap(), 2);
        let plain = Client::builder()
            .config(Default::default())
            .direct([addr])
            .build()
            .unwrap();
        let error = PingClient::new(plain).ping(1).await.unwrap_err();
        assert!(matches!(error, Error::Unauthenticated(_)), "{error:?}");

        let access: Vec<String> = captured
            .lines()
            .into_iter()
            .filter(|l| l.contains("erpc::access"))
            .collect();
        assert_eq!(access.len(), 2, "one event per call: {access:#?}");
        for (line, status) in access.iter().zip(["ok", "unauthenticated"]) {
            for field in [
                "side=\"server\"".to_string(),
                "method=\"ping\"".to_string(),
                format!("status=\"{status}\""),
                "peer=127.0.0.1:".to_string(),
                "request_id=".to_string(),
                "latency_us=".to_string(),
            ] {
                assert!(line.contains(&field), "{field} missing in {line}");
            }
        }
        server.shutdown().await.unwrap();

        let mut unknown = config.server.clone();
        unknown.filters = vec!["auth".into(), "rate_limit".into()];
        let error = Server::builder().config(unknown).build().await.unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, Error::Config(_)) && message.contains("rate_limit") && message.contains("access_log"),
            "{message}"
        );
        let mut tokenless = config.client;
        tokenless.auth_token = None;
        let error = Client::builder()
            .config(tokenless)
            .direct(["127.0.0.1:1"])
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("auth_token"), "{error}");
    })
    .await;
}
