//! The client's multiplexed connection to one provider.
//!
//! Every concurrent call to the provider shares this one TCP connection: a call gets a
//! request id, parks a oneshot sender in the pending table and queues its frame to the
//! writer task; the reader task matches each response's id to its waiting call. The
//! answers read together are handed over together, and the writer gathers the next
//! calls their callers make into one write (see `Shared::more_frames_coming`).
//!
//! The reader also keeps the heartbeat: after one to two `heartbeat_interval`s without
//! inbound traffic it sends a ping, and when nothing arrives within `heartbeat_timeout`
//! after that, the peer is declared dead. When the connection ends for any reason every
//! pending call fails at once with [`Error::ConnectionLost`] (never left hanging).
//!
//! The reader also keeps the calls' deadlines: one timer per connection, armed at the
//! earliest deadline of the calls waiting, instead of a timer per call (registering and
//! removing a timer in the runtime's wheel cost more than the rest of a small call's
//! wait). A call whose deadline passes gets [`Error::Timeout`] and the provider a cancel
//! frame, as when a caller gives up.

use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::stream::{self, ClientTls, ReadHalf};
use super::writer::{run_writer, OutFrame, QUEUE_FRAMES};
use crate::message::EncodedRequest;
use crate::protocol::codec::control_frame;
use crate::protocol::{CodecError, Frame, FrameCodec, Inbound, MessageType};
use crate::Error;

/// Connection-level settings taken from the client configuration.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub(crate) connect_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) max_frame: u32,
    pub(crate) tls: ClientTls,
}

type Waiter = oneshot::Sender<Result<Frame, Error>>;

/// Answers read but not yet handed to their calls: request id and outcome.
type Answers = Vec<(u64, Result<Frame, Error>)>;

/// Frames handled per read before their calls are woken (the answers of a batch of
/// calls usually arrive together; this bounds what one pass holds).
const DRAIN_FRAMES: usize = 256;

/// Calls waiting for responses, and why the connection closed once it has.
#[derive(Default)]
struct Pending {
    /// Each call's waiter and deadline. Request ids are sequential integers: a fast
    /// non-cryptographic hash suffices.
    waiters: FxHashMap<u64, (Waiter, Instant)>,
    /// The calls' deadlines, earliest first. A call answered in time leaves its entry
    /// behind (finding it would cost a search): expiring skips such entries, and the
    /// heap is rebuilt from `waiters` once they outnumber the calls still waiting.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    closed: Option<String>,
}

impl Pending {
    /// The earliest deadline the heap holds (perhaps of a call already answered).
    fn earliest(&self) -> Option<Instant> {
        self.deadlines
            .peek()
            .map(|Reverse((deadline, _))| *deadline)
    }

    /// Adds a waiting call; true when its deadline is now the earliest, so that the
    /// reader's timer must be armed earlier.
    fn insert(&mut self, id: u64, waiter: Waiter, deadline: Instant) -> bool {
        let stale = self.deadlines.len().saturating_sub(self.waiters.len());
        if stale > 2 * self.waiters.len() + 64 {
            self.deadlines = self
                .waiters
                .iter()
                .map(|(id, (_, deadline))| Reverse((*deadline, *id)))
                .collect();
        }
        let earlier = self.earliest().is_none_or(|earliest| deadline < earliest);
        self.waiters.insert(id, (waiter, deadline));
        self.deadlines.push(Reverse((deadline, id)));
        earlier
    }

    /// Takes the calls whose deadline is at or before `now`.
    fn take_expired(&mut self, now: Instant) -> Vec<(u64, Waiter)> {
        let mut expired = Vec::new();
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some((waiter, _)) = self.waiters.remove(&id) {
                expired.push((id, waiter));
            }
        }
        expired
    }
}

struct Shared {
    /// Shared with every call that notes where it went (no copy per call).
    addr: Arc<str>,
    pending: Mutex<Pending>,
    /// Raised (and the reader woken) when a call's deadline is earlier than any the
    /// reader's timer knew.
    rearm: AtomicBool,
    reader: AtomicWaker,
    /// Calls answered since the writer last asked whether more frames are coming.
    answered: AtomicU64,
    going_away: AtomicBool,
    closed: AtomicBool,
}

