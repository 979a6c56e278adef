//! The write side of a connection: one task owns the socket's write half and sends
//! every queued frame in as few syscalls as possible.
//!
//! Callers encode frames on their own tasks and queue them; the writer takes everything
//! queued at that moment (up to a batch limit) and hands it to one vectored write, so
//! under load many small frames leave in one `writev` and large payloads are not copied.
//!
//! Tokio runs a task woken by the running one next on the same worker, so without help
//! the writer would wake after every queued frame and send frames one `writev` each.
//! When the connection is busy (its `busy` predicate says more frames are on their way)
//! the writer first yields: the worker runs the other ready tasks (handlers, callers)
//! and polls the socket once, and only then does the writer collect. It yields again
//! while each turn brought more frames (at most [`MAX_YIELDS`] times): callers woken
//! together queue their next calls over several turns of the worker, and one `writev`
//! for all of them costs less, on both ends, than one per turn (at 64 calls in flight
//! this doubled the frames per `writev` and nearly halved the client's context
//! switches). An idle connection writes at once, so a lone call pays no extra latency.
//!
//! A frame may hold part of its connection's byte budget ([`Charged`]); the writer gives
//! it back (`release`, once per batch) when the frame's bytes are on the socket, so the
//! budget counts queued bytes. With a write timeout, a peer that accepts no byte for
//! that long (it stopped reading) ends the writer with
//! [`std::io::ErrorKind::TimedOut`]; what it still held is then never given back, as
//! the connection is over.

use std::io::IoSlice;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub(crate) use crate::protocol::OutFrame;
use crate::protocol::HEADER_LEN;

/// What a connection's queue carries: a frame's bytes, and the byte budget it holds.
pub(crate) trait Outgoing: Send + 'static {
    /// Appends the frame's parts to `parts` and says how much budget it holds.
    fn into_parts(self, parts: &mut Vec<Part>) -> u32;
}

impl Outgoing for OutFrame {
    fn into_parts(self, parts: &mut Vec<Part>) -> u32 {
        if let Some(header) = self.header {
            parts.push(Part::Header(header, 0));
        }
        parts.push(Part::Shared(self.body));
        0
    }
}

/// A one-part frame holding `permits` of its connection's byte budget until written.
#[derive(Debug)]
pub(crate) struct Charged {
    pub(crate) frame: Part,
    pub(crate) permits: u32,
}

impl Outgoing for Charged {
    fn into_parts(self, parts: &mut Vec<Part>) -> u32 {
        parts.push(self.frame);
        self.permits
    }
}

/// Bytes on their way to the socket, in whichever form they were built: turning a
/// `BytesMut` into `Bytes` allocates when the buffer has room to spare, so a frame built
/// in place stays a `BytesMut`, and a request's per-attempt header stays inline.
#[derive(Debug)]
pub(crate) enum Part {
    /// Shared bytes (a request body sent by several attempts, a control frame).
    Shared(Bytes),
    /// A frame built in place (a reply).
    Owned(BytesMut),
    /// A frame header, and how many of its bytes were already written.
    Header([u8; HEADER_LEN], usize),
}

impl Part {
    fn bytes(&self) -> &[u8] {
        match self {
            Part::Shared(b) => b,
            Part::Owned(b) => b,
            Part::Header(h, written) => &h[*written..],
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Part::Shared(b) => b.advance(n),
            Part::Owned(b) => b.advance(n),
            Part::Header(_, written) => *written += n,
        }
    }

