//! A blocking facade for callers without an async runtime (the Java original's plain
//! socket transport, in spirit): it owns a small runtime and blocks on each call.

use std::future::Future;
use std::sync::Arc;

use super::{Client, ClientBuilder};
use crate::Error;

/// A [`Client`] plus the runtime that drives it, for synchronous code.
///
/// Generated `XxxBlockingClient`s wrap this. Do not use it from inside an async
/// runtime: blocking there would stall that runtime's worker.
///
/// ```no_run
/// let client = erpc_core::BlockingClient::new(
///     erpc_core::Client::builder().direct(["127.0.0.1:9000"]),
/// ).unwrap();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct BlockingClient {
    runtime: Arc<tokio::runtime::Runtime>,
    client: Client,
}

impl BlockingClient {
    /// Builds the client on a new two-worker runtime.
    pub fn new(builder: ClientBuilder) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("erpc-blocking")
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the blocking client's runtime", e))?;
        let client = {
            let _entered = runtime.enter();
            builder.build()?
        };
        Ok(Self {
            runtime: Arc::new(runtime),
            client,
        })
    }

    /// The async client inside.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Runs `future` to completion on the owned runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}
