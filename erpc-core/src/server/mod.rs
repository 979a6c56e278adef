//! The provider side: accept connections, dispatch calls, register, shut down gracefully.
//!
//! Graceful shutdown, in order: deregister every service (consumers stop picking this
//! provider), send goaway on every connection (consumers stop sending here at once;
//! requests already on the wire are answered "shutting down" and retried elsewhere),
//! wait for in-flight calls up to the drain timeout plus a short grace, close.

mod advertise;
mod budget;
mod connection;
mod dispatch;
mod limits;
mod registration;
mod router;
mod signal;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signal::Signal;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::admin::{self, CallMetrics};
use crate::compress::CompressionPolicy;
use crate::config::{millis, Layered, Secret, ServerConfig};
use crate::filter::ServerFilter;
pub use crate::policy::Dispatch;
use crate::registry::{Registry, TLS_PREFIX, TRANSPORT_KEY};
use crate::service::Service;
use crate::transport::{self, ServerTls};
use crate::Error;
use budget::MemoryBudget;
use connection::{serve_connection, ConnectionLimits, ServerContext};
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
///
/// Settings start from [`crate::Config::load`] (defaults, `erpc.toml`, `ERPC_*`
/// variables, including the `registry` URL), or from the config given to
/// [`ServerBuilder::config`]; every other builder call wins over them, whatever the
/// order of the calls.
#[derive(Default)]
#[must_use = "a server builder does nothing until `.build()`, `.serve()` or `.serve_with_shutdown()`"]
pub struct ServerBuilder {
    settings: Layered<ServerConfig>,
    services: Vec<Arc<dyn Service>>,
    registry: Option<Arc<dyn Registry>>,
    tls: ServerTls,
    filters: Vec<Arc<dyn ServerFilter>>,
}

