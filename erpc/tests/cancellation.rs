//! Deadlines and cancellation reach the provider: a call that times out, and a call
//! future the caller drops, both stop the running handler on the provider (its guard is
//! dropped without completing), and the shared connection keeps serving. A provider
//! answering "deadline exceeded" is a timeout to the caller, as `PROTOCOL.md` says, and
//! a provider that never answers is timed out by the client itself.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use erpc::protocol::{encode_frame, FrameCodec, FrameHeader, Inbound, MessageType, Status};
use erpc::Error;
use support::{bounded, eventually, lab_client, start, LabImpl, Probe, Relay, TEST_LIMIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

/// `error` is the timeout of a call made with `timeout`, which failed after `elapsed`:
/// not before its timeout, and before `limit`.
fn timed_out_on_time(error: &Error, elapsed: Duration, timeout: Duration, limit: Duration) {
    assert!(
        matches!(error, Error::Timeout { after, .. } if *after == timeout),
        "{error:?}"
    );
    assert!(
        elapsed >= timeout && elapsed < limit,
        "timed out after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_fails_on_time_and_stops_the_handler() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let server = start(lab).await;
        let client = lab_client(server.local_addr());

        let started = Instant::now();
        let error = client
            .clone()
            .with_timeout(Duration::from_millis(200))
            .hold(10_000)
            .await
            .unwrap_err();
        timed_out_on_time(
            &error,
            started.elapsed(),
            Duration::from_millis(200),
            Duration::from_millis(500),
        );
        assert_eq!(Probe::get(&probe.started), 1);
        assert!(
            eventually(Duration::from_secs(1), || Probe::get(&probe.stopped) == 1).await,
            "the handler was not stopped on the provider"
        );
        assert_eq!(Probe::get(&probe.completed), 0);

        // The connection is still good for the next call.
        assert_eq!(client.hold(1).await.unwrap(), 1);
        server.shutdown().await.unwrap();
    })
    .await;
}

/// The call's own timeout (and so the deadline the provider enforces) is 10 s: only the
/// cancel frame sent when the future is dropped can stop the handler within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_call_future_cancels_the_handler() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let server = start(lab).await;
        let relay = Relay::start(server.local_addr()).await;
        let client = lab_client(relay.addr());

        tokio::select! {
            result = client.hold(10_000) => panic!("the call finished: {result:?}"),
            () = async {
                // Drop the call only once the handler runs, so cancel reaches a live one.
                while Probe::get(&probe.started) == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            } => {}
        }
        assert!(
            eventually(Duration::from_secs(1), || Probe::get(&probe.stopped) == 1).await,
            "dropping the call did not stop the handler"
        );
        assert_eq!(Probe::get(&probe.completed), 0);

        // Cancelling one call neither breaks the connection nor the next call.
        assert_eq!(client.hold(1).await.unwrap(), 1);
        assert_eq!(relay.connections(), 1);
        server.shutdown().await.unwrap();
    })
    .await;
}

/// The provider's copy of the deadline can expire in the same timer tick as the caller's
/// (it did, intermittently, in the tests above). A hand-written provider that answers
/// every request with status 7 at once makes that race deterministic: the caller must
/// see `Error::Timeout`, not a generic remote error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_exceeded_answer_is_a_timeout() {
    bounded(TEST_LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::new();
            while stream.read_buf(&mut buf).await.unwrap() > 0 {
                while let Some(Inbound::Frame(frame)) = codec.decode(&mut buf).unwrap() {
                    if frame.header.message_type() == Some(MessageType::Request) {
                        let mut header =
                            FrameHeader::new(MessageType::Response, frame.header.request_id);
                        header.status = Status::DeadlineExceeded as u8;
                        let answer = encode_frame(header, &[], b"deadline passed");
                        stream.write_all(&answer).await.unwrap();
                    }
                }
            }
        });
        let lab = lab_client(addr).with_timeout(Duration::from_millis(700));
        let started = Instant::now();
        let error = lab.whoami().await.unwrap_err();
        assert!(
            matches!(&error, Error::Timeout { after, .. } if *after == Duration::from_millis(700)),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "answered, not timed out"
        );
        provider.abort();
    })
    .await;
}

/// A provider that reads requests and never answers: only the client's own deadline
/// ends the call. A shorter deadline sent after a longer one still fires first (the
/// connection's timer is armed earlier), and the provider is told to cancel both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_fire_on_the_client_when_the_provider_never_answers() {
    bounded(TEST_LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, mut frames) = tokio::sync::mpsc::unbounded_channel();
        let provider = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::new();
            while stream.read_buf(&mut buf).await.unwrap() > 0 {
                while let Some(Inbound::Frame(frame)) = codec.decode(&mut buf).unwrap() {
                    let _ = seen.send((frame.header.message_type(), frame.header.request_id));
                }
            }
        });
        let lab = lab_client(addr);
        let long = tokio::spawn({
            let lab = lab.clone().with_timeout(Duration::from_millis(1_500));
            async move {
                let started = Instant::now();
                (lab.whoami().await, started.elapsed())
            }
        });
        // The long call is on the wire (its deadline armed the timer) before the short one.
        let (kind, long_id) = frames.recv().await.unwrap();
        assert_eq!(kind, Some(MessageType::Request));

        let started = Instant::now();
        let error = lab
            .clone()
            .with_timeout(Duration::from_millis(200))
            .whoami()
            .await
            .unwrap_err();
        timed_out_on_time(
            &error,
            started.elapsed(),
            Duration::from_millis(200),
            Duration::from_secs(1),
        );
        let (result, elapsed) = long.await.unwrap();
        assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
        assert!(elapsed >= Duration::from_millis(1_500), "{elapsed:?}");

        let mut cancelled = Vec::new();
        while cancelled.len() < 2 {
            if let (Some(MessageType::Cancel), id) = frames.recv().await.unwrap() {
                cancelled.push(id);
            }
        }
        assert!(cancelled.contains(&long_id), "{cancelled:?}");
        provider.abort();
    })
    .await;
}
