//! One accepted connection: read frames, admit requests, run handlers (their first
//! poll on the reader, or as tasks: see [`Dispatch`]), answer.
//!
//! The reader does only cheap work per frame: it reads the request head, routes it and
//! decides admission (draining, per-service limits, the server's concurrency limit and
//! memory budget) before any work on the body. Admitted requests are run by
//! [`run_call`]; a call with more to do than its first poll becomes a task. Bodies
//! are decompressed there, on a blocking thread, one at a time per connection, so
//! compression bombs cost their sender's turn and no one else's. Over a limit a request
//! is answered `Overloaded` at once; a handler's panic becomes `HandlerPanicked`; a
//! cancel frame or a passed deadline stops the handler; a malformed request gets an
//! error response while the connection keeps serving. Only a wrong magic (not an erpc
//! peer, or a stream out of sync) closes the connection.
//!
//! What a connection may hold is bounded by its [`ConnectionBudget`]: when calls in
//! flight or bytes (requests being handled, answers not yet written) reach the budget,
//! the reader stops reading that connection. Every answer and refusal the connection
//! sends is charged the same way, so none is ever dropped; a peer that stops reading its
//! answers is cut off by the writer's timeout, and closing the connection releases all
//! it held (handlers are aborted, queued answers dropped).

use rustc_hash::FxHashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use smallvec::{smallvec, SmallVec};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::budget::{Charge, Closed, ConnectionBudget, MemoryBudget, MemoryCharge};
use super::dispatch::{run_call, Inline, MethodPace};
use super::limits::Admission;
use super::router::Router;
use super::signal::{ReaderStops, Signal, DRAIN, STOP};
use crate::admin::{CallMetrics, InFlight};
use crate::compress::{Compression, CompressionPolicy};
use crate::filter::{run_handler, HandlerParts, ServerCall, ServerFilter, ServerNext};
use crate::message::{error_response, inflate, oversized_message, read_request_envelope};
use crate::policy::Dispatch;
use crate::protocol::codec::{control_frame, CodecError};
use crate::protocol::{Frame, FrameCodec, Inbound, MessageType, Metadata, Status, HEADER_LEN};
use crate::serialize::Serialization;
use crate::service::{Reply, Service, ServiceKey};
use crate::transport::writer::{run_writer, Charged, Part, QUEUE_FRAMES};
use crate::transport::Stream;
use crate::Error;

/// Per-connection limits (see [`ConnectionBudget`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Calls in flight on one connection before its reader pauses.
    pub(crate) max_in_flight: usize,
    /// Bytes one connection may hold: requests being handled and answers not yet written.
    pub(crate) max_bytes: usize,
    /// A write that makes no progress for this long closes the connection.
    pub(crate) write_timeout: Duration,
}

/// What every connection of a server shares.
pub(crate) struct ServerContext {
    pub(crate) router: Arc<Router>,
    pub(crate) limiter: Arc<Semaphore>,
    pub(crate) max_concurrency: usize,
    pub(crate) max_frame: u32,
    pub(crate) idle_timeout: Duration,
    /// Where handlers run.
    pub(crate) dispatch: Dispatch,
    pub(crate) compression: CompressionPolicy,
    pub(crate) connection_limits: ConnectionLimits,
    /// Request bodies held by handlers, server-wide.
    pub(crate) memory: MemoryBudget,
    /// Decompressions running at once, server-wide (one per core).
    pub(crate) inflating: Arc<Semaphore>,
    /// Cancelled when the server starts draining: connections send goaway.
    pub(crate) draining: Signal,
    /// Cancelled when connections must close.
    pub(crate) closing: Signal,
    /// Call metrics, when on.
    pub(crate) metrics: Option<CallMetrics>,
    /// Filters around every call, outermost first (none: the handler is called
    /// directly).
    pub(crate) filters: Box<[Arc<dyn ServerFilter>]>,
}

type Calls = Arc<Mutex<FxHashMap<u64, AbortHandle>>>;