impl ServerBuilder {
    /// Starts from `config` instead of the file and environment; the builder's own
    /// calls still win over it.
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.settings.set_base(config);
        self
    }

    fn edit(mut self, edit: impl FnOnce(&mut ServerConfig) + Send + 'static) -> Self {
        self.settings.edit(edit);
        self
    }

    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub fn bind(self, addr: impl Into<String>) -> Self {
        let addr = addr.into();
        self.edit(move |c| c.bind = addr)
    }

    /// Address registered for consumers, when it differs from the bound one.
    pub fn advertise(self, addr: impl Into<String>) -> Self {
        let addr = addr.into();
        self.edit(move |c| c.advertise = Some(addr))
    }

    /// Hosts a service (a generated `XxxServer`).
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.services.push(Arc::new(service));
        self
    }

    /// Adds a filter around every call (see [`crate::filter`]): the first added is the
    /// outermost; filters named in the configuration's `filters` come before these.
    pub fn filter(mut self, filter: impl ServerFilter) -> Self {
        self.filters.push(Arc::new(filter));
        self
    }

    /// Registry to announce every hosted service in: any [`Registry`], or a shared
    /// `Arc<dyn Registry>` such as [`crate::registry::from_url`] returns.
    pub fn registry(mut self, registry: impl Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Handlers running at once; more are answered `Overloaded`.
    pub fn max_concurrency(self, limit: usize) -> Self {
        self.edit(move |c| c.max_concurrency = limit)
    }

    /// Longest wait for in-flight calls on shutdown.
    pub fn drain_timeout(self, timeout: Duration) -> Self {
        self.edit(move |c| c.drain_timeout_ms = millis(timeout))
    }

    /// Compression for responses at or above `policy.threshold` bytes.
    pub fn compression(self, policy: CompressionPolicy) -> Self {
        self.edit(move |c| {
            c.compression = policy.algorithm;
            c.compression_threshold = policy.threshold;
        })
    }

    /// Largest request body accepted.
    pub fn max_frame_bytes(self, limit: u32) -> Self {
        self.edit(move |c| c.max_frame_bytes = limit)
    }

    /// Calls in flight on one connection; at the limit the server stops reading that
    /// connection until one finishes (TCP backpressure).
    pub fn max_in_flight_per_connection(self, limit: usize) -> Self {
        self.edit(move |c| c.max_in_flight_per_connection = limit)
    }

    /// Bytes one connection may hold (requests being handled, answers not yet written);
    /// at the limit the server stops reading that connection.
    pub fn connection_memory_bytes(self, limit: usize) -> Self {
        self.edit(move |c| c.connection_memory_bytes = limit)
    }

    /// Request bytes (inflated) all handlers together may hold; a request beyond it is
    /// refused `Overloaded` before it is decompressed or run.
    pub fn memory_budget_bytes(self, limit: usize) -> Self {
        self.edit(move |c| c.memory_budget_bytes = limit)
    }

    /// A connection whose peer accepts no bytes for this long (it stopped reading its
    /// answers) is closed, releasing everything it held.
    pub fn write_timeout(self, timeout: Duration) -> Self {
        self.edit(move |c| c.write_timeout_ms = millis(timeout))
    }

    /// Where handlers run (default [`Dispatch::Adaptive`]: a call's first poll on the
    /// connection's reader, saving a task and a thread wake-up per call).
    pub fn dispatch(self, dispatch: Dispatch) -> Self {
        self.edit(move |c| c.dispatch = dispatch)
    }

    /// A connection with no inbound traffic and no call running for this long is closed.
    pub fn idle_timeout(self, timeout: Duration) -> Self {
        self.edit(move |c| c.idle_timeout_ms = millis(timeout))
    }

    /// Adds a per-service or per-method overload limit.
    pub fn limit(self, rule: LimitRule) -> Self {
        self.edit(move |c| c.limits.push(rule))
    }

    /// Adds a registry metadata pair to every hosted service's registration.
    pub fn metadata(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.edit(move |c| {
            c.metadata.insert(key, value);
        })
    }

    /// Registry weight of this provider.
    pub fn weight(self, weight: u32) -> Self {
        self.edit(move |c| c.weight = weight)
    }

    /// After draining, how long connections keep answering late requests "shutting
    /// down" before they close.
    pub fn goaway_grace(self, grace: Duration) -> Self {
        self.edit(move |c| c.goaway_grace_ms = millis(grace))
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

    /// Serves `/metrics`, `/health`, `/ready` and `/services` over HTTP on `addr` while
    /// the server runs (see [`crate::admin`]); turns metrics on unless
    /// [`ServerBuilder::metrics`] turned them off.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), erpc_core::Error> {
    /// let server = erpc_core::Server::builder()
    ///     .bind("127.0.0.1:0")
    ///     .admin("127.0.0.1:9100")
    ///     .build()
    ///     .await?;
    /// assert_eq!(server.admin_addr().map(|a| a.port()), Some(9100));
    /// # Ok(()) }
    /// ```
    pub fn admin(self, addr: impl Into<String>) -> Self {
        let addr = addr.into();
        self.edit(move |c| c.admin = Some(addr))
    }

    /// Records call metrics (see [`crate::admin::CallMetrics`]), with or without an
    /// admin listener; off by default unless an admin address is set.
    pub fn metrics(self, on: bool) -> Self {
        self.edit(move |c| c.metrics = Some(on))
    }

    /// Binds the listener; the server starts serving with [`Server::serve`].
    pub async fn build(mut self) -> Result<Server, Error> {
        let (config, registry_url) = self.settings.resolve(|c| c.server)?;
        let registry = match (self.registry.take(), registry_url) {
            (Some(registry), _) => Some(registry),
            (None, Some(url)) => Some(crate::registry::from_url(&url)?),
            (None, None) => None,
        };
        let compression = config.compression_policy();
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
        let hosted: Vec<serde_json::Value> = match &config.admin {
            Some(_) => self
                .services
                .iter()
                .map(|s| admin::hosted_service(s.as_ref()))
                .collect(),
            None => Vec::new(),
        };
        let metrics = config.metrics_enabled().then(CallMetrics::new);
        for service in self.services {
            router.add(service, &config.limits, metrics.as_ref())?;
        }
        let listener = TcpListener::bind(&config.bind)
            .await
            .map_err(|e| Error::io(format!("binding {}", config.bind), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let admin = match &config.admin {
            Some(addr) => Some((admin::bind(addr)?, hosted)),
            None => None,
        };
        let mut advertised = match &config.advertise {
            Some(addr) => addr.clone(),
            None => advertise::advertised_addr(local_addr).await,
        };
        let mut metadata = config.metadata.clone();
        if let Some((listener, _)) = &admin {
            // Monitors (`erpc monitor`) find each provider's `/metrics` here.
            metadata
                .entry(registration::ADMIN_KEY.into())
                .or_insert_with(|| registration::admin_advertised(listener.addr(), &advertised));
        }
        if self.tls.is_some() {
            if !advertised.starts_with(TLS_PREFIX) {
                advertised = format!("{TLS_PREFIX}{advertised}");
            }
            metadata.insert(TRANSPORT_KEY.into(), "tls".into());
        }
        let builtin = crate::filter::BuiltInSettings {
            auth_token: config.auth_token.as_ref().map(Secret::expose),
            trace_sample_ratio: config.trace_sample_ratio,
        };
        let mut filters = config
            .filters
            .iter()
            .map(|name| crate::filter::server_filter(name, &builtin))
            .collect::<Result<Vec<_>, Error>>()?;
        filters.append(&mut self.filters);
        let router = Arc::new(router);
        let registrations = Registrations::new(&router, &advertised, config.weight, &metadata);
        let context = Arc::new(ServerContext {
            router,
            limiter: Arc::new(Semaphore::new(config.max_concurrency)),
            max_concurrency: config.max_concurrency,
            max_frame: config.max_frame_bytes,
            idle_timeout: Duration::from_millis(config.idle_timeout_ms.max(1)),
            dispatch: config.dispatch,
            compression,
            connection_limits: ConnectionLimits {
                max_in_flight: config.max_in_flight_per_connection,
                max_bytes: config.connection_memory_bytes,
                write_timeout: Duration::from_millis(config.write_timeout_ms.max(1)),
            },
            memory: MemoryBudget::new(config.memory_budget_bytes),
            inflating: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            draining: Signal::default(),
            closing: Signal::default(),
            metrics,
            filters: filters.into(),
        });
        let registered = watch::Sender::new(registry.is_none());
        Ok(Server {
            listener,
            tls: self.tls,
            local_addr,
            advertised,
            context,
            registry,
            registrations,
            drain_timeout: Duration::from_millis(config.drain_timeout_ms),
            goaway_grace: Duration::from_millis(config.goaway_grace_ms),
            registered,
            admin,
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
#[must_use = "a bound server answers no calls until `.serve()` or `.spawn()`; dropping it closes the port"]
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
    /// True once every service is registered (at once when there is no registry).
    registered: watch::Sender<bool>,
    /// The bound admin listener and the hosted services it lists.
    admin: Option<(admin::Listener, Vec<serde_json::Value>)>,
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

    /// The admin listener's bound address, when one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(listener, _)| listener.addr())
    }

    /// The server's call metrics, when on.
    pub fn metrics(&self) -> Option<&CallMetrics> {
        self.context.metrics.as_ref()
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
            registered,
            admin,
        } = self;
        let connections = TaskTracker::new();
        // Ready while registered and until shutdown starts.
        let serving = Arc::new(AtomicBool::new(true));
        let admin = admin.map(|(listener, hosted)| {
            let (serving, registered) = (serving.clone(), registered.subscribe());
            listener.start(admin::View {
                ready: Box::new(move || serving.load(Ordering::Acquire) && *registered.borrow()),
                services: Box::new(
                    move || serde_json::json!({"side": "server", "services": hosted.clone()}),
                ),
                metrics: context.metrics.clone(),
            })
        });
        let registering = registry.as_ref().map(|r| {
            let registering = registrations.clone().register_all(r.clone());
            tokio::spawn(async move {
                registering.await;
                registered.send_replace(true);
            })
        });
        tracing::info!(%local_addr, %advertised, services = registrations.len(), "erpc server listening");
        let stop = async {
            tokio::select! {
                () = signal => {}
                () = context.closing.cancelled() => {}
            }
        };
        accept_until(&listener, &tls, &connections, &context, stop).await;
        serving.store(false, Ordering::Release);
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
        drop(admin);
        tracing::info!(%local_addr, "server stopped");
        Ok(())
    }

    /// Runs the server on a background task; the handle shuts it down.
    ///
    /// Dropping the handle shuts the server down gracefully, as [`ServerHandle::shutdown`]
    /// does, without waiting for it: keep the handle for as long as the server should run
    /// (`ServerHandle` is `#[must_use]`).
    pub fn spawn(self) -> ServerHandle {
        let (trigger, signal) = oneshot::channel::<()>();
        let local_addr = self.local_addr;
        let closing = self.context.closing.clone();
        let registered = self.registered.subscribe();
        let (admin_addr, metrics) = (self.admin_addr(), self.context.metrics.clone());
        let task = tokio::spawn(self.serve_with_shutdown(async {
            let _ = signal.await;
        }));
        ServerHandle {
            local_addr,
            trigger: Some(trigger),
            closing,
            registered,
            task,
            admin_addr,
            metrics,
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
///
/// Dropping the handle starts the same graceful shutdown as [`ServerHandle::shutdown`]
/// (deregister, goaway, drain) on the server's task, without waiting for it to finish,
/// so a server started in a test stops with the test's handle. To serve until the
/// process is told to stop, use [`Server::serve`].
#[derive(Debug)]
#[must_use = "dropping the handle shuts the server down at once; keep it for as long as the server should run"]
pub struct ServerHandle {
    local_addr: SocketAddr,
    trigger: Option<oneshot::Sender<()>>,
    closing: Signal,
    registered: watch::Receiver<bool>,
    task: JoinHandle<Result<(), Error>>,
    admin_addr: Option<SocketAddr>,
    metrics: Option<CallMetrics>,
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin listener's bound address, when one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The server's call metrics, when on.
    pub fn metrics(&self) -> Option<&CallMetrics> {
        self.metrics.as_ref()
    }

    /// Completes once every service is announced in the registry (at once without a
    /// registry). Registration runs in the background and retries a registry that is
    /// down, so this may wait for as long as the registry stays unreachable; bound it
    /// with a timeout where that matters. It never completes for a server that stopped
    /// before registering.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), erpc_core::Error> {
    /// use std::sync::Arc;
    /// use erpc_core::registry::MemoryRegistry;
    ///
    /// let server = erpc_core::Server::builder()
    ///     .bind("127.0.0.1:0")
    ///     .registry(Arc::new(MemoryRegistry::new()))
    ///     // .add_service(...)
    ///     .build()
    ///     .await?
    ///     .spawn();
    /// server.registered().await; // consumers can find it from now on
    /// server.shutdown().await
    /// # }
    /// ```
    pub async fn registered(&self) {
        let mut registered = self.registered.clone();
        // An error means the server dropped the sender: it stopped without registering.
        if registered.wait_for(|done| *done).await.is_err() {
            std::future::pending::<()>().await;
        }
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
