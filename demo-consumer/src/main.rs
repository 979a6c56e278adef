//! Calls the demo services and prints results, how calls spread over providers, and a
//! latency summary. See the library docs for the flags.

use clap::Parser;
use demo_consumer::ConsumerArgs;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match demo_consumer::run(ConsumerArgs::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-consumer failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
