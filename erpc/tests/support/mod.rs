//! Shared helpers for the backbone integration tests: a test service (`Lab`) whose
//! handlers report what happened to them, real servers on free ports, a byte- and
//! connection-counting TCP relay, and a raw-socket peer that speaks frames by hand.
//!
//! Every test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use erpc::protocol::{encode_frame, FrameCodec, FrameHeader, Inbound, MessageType, RequestHead};
use erpc::{Client, ClientBuilder, Metadata, Serialization, Server, ServerBuilder, ServerHandle};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;
use tokio::task::JoinSet;
use tokio_util::codec::Decoder;

/// Upper bound for any single test body.
pub(crate) const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs `body`, failing the test if it takes longer than `limit`.
pub(crate) async fn bounded<F: Future>(limit: Duration, body: F) -> F::Output {
    match tokio::time::timeout(limit, body).await {
        Ok(out) => out,
        Err(_) => panic!("test did not finish within {limit:?}"),
    }
}

/// Polls `condition` every 5 ms until it holds or `limit` passes; returns whether it held.
pub(crate) async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A struct argument with nesting, an enum, an option and a byte vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Payload {
    /// Incremented by the handler, to prove the handler ran.
    pub(crate) id: u64,
    /// Text field.
    pub(crate) name: String,
    /// A list of strings.
    pub(crate) tags: Vec<String>,
    /// An enum field.
    pub(crate) kind: Kind,
    /// An optional nested struct.
    pub(crate) inner: Option<Inner>,
    /// Bulk data (the large-payload case puts 200 KiB here).
    pub(crate) data: Vec<u8>,
}

/// Nested struct inside [`Payload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Inner {
    /// A float.
    pub(crate) ratio: f64,
    /// A signed integer.
    pub(crate) delta: i32,
}

/// Enum inside [`Payload`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// Unit variant.
    Plain,
    /// Tuple variant.
    Tagged(String),
    /// Struct variant.
    Shaped {
        /// A field.
        sides: u8,
    },
}

impl Payload {
    /// A payload whose `data` is `len` bytes of a compressible (periodic) pattern.
    pub(crate) fn with_data(len: usize) -> Self {
        Self {
            id: 41,
            name: "erpc ✓".into(),
            tags: vec!["a".into(), String::new(), "ccc".into()],
            kind: Kind::Shaped { sides: 6 },
            inner: Some(Inner {
                ratio: 0.25,
                delta: -7,
            }),
            data: (0..len).map(|i| (i % 251) as u8).collect(),
        }
    }
}

/// An application error, delivered as a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CalcError {
    /// Division by zero.
    DivisionByZero,
}

/// The service every backbone test talks to.
#[erpc::service(version = "1.0")]
pub(crate) trait Lab {
    /// Returns the payload with `id + 1` and `data` reversed.
    async fn echo(&self, payload: Payload) -> Payload;
    /// `a / b`, or an application error.
    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalcError>;
    /// Sleeps `ms` milliseconds under a guard that records whether it completed or was
    /// stopped (dropped) on the provider; returns `ms`.
    async fn hold(&self, ms: u64) -> u64;
    /// Waits until every other `gather` call of the barrier has arrived; returns `n`.
    async fn gather(&self, n: u32) -> u32;
    /// Panics with `message`.
    async fn boom(&self, message: String) -> u32;
    /// Names the implementation that answered.
    async fn whoami(&self) -> String;
}

/// What the handlers of one [`LabImpl`] observed.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// `hold` handlers that started.
    pub(crate) started: AtomicUsize,
    /// `hold` handlers that ran to the end.
    pub(crate) completed: AtomicUsize,
    /// `hold` handlers stopped before the end (their future was dropped).
    pub(crate) stopped: AtomicUsize,
    /// `gather` handlers currently waiting.
    pub(crate) gathering: AtomicUsize,
    /// Highest number of `gather` handlers waiting at once.
    pub(crate) peak_gathering: AtomicUsize,
    /// `echo` handlers that ran.
    pub(crate) echoes: AtomicUsize,
}

