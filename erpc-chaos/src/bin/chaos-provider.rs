//! A `Probe` provider for the chaos tests.
//!
//! Prints `READY <addr>` once bound, serves until SIGTERM or ctrl-c, then shuts down
//! gracefully (goaway, drain, close). With `--watch-stdin` it also exits at once when
//! its stdin closes, so a test process that dies leaves no provider behind.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use erpc::Server;
use erpc_chaos::{Probe, ProbeServer, Served};

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Serves the chaos Probe service")]
struct Args {
    /// Port on 127.0.0.1 (0 picks one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Name reported in every answer (default: the port).
    #[arg(long)]
    name: Option<String>,
    /// Added to every call: a slow provider.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Handlers running at once; beyond it calls are answered Overloaded.
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// Longest wait for in-flight calls on graceful shutdown.
    #[arg(long)]
    drain_ms: Option<u64>,
    /// Exit when stdin reaches its end (the parent went away).
    #[arg(long)]
    watch_stdin: bool,
}

struct ProbeImpl {
    name: String,
    delay: Duration,
}

impl ProbeImpl {
    async fn serve(&self, id: u64, delay_ms: u64) -> Served {
        let delay = self.delay + Duration::from_millis(delay_ms);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Served {
            provider: self.name.clone(),
            id,
        }
    }
}

impl Probe for ProbeImpl {
    async fn work(&self, id: u64, delay_ms: u64) -> Served {
        self.serve(id, delay_ms).await
    }

    async fn record(&self, id: u64, delay_ms: u64) -> Served {
        self.serve(id, delay_ms).await
    }
}

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = Args::parse();
    if args.watch_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(3);
        });
    }
    let mut builder = Server::builder().bind(format!("127.0.0.1:{}", args.port));
    if let Some(limit) = args.max_concurrency {
        builder = builder.max_concurrency(limit);
    }
    if let Some(drain) = args.drain_ms {
        builder = builder.drain_timeout(Duration::from_millis(drain));
    }
    let server = builder
        .add_service(ProbeServer::new(ProbeImpl {
            name: args.name.unwrap_or_else(|| args.port.to_string()),
            delay: Duration::from_millis(args.delay_ms),
        }))
        .build()
        .await?;
    let addr = server.local_addr();
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "READY {addr}").and_then(|()| stdout.flush())
    }
    .map_err(|e| erpc::Error::io("writing READY", e))?;
    server.serve().await
}