impl Shared {
    fn new(addr: &str) -> Self {
        Self {
            addr: Arc::from(addr),
            pending: Mutex::new(Pending::default()),
            rearm: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            answered: AtomicU64::new(0),
            going_away: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Marks the connection closed and fails every waiting call.
    fn close(&self, reason: String) {
        let waiters = {
            let mut pending = self.pending.lock();
            if pending.closed.is_none() {
                pending.closed = Some(reason.clone());
            }
            std::mem::take(&mut pending.waiters)
        };
        self.closed.store(true, Ordering::Release);
        if !waiters.is_empty() {
            tracing::debug!(addr = %self.addr, calls = waiters.len(), %reason, "failing pending calls");
        }
        for (_, (waiter, _)) in waiters {
            let _ = waiter.send(Err(Error::ConnectionLost {
                addr: self.addr.to_string(),
                reason: reason.clone(),
            }));
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether more frames are about to be queued, so that the writer should gather
    /// them into its batch: other calls wait for answers (each may be followed by
    /// another), or the reader answered several calls since the writer last asked
    /// (their callers, woken together, are queueing their next calls). The second
    /// keeps the first caller to call again from leaving alone while the others
    /// follow a moment later: at 64 calls in flight that split every batch in two
    /// writes on each side. A lone caller's next call still leaves at once (after a
    /// burst of answers that nobody follows up, the next call waits one turn of the
    /// worker: the writer yields once and finds nothing more).
    fn more_frames_coming(&self) -> bool {
        self.answered.swap(0, Ordering::Relaxed) > 1 || self.pending.lock().waiters.len() > 1
    }
}

/// One multiplexed connection; cheap to share behind an `Arc`.
///
/// The reader task holds only a weak handle to the write queue: once the pool and the
/// last call let go of the connection, the queue closes and the socket shuts down.
pub(crate) struct Connection {
    shared: Arc<Shared>,
    queue: mpsc::Sender<OutFrame>,
    next_id: AtomicU64,
}

impl Connection {
    /// Opens a connection (`host:port`, or `tls://host:port`; see [`stream::connect`])
    /// and starts its reader and writer tasks.
    pub(crate) async fn connect(
        addr: &str,
        settings: &ConnectionSettings,
    ) -> Result<Arc<Self>, Error> {
        let connect_error = |reason: String| Error::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(
            settings.connect_timeout,
            stream::connect(addr, &settings.tls),
        )
        .await
        .map_err(|_| connect_error(format!("timed out after {:?}", settings.connect_timeout)))?
        .map_err(connect_error)?;
        stream
            .set_nodelay(true)
            .map_err(|e| connect_error(format!("TCP_NODELAY: {e}")))?;
        let (read, write) = stream.into_split();
        let (queue, rx) = mpsc::channel(QUEUE_FRAMES);
        let shared = Arc::new(Shared::new(addr));
        let writer_shared = shared.clone();
        let waiting = shared.clone();
        let busy = move || waiting.more_frames_coming();
        tokio::spawn(async move {
            if let Err(e) = run_writer(write, rx, busy, None, |_| {}).await {
                writer_shared.close(format!("write failed: {e}"));
            }
        });
        let reader = Reader {
            shared: shared.clone(),
            queue: queue.downgrade(),
            settings: settings.clone(),
        };
        tokio::spawn(reader.run(FramedRead::new(read, FrameCodec::new(settings.max_frame))));
        tracing::debug!(%addr, "connected");
        Ok(Arc::new(Self {
            shared,
            queue,
            next_id: AtomicU64::new(1),
        }))
    }

    /// Provider address.
    pub(crate) fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// Provider address, shared.
    pub(crate) fn shared_addr(&self) -> Arc<str> {
        self.shared.addr.clone()
    }

    /// False once the connection closed or the provider said goaway.
    pub(crate) fn is_usable(&self) -> bool {
        !self.shared.going_away.load(Ordering::Acquire) && !self.shared.is_closed()
    }

    /// True once the provider said goaway.
    pub(crate) fn is_going_away(&self) -> bool {
        self.shared.going_away.load(Ordering::Acquire)
    }

    /// True once the connection has closed (for any reason).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Sends an encoded request and waits for its response frame until `deadline`;
    /// past it the call fails with an [`Error::Timeout`] that names no service (the
    /// caller knows which) and the provider is told to cancel.
    ///
    /// Dropping the returned future before it completes (caller gone) removes the call
    /// and sends a cancel frame so the provider stops the handler.
    pub(crate) async fn call(
        &self,
        request: &EncodedRequest,
        deadline: Instant,
    ) -> Result<Frame, Error> {
        if self.is_going_away() {
            return Err(Error::GoingAway {
                addr: self.shared.addr.to_string(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = request.with_id(id);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.pending.lock();
            if let Some(reason) = &pending.closed {
                return Err(Error::Connect {
                    addr: self.shared.addr.to_string(),
                    reason: format!("connection already closed: {reason}"),
                });
            }
            if pending.insert(id, tx, deadline) {
                self.shared.rearm.store(true, Ordering::Release);
                self.shared.reader.wake();
            }
        }
        let mut guard = CallGuard {
            connection: self,
            id,
            finished: false,
        };
        // The queue has room almost always; the waiting send is boxed so that its
        // future (a few hundred bytes) is not part of every call's.
        let queued = match self.queue.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(frame)) => {
                match Box::pin(tokio::time::timeout_at(deadline, self.queue.send(frame))).await {
                    Ok(sent) => sent.map_err(drop),
                    // The caller's time ran out before the frame found room: not sent.
                    Err(_) => {
                        guard.finished = true;
                        self.shared.pending.lock().waiters.remove(&id);
                        return Err(timed_out());
                    }
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if queued.is_err() {
            guard.finished = true;
            self.shared.pending.lock().waiters.remove(&id);
            // The writer task is gone (its runtime ended): this connection is dead.
            self.shared.close("writer stopped".to_string());
            return Err(self.lost("writer stopped"));
        }
        let outcome = rx.await;
        guard.finished = true;
        match outcome {
            Ok(result) => result,
            Err(_) => Err(self.lost("response channel dropped")),
        }
    }

    fn lost(&self, reason: &str) -> Error {
        Error::ConnectionLost {
            addr: self.shared.addr.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Cleans up a call that ends early: forget the waiter and tell the provider to stop.
struct CallGuard<'a> {
    connection: &'a Connection,
    id: u64,
    finished: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let shared = &self.connection.shared;
        if self.finished {
            return;
        }
        let was_waiting = shared.pending.lock().waiters.remove(&self.id).is_some();
        if !was_waiting {
            return;
        }
        send_cancel(&self.connection.queue, self.id);
    }
}

/// Tells the provider to stop call `id`. A full queue (the provider reads slowly) must
/// not lose the cancel: it is then queued from a task, behind the frames waiting.
fn send_cancel(queue: &mpsc::Sender<OutFrame>, id: u64) {
    let cancel = OutFrame::from(control_frame(MessageType::Cancel, id));
    if let Err(mpsc::error::TrySendError::Full(cancel)) = queue.try_send(cancel) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let queue = queue.clone();
            runtime.spawn(async move { queue.send(cancel).await });
        }
    }
}

/// Arms `timer` at `at`; false (and nothing armed) when there is no deadline.
fn arm(timer: std::pin::Pin<&mut tokio::time::Sleep>, at: Option<Instant>) -> bool {
    match at {
        Some(at) => {
            timer.reset(at);
            true
        }
        None => false,
    }
}

/// What a call past its deadline fails with here; the client names the call.
fn timed_out() -> Error {
    Error::Timeout {
        service: String::new(),
        method: String::new(),
        after: Duration::ZERO,
    }
}

/// The read side: responses, pongs, goaway, heartbeat.
struct Reader {
    shared: Arc<Shared>,
    queue: mpsc::WeakSender<OutFrame>,
    settings: ConnectionSettings,
}

impl Drop for Reader {
    /// A reader dropped without finishing (its runtime shut down) leaves nobody to
    /// answer the pending calls: close, so they fail and the client reconnects.
    fn drop(&mut self) {
        if !self.shared.is_closed() {
            self.shared.close("connection task ended".to_string());
        }
    }
}

impl Reader {
    async fn run(self, mut frames: FramedRead<ReadHalf, FrameCodec>) {
        let interval = self.settings.heartbeat_interval;
        let timeout = self.settings.heartbeat_timeout;
        // Reading the clock on every frame costs more than the frame itself under load:
        // frames only raise `heard`, and the timer checks it once per interval. A ping
        // therefore goes out after one to two intervals of silence.
        let mut heard = false;
        let mut ping_pending = false;
        let heartbeat = tokio::time::sleep(interval);
        tokio::pin!(heartbeat);
        // Armed at the earliest deadline of the calls waiting, when there is one.
        let expiry = tokio::time::sleep(interval);
        tokio::pin!(expiry);
        let mut armed = false;
        let mut answers = Vec::new();
        let reason = loop {
            tokio::select! {
                () = &mut expiry, if armed => {
                    armed = arm(expiry.as_mut(), self.expire(Instant::now()));
                }
                () = self.rearm_wanted() => {
                    let earliest = self.shared.pending.lock().earliest();
                    armed = arm(expiry.as_mut(), earliest);
                }
                item = frames.next() => {
                    heard = true;
                    if let Some(reason) = self.handle_read(item, &mut frames, &mut answers) {
                        break reason;
                    }
                }
                () = &mut heartbeat => {
                    let now = Instant::now();
                    if heard {
                        heard = false;
                        ping_pending = false;
                        heartbeat.as_mut().reset(now + interval);
                    } else if ping_pending {
                        break format!("no answer to heartbeat within {timeout:?}");
                    } else {
                        if !self.send(control_frame(MessageType::Ping, 0)) {
                            break "writer stopped".to_string();
                        }
                        ping_pending = true;
                        heartbeat.as_mut().reset(now + timeout);
                    }
                }
            }
        };
        tracing::debug!(addr = %self.shared.addr, %reason, "connection closed");
        self.shared.close(reason);
    }

    /// Ready when a call asked for an earlier deadline than the timer knew.
    fn rearm_wanted(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.shared.rearm.swap(false, Ordering::AcqRel) {
                return std::task::Poll::Ready(());
            }
            self.shared.reader.register(cx.waker());
            match self.shared.rearm.swap(false, Ordering::AcqRel) {
                true => std::task::Poll::Ready(()),
                false => std::task::Poll::Pending,
            }
        })
    }

    /// Fails the calls whose deadline passed and tells the provider to cancel them;
    /// returns the next deadline.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let (expired, next) = {
            let mut pending = self.shared.pending.lock();
            (pending.take_expired(now), pending.earliest())
        };
        if let Some(queue) = self.queue.upgrade() {
            for (id, _) in &expired {
                send_cancel(&queue, *id);
            }
        }
        for (_, waiter) in expired {
            let _ = waiter.send(Err(timed_out()));
        }
        next
    }

    fn send(&self, frame: Bytes) -> bool {
        match self.queue.upgrade() {
            Some(queue) => queue.try_send(frame.into()).is_ok(),
            None => false,
        }
    }

    /// Handles `first` (what the stream gave when it woke the reader) and the frames
    /// already read after it (up to [`DRAIN_FRAMES`] in all), then wakes the calls they
    /// answer all at once: one lock of the pending table, and the woken callers queue
    /// their next calls together, where waking each as its answer was decoded let an
    /// idle worker steal them one by one and send each in a write of its own. Says why
    /// the connection ended, if it did; the answers read before that still go out.
    fn handle_read<S>(
        &self,
        first: Option<Result<Inbound, CodecError>>,
        frames: &mut S,
        answers: &mut Answers,
    ) -> Option<String>
    where
        S: futures::Stream<Item = Result<Inbound, CodecError>> + Unpin,
    {
        let mut item = first;
        let mut handled = 0;
        let ended = loop {
            match item {
                Some(Ok(inbound)) => self.handle(inbound, answers),
                Some(Err(e)) => break Some(format!("read failed: {e}")),
                None => break Some("closed by peer".to_string()),
            }
            handled += 1;
            if handled == DRAIN_FRAMES {
                break None; // the rest stays in the stream for the next pass
            }
            // Ready frames only: the codec's buffer, or a read that needs no wait.
            match frames.next().now_or_never() {
                Some(next) => item = next,
                None => break None,
            }
        };
        self.complete(answers);
        ended
    }

    fn handle(&self, inbound: Inbound, answers: &mut Answers) {
        match inbound {
            Inbound::Frame(frame) => match frame.header.message_type() {
                Some(MessageType::Response) => answers.push((frame.header.request_id, Ok(frame))),
                Some(MessageType::Ping) => {
                    self.send(control_frame(MessageType::Pong, frame.header.request_id));
                }
                Some(MessageType::GoAway) => {
                    tracing::info!(addr = %self.shared.addr, "provider is going away");
                    self.shared.going_away.store(true, Ordering::Release);
                }
                Some(MessageType::Pong) => {}
                other => {
                    tracing::warn!(addr = %self.shared.addr, ?other, "unexpected frame from provider")
                }
            },
            Inbound::Oversized(header) => answers.push((
                header.request_id,
                Err(Error::FrameTooLarge {
                    size: u64::from(header.body_len),
                    limit: u64::from(self.settings.max_frame),
                    direction: crate::FrameDirection::Response,
                }),
            )),
            Inbound::Malformed { header, reason } => {
                answers.push((header.request_id, Err(Error::Protocol(reason))))
            }
        }
    }

    /// Hands each answer to its waiting call (one lock for all), emptying `answers`.
    fn complete(&self, answers: &mut Answers) {
        if answers.is_empty() {
            return; // a pass of pings, pongs or goaway only
        }
        let mut waiters: SmallVec<[(Waiter, Result<Frame, Error>); 64]> = SmallVec::new();
        {
            let mut pending = self.shared.pending.lock();
            for (id, result) in answers.drain(..) {
                match pending.waiters.remove(&id) {
                    Some((waiter, _)) => waiters.push((waiter, result)),
                    None => tracing::trace!(id, "response for a call nobody waits for (cancelled)"),
                }
            }
        }
        self.shared
            .answered
            .fetch_add(waiters.len() as u64, Ordering::Relaxed);
        for (waiter, result) in waiters {
            let _ = waiter.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter() -> Waiter {
        oneshot::channel().0
    }

    #[test]
    fn the_earliest_deadline_arms_the_timer_and_only_waiting_calls_expire() {
        let now = Instant::now();
        let at = |ms| now + Duration::from_millis(ms);
        let mut pending = Pending::default();
        assert!(
            pending.insert(1, waiter(), at(30)),
            "the first deadline arms"
        );
        assert!(!pending.insert(2, waiter(), at(50)), "a later one does not");
        assert!(
            pending.insert(3, waiter(), at(10)),
            "an earlier one re-arms"
        );
        assert_eq!(pending.earliest(), Some(at(10)));

        // Call 3 was answered in time: its entry stays, but it does not expire.
        pending.waiters.remove(&3);
        let expired: Vec<u64> = pending
            .take_expired(at(30))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(expired, [1]);
        assert_eq!(pending.earliest(), Some(at(50)));
        assert_eq!(pending.waiters.len(), 1);
    }

    fn reader(shared: &Arc<Shared>) -> Reader {
        let (queue, _) = mpsc::channel(4);
        let settings = ConnectionSettings {
            connect_timeout: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(60),
            max_frame: 1 << 20,
            tls: None,
        };
        Reader {
            shared: shared.clone(),
            queue: queue.downgrade(),
            settings,
        }
    }

    fn response(id: u64) -> Inbound {
        Inbound::Frame(Frame {
            header: crate::protocol::FrameHeader::new(MessageType::Response, id),
            head: Bytes::new(),
            payload: Bytes::from_static(b"ok"),
        })
    }

    /// Frames `ids` already read, then nothing more for now.
    fn read_already(
        ids: std::ops::RangeInclusive<u64>,
    ) -> impl futures::Stream<Item = Result<Inbound, CodecError>> + Unpin {
        futures::stream::iter(ids.map(|id| Ok(response(id)))).chain(futures::stream::pending())
    }

    #[test]
    fn answers_read_together_reach_their_calls_in_one_pass_and_their_next_calls_are_gathered() {
        let shared = Arc::new(Shared::new("127.0.0.1:1"));
        let far = Instant::now() + Duration::from_secs(60);
        let mut calls = Vec::new();
        for id in 1..=8 {
            let (tx, rx) = oneshot::channel();
            shared.pending.lock().insert(id, tx, far);
            calls.push(rx);
        }
        let ended = reader(&shared).handle_read(
            Some(Ok(response(1))),
            &mut read_already(2..=8),
            &mut Vec::new(),
        );
        assert_eq!(ended, None);
        for (id, call) in (1..).zip(&mut calls) {
            let answer = call.try_recv().expect("answered in the same pass");
            assert_eq!(answer.expect("a response").header.request_id, id);
        }
        // The first of the eight callers to call again waits for the other seven,
        // though it is the only call waiting for an answer yet.
        shared.pending.lock().insert(9, waiter(), far);
        assert!(shared.more_frames_coming());
        // That burst is spent once the writer asked.
        assert!(!shared.more_frames_coming());
    }

    #[test]
    fn a_pass_hands_over_at_most_its_bound_and_leaves_the_rest_for_the_next() {
        let shared = Arc::new(Shared::new("127.0.0.1:1"));
        let far = Instant::now() + Duration::from_secs(60);
        let total = DRAIN_FRAMES as u64 + 44;
        let mut calls = Vec::new();
        for id in 1..=total {
            let (tx, rx) = oneshot::channel();
            shared.pending.lock().insert(id, tx, far);
            calls.push(rx);
        }
        let reader = reader(&shared);
        let mut rest = read_already(2..=total);
        assert_eq!(
            reader.handle_read(Some(Ok(response(1))), &mut rest, &mut Vec::new()),
            None
        );
        // Calls whose answer arrived since last asked (each answer is taken once).
        let answered = |calls: &mut Vec<oneshot::Receiver<Result<Frame, Error>>>| {
            calls
                .iter_mut()
                .map(|c| c.try_recv())
                .filter(Result::is_ok)
                .count()
        };
        assert_eq!(answered(&mut calls), DRAIN_FRAMES);
        // No frame read was dropped at the bound: the next pass starts with the next one.
        let next = rest.next().now_or_never().expect("a frame is ready");
        assert_eq!(reader.handle_read(next, &mut rest, &mut Vec::new()), None);
        assert_eq!(answered(&mut calls), 44);
    }

    #[test]
    fn a_lone_callers_next_call_leaves_at_once_and_a_failed_read_still_delivers_what_came_before() {
        let shared = Arc::new(Shared::new("127.0.0.1:1"));
        let far = Instant::now() + Duration::from_secs(60);
        let (tx, mut rx) = oneshot::channel();
        shared.pending.lock().insert(1, tx, far);
        let mut broken = futures::stream::iter([Err(CodecError::BadMagic(7))]);
        let ended =
            reader(&shared).handle_read(Some(Ok(response(1))), &mut broken, &mut Vec::new());
        assert!(ended.is_some_and(|reason| reason.starts_with("read failed")));
        assert!(rx.try_recv().is_ok_and(|answer| answer.is_ok()));
        shared.pending.lock().insert(2, waiter(), far);
        assert!(!shared.more_frames_coming());
    }

    #[test]
    fn entries_of_answered_calls_are_dropped_once_they_outnumber_the_waiting() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut pending = Pending::default();
        for id in 0..10_000u64 {
            pending.insert(id, waiter(), far);
            // Answered at once, as most calls are.
            pending.waiters.remove(&id);
        }
        assert!(
            pending.deadlines.len() <= 2 * pending.waiters.len() + 66,
            "{} entries kept for {} waiting calls",
            pending.deadlines.len(),
            pending.waiters.len()
        );
    }
}
