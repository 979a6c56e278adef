//! One accepted connection: read frames, run handlers off the reader task, answer.
//!
//! Each request becomes a spawned task holding a concurrency permit; over the limit the
//! request is answered `Overloaded` at once. A handler's panic becomes a
//! `HandlerPanicked` response, a cancel frame or a passed deadline stops the handler, and
//! a malformed request gets an error response while the connection keeps serving. Only a
//! wrong magic (not an erpc peer, or a stream out of sync) closes the connection.

use rustc_hash::FxHashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::router::Router;
use crate::compress::CompressionPolicy;
use crate::message::{decode_request, error_response};
use crate::protocol::codec::{control_frame, CodecError};
use crate::protocol::{Frame, FrameCodec, Inbound, MessageType, Status};
use crate::transport::writer::{run_writer, OutFrame, QUEUE_FRAMES};
use crate::transport::Stream;
use crate::Error;

/// What every connection of a server shares.
pub(crate) struct ServerContext {
    pub(crate) router: Arc<Router>,
    pub(crate) limiter: Arc<Semaphore>,
    pub(crate) max_concurrency: usize,
    pub(crate) max_frame: u32,
    pub(crate) idle_timeout: Duration,
    pub(crate) compression: CompressionPolicy,
    /// Cancelled when the server starts draining: connections send goaway.
    pub(crate) draining: CancellationToken,
    /// Cancelled when connections must close.
    pub(crate) closing: CancellationToken,
}

type Calls = Arc<Mutex<FxHashMap<u64, AbortHandle>>>;

/// Serves one connection until the peer leaves, it idles out, or the server closes it.
pub(crate) async fn serve_connection(stream: Stream, peer: SocketAddr, ctx: Arc<ServerContext>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY failed");
    }
    let (read, write) = stream.into_split();
    let (queue, rx) = mpsc::channel(QUEUE_FRAMES);
    let calls: Calls = Arc::default();
    // Handlers still running will queue answers soon: let the writer batch them.
    let running = calls.clone();
    let writer = tokio::spawn(run_writer(write, rx, move || !running.lock().is_empty()));
    let conn = Conn {
        peer,
        ctx: ctx.clone(),
        queue,
        calls,
    };
    let mut frames = FramedRead::new(read, FrameCodec::new(ctx.max_frame));
    // Frames only raise `heard` (no clock read per frame); the idle timer checks it once
    // per period, so an idle connection closes after one to two idle timeouts.
    let mut heard = false;
    let idle = tokio::time::sleep(ctx.idle_timeout);
    tokio::pin!(idle);
    let mut goaway_sent = false;
    loop {
        tokio::select! {
            biased;
            () = ctx.closing.cancelled() => break,
            () = ctx.draining.cancelled(), if !goaway_sent => {
                goaway_sent = true;
                conn.send(control_frame(MessageType::GoAway, 0).into());
            }
            item = frames.next() => match item {
                Some(Ok(inbound)) => {
                    heard = true;
                    conn.handle(inbound);
                }
                Some(Err(CodecError::BadMagic(magic))) => {
                    tracing::warn!(%peer, magic = format_args!("0x{magic:08X}"), "bad magic; closing connection");
                    break;
                }
                Some(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "read failed; closing connection");
                    break;
                }
                None => break,
            },
            () = &mut idle => {
                if std::mem::take(&mut heard) {
                    idle.as_mut().reset(Instant::now() + ctx.idle_timeout);
                } else {
                    tracing::debug!(%peer, timeout = ?ctx.idle_timeout, "idle connection closed");
                    break;
                }
            }
        }
    }
    // The caller is gone or the server is closing: nobody will read these answers.
    for (_, call) in conn.calls.lock().drain() {
        call.abort();
    }
    drop(conn);
    // Let queued answers reach the socket before it closes.
    match tokio::time::timeout(Duration::from_secs(2), writer).await {
        Ok(Ok(Err(e))) => tracing::debug!(%peer, error = %e, "write failed"),
        Err(_) => tracing::debug!(%peer, "writer did not finish in time"),
        _ => {}
    }
}

struct Conn {
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    queue: mpsc::Sender<OutFrame>,
    calls: Calls,
}

