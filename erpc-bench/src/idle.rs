//! Idle connections: how much a provider pays for each connected, quiet consumer.
//!
//! Opens many TCP connections to one erpc server process; each completes one erpc
//! ping/pong (so the server has accepted it and runs its reader and writer), then stays
//! idle while the server's resident memory and open descriptors are read.

use std::time::Duration;

use erpc::protocol::{encode_frame, FrameHeader, MessageType, HEADER_LEN};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats;
use crate::{ServerKind, ServerProcess};

/// Connections opened at once.
const CONNECT_PARALLELISM: usize = 256;

/// What the idle test measured.
pub(crate) struct IdleResult {
    pub(crate) conns: usize,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) fds_before: usize,
    pub(crate) fds_after: usize,
    pub(crate) seconds_to_open: f64,
}

impl IdleResult {
    /// Server RSS growth per connection, in KiB.
    pub(crate) fn kib_per_conn(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 / self.conns.max(1) as f64
    }
}

/// Opens one connection and completes one ping/pong on it.
async fn open(addr: String, id: u64) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let ping = encode_frame(FrameHeader::new(MessageType::Ping, id), &[], &[]);
    stream.write_all(&ping).await.map_err(|e| e.to_string())?;
    let mut pong = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut pong)
        .await
        .map_err(|e| format!("reading pong: {e}"))?;
    match FrameHeader::read_from(&pong) {
        Some((_, header))
            if header.message_type() == Some(MessageType::Pong) && header.request_id == id =>
        {
            Ok(stream)
        }
        other => Err(format!("expected pong {id}, got {other:?}")),
    }
}

/// Runs the idle test with `conns` connections.
pub(crate) async fn run(conns: usize) -> Result<IdleResult, String> {
    let limit = stats::raise_nofile_limit();
    if (limit as usize) < conns + 64 {
        eprintln!("open-file limit {limit} is below {conns} connections; expect failures");
    }
    let server = ServerProcess::start(ServerKind::Erpc)?;
    let pid = server.pid();
    // One connection first: the runtime's lazily built structures are not per-connection.
    let warm = open(server.addr().to_string(), 0).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before_kib = stats::status_kib(pid, "VmRSS");
    let fds_before = stats::open_fds(pid);
    let start = std::time::Instant::now();
    let addr = server.addr().to_string();
    let results: Vec<Result<TcpStream, String>> = futures::stream::iter(1..=conns as u64)
        .map(|id| open(addr.clone(), id))
        .buffer_unordered(CONNECT_PARALLELISM)
        .collect()
        .await;
    let seconds_to_open = start.elapsed().as_secs_f64();
    let mut streams = Vec::with_capacity(conns);
    for result in results {
        streams.push(result?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = IdleResult {
        conns,
        rss_before_kib,
        rss_after_kib: stats::status_kib(pid, "VmRSS"),
        fds_before,
        fds_after: stats::open_fds(pid),
        seconds_to_open,
    };
    drop(streams);
    drop(warm);
    Ok(result)
}