/// Serves one connection until the peer leaves, it idles out, stops reading its
/// answers, or the server closes it.
pub(crate) async fn serve_connection(stream: Stream, peer: SocketAddr, ctx: Arc<ServerContext>) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "TCP_NODELAY failed");
    }
    let (read, write) = stream.into_split();
    let (queue, rx) = mpsc::channel(QUEUE_FRAMES);
    let calls: Calls = Arc::default();
    let limits = ctx.connection_limits;
    let budget = Arc::new(ConnectionBudget::new(
        limits.max_in_flight,
        limits.max_bytes,
    ));
    // Set when the writer ends (socket failed or the peer stopped reading).
    let broken = CancellationToken::new();
    let mut writer = {
        // Handlers still running will queue answers soon: let the writer batch them.
        let running = calls.clone();
        let busy = move || !running.lock().is_empty();
        let (broken, budget) = (broken.clone(), budget.clone());
        tokio::spawn(async move {
            let release = |permits| budget.release(permits);
            let result = run_writer(write, rx, busy, Some(limits.write_timeout), release).await;
            broken.cancel();
            budget.close();
            result
        })
    };
    let conn = Conn {
        peer,
        ctx: ctx.clone(),
        queue,
        calls,
        budget,
    };
    let mut frames = FramedRead::new(read, FrameCodec::new(ctx.max_frame));
    // Frames only raise `heard` (no clock read per frame); the idle timer checks it once
    // per period, so an idle connection closes after one to two idle timeouts. A
    // connection with calls running is not idle.
    let mut heard = false;
    let idle = tokio::time::sleep(ctx.idle_timeout);
    tokio::pin!(idle);
    let mut goaway_sent = false;
    // The in-flight slot the next request will use; taken before reading it.
    let mut slot: Option<OwnedSemaphorePermit> = None;
    // Draining, closing and a failed writer, read without a lock between frames.
    let stops = Arc::new(ReaderStops::default());
    let watcher = stops.watch(&ctx.draining, &ctx.closing, &broken);
    loop {
        if slot.is_none() {
            slot = conn.budget.try_take_slot();
        }
        tokio::select! {
            biased;
            () = stops.raised(STOP) => break,
            () = stops.raised(DRAIN), if !goaway_sent => {
                goaway_sent = true;
                if conn.send_charged(control_frame(MessageType::GoAway, 0)).await.is_err() {
                    break;
                }
            }
            taken = conn.budget.take_slot(), if slot.is_none() => match taken {
                Ok(taken) => slot = Some(taken),
                Err(Closed) => break,
            },
            item = frames.next(), if slot.is_some() => match item {
                Some(Ok(inbound)) => {
                    heard = true;
                    if conn.handle(inbound, &mut slot).await.is_err() {
                        break;
                    }
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
                if std::mem::take(&mut heard) || !conn.calls.lock().is_empty() {
                    idle.as_mut().reset(Instant::now() + ctx.idle_timeout);
                } else {
                    tracing::debug!(%peer, timeout = ?ctx.idle_timeout, "idle connection closed");
                    break;
                }
            }
        }
    }
    watcher.abort();
    // The caller is gone or the server is closing: nobody will read these answers.
    for (_, call) in conn.calls.lock().drain() {
        call.abort();
    }
    let budget = conn.budget.clone();
    drop(conn);
    // Let queued answers reach the socket before it closes, unless the peer does not read.
    match tokio::time::timeout(Duration::from_secs(2), &mut writer).await {
        Ok(Ok(Err(e))) => tracing::debug!(%peer, error = %e, "write failed"),
        Err(_) => {
            tracing::debug!(%peer, "writer did not finish in time; closing the socket");
            writer.abort();
        }
        _ => {}
    }
    // Wakes answers still waiting for room: they are dropped, releasing what they hold.
    budget.close();
}

struct Conn {
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    queue: mpsc::Sender<Charged>,
    calls: Calls,
    budget: Arc<ConnectionBudget>,
}

