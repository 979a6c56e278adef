//! Malformed input over a raw socket, per `PROTOCOL.md`: only a wrong magic closes a
//! connection (and only that one); every other bad frame is answered with an error
//! status for its request id and the same connection goes on serving valid requests.

mod support;

use bytes::{BufMut, BytesMut};
use erpc::protocol::{encode_frame, FrameHeader, MessageType, Status};
use erpc::{Serialization, ServerHandle};
use support::{
    bounded, head, lab_client, lab_key, msgpack, request, server, spawn, start, LabImpl, LabServer,
    Payload, RawPeer, Read, TEST_LIMIT,
};

/// A valid `whoami` on `peer` must still be answered: the connection survived.
async fn still_serves(peer: &mut RawPeer, id: u64) {
    let (status, payload) = peer.call(id, &request(id, "whoami", &msgpack(&()))).await;
    assert_eq!(status, Status::Ok);
    let name: String = Serialization::MsgPack.decode(&payload).unwrap();
    assert_eq!(name, "lab");
}

/// Sends `frame` (request id `id`) and expects `status`, then a valid call on the same
/// connection.
async fn rejected_then_serves(server: &ServerHandle, id: u64, frame: &[u8], status: Status) {
    let mut peer = RawPeer::connect(server.local_addr()).await;
    let (got, message) = peer.call(id, frame).await;
    assert_eq!(
        got,
        status,
        "message: {}",
        String::from_utf8_lossy(&message)
    );
    assert!(!message.is_empty(), "error responses carry a message");
    still_serves(&mut peer, id + 1).await;
}

