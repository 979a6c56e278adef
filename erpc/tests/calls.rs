//! Calls through generated clients over real connections: every serializer with every
//! compression on both sides (checked on the wire), a thousand calls multiplexed on one
//! connection, application errors as values, handler panics, and the blocking client.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use erpc::{Compression, CompressionPolicy, Error, Serialization};
use support::{
    bounded, direct, lab_client, server, spawn, start, CalcError, LabBlockingClient, LabClient,
    LabImpl, LabServer, Payload, Probe, Relay, TEST_LIMIT,
};

const LARGE: usize = 200 * 1024;

fn policy(algorithm: Compression) -> CompressionPolicy {
    CompressionPolicy {
        algorithm,
        threshold: 0,
    }
}

fn expected(mut sent: Payload) -> Payload {
    sent.id += 1;
    sent.data.reverse();
    sent
}

/// A compressed 200 KiB periodic payload is a few KiB on the wire; an uncompressed one
/// is at least its size. Checking the relay's byte counts proves each side really
/// compressed (or not), not merely that values survived.
fn assert_wire(bytes: u64, compressed: bool, what: &str) {
    if compressed {
        assert!(
            bytes < 32 * 1024,
            "{what}: {bytes} bytes, expected compressed"
        );
    } else {
        assert!(bytes >= LARGE as u64, "{what}: {bytes} bytes, expected raw");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_serializer_and_compression_round_trips_both_ways() {
    bounded(Duration::from_secs(120), async {
        for server_side in Compression::ALL {
            let server = spawn(
                server()
                    .add_service(LabServer::new(LabImpl::new("lab")))
                    .compression(policy(server_side)),
            )
            .await;
            for client_side in Compression::ALL {
                for serialization in Serialization::ALL {
                    let case = format!(
                        "{serialization:?}, client {client_side:?}, server {server_side:?}"
                    );
                    let relay = Relay::start(server.local_addr()).await;
                    let client = direct(relay.addr())
                        .serialization(serialization)
                        .compression(policy(client_side))
                        .build()
                        .unwrap();
                    let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));

                    let small = Payload::with_data(16);
                    let got = lab.echo(small.clone()).await.unwrap();
                    assert_eq!(got, expected(small), "{case}");

                    let (up, down) = (relay.upstream(), relay.downstream());
                    let large = Payload::with_data(LARGE);
                    let got = lab.echo(large.clone()).await.unwrap();
                    assert_eq!(got, expected(large), "{case}");
                    assert_wire(
                        relay.upstream() - up,
                        client_side != Compression::None,
                        &format!("request, {case}"),
                    );
                    assert_wire(
                        relay.downstream() - down,
                        server_side != Compression::None,
                        &format!("response, {case}"),
                    );
                    assert_eq!(relay.connections(), 1, "{case}");
                }
            }
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_below_the_threshold_are_not_compressed() {
    bounded(TEST_LIMIT, async {
        let above = CompressionPolicy {
            algorithm: Compression::Zstd,
            threshold: 4 * LARGE,
        };
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("lab")))
                .compression(above),
        )
        .await;
        let relay = Relay::start(server.local_addr()).await;
        let lab = LabClient::new(direct(relay.addr()).compression(above).build().unwrap());
        let large = Payload::with_data(LARGE);
        assert_eq!(lab.echo(large.clone()).await.unwrap(), expected(large));
        assert_wire(relay.upstream(), false, "request");
        assert_wire(relay.downstream(), false, "response");
        server.shutdown().await.unwrap();
    })
    .await;
}

/// One client, one provider, 1,000 calls at once.
///
/// Every handler waits on a barrier of 1,000, so the test can only finish if all 1,000
/// calls are in flight at the same moment (the probe's peak confirms it); any
/// serialisation of calls would deadlock into the time bound instead. The connection
/// count comes from a relay between client and server: it sees every TCP connection the
/// client opens, so `1` proves they all shared one multiplexed connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_share_one_connection() {
    const CALLS: u32 = 1_000;
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab").with_barrier(CALLS as usize);
        let probe = lab.probe();
        let server = start(lab).await;
        let relay = Relay::start(server.local_addr()).await;
        let client = lab_client(relay.addr());
        let started = Instant::now();
        let calls = (0..CALLS).map(|n| {
            let client = client.clone();
            async move { client.gather(n).await }
        });
        let results = futures::future::join_all(calls).await;
        let elapsed = started.elapsed();
        for (n, result) in results.into_iter().enumerate() {
            assert_eq!(result.unwrap(), n as u32);
        }
        assert_eq!(Probe::get(&probe.peak_gathering), CALLS as usize);
        assert_eq!(relay.connections(), 1, "calls must share one connection");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_errors_travel_as_values() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        for serialization in Serialization::ALL {
            let client = direct(server.local_addr())
                .serialization(serialization)
                .build()
                .unwrap();
            let lab = LabClient::new(client);
            let result: Result<Result<i64, CalcError>, Error> = lab.divide(1, 0).await;
            assert!(
                matches!(result, Ok(Err(CalcError::DivisionByZero))),
                "{serialization:?}: {result:?}"
            );
            assert!(matches!(lab.divide(9, 3).await, Ok(Ok(3))));
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_with_its_message_and_the_server_keeps_serving() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let relay = Relay::start(server.local_addr()).await;
        let lab = lab_client(relay.addr());
        let started = Instant::now();
        let error = lab.boom("kaboom 42".into()).await.unwrap_err();
        assert!(
            matches!(&error, Error::HandlerPanicked(m) if m.contains("kaboom 42")),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a panic must answer at once"
        );
        assert_eq!(lab.divide(8, 2).await.unwrap(), Ok(4));
        assert_eq!(
            relay.connections(),
            1,
            "a panic must not cost the connection"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

/// The generated blocking client from a plain `#[test]` thread: no runtime of its own.
/// The server runs on a separate runtime; the body runs on a thread so that the test is
/// bounded even without tokio's timer.
#[test]
fn blocking_client_works_without_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start(LabImpl::new("lab")));
    let addr = server.local_addr();
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let blocking = erpc::BlockingClient::new(direct(addr)).unwrap();
        let lab = LabBlockingClient::new(blocking).with_timeout(Duration::from_secs(5));
        assert_eq!(lab.whoami().unwrap(), "lab");
        assert_eq!(lab.divide(1, 0).unwrap(), Err(CalcError::DivisionByZero));
        let large = Payload::with_data(LARGE);
        assert_eq!(lab.echo(large.clone()).unwrap(), expected(large));
        let error = lab
            .clone()
            .with_timeout(Duration::from_millis(100))
            .hold(5_000)
            .unwrap_err();
        assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
        done.send(()).unwrap();
    });
    result
        .recv_timeout(TEST_LIMIT)
        .expect("blocking calls finished in time (a panic shows above)");
    runtime.block_on(server.shutdown()).unwrap();
}
