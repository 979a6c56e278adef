//! The baseline: length-prefixed frames carrying a request id over one TCP connection,
//! with what any multiplexed RPC needs and nothing more: a reader task matching ids to
//! waiting callers (oneshot) and a writer task coalescing queued frames into one write.
//! No serialization, no dispatch; the server echoes each frame as it arrived.
//!
//! Frame: `u32` length of the rest, `u64` request id, payload (big-endian).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

const PREFIX: usize = 4;
const ID: usize = 8;
const BATCH: usize = 512;

/// Frames queued to a writer task.
type Queue = mpsc::Sender<Bytes>;

/// Writes every queued frame, concatenating what is queued at once into one write.
async fn writer(mut socket: OwnedWriteHalf, mut queue: mpsc::Receiver<Bytes>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = BytesMut::with_capacity(64 * 1024);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        for frame in batch.drain(..) {
            out.extend_from_slice(&frame);
        }
        if socket.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}

/// Reads frames and hands each (id, whole frame) to `on_frame`.
async fn reader(mut socket: OwnedReadHalf, mut on_frame: impl FnMut(u64, Bytes)) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        while buf.len() >= PREFIX + ID {
            let len = u32::from_be_bytes(buf[..PREFIX].try_into().expect("4 bytes")) as usize;
            if buf.len() < PREFIX + len {
                buf.reserve(PREFIX + len - buf.len());
                break;
            }
            let frame = buf.split_to(PREFIX + len).freeze();
            let id = u64::from_be_bytes(frame[PREFIX..PREFIX + ID].try_into().expect("8 bytes"));
            on_frame(id, frame);
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn split(stream: TcpStream) -> (OwnedReadHalf, Queue) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (queue, rx) = mpsc::channel(4096);
    tokio::spawn(writer(write, rx));
    (read, queue)
}

/// Serves until the process is killed; prints the bound port first.
pub(crate) async fn serve(port: u16) -> Result<(), String> {
    let listener = crate::listen_announced(port).await?;
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let (read, queue) = split(stream);
        tokio::spawn(reader(read, move |_, frame| {
            // The request frame, id and all, is the response frame.
            let _ = queue.try_send(frame);
        }));
    }
}

/// The client side of the baseline.
pub(crate) struct RawClient {
    queue: Queue,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>,
    next_id: AtomicU64,
}

impl RawClient {
    /// Connects and starts the reader and writer tasks.
    pub(crate) async fn connect(addr: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (read, queue) = split(stream);
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>> = Arc::default();
        let waiters = pending.clone();
        tokio::spawn(reader(read, move |id, frame| {
            if let Some(waiter) = waiters.lock().remove(&id) {
                let _ = waiter.send(frame);
            }
        }));
        Ok(Self {
            queue,
            pending,
            next_id: AtomicU64::new(1),
        })
    }

    /// One call; returns the echoed payload length.
    pub(crate) async fn call(&self, payload: &[u8]) -> Result<usize, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = BytesMut::with_capacity(PREFIX + ID + payload.len());
        frame.put_u32((ID + payload.len()) as u32);
        frame.put_u64(id);
        frame.put_slice(payload);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        self.queue
            .send(frame.freeze())
            .await
            .map_err(|_| "writer stopped".to_string())?;
        let mut reply = rx.await.map_err(|_| "connection closed".to_string())?;
        reply.advance(PREFIX + ID);
        Ok(reply.len())
    }
}
