//! Internals for `erpc-core/benches/filters.rs`: server calls as the server builds
//! them, around a handler that answers at once. Built only with the `fuzzing` feature
//! (which the crate's own tests and benches enable); not part of the supported API.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use std::panic::AssertUnwindSafe;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::HandlerParts;
use super::{ServerCall, ServerFilter, ServerNext};
use crate::compress::CompressionPolicy;
use crate::service::{MethodDescriptor, Reply, Service, ServiceDescriptor, ServiceKey};
use crate::{Error, Serialization};

static DESCRIPTOR: ServiceDescriptor = ServiceDescriptor {
    interface: "bench::Echo",
    default_group: "",
    default_version: "1.0",
    methods: &[MethodDescriptor {
        name: "echo",
        args: &[],
        idempotent: false,
    }],
};

/// Answers every call at once with the same (empty) reply.
struct Instant(BytesMut);

impl Service for Instant {
    fn descriptor(&self) -> &'static ServiceDescriptor {
        &DESCRIPTOR
    }
    fn group(&self) -> &str {
        ""
    }
    fn version(&self) -> &str {
        "1.0"
    }
    fn call(&self, _: usize, _: crate::Request) -> BoxFuture<'static, Result<Reply, Error>> {
        let reply = Reply(self.0.clone());
        Box::pin(async move { Ok(reply) })
    }
}

/// Makes server calls to one instant handler.
pub struct Calls {
    service: Arc<dyn Service>,
    key: Arc<ServiceKey>,
}

impl Default for Calls {
    fn default() -> Self {
        Self {
            service: Arc::new(Instant(BytesMut::from(&b"reply"[..]))),
            key: Arc::new(ServiceKey::new("bench::Echo", "", "1.0")),
        }
    }
}

impl Calls {
    /// A fresh call, as the server hands it to the chain (no metadata, no deadline).
    pub fn call(&self) -> ServerCall {
        ServerCall {
            request_id: 1,
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
            service: self.key.clone(),
            method: "echo",
            metadata: Default::default(),
            deadline: None,
            context: None,
            handler: Some(HandlerParts {
                service: self.service.clone(),
                method: 0,
                serialization: Serialization::default(),
                compression: CompressionPolicy::default(),
                payload: Bytes::new(),
                timeout: None,
            }),
        }
    }
}

/// Runs `call` the way the server does: straight to the handler without filters,
/// else through them.
pub async fn run(call: &mut ServerCall, filters: &[Arc<dyn ServerFilter>]) -> Result<Reply, Error> {
    if filters.is_empty() {
        super::run_handler(call).await
    } else {
        ServerNext { rest: filters }.run(call).await
    }
}

/// Runs `call`'s handler as the server did before call contexts existed: no
/// [`crate::context::CallContext`], no task-local scope (the baseline that shows what
/// the context costs).
pub async fn run_without_context(call: &mut ServerCall) -> Result<Reply, Error> {
    let Some(parts) = call.handler.take() else {
        return Err(Error::Cancelled);
    };
    let request = crate::Request {
        request_id: call.request_id,
        serialization: parts.serialization,
        compression: parts.compression,
        payload: parts.payload,
        metadata: std::mem::take(&mut call.metadata),
        context: None,
    };
    let handler = parts.service.call(parts.method, request);
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(Error::HandlerPanicked("panic".into())),
    }
}

/// Builds and drops one call context (what [`run`] adds per call, without the scope).
pub fn context_only(call: &mut ServerCall) -> usize {
    let context = crate::context::CallContext::new(call.take_facts());
    let a = context.clone();
    let b = context.clone();
    std::hint::black_box(&a);
    std::hint::black_box(&b);
    a.request_id() as usize
}