fn frame_with(id: u64, serializer: u8, compression: u8, head: &[u8], payload: &[u8]) -> BytesMut {
    let mut header = FrameHeader::new(MessageType::Request, id);
    header.serializer = serializer;
    header.compression = compression;
    BytesMut::from(&encode_frame(header, head, payload)[..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_magic_closes_that_connection_only() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let mut bad = RawPeer::connect(server.local_addr()).await;
        let mut good = RawPeer::connect(server.local_addr()).await;
        still_serves(&mut good, 1).await;

        let mut frame = BytesMut::from(&request(1, "whoami", &msgpack(&()))[..]);
        frame[..4].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        bad.send(&frame).await;
        assert!(matches!(bad.read().await, Read::Closed));

        still_serves(&mut good, 2).await;
        assert_eq!(
            lab_client(server.local_addr()).whoami().await.unwrap(),
            "lab"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_answered_and_skipped_unread() {
    bounded(TEST_LIMIT, async {
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("lab")))
                .max_frame_bytes(1024),
        )
        .await;
        let big = request(7, "echo", &msgpack(&(Payload::with_data(4096),)));
        assert!(big.len() > 4096);
        rejected_then_serves(&server, 7, &big, Status::FrameTooLarge).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_length_beyond_the_body_is_a_bad_request() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let mut header = FrameHeader::new(MessageType::Request, 3);
        header.serializer = Serialization::MsgPack.id();
        header.head_len = 10;
        header.body_len = 2;
        let mut frame = BytesMut::new();
        header.write_to(&mut frame);
        frame.put_slice(&[0, 0]);
        rejected_then_serves(&server, 3, &frame, Status::BadRequest).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_protocol_version_is_a_bad_request() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let mut frame = BytesMut::from(&request(4, "whoami", &msgpack(&()))[..]);
        frame[4] = 9;
        rejected_then_serves(&server, 4, &frame, Status::BadRequest).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_request_head_is_a_bad_request() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let garbage = [0u8, 0, 0, 1, 0xFF, 0xFF, 1, 2, 3];
        let frame = frame_with(5, 1, 0, &garbage, &msgpack(&()));
        rejected_then_serves(&server, 5, &frame, Status::BadRequest).await;
        // A head with valid fields but stray trailing bytes is refused too.
        let mut trailing = head(&lab_key(), "whoami");
        trailing.push(0);
        let frame = frame_with(15, 1, 0, &trailing, &msgpack(&()));
        rejected_then_serves(&server, 15, &frame, Status::BadRequest).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_serializer_or_compression_ids_are_bad_requests() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let whoami = head(&lab_key(), "whoami");
        let args = msgpack(&());
        let frame = frame_with(20, 9, 0, &whoami, &args);
        rejected_then_serves(&server, 20, &frame, Status::BadRequest).await;
        let frame = frame_with(30, 1, 7, &whoami, &args);
        rejected_then_serves(&server, 30, &frame, Status::BadRequest).await;
        // A known compression id whose payload does not inflate.
        let frame = frame_with(40, 1, 1, &whoami, b"not gzip at all");
        rejected_then_serves(&server, 40, &frame, Status::BadRequest).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_arguments_are_a_bad_request() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        // 0xC1 is never used in MessagePack.
        let frame = request(50, "divide", &[0xC1]);
        rejected_then_serves(&server, 50, &frame, Status::BadRequest).await;
        // Well-formed MessagePack of the wrong shape.
        let frame = request(60, "divide", &msgpack(&("one", "two")));
        rejected_then_serves(&server, 60, &frame, Status::BadRequest).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_services_and_methods_are_named_in_the_status() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let mut elsewhere = lab_key();
        elsewhere.group = "nowhere".into();
        let frame = frame_with(70, 1, 0, &head(&elsewhere, "whoami"), &msgpack(&()));
        rejected_then_serves(&server, 70, &frame, Status::ServiceNotFound).await;
        let frame = request(80, "no_such_method", &msgpack(&()));
        rejected_then_serves(&server, 80, &frame, Status::MethodNotFound).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_answered_with_pong_of_the_same_id() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let mut peer = RawPeer::connect(server.local_addr()).await;
        peer.send(&encode_frame(
            FrameHeader::new(MessageType::Ping, 77),
            &[],
            &[],
        ))
        .await;
        let pong = peer.frame().await;
        assert_eq!(pong.header.message_type(), Some(MessageType::Pong));
        assert_eq!(pong.header.request_id, 77);
        assert!(pong.payload.is_empty());
        still_serves(&mut peer, 78).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

/// A request head with these names as bytes (interface, group, version, method), no
/// deadline and no metadata.
fn head_of(names: [&[u8]; 4]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u32(0);
    for name in names {
        out.put_u16(name.len() as u16);
        out.put_slice(name);
    }
    out.put_u16(0);
    out.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_routed_as_sent_and_a_name_that_is_not_utf8_is_a_bad_request() {
    bounded(TEST_LIMIT, async {
        let server = start(LabImpl::new("lab")).await;
        let key = lab_key();
        let hosted: [&[u8]; 4] = [
            key.interface.as_bytes(),
            key.group.as_bytes(),
            key.version.as_bytes(),
            b"whoami",
        ];
        let mut peer = RawPeer::connect(server.local_addr()).await;
        // The hosted names, written by hand: routed.
        let frame = frame_with(90, 1, 0, &head_of(hosted), &msgpack(&()));
        let (status, _) = peer.call(90, &frame).await;
        assert_eq!(status, Status::Ok);
        // Each name in turn not UTF-8 (a lone continuation byte appended): a bad
        // request naming that field, and the connection goes on.
        let fields = ["interface", "group", "version", "method"];
        for (at, field) in fields.into_iter().enumerate() {
            let mut broken = hosted.map(<[u8]>::to_vec);
            broken[at].push(0x80);
            let names = [0, 1, 2, 3].map(|i| broken[i].as_slice());
            let id = 100 + at as u64 * 2;
            let frame = frame_with(id, 1, 0, &head_of(names), &msgpack(&()));
            let (status, message) = peer.call(id, &frame).await;
            let message = String::from_utf8_lossy(&message);
            assert_eq!(status, Status::BadRequest, "{field}: {message}");
            assert!(
                message.contains(&format!("{field} is not UTF-8")),
                "{message}"
            );
            still_serves(&mut peer, id + 1).await;
        }
        // A name that only begins like a hosted one routes nowhere.
        let longer = [&b"whoami2"[..], b"whoam"];
        for (i, method) in longer.into_iter().enumerate() {
            let names = [hosted[0], hosted[1], hosted[2], method];
            let id = 120 + i as u64;
            let frame = frame_with(id, 1, 0, &head_of(names), &msgpack(&()));
            assert_eq!(peer.call(id, &frame).await.0, Status::MethodNotFound);
        }
        let names = [hosted[0], hosted[1], b"1.0.0", hosted[3]];
        let frame = frame_with(130, 1, 0, &head_of(names), &msgpack(&()));
        assert_eq!(peer.call(130, &frame).await.0, Status::ServiceNotFound);
        server.shutdown().await.unwrap();
    })
    .await;
}
