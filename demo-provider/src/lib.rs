//! The demo provider's service implementations and server assembly, as a library so the
//! consumer's embedded mode can start providers in-process.

use std::sync::{Arc, OnceLock};

use clap::Parser;

use demo_api::{CalcError, Calculator, CalculatorServer, Hello, HelloService, HelloServiceServer};

/// Implements [`HelloService`].
#[derive(Debug, Default, Clone)]
pub struct HelloImpl;

impl HelloService for HelloImpl {
    async fn hello(&self, hello: Hello) -> String {
        tracing::info!(message = %hello.message, "hello received");
        demo_api::greeting(&hello)
    }
}

/// Implements [`Calculator`]; knows its provider's address for `whoami`.
#[derive(Debug, Clone, Default)]
pub struct CalculatorImpl {
    addr: Arc<OnceLock<String>>,
}

impl Calculator for CalculatorImpl {
    async fn add(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        a.checked_add(b).ok_or(CalcError::Overflow)
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        if b == 0 {
            return Err(CalcError::DivisionByZero);
        }
        a.checked_div(b).ok_or(CalcError::Overflow)
    }

    async fn whoami(&self) -> String {
        self.addr.get().cloned().unwrap_or_default()
    }
}

/// Binds a server hosting both demo services, registered in `registry` when given.
pub async fn build_server(
    config: erpc::ServerConfig,
    registry: Option<Arc<dyn erpc::registry::Registry>>,
) -> Result<erpc::Server, erpc::Error> {
    let calculator = CalculatorImpl::default();
    let addr = calculator.addr.clone();
    let mut builder = erpc::Server::builder()
        .config(config)
        .add_service(HelloServiceServer::new(HelloImpl))
        .add_service(CalculatorServer::new(calculator));
    if let Some(registry) = registry {
        builder = builder.registry(registry);
    }
    let server = builder.build().await?;
    let _ = addr.set(server.advertised_addr().to_string());
    Ok(server)
}

/// Command-line flags; each also reads an environment variable.
#[derive(Parser)]
#[command(version, about = "erpc demo provider")]
pub struct ProviderArgs {
    /// Registry URL (static://.., nacos://.., zookeeper://..); none: serve without registering.
    #[arg(long, env = "ERPC_REGISTRY")]
    pub registry: Option<String>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "ERPC_PORT")]
    pub port: Option<u16>,
    /// Host to listen on.
    #[arg(long, env = "ERPC_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Address to register when it differs from the bound one (containers, NAT).
    #[arg(long, env = "ERPC_ADVERTISE")]
    pub advertise: Option<String>,
    /// Serve /metrics, /health, /ready and /services over HTTP on HOST:PORT.
    #[arg(long, env = "ERPC_ADMIN", value_name = "HOST:PORT")]
    pub admin: Option<String>,
}

/// `Debug` without the credentials a registry URL may hold.
impl std::fmt::Debug for ProviderArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderArgs")
            .field(
                "registry",
                &self
                    .registry
                    .as_deref()
                    .map(|url| erpc::registry::redact_url(url, &[])),
            )
            .field("port", &self.port)
            .field("host", &self.host)
            .field("advertise", &self.advertise)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Runs the provider until ctrl-c or SIGTERM, then shuts down gracefully.
pub async fn run(args: ProviderArgs) -> Result<(), erpc::Error> {
    let config = erpc::Config::load()?;
    let mut server_config = config.server;
    if let Some(port) = args.port {
        server_config.bind = format!("{}:{port}", args.host);
    }
    if args.advertise.is_some() {
        server_config.advertise = args.advertise;
    }
    if args.admin.is_some() {
        server_config.admin = args.admin;
    }
    let registry = args
        .registry
        .or(config.registry)
        .map(|url| erpc::registry_from_url(&url))
        .transpose()?;
    let server = build_server(server_config, registry).await?;
    println!("demo-provider listening on {}", server.local_addr());
    if let Some(admin) = server.admin_addr() {
        println!("admin endpoints on http://{admin}/ (metrics, health, ready, services)");
    }
    server.serve().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_registry_credentials() {
        let args = ProviderArgs::parse_from([
            "x",
            "--registry",
            "nacos://nacos:S3cret-pw@127.0.0.1:8848?password=S3cret-pw",
        ]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("S3cret-pw"), "{shown}");
        assert!(shown.contains("127.0.0.1:8848"), "{shown}");
    }

    #[tokio::test]
    async fn admin_flag_serves_the_admin_endpoints() {
        let args = ProviderArgs::parse_from(["x", "--port", "0", "--admin", "127.0.0.1:0"]);
        let mut config = erpc::ServerConfig::default();
        config.bind = "127.0.0.1:0".into();
        config.admin = args.admin;
        let server = build_server(config, None).await.unwrap();
        assert!(server.admin_addr().is_some());
        assert!(server.metrics().is_some());
    }
}