/// An admitted request: what its task needs, and the permits it holds while it runs.
struct Admitted<'a> {
    service: Arc<dyn Service>,
    /// How the method's first polls have run (for [`Dispatch::Adaptive`]).
    pace: &'a Arc<MethodPace>,
    key: Arc<ServiceKey>,
    method: usize,
    method_name: &'static str,
    deadline: Option<Duration>,
    metadata: Metadata,
    serialization: Serialization,
    compression: Compression,
    held: Held,
}

/// Released when the handler finishes (not when its answer is written).
struct Held {
    _concurrency: OwnedSemaphorePermit,
    _admission: Admission,
    // At most two each (the body on the wire, then inflated): kept inline.
    _memory: SmallVec<[MemoryCharge; 2]>,
    _connection_bytes: SmallVec<[Charge; 2]>,
}

/// Why a request gets no normal answer.
enum Stop {
    /// Answer with this status.
    Refuse(Status, String),
    /// The connection ended: nobody waits for an answer.
    Gone,
}

impl From<Closed> for Stop {
    fn from(_: Closed) -> Self {
        Stop::Gone
    }
}

impl Conn {
    /// Queues a frame charged to the connection's byte budget. When the budget or the
    /// queue is full the caller waits, so a peer that does not read is not read either.
    async fn send_charged(&self, frame: impl Into<Part>) -> Result<(), Closed> {
        let frame = frame.into();
        let send = async {
            let permits = self.budget.reserve_for_writer(frame.len()).await?;
            self.queue
                .send(Charged { frame, permits })
                .await
                .map_err(|_| Closed)
        };
        // The send first: when it is ready at once, the `cancelled()` future is never
        // polled and so never joins the token's waiter list.
        tokio::select! {
            biased;
            sent = send => sent,
            () = self.ctx.closing.cancelled() => Err(Closed),
        }
    }

    async fn refuse(&self, request_id: u64, status: Status, message: &str) -> Result<(), Closed> {
        tracing::debug!(peer = %self.peer, request_id, ?status, message, "answering with an error");
        self.send_charged(error_response(request_id, status, message))
            .await
    }

