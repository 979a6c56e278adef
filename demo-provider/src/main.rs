//! Serves the demo services until ctrl-c or SIGTERM, then shuts down gracefully.
//!
//! ```text
//! demo-provider --port 9000 --registry nacos://127.0.0.1:8848
//! ```

use clap::Parser;
use demo_provider::ProviderArgs;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match demo_provider::run(ProviderArgs::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "provider failed");
            std::process::ExitCode::FAILURE
        }
    }
}
