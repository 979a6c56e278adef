//! Decodes (and re-encodes) the byte-level test vectors in PROTOCOL.md, so the document
//! and the codec cannot drift apart.

use std::time::Duration;

use bytes::BytesMut;
use erpc_core::protocol::{
    encode_frame, Frame, FrameCodec, FrameHeader, Inbound, MessageType, RequestHead, Status,
};
use erpc_core::{Metadata, Serialization, ServiceKey};
use tokio_util::codec::Decoder;

const SPEC: &str = include_str!("../../PROTOCOL.md");

/// The bytes of the vector headed `### {name}`.
fn vector(name: &str) -> Vec<u8> {
    let heading = format!("### {name}\n");
    let start = SPEC
        .find(&heading)
        .unwrap_or_else(|| panic!("vector {name} missing"));
    let rest = &SPEC[start..];
    let block = rest.find("```hex\n").expect("hex block") + "```hex\n".len();
    let end = rest[block..].find("```").expect("end of hex block");
    let hex: String = rest[block..block + end].split_whitespace().collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn decode_one(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let item = FrameCodec::default().decode(&mut buf).expect("decodes");
    assert!(buf.is_empty(), "vector has trailing bytes");
    match item {
        Some(Inbound::Frame(frame)) => frame,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn control_frames() {
    for (name, kind, id) in [
        ("V1 ping", MessageType::Ping, 0),
        ("V5 cancel", MessageType::Cancel, 1),
        ("V6 goaway", MessageType::GoAway, 0),
    ] {
        let frame = decode_one(&vector(name));
        assert_eq!(frame.header.message_type(), Some(kind), "{name}");
        assert_eq!(frame.header.request_id, id, "{name}");
        assert!(frame.head.is_empty() && frame.payload.is_empty(), "{name}");
        assert_eq!(
            &encode_frame(FrameHeader::new(kind, id), &[], &[])[..],
            &vector(name)[..]
        );
    }
}

#[test]
fn request_vector_decodes_and_reencodes_identically() {
    let bytes = vector("V2 request");
    let frame = decode_one(&bytes);
    assert_eq!(frame.header.message_type(), Some(MessageType::Request));
    assert_eq!(frame.header.serializer, Serialization::MsgPack.id());
    assert_eq!(frame.header.request_id, 1);
    let head = RequestHead::decode(&frame.head).expect("head decodes");
    assert_eq!(
        head.service,
        ServiceKey::new("demo_api::Calculator", "", "1.0")
    );
    assert_eq!(head.method, "add");
    assert_eq!(head.deadline, Some(Duration::from_millis(3000)));
    assert_eq!(head.metadata.get("trace-id"), Some("t1"));
    let args: (i64, i64) = Serialization::MsgPack
        .decode(&frame.payload)
        .expect("args decode");
    assert_eq!(args, (1, 2));

    let mut metadata = Metadata::new();
    metadata.insert("trace-id", "t1");
    let rebuilt = RequestHead {
        deadline: Some(Duration::from_millis(3000)),
        service: ServiceKey::new("demo_api::Calculator", "", "1.0"),
        method: "add".into(),
        metadata,
    };
    let mut head_bytes = BytesMut::new();
    rebuilt.encode(&mut head_bytes).unwrap();
    let mut payload = BytesMut::new();
    Serialization::MsgPack
        .encode(&(1i64, 2i64), &mut payload)
        .unwrap();
    let mut header = FrameHeader::new(MessageType::Request, 1);
    header.serializer = Serialization::MsgPack.id();
    assert_eq!(&encode_frame(header, &head_bytes, &payload)[..], &bytes[..]);
}

#[test]
fn response_vectors() {
    let ok = decode_one(&vector("V3 response"));
    assert_eq!(Status::from_u8(ok.header.status), Status::Ok);
    let value: i64 = Serialization::MsgPack.decode(&ok.payload).unwrap();
    assert_eq!(value, 3);

    let err = decode_one(&vector("V4 error response"));
    assert_eq!(Status::from_u8(err.header.status), Status::MethodNotFound);
    assert_eq!(err.header.request_id, 2);
    assert_eq!(&err.payload[..], b"no such method");
}