    async fn handle(
        &self,
        inbound: Inbound,
        slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Closed> {
        match inbound {
            Inbound::Frame(frame) => match frame.header.message_type() {
                Some(MessageType::Request) => self.on_request(frame, slot).await,
                Some(MessageType::Ping) => {
                    let pong = control_frame(MessageType::Pong, frame.header.request_id);
                    self.send_charged(pong).await
                }
                Some(MessageType::Cancel) => {
                    if let Some(call) = self.calls.lock().remove(&frame.header.request_id) {
                        tracing::debug!(peer = %self.peer, request_id = frame.header.request_id, "call cancelled by caller");
                        call.abort();
                    }
                    Ok(())
                }
                Some(MessageType::Pong | MessageType::GoAway) => Ok(()),
                Some(MessageType::Response) | None => {
                    tracing::debug!(peer = %self.peer, kind = frame.header.kind, "ignoring unexpected frame");
                    Ok(())
                }
            },
            Inbound::Oversized(header) => {
                let message = oversized_message(header.body_len, self.ctx.max_frame);
                self.refuse(header.request_id, Status::FrameTooLarge, &message)
                    .await
            }
            Inbound::Malformed { header, reason } => {
                self.refuse(header.request_id, Status::BadRequest, &reason)
                    .await
            }
        }
    }

    async fn on_request(
        &self,
        frame: Frame,
        slot: &mut Option<OwnedSemaphorePermit>,
    ) -> Result<(), Closed> {
        let id = frame.header.request_id;
        // The frame is in memory already: charge it before deciding anything.
        let wire = self
            .budget
            .reserve(HEADER_LEN + frame.header.body_len as usize)
            .await?;
        let mut observed = None;
        let admitted = match self.admit(&frame, wire, &mut observed) {
            Ok(admitted) => admitted,
            Err((status, message)) => {
                if let Some(call) = observed {
                    call.finish(Err(status_kind(status)));
                }
                return self.refuse(id, status, &message).await;
            }
        };
        let (abort, registration) = AbortHandle::new_pair();
        self.calls.lock().insert(id, abort);
        let Admitted {
            service,
            pace,
            key,
            method,
            method_name,
            deadline,
            metadata,
            serialization,
            compression,
            held,
        } = admitted;
        let call = ServerCall {
            request_id: id,
            peer: self.peer,
            service: key,
            method: method_name,
            metadata,
            deadline: deadline.map(|d| Instant::now() + d),
            context: None,
            handler: Some(HandlerParts {
                service,
                method,
                serialization,
                compression: self.ctx.compression,
                payload: frame.payload,
                timeout: deadline,
            }),
        };
        let task = CallTask {
            call,
            compression,
            held,
            ctx: self.ctx.clone(),
            budget: self.budget.clone(),
            calls: self.calls.clone(),
            queue: self.queue.clone(),
            slot: slot.take(),
            observed,
        };
        // Boxed: a spawned task then moves a pointer, not its future, on its way into
        // the runtime and when it completes.
        match run_call(self.ctx.dispatch, pace, Box::pin(task.run(registration))) {
            Inline::Done => Ok(()),
            Inline::Panicked(message) => {
                // The call's permits went with it; its caller gets an answer.
                tracing::error!(peer = %self.peer, request_id = id, %message, "a call panicked outside its filters and handler");
                self.calls.lock().remove(&id);
                self.refuse(id, Status::HandlerPanicked, &message).await
            }
        }
    }

    /// Every check that needs no work on the body, cheapest first; a refusal carries
    /// the status to answer with and releases whatever was taken. With metrics on, the
    /// call is observed from the moment its service and method are known.
    fn admit(
        &self,
        frame: &Frame,
        wire: Charge,
        observed: &mut Option<InFlight>,
    ) -> Result<Admitted<'_>, (Status, String)> {
        let id = frame.header.request_id;
        let mut envelope = read_request_envelope(frame)?;
        if self.calls.lock().contains_key(&id) {
            return Err((
                Status::BadRequest,
                format!("request id {id} is already in flight on this connection"),
            ));
        }
        let (route, method) = self.ctx.router.resolve(&envelope.head)?;
        let method_name = route
            .service
            .descriptor()
            .methods
            .get(method)
            .map_or("", |m| m.name);
        *observed = route.observe(method);
        if self.ctx.draining.is_cancelled() {
            // Goaway is out: the caller will retry elsewhere; this call never ran.
            return Err((Status::ShuttingDown, "provider is shutting down".into()));
        }
        let admission = route
            .admit(method)
            .map_err(|message| (Status::Overloaded, message))?;
        let Ok(concurrency) = self.ctx.limiter.clone().try_acquire_owned() else {
            let message = format!(
                "server is at its limit of {} concurrent calls",
                self.ctx.max_concurrency
            );
            return Err((Status::Overloaded, message));
        };
        let memory = self
            .ctx
            .memory
            .try_reserve(wire.num_permits())
            .map_err(|message| (Status::Overloaded, message))?;
        Ok(Admitted {
            service: route.service.clone(),
            pace: route.pace(method),
            key: route.key.clone(),
            method,
            method_name,
            deadline: envelope.head.deadline,
            metadata: std::mem::take(&mut envelope.head.metadata),
            serialization: envelope.serialization,
            compression: envelope.compression,
            held: Held {
                _concurrency: concurrency,
                _admission: admission,
                _memory: smallvec![memory],
                _connection_bytes: smallvec![wire],
            },
        })
    }
}

