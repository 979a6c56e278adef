//! Secrets never show: the Nacos password and the login token stay out of errors, `Debug`
//! output and logs (every target, at TRACE, dependencies included), through a wrong and a
//! right login, registration, subscription and polling against rnacos with auth on.
//!
//! This binary installs its own global log subscriber, so it holds this one test only.

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use erpc_core::registry::{Provider, Registration, Registry};
use erpc_core::ServiceKey;
use erpc_nacos::{NacosConfig, NacosRegistry};
use futures::StreamExt;
use parking_lot::Mutex;
use support::{Kind, Options, Server, Unavailable};

/// The admin password rnacos is started with.
const PASSWORD: &str = "pw-S3cret-4c9e";
/// A wrong password, tried first.
const WRONG: &str = "pw-Wr0ng-77d1";

/// Everything written to the log, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn registration(key: &ServiceKey) -> Registration {
    Registration {
        key: key.clone(),
        provider: Provider::new(format!("127.0.0.1:{}", support::free_port(false))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_in_errors_debug_output_or_logs() {
    let logs = Captured::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .init();
    let options = Options {
        auth: true,
        token_ttl: Some(10),
        admin_password: Some(PASSWORD),
    };
    let server = match Server::start(Kind::Rnacos, options) {
        Ok(server) => server,
        Err(Unavailable(why)) => {
            return support::skipped("no_password_or_token", Kind::Rnacos, &why)
        }
    };
    let (user, password) = server.credentials();
    assert_eq!(password, PASSWORD);
    let key = ServiceKey::new("erpc.test.Secrets", "", "1.0");
    let mut shown: Vec<String> = Vec::new();

    tokio::time::timeout(Duration::from_secs(60), async {
        // A wrong password: the login error, in every form, and in the log.
        let wrong = NacosRegistry::from_url(&format!(
            "nacos://{user}:{WRONG}@{}?poll_interval_ms=200",
            server.addr()
        ))
        .expect("valid URL");
        shown.push(format!("{wrong:?}"));
        shown.push(format!("{:?}", wrong.config()));
        let error = wrong
            .register_instance(&registration(&key))
            .await
            .expect_err("wrong password");
        tracing::warn!(%error, ?error, "login failed as expected");
        shown.push(error.to_string());
        shown.push(format!("{error:?}"));
        let error = wrong.subscribe(&key).await.err().expect("wrong password");
        shown.push(error.to_string());
        shown.push(format!("{error:?}"));

        // The right one: register (with its heartbeat), subscribe, poll past a token
        // renewal (rnacos tokens live 10 s here; renewed at 9 s).
        let config = NacosConfig::new([server.addr()])
            .credentials(user, PASSWORD)
            .poll_interval(Duration::from_millis(200));
        tracing::debug!(?config, "opening");
        shown.push(format!("{config:?}"));
        let right = NacosRegistry::new(config).expect("valid config");
        shown.push(format!("{right:?}"));
        let registration = registration(&key);
        right.register(&registration).await.expect("logged in");
        let mut changes = right.subscribe(&key).await.expect("subscribed");
        let mut listed = changes.next().await.expect("first list");
        while listed.all.is_empty() {
            listed = tokio::time::timeout(Duration::from_secs(5), changes.next())
                .await
                .expect("the provider within 5 s")
                .expect("stream open");
        }
        let quiet = tokio::time::timeout(Duration::from_secs(11), changes.next()).await;
        assert!(quiet.is_err(), "nothing changed: {quiet:?}");
        assert_eq!(right.providers(&key).await.expect("listed").len(), 1);
        right.deregister(&registration).await.expect("deregistered");
    })
    .await
    .expect("the test finishes within 60 s");

    let logs = logs.text();
    assert!(
        logs.contains("logged in to Nacos"),
        "the log capture works: {logs}"
    );
    for text in shown.iter().chain([&logs]) {
        for secret in [PASSWORD, WRONG] {
            assert!(!text.contains(secret), "{secret} shows in:\n{text}");
        }
        for token in ["accessToken=", "\"accessToken\":\""] {
            assert!(!text.contains(token), "a token shows in:\n{text}");
        }
    }
}
