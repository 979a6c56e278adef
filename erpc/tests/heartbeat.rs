//! Dead providers are detected without waiting for call timeouts: a peer that accepts
//! and reads but never answers (a frozen process) is found by the heartbeat, and a
//! provider whose connections close abruptly fails in-flight calls at once; after a
//! restart on the same port the client's next call reconnects by itself.

mod support;

use std::time::{Duration, Instant};

use erpc::Error;
use support::{
    bounded, direct, eventually, server, spawn, start, LabClient, LabImpl, LabServer, Probe,
    TEST_LIMIT,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Longest reconnect backoff of the restart test's client.
const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// Accepts connections and reads everything sent, never writing a byte: what a
/// SIGSTOPped provider looks like from the network (the kernel still accepts and acks).
async fn black_hole() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut readers = JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            readers.spawn(async move {
                let mut buf = vec![0u8; 4096];
                while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_provider_is_declared_dead_by_the_heartbeat() {
    bounded(TEST_LIMIT, async {
        let (addr, hole) = black_hole().await;
        let client = direct(addr)
            .heartbeat(Duration::from_millis(200), Duration::from_millis(300))
            .build()
            .unwrap();
        let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));
        let started = Instant::now();
        let error = lab.whoami().await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(&error, Error::ConnectionLost { reason, .. } if reason.contains("heartbeat")),
            "{error:?}"
        );
        // Interval 200 ms + timeout 300 ms; far below the 10 s call timeout.
        assert!(
            elapsed < Duration::from_secs(2),
            "detected after {elapsed:?}"
        );
        hole.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abrupt_close_fails_calls_at_once_and_a_restart_is_reconnected() {
    bounded(TEST_LIMIT, async {
        let first = LabImpl::new("first");
        let probe = first.probe();
        let provider = start(first).await;
        let addr = provider.local_addr();
        let client = direct(addr)
            .reconnect_backoff(Duration::from_millis(100), BACKOFF_MAX)
            .build()
            .unwrap();
        let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));
        assert_eq!(lab.whoami().await.unwrap(), "first");

        let in_flight = tokio::spawn({
            let lab = lab.clone();
            async move {
                let started = Instant::now();
                (lab.hold(10_000).await, started)
            }
        });
        assert!(eventually(Duration::from_secs(2), || Probe::get(&probe.started) == 1).await);
        provider.close_abruptly().await;
        let (result, started) = in_flight.await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            matches!(result, Err(Error::ConnectionLost { .. })),
            "{result:?}"
        );
        assert!(elapsed < Duration::from_secs(2), "failed after {elapsed:?}");
        assert!(eventually(Duration::from_secs(1), || Probe::get(&probe.stopped) == 1).await);

        // While the provider is down, calls fail fast instead of waiting for a timeout.
        let started = Instant::now();
        let down = lab.whoami().await.unwrap_err();
        assert!(matches!(down, Error::Connect { .. }), "{down:?}");
        assert!(started.elapsed() < Duration::from_secs(2));

        // Restart on the same port: the client reconnects once its backoff passes.
        let restarted = spawn(
            server()
                .bind(addr.to_string())
                .add_service(LabServer::new(LabImpl::new("second"))),
        )
        .await;
        // The very next call succeeds: with no other provider, it waits out the
        // reconnect backoff (at most BACKOFF_MAX) within its deadline instead of failing.
        let started = Instant::now();
        let answer = lab.whoami().await.expect("reconnected after the restart");
        assert_eq!(answer, "second");
        assert!(
            started.elapsed() < BACKOFF_MAX + Duration::from_secs(2),
            "reconnected after {:?}",
            started.elapsed()
        );
        restarted.shutdown().await.unwrap();
    })
    .await;
}
