//! The demo provider's service implementations and server assembly, as a library so the
//! consumer's embedded mode can start providers in-process.

use std::sync::{Arc, OnceLock};

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
        builder = builder.registry_arc(registry);
    }
    let server = builder.build().await?;
    let _ = addr.set(server.advertised_addr().to_string());
    Ok(server)
}
