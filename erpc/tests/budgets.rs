//! What one connection may make the provider hold, over raw sockets per `PROTOCOL.md`:
//! duplicate request ids, a peer that never reads its answers, and request bodies over
//! the server's memory budget.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use erpc::protocol::{encode_frame, FrameHeader, MessageType, Status};
use erpc::{Compression, Serialization};
use support::{
    bounded, eventually, head, lab_client, msgpack, request, server, spawn, LabImpl, LabServer,
    Payload, Probe, RawPeer, TEST_LIMIT,
};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_already_in_flight_is_refused_and_the_first_call_runs_once() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let server = spawn(server().add_service(LabServer::new(lab))).await;
        let mut peer = RawPeer::connect(server.local_addr()).await;
        let hold = request(5, "hold", &msgpack(&(300u64,)));
        peer.send(&hold).await;
        peer.send(&hold).await;
        let (status, message) = peer.response(5).await;
        assert_eq!(status, Status::BadRequest, "the duplicate is refused first");
        assert!(
            String::from_utf8_lossy(&message).contains("already in flight"),
            "{message:?}"
        );
        let (status, payload) = peer.response(5).await;
        assert_eq!(status, Status::Ok);
        assert_eq!(Serialization::MsgPack.decode::<u64>(&payload).unwrap(), 300);
        assert_eq!(Probe::get(&probe.started), 1, "the handler ran once");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off_and_others_keep_the_servers_limits() {
    bounded(TEST_LIMIT, async {
        const LIMIT: usize = 8;
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("lab")))
                .max_concurrency(LIMIT)
                .max_in_flight_per_connection(LIMIT / 2)
                .connection_memory_bytes(1 << 20)
                .write_timeout(Duration::from_secs(1)),
        )
        .await;
        // More 32 KiB answers than a frame-counted queue (4,096) plus the concurrency
        // limit can hold: before byte budgets, handlers then kept every permit while
        // waiting to queue their answers, and everyone else was refused.
        let echo = request(0, "echo", &msgpack(&(Payload::with_data(32 * 1024),)));
        let mut attacker = tokio::net::TcpStream::connect(server.local_addr())
            .await
            .unwrap();
        let flood = tokio::spawn(async move {
            let started = Instant::now();
            for id in 1..=4_096 + 2 * LIMIT as u64 {
                let mut frame = BytesMut::from(&echo[..]);
                frame[12..20].copy_from_slice(&id.to_be_bytes());
                attacker.write_all(&frame).await?;
            }
            // Everything is sent: keep the socket open, still without reading.
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                attacker
                    .write_all(&erpc::protocol::encode_frame(
                        FrameHeader::new(MessageType::Ping, 0),
                        &[],
                        &[],
                    ))
                    .await?;
                if started.elapsed() > Duration::from_secs(20) {
                    return Ok::<_, std::io::Error>(started.elapsed());
                }
            }
        });
        let good = lab_client(server.local_addr()).with_timeout(Duration::from_secs(2));
        for i in 0..100 {
            let answer = good.whoami().await;
            assert!(
                answer.is_ok(),
                "call {i} of a well-behaved client failed: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The server stops reading the attacker, then its write timeout closes the
        // socket: the attacker's writes fail long before its 20 s of trying are over.
        let ended = flood.await.unwrap();
        assert!(
            ended.is_err(),
            "the non-reading connection was never closed ({ended:?})"
        );
        assert_eq!(good.whoami().await.unwrap(), "lab");
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Holds its argument for a while: what keeps request bytes in use.
#[erpc::service]
trait Sink {
    /// Keeps `data` for `ms` milliseconds, then returns its length.
    async fn keep(&self, data: Vec<u8>, ms: u64) -> usize;
}

#[derive(Default)]
struct Keeper {
    runs: AtomicUsize,
}

impl Sink for Arc<Keeper> {
    async fn keep(&self, data: Vec<u8>, ms: u64) -> usize {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        data.len()
    }
}

fn keep_frame(id: u64, len: usize, ms: u64, compression: Compression) -> Bytes {
    let args = msgpack(&(vec![0u8; len], ms));
    let mut header = FrameHeader::new(MessageType::Request, id);
    header.serializer = Serialization::MsgPack.id();
    header.compression = compression.id();
    let descriptor = SinkClient::descriptor();
    let key = erpc::ServiceKey::new(descriptor.interface, "", descriptor.default_version);
    let payload = match compression {
        Compression::None => args,
        other => other.compress(&args).unwrap(),
    };
    encode_frame(header, &head(&key, "keep"), &payload)
}

/// The first bytes of a response payload, for assertion messages.
fn start_of(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(120)]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_the_memory_budget_are_refused_before_they_run() {
    bounded(TEST_LIMIT, async {
        let keeper = Arc::new(Keeper::default());
        let server = spawn(
            server()
                .add_service(SinkServer::new(keeper.clone()))
                .memory_budget_bytes(1 << 20),
        )
        .await;
        let mut holder = RawPeer::connect(server.local_addr()).await;
        holder
            .send(&keep_frame(1, 600 * 1024, 3_000, Compression::None))
            .await;
        let held = || keeper.runs.load(Ordering::SeqCst) == 1;
        assert!(eventually(TEST_LIMIT, held).await, "the holder's call runs");
        let mut peer = RawPeer::connect(server.local_addr()).await;
        // 600 KiB are held; another 600 KiB do not fit in 1 MiB. Plain: refused from
        // its header on. Compressed: a few hundred bytes on the wire, refused once
        // inflated, before the handler decodes it.
        let started = Instant::now();
        let (status, message) = peer
            .call(2, &keep_frame(2, 600 * 1024, 0, Compression::None))
            .await;
        assert_eq!(status, Status::Overloaded, "{}", start_of(&message));
        let bomb = keep_frame(3, 600 * 1024, 0, Compression::Zstd);
        assert!(bomb.len() < 4 * 1024, "{} bytes", bomb.len());
        let (status, message) = peer.call(3, &bomb).await;
        assert_eq!(status, Status::Overloaded, "{}", start_of(&message));
        assert!(
            start_of(&message).contains("memory budget"),
            "{}",
            start_of(&message)
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "refused at once, not after the holder finished"
        );
        assert_eq!(
            keeper.runs.load(Ordering::SeqCst),
            1,
            "refused bodies never ran"
        );
        let (status, _) = holder.response(1).await;
        assert_eq!(status, Status::Ok);
        // The budget was given back: the same request now runs.
        let (status, message) = peer
            .call(4, &keep_frame(4, 600 * 1024, 0, Compression::Zstd))
            .await;
        assert_eq!(status, Status::Ok, "{}", start_of(&message));
        server.shutdown().await.unwrap();
    })
    .await;
}
