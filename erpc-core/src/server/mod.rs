//! The provider side: accept connections, dispatch calls, register, shut down gracefully.
//!
//! Graceful shutdown, in order: deregister every service (consumers stop picking this
//! provider), send goaway on every connection (consumers stop sending here at once;
//! requests already on the wire are answered "shutting down" and retried elsewhere),
//! wait for in-flight calls up to the drain timeout plus a short grace, close.

mod advertise;
mod connection;
mod limits;
mod registration;
mod router;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::compress::CompressionPolicy;
use crate::config::ServerConfig;
use crate::registry::{Registry, TLS_PREFIX, TRANSPORT_KEY};
use crate::service::Service;
use crate::transport::{self, ServerTls};
use crate::Error;
use connection::{serve_connection, ServerContext};
pub use limits::LimitRule;
use registration::Registrations;
use router::Router;

/// Builds a [`Server`].
///
/// ```no_run
/// # async fn run(service: impl erpc_core::Service) -> Result<(), erpc_core::Error> {
/// erpc_core::Server::builder()
///     .bind("127.0.0.1:9000")
///     .add_service(service)
///     .serve()
///     .await
/// # }
/// ```
#[derive(Default)]
pub struct ServerBuilder {
    config: ServerConfig,
    services: Vec<Arc<dyn Service>>,
    registry: Option<Arc<dyn Registry>>,
    tls: ServerTls,
}

impl ServerBuilder {
    /// Takes every setting from `config` (see [`crate::Config::load`]).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.config.bind = addr.into();
        self
    }

    /// Address registered for consumers, when it differs from the bound one.
    pub fn advertise(mut self, addr: impl Into<String>) -> Self {
        self.config.advertise = Some(addr.into());
        self
    }

    /// Hosts a service (a generated `XxxServer`).
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Registry to announce every hosted service in.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Registry as a shared handle.
    pub fn registry_arc(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Handlers running at once; more are answered `Overloaded`.
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.config.max_concurrency = limit;
        self
    }

    /// Longest wait for in-flight calls on shutdown.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.drain_timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Compression for responses at or above `policy.threshold` bytes.
    pub fn compression(mut self, policy: CompressionPolicy) -> Self {
        self.config.compression = policy.algorithm.name().to_string();
        self.config.compression_threshold = policy.threshold;
        self
    }

    /// Largest request body accepted.
    pub fn max_frame_bytes(mut self, limit: u32) -> Self {
        self.config.max_frame_bytes = limit;
        self
    }

    /// Adds a per-service or per-method overload limit.
    pub fn limit(mut self, rule: LimitRule) -> Self {
        self.config.limits.push(rule);
        self
    }

    /// Adds a registry metadata pair to every hosted service's registration.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.metadata.insert(key.into(), value.into());
        self
    }

    /// Registry weight of this provider.
    pub fn weight(mut self, weight: u32) -> Self {
        self.config.weight = weight;
        self
    }

    /// Accepts only TLS connections, presenting `config`'s certificate (and asking
    /// clients for theirs when it requires mutual TLS). The server registers itself as
    /// `tls://host:port` with the metadata `transport=tls`, so consumers discovering it
    /// know to use TLS. See [`crate::TlsServerConfig`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::TlsServerConfig) -> Self {
        self.tls = Some(Arc::new(config));
        self
    }

    /// Binds the listener; the server starts serving with [`Server::serve`].
    pub async fn build(self) -> Result<Server, Error> {
        let config = self.config;
        let compression = config.compression_policy()?;
        if config.max_concurrency == 0 {
            return Err(Error::Config("max_concurrency must be at least 1".into()));
        }
        let mut router = Router::default();
        for rule in &config.limits {
            if !self
                .services
                .iter()
                .any(|s| s.descriptor().interface == rule.service)
            {
                return Err(Error::Config(format!(
                    "limit names unknown service {}",
                    rule.service
                )));
            }
        }
        for service in self.services {
            router.add(service, &config.limits)?;
        }
        let listener = TcpListener::bind(&config.bind)
            .await
            .map_err(|e| Error::io(format!("binding {}", config.bind), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let mut advertised = match &config.advertise {
            Some(addr) => addr.clone(),
            None => advertise::advertised_addr(local_addr).await,
        };
        let mut metadata = config.metadata.clone();
        if self.tls.is_some() {
            if !advertised.starts_with(TLS_PREFIX) {
                advertised = format!("{TLS_PREFIX}{advertised}");
            }
            metadata.insert(TRANSPORT_KEY.into(), "tls".into());
        }
        let router = Arc::new(router);
        let registrations = Registrations::new(&router, &advertised, config.weight, &metadata);
        let context = Arc::new(ServerContext {
            router,
            limiter: Arc::new(Semaphore::new(config.max_concurrency)),
            max_concurrency: config.max_concurrency,
            max_frame: config.max_frame_bytes,
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            compression,
            draining: CancellationToken::new(),
            closing: CancellationToken::new(),
        });
        Ok(Server {
            listener,
            tls: self.tls,
            local_addr,
            advertised,
            context,
            registry: self.registry,
            registrations,
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
            goaway_grace: Duration::from_millis(config.goaway_grace_ms),
        })
    }

    /// Builds and serves until ctrl-c or SIGTERM, then shuts down gracefully.
    pub async fn serve(self) -> Result<(), Error> {
        self.build().await?.serve().await
    }

    /// Builds and serves until `signal` completes, then shuts down gracefully.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        self.build().await?.serve_with_shutdown(signal).await
    }
}