/// One admitted call, from its body to its answer on the queue.
///
/// Its future is kept under 1 KiB (one small allocation when spawned): the call's
/// facts live once, in `call`, and `run` uses the fields in place.
struct CallTask {
    /// The call as filters and the handler see it; its handler parts hold the body
    /// as it came off the wire.
    call: ServerCall,
    /// How the body is compressed on the wire.
    compression: Compression,
    held: Held,
    ctx: Arc<ServerContext>,
    budget: Arc<ConnectionBudget>,
    calls: Calls,
    queue: mpsc::Sender<Charged>,
    /// The connection's in-flight slot, released once the answer is queued.
    slot: Option<OwnedSemaphorePermit>,
    /// The call's metrics, when on.
    observed: Option<InFlight>,
}

impl CallTask {
    fn run(
        self,
        registration: futures::future::AbortRegistration,
    ) -> impl std::future::Future<Output = ()> + Send {
        // Not an `async fn (mut self)`: that would hold the task twice in its future.
        let mut this = self;
        async move {
            let id = this.call.request_id;
            let (call, held, ctx, budget) =
                (&mut this.call, &mut this.held, &this.ctx, &this.budget);
            let compression = this.compression;
            let work = async move {
                if let Some(parts) = call.handler.as_mut() {
                    let wire = std::mem::take(&mut parts.payload);
                    parts.payload = open_body(ctx, budget, compression, held, wire).await?;
                }
                if ctx.filters.is_empty() {
                    return Ok(run_handler(call).await);
                }
                // A filter that panics (handler panics are caught in `run_handler`) gets
                // its caller an answer, wherever the call runs.
                AssertUnwindSafe(ServerNext { rest: &ctx.filters }.run(call))
                    .catch_unwind()
                    .await
                    .map_err(|panic| {
                        let message = crate::filter::panic_message(&*panic);
                        tracing::error!(request_id = id, %message, "a filter panicked");
                        Stop::Refuse(Status::HandlerPanicked, message)
                    })
            };
            let outcome = Abortable::new(work, registration).await;
            if let Some(observed) = this.observed.take() {
                observed.finish(outcome_kind(&outcome));
            }
            this.calls.lock().remove(&id);
            // The handler is done: its permits and request bytes go back before the answer
            // waits for room, so a peer that does not read cannot keep the server's limits.
            drop(this.held);
            let frame = match outcome {
                Err(_aborted) => {
                    // Cancelled by the caller: nobody waits for an answer.
                    this.call.cancel();
                    return;
                }
                Ok(Err(Stop::Gone)) => return,
                Ok(Err(Stop::Refuse(status, message))) => {
                    error_response(id, status, &message).into()
                }
                Ok(Ok(Err(e))) => {
                    if matches!(e, Error::Timeout { .. }) {
                        this.call.cancel();
                    }
                    error_response(id, status_for(&e), &error_message(&e)).into()
                }
                Ok(Ok(Ok(reply))) => Part::from(reply.0),
            };
            let Ok(permits) = this.budget.reserve_for_writer(frame.len()).await else {
                return; // the connection ended
            };
            let _ = this.queue.send(Charged { frame, permits }).await;
            drop(this.slot);
        }
    }
}

impl ServerCall {
    /// Tells the handler's context (if the call got that far) that nobody waits for it.
    fn cancel(&self) {
        if let Some(context) = &self.context {
            context.cancel();
        }
    }
}

/// The request's payload as the serializer reads it. A compressed body is inflated on
/// a blocking thread, one per connection at a time (and one per core server-wide), and
/// its inflated size is charged to the connection and the server before the handler
/// runs; a body that does not fit is refused `Overloaded`.
async fn open_body(
    ctx: &ServerContext,
    budget: &ConnectionBudget,
    compression: Compression,
    held: &mut Held,
    payload: Bytes,
) -> Result<Bytes, Stop> {
    if compression == Compression::None {
        return Ok(payload);
    }
    // Boxed: the rare compressed path would otherwise make every call's task larger.
    Box::pin(inflate_body(ctx, budget, compression, held, payload)).await
}

