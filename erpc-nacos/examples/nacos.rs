//! Providers and a consumer discovering each other through Nacos (Dubbo's naming,
//! visible in the Nacos console): two providers register, the consumer finds both,
//! spreads calls over them, and sees one leave when it shuts down gracefully.
//!
//! ```sh
//! # a Nacos on 127.0.0.1:8848 (docker compose up nacos, or rnacos from crates.io)
//! cargo run -p erpc-nacos --example nacos -- 127.0.0.1:8848
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Tells which provider answered.
#[erpc::service(group = "examples", version = "1.0")]
pub trait Echo {
    /// `text`, tagged with the provider's address.
    #[erpc(idempotent)]
    async fn echo(&self, text: String) -> String;
}

/// Knows its address once the server is bound.
struct Tagged(Arc<OnceLock<String>>);

impl Echo for Tagged {
    async fn echo(&self, text: String) -> String {
        let addr = self.0.get().map_or("?", String::as_str);
        format!("{text} from {addr}")
    }
}

/// The Nacos registry at `addr` (with the facade's `nacos` feature,
/// `erpc::registry_from_url("nacos://..")` gives the same).
fn nacos(addr: &str) -> Result<Arc<erpc_nacos::NacosRegistry>, erpc::Error> {
    Ok(Arc::new(erpc_nacos::NacosRegistry::from_url(&format!(
        "nacos://{addr}"
    ))?))
}

/// A provider on a free port, registered in Nacos.
async fn provider(nacos_addr: &str) -> Result<(erpc::ServerHandle, String), erpc::Error> {
    let own_addr = Arc::new(OnceLock::new());
    let server = erpc::Server::builder()
        .bind("127.0.0.1:0")
        .registry(nacos(nacos_addr)?)
        .add_service(EchoServer::new(Tagged(own_addr.clone())))
        .build()
        .await?;
    let addr = server.advertised_addr().to_string();
    let _ = own_addr.set(addr.clone());
    Ok((server.spawn(), addr))
}

/// The providers that answer `rounds` calls.
async fn answering(stub: &EchoClient, rounds: usize) -> Result<BTreeSet<String>, erpc::Error> {
    let mut seen = BTreeSet::new();
    for i in 0..rounds {
        let answer = stub.echo(format!("call {i}")).await?;
        seen.insert(
            answer
                .rsplit(" from ")
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    Ok(seen)
}

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    // Warnings (a registration Nacos refused, a failed poll) go to stderr; RUST_LOG=debug
    // shows every step.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let nacos_addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8848".into());
    let (first, first_addr) = provider(&nacos_addr).await?;
    let (second, second_addr) = provider(&nacos_addr).await?;
    // Registration runs in the background (and retries while Nacos is unreachable).
    let registered = async { tokio::join!(first.registered(), second.registered()) };
    if tokio::time::timeout(Duration::from_secs(30), registered)
        .await
        .is_err()
    {
        return Err(erpc::Error::Registry(format!(
            "providers not registered in Nacos at {nacos_addr} within 30 s"
        )));
    }
    println!("providers {first_addr} and {second_addr} registered in Nacos at {nacos_addr}");

    let client = erpc::Client::builder()
        .registry(nacos(&nacos_addr)?)
        .build()?;
    let stub = EchoClient::new(client).with_timeout(Duration::from_secs(3));
    // Discovery takes a moment (Nacos pushes nothing; the client polls).
    let started = Instant::now();
    while answering(&stub, 20).await?.len() < 2 {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(erpc::Error::NoProvider {
                service: "both providers within 30 s".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("calls answered by both providers");

    // A graceful shutdown deregisters first: the consumer stops calling it.
    first.shutdown().await?;
    let started = Instant::now();
    loop {
        let seen = answering(&stub, 10).await?;
        if seen.len() == 1 && seen.contains(&second_addr) {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(erpc::Error::Registry(format!("{first_addr} still answers")));
        }
    }
    println!("{first_addr} left; calls go to {second_addr} only, none failed");
    second.shutdown().await
}