/// A bound provider, ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: ServerTls,
    local_addr: SocketAddr,
    advertised: String,
    context: Arc<ServerContext>,
    registry: Option<Arc<dyn Registry>>,
    registrations: Registrations,
    drain_timeout: Duration,
    goaway_grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address registered for consumers (`tls://host:port` for a TLS server).
    pub fn advertised_addr(&self) -> &str {
        &self.advertised
    }

    /// Serves until ctrl-c or SIGTERM, then shuts down gracefully.
    pub async fn serve(self) -> Result<(), Error> {
        self.serve_with_shutdown(termination_signal()).await
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn serve_with_shutdown(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let Server {
            listener,
            tls,
            local_addr,
            advertised,
            context,
            registry,
            registrations,
            drain_timeout,
            goaway_grace,
        } = self;
        let connections = TaskTracker::new();
        let registering = registry
            .as_ref()
            .map(|r| tokio::spawn(registrations.clone().register_all(r.clone())));
        tracing::info!(%local_addr, %advertised, services = registrations.len(), "erpc server listening");
        let stop = async {
            tokio::select! {
                () = signal => {}
                () = context.closing.cancelled() => {}
            }
        };
        accept_until(&listener, &tls, &connections, &context, stop).await;
        if let Some(task) = registering {
            task.abort();
        }
        if !context.closing.is_cancelled() {
            tracing::info!(%local_addr, "shutting down: deregistering, then draining");
            if let Some(registry) = &registry {
                registrations.deregister_all(registry.as_ref()).await;
            }
            context.draining.cancel();
            let drain = async {
                let all = u32::try_from(context.max_concurrency).unwrap_or(u32::MAX);
                let drained =
                    tokio::time::timeout(drain_timeout, context.limiter.acquire_many(all)).await;
                if drained.is_err() {
                    tracing::warn!(timeout = ?drain_timeout, "drain timeout reached with calls still running");
                }
                tokio::time::sleep(goaway_grace).await;
            };
            // Connections opened while draining get goaway at once and every request on
            // them is refused as "shutting down": refused calls are retried elsewhere,
            // whereas a closed listener could reset connections with requests in them.
            accept_until(&listener, &tls, &connections, &context, drain).await;
        }
        drop(listener);
        context.closing.cancel();
        connections.close();
        let _ = tokio::time::timeout(Duration::from_secs(3), connections.wait()).await;
        tracing::info!(%local_addr, "server stopped");
        Ok(())
    }

    /// Runs the server on a background task; the handle shuts it down.
    pub fn spawn(self) -> ServerHandle {
        let (trigger, signal) = oneshot::channel::<()>();
        let local_addr = self.local_addr;
        let closing = self.context.closing.clone();
        let task = tokio::spawn(self.serve_with_shutdown(async {
            let _ = signal.await;
        }));
        ServerHandle {
            local_addr,
            trigger: Some(trigger),
            closing,
            task,
        }
    }
}

/// Accepts connections and serves each on its own task until `until` completes.
///
/// A TLS handshake runs on the connection's task, bounded by its timeout, so a slow or
/// silent client cannot hold up accepting others.
async fn accept_until(
    listener: &TcpListener,
    tls: &ServerTls,
    connections: &TaskTracker,
    context: &Arc<ServerContext>,
    until: impl Future<Output = ()>,
) {
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (tls, context) = (tls.clone(), context.clone());
                    connections.spawn(async move {
                        let stream = tokio::select! {
                            stream = transport::stream::accept(stream, peer, &tls) => stream,
                            () = context.closing.cancelled() => None,
                        };
                        if let Some(stream) = stream {
                            serve_connection(stream, peer, context).await;
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// A server running on a background task.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    trigger: Option<oneshot::Sender<()>>,
    closing: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Graceful shutdown (deregister, goaway, drain); waits until it is done.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(trigger) = self.trigger.take() {
            let _ = trigger.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::Config(format!("server task failed: {e}")))?
    }

    /// Closes every connection at once, without deregistering or draining (what a
    /// crash looks like to consumers, short of the process dying).
    pub async fn close_abruptly(self) {
        self.closing.cancel();
        let _ = self.task.await;
    }
}

/// Completes on ctrl-c, or SIGTERM on Unix.
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
