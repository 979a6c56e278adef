//! Serves the demo services until ctrl-c or SIGTERM, then shuts down gracefully.
//!
//! ```text
//! demo-provider --port 9000 --registry nacos://127.0.0.1:8848
//! ```

use clap::Parser;

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(version, about = "erpc demo provider")]
struct Args {
    /// Registry URL (static://.., nacos://..); none: serve without registering.
    #[arg(long, env = "ERPC_REGISTRY")]
    registry: Option<String>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "ERPC_PORT")]
    port: Option<u16>,
    /// Host to listen on.
    #[arg(long, env = "ERPC_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Address to register when it differs from the bound one (containers, NAT).
    #[arg(long, env = "ERPC_ADVERTISE")]
    advertise: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "provider failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), erpc::Error> {
    let config = erpc::Config::load()?;
    let mut server_config = config.server;
    if let Some(port) = args.port {
        server_config.bind = format!("{}:{port}", args.host);
    }
    if args.advertise.is_some() {
        server_config.advertise = args.advertise;
    }
    let registry = args
        .registry
        .or(config.registry)
        .map(|url| erpc::registry_from_url(&url))
        .transpose()?;
    let server = demo_provider::build_server(server_config, registry).await?;
    println!("demo-provider listening on {}", server.local_addr());
    server.serve().await
}
