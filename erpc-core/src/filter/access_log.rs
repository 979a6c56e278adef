//! One structured `tracing` event per call.

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    outcome_name, ClientCall, ClientFilter, ClientNext, ServerCall, ServerFilter, ServerNext,
};
use crate::service::Reply;
use crate::Error;

/// Logs one `info` event per call on target `erpc::access`, on either side: service,
/// method, outcome (`ok` or the error's kind), latency in microseconds, and on the
/// server the peer and request id (a client logs once per logical call, whatever its
/// retries, with its timeout).
///
/// Enable it with `RUST_LOG=erpc::access=info` (or any subscriber) and
/// `.filter(AccessLog)`, or `filters = ["access_log"]` in the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccessLog;

#[async_trait]
impl ServerFilter for AccessLog {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        let started = Instant::now();
        let result = next.run(call).await;
        tracing::info!(
            target: "erpc::access",
            side = "server",
            service = %call.service(),
            method = call.method(),
            peer = %call.peer(),
            request_id = call.request_id(),
            status = outcome_name(&result),
            latency_us = started.elapsed().as_micros() as u64,
        );
        result
    }
}

#[async_trait]
impl ClientFilter for AccessLog {
    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
        let started = Instant::now();
        let result = next.run(call).await;
        tracing::info!(
            target: "erpc::access",
            side = "client",
            service = %call.service(),
            method = call.method(),
            status = outcome_name(&result),
            latency_us = started.elapsed().as_micros() as u64,
            timeout_ms = call.timeout().as_millis() as u64,
        );
        result
    }
}
