//! A blocking facade for callers without an async runtime (the Java original's plain
//! socket transport, in spirit): it owns a small runtime and blocks on each call.

use std::future::Future;
use std::sync::Arc;

use super::{Client, ClientBuilder};
use crate::Error;

/// A [`Client`] plus the runtime that drives it, for synchronous code.
///
/// Generated `XxxBlockingClient`s wrap this. Do not call through it from inside an
/// async runtime: blocking there would stall that runtime's worker. Dropping it there
/// is fine: its runtime then shuts down in the background.
///
/// ```no_run
/// let client = erpc_core::BlockingClient::new(
///     erpc_core::Client::builder().direct(["127.0.0.1:9000"]),
/// ).unwrap();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct BlockingClient {
    runtime: Arc<OwnedRuntime>,
    client: Client,
}

/// The blocking client's runtime; dropping it inside async code does not block.
#[derive(Debug)]
struct OwnedRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Waiting for its workers here would block an async worker (and tokio
                // panics rather than allow it).
                runtime.shutdown_background();
            }
        }
    }
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
            runtime: Arc::new(OwnedRuntime(Some(runtime))),
            client,
        })
    }

    /// The async client inside.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Runs `future` to completion on the owned runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime.0 {
            Some(runtime) => runtime.block_on(future),
            // Only `Drop` takes the runtime out, and nothing runs after it.
            None => unreachable!("the blocking client's runtime is gone"),
        }
    }
}