impl Probe {
    /// Reads a counter.
    pub(crate) fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// The `Lab` implementation.
#[derive(Clone)]
pub(crate) struct LabImpl {
    name: String,
    probe: Arc<Probe>,
    barrier: Option<Arc<Barrier>>,
}

impl LabImpl {
    /// An implementation answering `whoami` with `name`.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            probe: Arc::default(),
            barrier: None,
        }
    }

    /// `gather` calls wait until `n` of them have arrived.
    pub(crate) fn with_barrier(mut self, n: usize) -> Self {
        self.barrier = Some(Arc::new(Barrier::new(n)));
        self
    }

    /// The shared record of what the handlers saw.
    pub(crate) fn probe(&self) -> Arc<Probe> {
        self.probe.clone()
    }
}

/// Records on drop whether the `hold` handler finished or was stopped.
struct HoldGuard {
    probe: Arc<Probe>,
    done: bool,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.probe.completed
        } else {
            &self.probe.stopped
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl Lab for LabImpl {
    async fn echo(&self, mut payload: Payload) -> Payload {
        self.probe.echoes.fetch_add(1, Ordering::SeqCst);
        payload.id += 1;
        payload.data.reverse();
        payload
    }

    async fn divide(&self, a: i64, b: i64) -> Result<i64, CalcError> {
        a.checked_div(b).ok_or(CalcError::DivisionByZero)
    }

    async fn hold(&self, ms: u64) -> u64 {
        self.probe.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = HoldGuard {
            probe: self.probe.clone(),
            done: false,
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        guard.done = true;
        ms
    }

    async fn gather(&self, n: u32) -> u32 {
        let now = self.probe.gathering.fetch_add(1, Ordering::SeqCst) + 1;
        self.probe.peak_gathering.fetch_max(now, Ordering::SeqCst);
        if let Some(barrier) = &self.barrier {
            barrier.wait().await;
        }
        self.probe.gathering.fetch_sub(1, Ordering::SeqCst);
        n
    }

    async fn boom(&self, message: String) -> u32 {
        panic!("{message}")
    }

    async fn whoami(&self) -> String {
        self.name.clone()
    }
}

/// A server builder on a free loopback port.
pub(crate) fn server() -> ServerBuilder {
    Server::builder().bind("127.0.0.1:0")
}

/// Starts a server hosting `lab` under the default group and version.
pub(crate) async fn start(lab: LabImpl) -> ServerHandle {
    spawn(server().add_service(LabServer::new(lab))).await
}

/// Builds and spawns `builder`; returns once its services are in its registry (at
/// once without one). Registration runs in the background: a client looking the
/// service up before then could see only some of the providers.
pub(crate) async fn spawn(builder: ServerBuilder) -> ServerHandle {
    let handle = builder.build().await.expect("server binds").spawn();
    tokio::time::timeout(TEST_LIMIT, handle.registered())
        .await
        .expect("the server registers in time");
    handle
}

/// A client builder for the fixed address `addr`.
pub(crate) fn direct(addr: impl ToString) -> ClientBuilder {
    Client::builder().direct([addr.to_string()])
}

/// A `Lab` client for `addr` with a 10 s timeout.
pub(crate) fn lab_client(addr: impl ToString) -> LabClient {
    LabClient::new(direct(addr).build().expect("client builds"))
        .with_timeout(Duration::from_secs(10))
}

/// A TCP relay in front of a server that counts the connections it accepted and the
/// bytes it carried each way: what a test needs to see "one connection" or
/// "compressed on the wire" without reaching into erpc.
pub(crate) struct Relay {
    addr: SocketAddr,
    stats: Arc<RelayStats>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct RelayStats {
    connections: AtomicUsize,
    upstream: AtomicU64,
    downstream: AtomicU64,
}

impl Relay {
    /// Starts relaying from a free port to `target`.
    pub(crate) async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let stats = Arc::new(RelayStats::default());
        let counters = stats.clone();
        let task = tokio::spawn(async move {
            // Dropping this set (when the relay is dropped) aborts every pipe.
            let mut pipes = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                counters.connections.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                let up = counters.clone();
                pipes.spawn(pipe(client_read, server_write, move |n| {
                    up.upstream.fetch_add(n, Ordering::SeqCst);
                }));
                let down = counters.clone();
                pipes.spawn(pipe(server_read, client_write, move |n| {
                    down.downstream.fetch_add(n, Ordering::SeqCst);
                }));
            }
        });
        Self { addr, stats, task }
    }

    /// Where clients should connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Bytes carried client → server so far.
    pub(crate) fn upstream(&self) -> u64 {
        self.stats.upstream.load(Ordering::SeqCst)
    }

    /// Bytes carried server → client so far.
    pub(crate) fn downstream(&self) -> u64 {
        self.stats.downstream.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: impl Fn(u64),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                count(n as u64);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// The key of the `Lab` service under its default group and version.
pub(crate) fn lab_key() -> erpc::ServiceKey {
    let descriptor = LabClient::descriptor();
    erpc::ServiceKey::new(
        descriptor.interface,
        descriptor.default_group,
        descriptor.default_version,
    )
}

/// MessagePack bytes of `value`.
pub(crate) fn msgpack<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = BytesMut::new();
    Serialization::MsgPack
        .encode(value, &mut out)
        .expect("test value encodes");
    out.to_vec()
}

/// An encoded request head.
pub(crate) fn head(key: &erpc::ServiceKey, method: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    RequestHead {
        deadline: Some(Duration::from_secs(5)),
        service: key.clone(),
        method: method.into(),
        metadata: Metadata::new(),
    }
    .encode(&mut out)
    .expect("head encodes");
    out.to_vec()
}

/// A msgpack request frame for `method` of `Lab` with argument tuple bytes `args`.
pub(crate) fn request(id: u64, method: &str, args: &[u8]) -> Bytes {
    let mut header = FrameHeader::new(MessageType::Request, id);
    header.serializer = Serialization::MsgPack.id();
    encode_frame(header, &head(&lab_key(), method), args)
}

/// A peer speaking erpc frames by hand over a raw socket.
pub(crate) struct RawPeer {
    stream: TcpStream,
    buf: BytesMut,
    codec: FrameCodec,
}

/// How a read from a [`RawPeer`] ended.
#[derive(Debug)]
pub(crate) enum Read {
    /// A decoded frame (or a rejected one).
    Inbound(Inbound),
    /// The server closed the connection (EOF or reset).
    Closed,
}

impl RawPeer {
    /// Connects to `addr`.
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("raw connect"),
            buf: BytesMut::new(),
            codec: FrameCodec::default(),
        }
    }

    /// Writes raw bytes.
    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
    }

    /// The next frame, or `Closed`; fails the test after 5 s of silence.
    pub(crate) async fn read(&mut self) -> Read {
        let read = async {
            loop {
                match self.codec.decode(&mut self.buf) {
                    Ok(Some(inbound)) => return Read::Inbound(inbound),
                    Ok(None) => {}
                    Err(e) => panic!("server sent an undecodable stream: {e}"),
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) => return Read::Closed,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        return Read::Closed
                    }
                    Err(e) => panic!("raw read failed: {e}"),
                }
            }
        };
        bounded(Duration::from_secs(5), read).await
    }

    /// The next well-formed frame; fails the test on anything else.
    pub(crate) async fn frame(&mut self) -> erpc::protocol::Frame {
        match self.read().await {
            Read::Inbound(Inbound::Frame(frame)) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Sends `frame` and returns the response (status, payload); fails the test when the
    /// answer is not a response to `id`.
    pub(crate) async fn call(&mut self, id: u64, frame: &[u8]) -> (erpc::protocol::Status, Bytes) {
        self.send(frame).await;
        self.response(id).await
    }

    /// Reads the response to `id`.
    pub(crate) async fn response(&mut self, id: u64) -> (erpc::protocol::Status, Bytes) {
        let frame = self.frame().await;
        assert_eq!(
            frame.header.message_type(),
            Some(MessageType::Response),
            "{frame:?}"
        );
        assert_eq!(frame.header.request_id, id, "{frame:?}");
        (
            erpc::protocol::Status::from_u8(frame.header.status),
            frame.payload,
        )
    }
}