impl Conn {
    fn send(&self, frame: OutFrame) {
        if self.queue.try_send(frame).is_err() {
            tracing::debug!(peer = %self.peer, "write queue full or closed; frame dropped");
        }
    }

    fn reply_error(&self, request_id: u64, status: Status, message: &str) {
        tracing::debug!(peer = %self.peer, request_id, ?status, message, "answering with an error");
        self.send(error_response(request_id, status, message).into());
    }

    fn handle(&self, inbound: Inbound) {
        match inbound {
            Inbound::Frame(frame) => match frame.header.message_type() {
                Some(MessageType::Request) => self.on_request(frame),
                Some(MessageType::Ping) => {
                    self.send(control_frame(MessageType::Pong, frame.header.request_id).into())
                }
                Some(MessageType::Cancel) => {
                    if let Some(call) = self.calls.lock().remove(&frame.header.request_id) {
                        tracing::debug!(peer = %self.peer, request_id = frame.header.request_id, "call cancelled by caller");
                        call.abort();
                    }
                }
                Some(MessageType::Pong | MessageType::GoAway) => {}
                Some(MessageType::Response) | None => {
                    tracing::debug!(peer = %self.peer, kind = frame.header.kind, "ignoring unexpected frame");
                }
            },
            Inbound::Oversized(header) => self.reply_error(
                header.request_id,
                Status::FrameTooLarge,
                &format!(
                    "frame body of {} bytes exceeds the {}-byte limit",
                    header.body_len, self.ctx.max_frame
                ),
            ),
            Inbound::Malformed { header, reason } => {
                self.reply_error(header.request_id, Status::BadRequest, &reason)
            }
        }
    }

    fn on_request(&self, frame: Frame) {
        let id = frame.header.request_id;
        let inbound =
            match decode_request(&frame, self.ctx.compression, self.ctx.max_frame as usize) {
                Ok(inbound) => inbound,
                Err((status, message)) => return self.reply_error(id, status, &message),
            };
        let (route, index) = match self.ctx.router.resolve(&inbound.head) {
            Ok(found) => found,
            Err((status, message)) => return self.reply_error(id, status, &message),
        };
        if self.ctx.draining.is_cancelled() {
            // Goaway is out: the caller will retry elsewhere; this call never ran.
            return self.reply_error(id, Status::ShuttingDown, "provider is shutting down");
        }
        let admission = match route.admit(index) {
            Ok(admission) => admission,
            Err(message) => return self.reply_error(id, Status::Overloaded, &message),
        };
        let Ok(permit) = self.ctx.limiter.clone().try_acquire_owned() else {
            let message = format!(
                "server is at its limit of {} concurrent calls",
                self.ctx.max_concurrency
            );
            return self.reply_error(id, Status::Overloaded, &message);
        };
        let (abort, registration) = AbortHandle::new_pair();
        self.calls.lock().insert(id, abort);
        let handler = route.service.call(index, inbound.request);
        let deadline = inbound.head.deadline;
        let queue = self.queue.clone();
        let calls = self.calls.clone();
        tokio::spawn(async move {
            let guarded = AssertUnwindSafe(handler).catch_unwind();
            let outcome = Abortable::new(within_deadline(guarded, deadline), registration).await;
            calls.lock().remove(&id);
            let frame = match outcome {
                Err(_aborted) => return, // cancelled by the caller: nobody waits for an answer
                Ok(None) => error_response(
                    id,
                    Status::DeadlineExceeded,
                    "deadline passed on the provider",
                ),
                Ok(Some(Err(panic))) => {
                    error_response(id, Status::HandlerPanicked, &panic_message(&*panic))
                }
                Ok(Some(Ok(Err(e)))) => error_response(id, status_for(&e), &e.to_string()),
                Ok(Some(Ok(Ok(reply)))) => reply.0,
            };
            let _ = queue.send(frame.into()).await;
            drop((permit, admission));
        });
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
        Some(d) => tokio::time::timeout(d, handler).await.ok(),
        None => Some(handler.await),
    }
}

fn status_for(error: &Error) -> Status {
    match error {
        Error::Decode(_) => Status::BadRequest,
        Error::Encode(_) => Status::EncodeFailed,
        Error::MethodNotFound { .. } => Status::MethodNotFound,
        Error::Cancelled => Status::Cancelled,
        _ => Status::Unknown,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "handler panicked".to_string()
    }
}
