//! The provider process the chaos, hostile-input and soak runs start: it hosts
//! [`Probe`] and [`Bulk`] with the server's default limits
//! unless a flag changes one.
//!
//! Prints `READY <addr>` once bound, serves until SIGTERM or ctrl-c, then shuts down
//! gracefully (goaway, drain, close). With `--watch-stdin` it also exits at once when
//! its stdin closes, so a test process that dies leaves no provider behind. With
//! `--log-calls FILE` it appends the id of every `work`/`record` call to `FILE` (8 bytes,
//! big-endian) as its handler starts, one unbuffered write each, so the log survives
//! even a SIGKILL and the tests can count executions across crashes and restarts.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use erpc::Server;

use crate::{Bulk, BulkServer, Probe, ProbeServer, Served, MAX_BLOB};

/// Command line of the provider.
#[derive(Debug, Clone, Parser)]
#[command(about = "Serves the chaos Probe and Bulk services")]
pub struct ProviderArgs {
    /// Port on 127.0.0.1 (0 picks one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Name reported in every answer (default: the port).
    #[arg(long)]
    pub name: Option<String>,
    /// Added to every call: a slow provider.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Handlers running at once; beyond it calls are answered Overloaded.
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Longest wait for in-flight calls on graceful shutdown.
    #[arg(long)]
    pub drain_ms: Option<u64>,
    /// Exit when stdin reaches its end (the parent went away).
    #[arg(long)]
    pub watch_stdin: bool,
    /// Append the id of every executed `work`/`record` call to this file.
    #[arg(long)]
    pub log_calls: Option<PathBuf>,
}

type CallLog = Arc<File>;

struct ProbeImpl {
    name: String,
    delay: Duration,
    log: Option<CallLog>,
}

impl ProbeImpl {
    async fn serve(&self, id: u64, delay_ms: u64) -> Served {
        if let Some(log) = &self.log {
            // Logged as the handler starts, in one `write` on an append-only file (atomic
            // between handlers, and in the page cache even if the process is killed next).
            // A full disk is a broken test setup, not a call failure: report and go on.
            if let Err(e) = (&**log).write_all(&id.to_be_bytes()) {
                eprintln!("chaos-provider: writing the call log: {e}");
            }
        }
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

struct BulkImpl;

impl Bulk for BulkImpl {
    async fn blob(&self, len: u32) -> String {
        "x".repeat((len as usize).min(MAX_BLOB))
    }

    async fn echo(&self, text: String) -> String {
        text
    }
}

/// Serves until SIGTERM or ctrl-c (then drains gracefully), printing `READY <addr>`
/// on stdout once bound.
pub async fn run(args: ProviderArgs) -> Result<(), erpc::Error> {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    if args.watch_stdin {
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(3);
        });
    }
    let log = match &args.log_calls {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| erpc::Error::io(format!("opening {}", path.display()), e))?;
            Some(Arc::new(file))
        }
        None => None,
    };
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
            log,
        }))
        .add_service(BulkServer::new(BulkImpl))
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