/// [`open_body`] for a compressed body.
async fn inflate_body(
    ctx: &ServerContext,
    budget: &ConnectionBudget,
    compression: Compression,
    held: &mut Held,
    payload: Bytes,
) -> Result<Bytes, Stop> {
    let _turn = budget.inflate_turn().await?;
    let _core = ctx
        .inflating
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Stop::Gone)?;
    let max_len = ctx.max_frame as usize;
    let inflated = tokio::task::spawn_blocking(move || inflate(compression, &payload, max_len))
        .await
        .map_err(|e| Stop::Refuse(Status::Unknown, format!("decompression failed: {e}")))?
        .map_err(|e| Stop::Refuse(Status::BadRequest, e.to_string()))?;
    let memory = ctx
        .memory
        .try_reserve(inflated.len())
        .map_err(|message| Stop::Refuse(Status::Overloaded, message))?;
    held._memory.push(memory);
    let bytes = budget.reserve(inflated.len()).await?;
    held._connection_bytes.push(bytes);
    Ok(inflated)
}

/// The status a handler's error travels as; refusals keep their meaning (never ran,
/// safe to retry elsewhere).
fn status_for(error: &Error) -> Status {
    match error {
        Error::Decode(_) => Status::BadRequest,
        Error::Encode(_) => Status::EncodeFailed,
        Error::MethodNotFound { .. } => Status::MethodNotFound,
        Error::Cancelled => Status::Cancelled,
        Error::Overloaded(_) => Status::Overloaded,
        Error::GoingAway { .. } => Status::ShuttingDown,
        Error::HandlerPanicked(_) => Status::HandlerPanicked,
        Error::Timeout { .. } => Status::DeadlineExceeded,
        Error::Unauthenticated(_) => Status::Unauthenticated,
        _ => Status::Unknown,
    }
}

/// What a call task's work ends with: aborted by the caller, stopped before the
/// handler, or the result of the filters and handler.
type Outcome = Result<Result<Result<Reply, Error>, Stop>, futures::future::Aborted>;

/// A finished call for the metrics: `Err` with the kind of error its caller sees.
fn outcome_kind(outcome: &Outcome) -> Result<(), &'static str> {
    match outcome {
        Err(_aborted) => Err("cancelled"),
        Ok(Err(Stop::Gone)) => Err("connection_lost"),
        Ok(Err(Stop::Refuse(status, _))) => Err(status_kind(*status)),
        Ok(Ok(Err(e))) => Err(e.kind()),
        Ok(Ok(Ok(_))) => Ok(()),
    }
}

/// The [`Error::kind`] a caller's error for a refusal with `status` has.
fn status_kind(status: Status) -> &'static str {
    match status {
        Status::ServiceNotFound => "service_not_found",
        Status::MethodNotFound => "method_not_found",
        Status::BadRequest => "decode",
        Status::Overloaded => "overloaded",
        Status::HandlerPanicked => "handler_panicked",
        Status::Cancelled => "cancelled",
        Status::DeadlineExceeded => "timeout",
        Status::EncodeFailed => "encode",
        Status::ShuttingDown => "going_away",
        Status::FrameTooLarge => "frame_too_large",
        Status::Unauthenticated => "unauthenticated",
        Status::Ok | Status::Unknown => "remote",
    }
}

/// The message an error travels with: the bare payload where the caller's error adds
/// its own prefix.
fn error_message(error: &Error) -> std::borrow::Cow<'_, str> {
    match error {
        Error::HandlerPanicked(m) | Error::Unauthenticated(m) => m.as_str().into(),
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_refusals_keep_their_status() {
        assert_eq!(
            status_for(&Error::Overloaded("busy".into())),
            Status::Overloaded
        );
        assert_eq!(
            status_for(&Error::GoingAway { addr: "a:1".into() }),
            Status::ShuttingDown
        );
        assert_eq!(status_for(&Error::Config("x".into())), Status::Unknown);
        assert_eq!(
            status_for(&Error::Unauthenticated("x".into())),
            Status::Unauthenticated
        );
    }
}
