//! Graceful shutdown: the provider deregisters, says goaway, lets in-flight calls finish,
//! refuses calls still arriving, then stops; consumers send nothing more on a connection
//! that said goaway and fail over (or fail fast), never waiting for a timeout.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use erpc::protocol::{encode_frame, FrameCodec, FrameHeader, Inbound, MessageType, Status};
use erpc::registry::{MemoryRegistry, Registry};
use erpc::{Client, Error, Serialization};
use futures::StreamExt;
use support::{
    bounded, eventually, lab_client, lab_key, msgpack, request, server, spawn, start, LabClient,
    LabImpl, LabServer, Probe, RawPeer, Read, TEST_LIMIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Decoder;

/// Reads provider-list changes until `addr` is listed (`listed`) or gone (`!listed`).
async fn until_listed(changes: &mut erpc::registry::ChangeStream, addr: &str, listed: bool) {
    while changes
        .next()
        .await
        .expect("the subscription stays open")
        .all
        .iter()
        .any(|p| p.addr == addr)
        != listed
    {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deregisters_drains_in_flight_calls_and_turns_new_calls_away() {
    bounded(TEST_LIMIT, async {
        let registry = MemoryRegistry::new();
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let server = spawn(
            server()
                .add_service(LabServer::new(lab))
                .registry(registry.clone())
                .drain_timeout(Duration::from_secs(10)),
        )
        .await;
        let addr = server.local_addr().to_string();
        let mut changes = registry.subscribe(&lab_key()).await.unwrap();
        until_listed(&mut changes, &addr, true).await;

        let client = Client::builder()
            .registry(registry.clone())
            .build()
            .unwrap();
        let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));
        assert_eq!(lab.whoami().await.unwrap(), "lab");

        let slow = tokio::spawn({
            let lab = lab.clone();
            async move { lab.hold(1_500).await }
        });
        assert!(eventually(Duration::from_secs(2), || Probe::get(&probe.started) == 1).await);
        let shutdown = tokio::spawn(server.shutdown());

        // Deregistered first: the subscription sees the provider gone.
        until_listed(&mut changes, &addr, false).await;

        // The client keeps its last provider list when the registry pushes an empty one
        // (empty protection), so the provider is still listed and the call goes there:
        // on the old connection if its goaway has not arrived yet (refused unrun, status
        // 9), else on a new one (the draining server still accepts, and says goaway at
        // once). Both are the provider saying goaway, whenever the frame arrives; no
        // other provider exists, so that is the answer.
        // Draining starts right after deregistration; a call that lands in between is
        // still served (the provider is healthy), so call until the refusals begin.
        let deadline = Instant::now() + Duration::from_secs(2);
        let (refused, started) = loop {
            let started = Instant::now();
            match lab.whoami().await {
                Err(refused) => break (refused, started),
                Ok(_) if Instant::now() < deadline => tokio::task::yield_now().await,
                Ok(who) => panic!("a draining provider still ran new calls 2 s later: {who}"),
            }
        };
        assert!(
            matches!(&refused, Error::GoingAway { addr: a } if *a == addr),
            "{refused:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "a provider going away must fail calls fast, took {:?}",
            started.elapsed()
        );
        assert!(
            !shutdown.is_finished(),
            "shutdown must wait for the in-flight call"
        );

        assert_eq!(slow.await.unwrap().unwrap(), 1_500);
        shutdown.await.unwrap().unwrap();
        assert_eq!(Probe::get(&probe.completed), 1);
        assert_eq!(Probe::get(&probe.stopped), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_refuses_connections() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let addr = server.local_addr();
        let lab = lab_client(addr);
        assert_eq!(lab.whoami().await.unwrap(), "lab");
        server.shutdown().await.unwrap();
        let started = Instant::now();
        let error = lab.whoami().await.unwrap_err();
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    })
    .await;
}

/// The provider's side of the goaway rule, over a raw socket: goaway arrives, the call
/// already running is answered, a call sent afterwards is refused unrun with status 9
/// (so a caller may safely send it elsewhere), then the connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_server_answers_running_calls_and_refuses_new_ones() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let server = start(lab).await;
        let mut peer = RawPeer::connect(server.local_addr()).await;
        peer.send(&request(1, "hold", &msgpack(&(800u64,)))).await;
        assert!(eventually(Duration::from_secs(2), || Probe::get(&probe.started) == 1).await);

        let shutdown = tokio::spawn(server.shutdown());
        let goaway = peer.frame().await;
        assert_eq!(goaway.header.message_type(), Some(MessageType::GoAway));

        let (status, _) = peer.call(2, &request(2, "hold", &msgpack(&(1u64,)))).await;
        assert_eq!(status, Status::ShuttingDown);
        assert_eq!(
            Probe::get(&probe.started),
            1,
            "the refused call must not run"
        );

        let (status, payload) = peer.response(1).await;
        assert_eq!(status, Status::Ok);
        let slept: u64 = Serialization::MsgPack.decode(&payload).unwrap();
        assert_eq!(slept, 800);
        assert!(matches!(peer.read().await, Read::Closed));
        shutdown.await.unwrap().unwrap();
    })
    .await;
}

