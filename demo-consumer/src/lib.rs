//! The demo consumer: calls the demo services and prints results, how calls spread
//! over providers, and a latency summary.
//!
//! With no `--registry` and no `--port` it runs the whole demo in one process: two
//! providers registered in an in-memory registry, this consumer discovering them, and a
//! graceful shutdown at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use demo_api::{CalculatorClient, Hello, HelloServiceClient};
use erpc::registry::{MemoryRegistry, Registry};

/// Command-line flags; each also reads an environment variable.
#[derive(Parser)]
#[command(version, about = "erpc demo consumer")]
pub struct ConsumerArgs {
    /// Registry URL (static://.., nacos://.., zookeeper://..). Without it (and without --port) the demo
    /// starts its own providers in-process.
    #[arg(long, env = "ERPC_REGISTRY")]
    pub registry: Option<String>,
    /// Call the provider at 127.0.0.1:PORT directly instead of using a registry.
    #[arg(long, env = "ERPC_PORT")]
    pub port: Option<u16>,
    /// Number of `whoami` calls used to show balancing and measure latency.
    #[arg(long, default_value_t = 200)]
    pub calls: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds to wait for a first provider to appear in the registry.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Providers started in embedded mode.
    #[arg(long, default_value_t = 2)]
    pub providers: usize,
    /// Serve /metrics, /health, /ready and /services over HTTP on HOST:PORT while the
    /// consumer runs.
    #[arg(long, env = "ERPC_ADMIN", value_name = "HOST:PORT")]
    pub admin: Option<String>,
}

/// `Debug` without the credentials a registry URL may hold.
impl std::fmt::Debug for ConsumerArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerArgs")
            .field(
                "registry",
                &self
                    .registry
                    .as_deref()
                    .map(|url| erpc::registry::redact_url(url, &[])),
            )
            .field("port", &self.port)
            .field("calls", &self.calls)
            .field("concurrency", &self.concurrency)
            .field("wait_secs", &self.wait_secs)
            .field("providers", &self.providers)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Runs the demo: embedded providers unless a registry or port is given.
pub async fn run(args: ConsumerArgs) -> Result<(), erpc::Error> {
    let config = erpc::Config::load()?;
    let registry_url = args.registry.clone().or(config.registry.clone());
    let (registry, providers): (Arc<dyn Registry>, Vec<erpc::ServerHandle>) =
        match (registry_url, args.port) {
            (Some(url), _) => (erpc::registry_from_url(&url)?, Vec::new()),
            (None, Some(port)) => (
                erpc::registry_from_url(&format!("static://127.0.0.1:{port}"))?,
                Vec::new(),
            ),
            (None, None) => embedded(args.providers, &config.server).await?,
        };
    let mut client_config = config.client;
    if args.admin.is_some() {
        client_config.admin = args.admin.clone();
    }
    let client = erpc::Client::builder()
        .config(client_config)
        .registry(registry)
        .build()?;
    if let Some(admin) = client.admin_addr() {
        println!("admin endpoints on http://{admin}/ (metrics, health, ready, services)");
    }
    let outcome = exercise(&client, &args).await;
    // Done calling: the consumer stops following the registry before its providers
    // leave it (still following, it would see the last one go, keep the list it had and
    // warn about it, as a consumer whose every provider left should).
    drop(client);
    if !providers.is_empty() {
        println!("shutting down {} providers gracefully", providers.len());
        for provider in providers {
            provider.shutdown().await?;
        }
        println!("all providers stopped");
    }
    outcome
}

/// Starts `count` providers on free ports, registered in an in-memory registry.
async fn embedded(
    count: usize,
    server: &erpc::ServerConfig,
) -> Result<(Arc<dyn Registry>, Vec<erpc::ServerHandle>), erpc::Error> {
    let registry: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let mut handles = Vec::new();
    for _ in 0..count.max(1) {
        let mut config = server.clone();
        config.bind = "127.0.0.1:0".into();
        // The process's admin listener is the consumer's (`--admin`).
        config.admin = None;
        let provider = demo_provider::build_server(config, Some(registry.clone())).await?;
        println!("embedded provider listening on {}", provider.local_addr());
        handles.push(provider.spawn());
    }
    Ok((registry, handles))
}

async fn exercise(client: &erpc::Client, args: &ConsumerArgs) -> Result<(), erpc::Error> {
    let hello = HelloServiceClient::new(client.clone());
    let calculator = CalculatorClient::new(client.clone());

    let greeting = first_hello(&hello, Duration::from_secs(args.wait_secs)).await?;
    println!("hello(..)        -> {greeting:?}");
    println!("add(2, 3)        -> {:?}", calculator.add(2, 3).await?);
    println!(
        "divide(1, 0)     -> {:?}  (application error, delivered as a value)",
        calculator.divide(1, 0).await?
    );

    let started = Instant::now();
    let (counts, mut latencies) = spread(&calculator, args.calls, args.concurrency.max(1)).await?;
    let elapsed = started.elapsed();
    println!("whoami x {} over {} provider(s):", args.calls, counts.len());
    for (addr, n) in &counts {
        println!("  {addr:<22} {n:>6} calls");
    }
    latencies.sort();
    println!(
        "latency: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  ({:.0} calls/s, {} in flight)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        args.calls as f64 / elapsed.as_secs_f64().max(1e-9),
        args.concurrency,
    );
    Ok(())
}

/// The first call, retried while the registry lists no provider yet (providers and
/// consumer starting together, as under docker compose).
async fn first_hello(hello: &HelloServiceClient, wait: Duration) -> Result<String, erpc::Error> {
    let deadline = Instant::now() + wait;
    loop {
        let greeting = hello
            .hello(Hello {
                message: "hi".into(),
                description: "an erpc demo".into(),
            })
            .await;
        match greeting {
            Err(erpc::Error::NoProvider { .. }) if Instant::now() < deadline => {
                println!("waiting for providers to register...");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

/// Makes `calls` whoami calls, `concurrency` at a time; counts answers per provider.
async fn spread(
    calculator: &CalculatorClient,
    calls: usize,
    concurrency: usize,
) -> Result<(BTreeMap<String, usize>, Vec<Duration>), erpc::Error> {
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = calls.div_ceil(concurrency);
    let mut remaining = calls;
    for _ in 0..concurrency {
        let n = per_task.min(remaining);
        remaining -= n;
        let calculator = calculator.clone();
        tasks.spawn(async move {
            let mut seen = Vec::with_capacity(n);
            for _ in 0..n {
                let start = Instant::now();
                let addr = calculator.whoami().await?;
                seen.push((addr, start.elapsed()));
            }
            Ok::<_, erpc::Error>(seen)
        });
    }
    let mut counts = BTreeMap::new();
    let mut latencies = Vec::with_capacity(calls);
    while let Some(joined) = tasks.join_next().await {
        let seen = joined.map_err(|e| erpc::Error::Config(format!("call task failed: {e}")))??;
        for (addr, latency) in seen {
            *counts.entry(addr).or_insert(0) += 1;
            latencies.push(latency);
        }
    }
    Ok((counts, latencies))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_registry_credentials() {
        let args = ConsumerArgs::parse_from([
            "x",
            "--registry",
            "nacos://nacos:S3cret-pw@127.0.0.1:8848?password=S3cret-pw",
        ]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("S3cret-pw"), "{shown}");
        assert!(shown.contains("127.0.0.1:8848"), "{shown}");
    }
}
