//! The end of the server's filter chain: the handler itself, run inside its call
//! context, with a panic isolated and the call's deadline enforced.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;

use super::ServerCall;
use crate::compress::CompressionPolicy;
use crate::context::{CallContext, CallFacts};
use crate::protocol::Metadata;
use crate::serialize::Serialization;
use crate::service::{Reply, Request, Service};
use crate::Error;

/// What a call's handler needs, taken by [`run_handler`] when it starts.
pub(crate) struct HandlerParts {
    pub(crate) service: Arc<dyn Service>,
    pub(crate) method: usize,
    pub(crate) serialization: Serialization,
    pub(crate) compression: CompressionPolicy,
    pub(crate) payload: Bytes,
    pub(crate) timeout: Option<Duration>,
}

impl ServerCall {
    /// What the handler's [`CallContext`] is built from; the metadata moves into it.
    pub(crate) fn take_facts(&mut self) -> CallFacts {
        CallFacts {
            request_id: self.request_id,
            peer: self.peer,
            service: self.service.clone(),
            method: self.method,
            metadata: std::mem::take(&mut self.metadata),
            deadline: self.deadline,
        }
    }
}

/// The end of the server chain: runs the handler inside its [`CallContext`], isolating
/// a panic and bounding it by the call's deadline.
pub(crate) async fn run_handler(call: &mut ServerCall) -> Result<Reply, Error> {
    let Some(parts) = call.handler.take() else {
        return Err(Error::Config(
            "the handler of this call already ran (a server filter reused its call)".into(),
        ));
    };
    let context = CallContext::new(call.take_facts());
    call.context = Some(context.clone());
    let request = Request {
        request_id: call.request_id,
        serialization: parts.serialization,
        compression: parts.compression,
        payload: parts.payload,
        metadata: Metadata::new(),
        context: Some(context.clone()),
    };
    let handler = parts.service.call(parts.method, request);
    let guarded = AssertUnwindSafe(context.scope(handler)).catch_unwind();
    match within_deadline(guarded, parts.timeout).await {
        Some(Ok(result)) => result,
        Some(Err(panic)) => Err(Error::HandlerPanicked(panic_message(&*panic))),
        None => Err(Error::Timeout {
            service: call.service.to_string(),
            method: call.method.to_string(),
            after: parts.timeout.unwrap_or_default(),
        }),
    }
}

/// Runs `handler` until `deadline` passes (`None` when it did). A handler that finishes
/// on its first poll, as most do, never arms a timer nor reads the clock.
async fn within_deadline<F: Future>(handler: F, deadline: Option<Duration>) -> Option<F::Output> {
    let mut handler = std::pin::pin!(handler);
    if let Poll::Ready(output) = futures::poll!(handler.as_mut()) {
        return Some(output);
    }
    match deadline {
        // The timer is boxed: most calls never get here, and a `Sleep` inline would
        // make every call's task larger.
        Some(d) => {
            let expired = Box::pin(tokio::time::sleep(d));
            match futures::future::select(handler, expired).await {
                futures::future::Either::Left((output, _)) => Some(output),
                futures::future::Either::Right(((), _)) => None,
            }
        }
        None => Some(handler.await),
    }
}

/// The text a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}