/// The consumer's side: a hand-written provider takes one call, says goaway, answers the
/// call after the goaway and keeps the connection open. A client that honours goaway
/// sends the next call nowhere near that connection (here: a refused reconnect, so a fast
/// `Connect` error), and still receives the answer to the call already sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_sends_nothing_more_on_a_connection_that_said_goaway() {
    bounded(TEST_LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let provider = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            drop(listener); // later connection attempts are refused
            let mut codec = FrameCodec::default();
            let mut buf = BytesMut::new();
            let mut requests = Vec::new();
            let mut answered = false;
            loop {
                while let Some(Inbound::Frame(frame)) = codec.decode(&mut buf).unwrap() {
                    if frame.header.message_type() == Some(MessageType::Request) {
                        requests.push(frame.header.request_id);
                    }
                }
                if !answered && !requests.is_empty() {
                    // Goaway first, then the answer on the same stream: once the client
                    // has the answer, its reader has seen the goaway.
                    let goaway = encode_frame(FrameHeader::new(MessageType::GoAway, 0), &[], &[]);
                    let mut header = FrameHeader::new(MessageType::Response, requests[0]);
                    header.serializer = Serialization::MsgPack.id();
                    let answer = encode_frame(header, &[], &msgpack(&"raw"));
                    stream.write_all(&goaway).await.unwrap();
                    stream.write_all(&answer).await.unwrap();
                    answered = true;
                }
                // Held open (not draining to a close) until the client lets go.
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            requests
        });

        let lab = lab_client(addr);
        assert_eq!(lab.whoami().await.unwrap(), "raw");

        let started = Instant::now();
        let second = lab.whoami().await.unwrap_err();
        assert!(
            matches!(&second, Error::Connect { addr: a, .. } if *a == addr.to_string()),
            "{second:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(300));
        drop(lab);
        let requests = provider.await.unwrap();
        assert_eq!(requests.len(), 1, "requests after goaway: {requests:?}");
    })
    .await;
}

/// A provider that shut down gracefully and came back on the same address (a rolling
/// restart behind a static list, or a registry that has not pushed the change yet) gets
/// calls again: its old goaway no longer steers the client away once that connection
/// has closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_restarted_on_its_address_after_goaway_gets_calls_again() {
    bounded(TEST_LIMIT, async {
        let a = start(LabImpl::new("a")).await;
        let b = start(LabImpl::new("b")).await;
        let a_addr = a.local_addr();
        // Round-robin and a short reconnect backoff: once `a` accepts again it is the
        // next-but-one pick (p2c may rightly keep preferring `b`, whose latency it knows).
        let client = Client::builder()
            .direct([a_addr.to_string(), b.local_addr().to_string()])
            .balancer(erpc::balance::RoundRobin::new())
            .reconnect_backoff(Duration::from_millis(100), Duration::from_secs(1))
            .build()
            .unwrap();
        let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            seen.insert(lab.whoami().await.unwrap());
        }
        assert_eq!(seen.len(), 2, "both providers serve: {seen:?}");

        a.shutdown().await.unwrap();
        for _ in 0..20 {
            assert_eq!(lab.whoami().await.unwrap(), "b");
        }
        let a = spawn(
            server()
                .bind(a_addr.to_string())
                .add_service(LabServer::new(LabImpl::new("a2"))),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut served_by_a2 = 0;
        while Instant::now() < deadline && served_by_a2 == 0 {
            if lab.whoami().await.unwrap() == "a2" {
                served_by_a2 += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(served_by_a2 > 0, "the restarted provider never got a call");
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    })
    .await;
}