    /// Bytes still to write.
    pub(crate) fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether every byte was written.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl From<Bytes> for Part {
    fn from(bytes: Bytes) -> Self {
        Part::Shared(bytes)
    }
}

impl From<BytesMut> for Part {
    fn from(bytes: BytesMut) -> Self {
        Part::Owned(bytes)
    }
}

/// Frames taken from the queue per batch.
const BATCH_FRAMES: usize = 512;
/// Times a busy connection's writer yields before writing, while each turn brings
/// more frames (bounding the delay a trickle of frames could add).
const MAX_YIELDS: u32 = 16;
/// Slices per vectored write (IOV_MAX is 1024 on Linux).
const MAX_IOV: usize = 512;

/// Queue capacity in frames: callers wait when the socket cannot keep up.
pub(crate) const QUEUE_FRAMES: usize = 4096;

/// Sends frames from `queue` until it closes or the socket fails.
///
/// `busy` tells whether more frames are about to be queued (other calls in flight on
/// this connection); if so the writer yields once before writing so they join the batch.
/// With `write_timeout`, a write that makes no progress for that long fails the writer.
/// `release` gets back the budget a batch's frames held, once they are written.
pub(crate) async fn run_writer<W, F>(
    mut socket: W,
    mut queue: mpsc::Receiver<F>,
    busy: impl Fn() -> bool,
    write_timeout: Option<Duration>,
    release: impl Fn(u32),
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
    F: Outgoing,
{
    let mut batch: Vec<F> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    while queue.recv_many(&mut batch, BATCH_FRAMES).await > 0 {
        let mut yields = 0;
        while batch.len() < BATCH_FRAMES && yields < MAX_YIELDS && busy() {
            yields += 1;
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < BATCH_FRAMES {
                match queue.try_recv() {
                    Ok(frame) => batch.push(frame),
                    Err(_) => break,
                }
            }
            if batch.len() == before {
                break;
            }
        }
        let mut held: u32 = 0;
        for frame in batch.drain(..) {
            held = held.saturating_add(frame.into_parts(&mut parts));
        }
        write_all_vectored(&mut socket, &mut parts, write_timeout).await?;
        // A no-op on TCP; TLS may hold written records until flushed.
        within(write_timeout, socket.flush()).await?;
        parts.clear();
        if held > 0 {
            release(held);
        }
    }
    socket.shutdown().await
}

/// Writes every byte of `frames`, consuming them from the front.
async fn write_all_vectored<W>(
    socket: &mut W,
    frames: &mut [Part],
    write_timeout: Option<Duration>,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut first = 0;
    while first < frames.len() {
        if frames[first].is_empty() {
            first += 1;
            continue;
        }
        let written = {
            let slices: Vec<IoSlice<'_>> = frames[first..]
                .iter()
                .take(MAX_IOV)
                .map(|f| IoSlice::new(f.bytes()))
                .collect();
            within(write_timeout, socket.write_vectored(&slices)).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        while left > 0 {
            let frame = &mut frames[first];
            let step = left.min(frame.len());
            frame.advance(step);
            left -= step;
            if frame.is_empty() {
                first += 1;
            }
        }
    }
    Ok(())
}

/// Runs one write, failing with `TimedOut` when it makes no progress within `timeout`.
/// A write that completes on its first poll, as most do, arms no timer.
async fn within<F, T>(timeout: Option<Duration>, write: F) -> std::io::Result<T>
where
    F: std::future::Future<Output = std::io::Result<T>>,
{
    let mut write = std::pin::pin!(write);
    if let Poll::Ready(done) = futures::poll!(write.as_mut()) {
        return done;
    }
    match timeout {
        Some(limit) => tokio::time::timeout(limit, write).await.map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("peer accepted no bytes for {limit:?} (not reading)"),
            )
        })?,
        None => write.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_every_frame_in_order_through_partial_writes() {
        // A tiny duplex buffer forces many partial vectored writes.
        let (client, mut server) = tokio::io::duplex(7);
        // Read concurrently: the tiny buffer blocks the writer until the reader drains it.
        let (tx, rx) = mpsc::channel(16);
        let writer = tokio::spawn(run_writer(client, rx, || true, None, |_| {}));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.map(|_| got)
        });
        let mut expected = Vec::new();
        for i in 0..50u8 {
            // Whole frames, and bodies after a header of their own (every third frame).
            let body = Bytes::from(vec![i; usize::from(i % 5)]);
            let header = (i % 3 == 0).then(|| [i.wrapping_add(100); HEADER_LEN]);
            if let Some(header) = &header {
                expected.extend_from_slice(header);
            }
            expected.extend_from_slice(&body);
            tx.send(OutFrame { header, body }).await.unwrap();
        }
        drop(tx);
        let got = reader.await.unwrap().unwrap();
        writer.await.unwrap().unwrap();
        assert_eq!(got, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn budget_comes_back_once_written_and_a_peer_that_stops_reading_times_out() {
        let (client, mut server) = tokio::io::duplex(16);
        let released = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (tx, rx) = mpsc::channel(4);
        let writer = {
            let released = released.clone();
            tokio::spawn(run_writer(
                client,
                rx,
                || false,
                Some(Duration::from_secs(5)),
                move |n| {
                    released.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                },
            ))
        };
        let load = |n| std::sync::atomic::AtomicU32::load(&released, n);
        let frame = |len: usize, permits| Charged {
            frame: Part::from(Bytes::from(vec![1u8; len])),
            permits,
        };
        tx.send(frame(8, 8)).await.unwrap();
        let mut got = [0u8; 8];
        server.read_exact(&mut got).await.unwrap();
        while load(std::sync::atomic::Ordering::SeqCst) < 8 {
            tokio::task::yield_now().await;
        }
        // 64 bytes do not fit the 16-byte pipe, and nobody reads: the writer times out
        // and the frame's budget is not given back (the connection is over).
        tx.send(frame(64, 64)).await.unwrap();
        let err = writer.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(load(std::sync::atomic::Ordering::SeqCst), 8);
    }

    /// Counts the vectored writes it gets; accepts every byte.
    struct CountingSink(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl AsyncWrite for CountingSink {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_busy_writer_gathers_frames_queued_over_several_turns_into_one_write() {
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel(64);
        // Callers woken together queue their frames over several turns of the worker.
        for turns in 0..4 {
            let tx = tx.clone();
            tokio::spawn(async move {
                for _ in 0..turns {
                    tokio::task::yield_now().await;
                }
                let frame = OutFrame {
                    header: None,
                    body: Bytes::from_static(b"frame"),
                };
                tx.send(frame).await.unwrap();
            });
        }
        drop(tx);
        let sink = CountingSink(writes.clone());
        run_writer(sink, rx, || true, None, |_| {}).await.unwrap();
        assert_eq!(writes.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
