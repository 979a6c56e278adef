//! `erpc`: a grpcurl-like tool for erpc services, with no generated code.
//!
//! ```text
//! erpc --registry nacos://127.0.0.1:8848 services
//! erpc --registry static://127.0.0.1:9000 providers demo_api::Calculator
//! erpc --registry static://127.0.0.1:9000 call demo_api::Calculator add '[2, 3]'
//! erpc --registry static://127.0.0.1:9000 call --group test1 demo_api::HelloService hello \
//!      '[{"message": "hi", "description": "from the CLI"}]'
//! ```
//!
//! Calls travel in the JSON serializer, so arguments are a JSON array (one element per
//! method argument) and the result prints as JSON.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use erpc::{CallOptions, Client, Serialization, ServiceKey};
use futures::StreamExt;

/// Command line.
#[derive(Parser)]
#[command(name = "erpc", version, about = "List and call erpc services")]
struct Cli {
    /// Registry URL (static://h:p,.., nacos://h:8848?.., zookeeper://h:2181,..).
    #[arg(long, env = "ERPC_REGISTRY")]
    registry: String,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// `Debug` without the credentials a registry URL may hold.
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("registry", &erpc::registry::redact_url(&self.registry, &[]))
            .field("command", &self.command)
            .finish()
    }
}

/// A service named on the command line.
#[derive(Debug, clap::Args)]
struct Service {
    /// Interface name, e.g. `demo_api::Calculator`.
    interface: String,
    /// Service group.
    #[arg(long, default_value = "")]
    group: String,
    /// Service version.
    #[arg(long, default_value = "1.0")]
    version: String,
}

impl Service {
    fn key(&self) -> ServiceKey {
        ServiceKey::new(&self.interface, &self.group, &self.version)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the services a registry knows (Nacos registries).
    Services,
    /// Lists a service's providers with their registry metadata.
    Providers {
        /// The service.
        #[command(flatten)]
        service: Service,
    },
    /// Calls a method with JSON arguments and prints the JSON result.
    Call {
        /// The service.
        #[command(flatten)]
        service: Service,
        /// Method name.
        method: String,
        /// Arguments as a JSON array, one element per method argument.
        #[arg(default_value = "[]")]
        args: String,
        /// Call timeout in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("erpc: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Services => services(&cli.registry).await,
        Command::Providers { service } => providers(&cli.registry, &service.key()).await,
        Command::Call {
            service,
            method,
            args,
            timeout_ms,
        } => call(&cli.registry, &service.key(), &method, &args, timeout_ms).await,
    }
}

async fn services(registry: &str) -> Result<String, String> {
    if !registry.starts_with("nacos://") {
        let shown = erpc::registry::redact_url(registry, &[]);
        return Err(format!(
            "listing services needs a registry that keeps a catalogue (nacos://); {shown:?} only answers per service: use `providers`"
        ));
    }
    let nacos = erpc::nacos::NacosRegistry::from_url(registry).map_err(|e| e.to_string())?;
    let keys = nacos.services().await.map_err(|e| e.to_string())?;
    let lines: Vec<String> = keys.iter().map(ToString::to_string).collect();
    Ok(lines.join("\n"))
}

async fn providers(registry: &str, key: &ServiceKey) -> Result<String, String> {
    let registry = erpc::registry_from_url(registry).map_err(|e| e.to_string())?;
    let mut changes = registry.subscribe(key).await.map_err(|e| e.to_string())?;
    let first = tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .map_err(|_| format!("the registry gave no provider list for {key} within 5 s"))?
        .ok_or_else(|| format!("the registry closed the subscription to {key}"))?;
    let listed: Vec<serde_json::Value> = first
        .all
        .iter()
        .map(|p| serde_json::json!({ "addr": p.addr, "weight": p.weight, "metadata": p.metadata }))
        .collect();
    serde_json::to_string_pretty(&listed).map_err(|e| e.to_string())
}

async fn call(
    registry: &str,
    key: &ServiceKey,
    method: &str,
    args: &str,
    timeout_ms: u64,
) -> Result<String, String> {
    let args: serde_json::Value =
        serde_json::from_str(args).map_err(|e| format!("arguments are not JSON: {e}"))?;
    if !args.is_array() {
        return Err("arguments must be a JSON array, one element per method argument".into());
    }
    let client = Client::builder()
        .registry(erpc::registry_from_url(registry).map_err(|e| e.to_string())?)
        .serialization(Serialization::Json)
        .retries(0)
        .build()
        .map_err(|e| e.to_string())?;
    let options = CallOptions {
        timeout: Some(Duration::from_millis(timeout_ms)),
        ..CallOptions::default()
    };
    let result: serde_json::Value = client
        .call(key, method, &args, &options)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&result).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_registry_credentials() {
        let args = Cli::parse_from([
            "x",
            "--registry",
            "nacos://nacos:S3cret-pw@127.0.0.1:8848?password=S3cret-pw",
            "services",
        ]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("S3cret-pw"), "{shown}");
        assert!(shown.contains("127.0.0.1:8848"), "{shown}");
    }
}
