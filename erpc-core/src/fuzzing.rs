//! Fuzz targets for everything that decodes a peer's bytes, shared by the cargo-fuzz
//! binaries in `fuzz/` and the proptests in `erpc-core/tests/fuzz_props.rs`.
//!
//! Built only with the `fuzzing` feature and not part of the supported API. Each target
//! takes arbitrary bytes, decodes them the way a provider or a consumer decodes what
//! arrives on a socket, and panics when an invariant breaks; the decoders themselves
//! must never panic. The layout of each target's input is in its doc comment, so a
//! crashing input can be read by hand.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio_util::codec::Decoder;

use crate::compress::{Compression, CompressionPolicy};
use crate::message::{decode_request, decode_response, open_payload, OutboundRequest};
use crate::protocol::{
    encode_frame, CodecError, Frame, FrameCodec, FrameHeader, Inbound, Metadata, RequestHead,
    RequestHeadRef, Status, DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, VERSION,
};
use crate::serialize::Serialization;
use crate::service::{Request, ServiceKey};
use crate::Error;

/// Body limits a target picks from with its first input byte (`byte % 8`); the small
/// ones reach the oversized-frame and inflate-limit paths with small inputs.
pub const LIMITS: [u32; 8] = [0, 1, 16, 64, 512, 4096, 65536, DEFAULT_MAX_FRAME];

/// Target `frame_stream`: `[limit, split, stream...]`.
///
/// `LIMITS[limit % 8]` is the codec's body limit; `split` seeds how `stream` is cut
/// into reads. Checks that the codec never panics; fails only on bad magic, where a
/// plain reading of PROTOCOL.md does; yields the same items however the stream is
/// split; consumes oversized and malformed frames whole; never holds an oversized body
/// nor more than one frame within the limit; and that every frame it yields re-encodes
/// to exactly the bytes it came from.
pub fn frame_stream(data: &[u8]) {
    let [limit, split, stream @ ..] = data else {
        return;
    };
    let max_body = LIMITS[usize::from(limit % 8)];
    let ceiling = HEADER_LEN + max_body as usize;
    let expected = reference_decode(stream, max_body);
    let mut codec = FrameCodec::new(max_body);
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut failure = None;
    let mut fed = 0;
    'feed: for chunk in Chunks::new(stream, *split) {
        buf.extend_from_slice(chunk);
        fed += chunk.len();
        loop {
            let capacity = buf.capacity();
            match codec.decode(&mut buf) {
                Ok(Some(item)) => got.push(item),
                Ok(None) => {
                    assert!(
                        buf.len() < ceiling,
                        "codec holds {} bytes without yielding, limit {max_body}",
                        buf.len()
                    );
                    // Room is reserved for at most one frame within the limit (the
                    // buffer itself may double, as `Vec` does).
                    let bound = 2 * capacity.max(ceiling).max(fed);
                    assert!(
                        buf.capacity() <= bound,
                        "codec reserved {} bytes, limit {max_body}, {fed} fed",
                        buf.capacity()
                    );
                    break;
                }
                Err(e) => {
                    failure = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(got.len(), expected.items.len(), "items: {got:?}");
    for (item, want) in got.iter().zip(&expected.items) {
        match (item, want) {
            (Inbound::Frame(frame), Expect::Frame(range)) => {
                let bytes = &stream[range.clone()];
                let encoded = encode_frame(frame.header, &frame.head, &frame.payload);
                assert_eq!(&encoded[..], bytes, "frame does not re-encode to its bytes");
                let again = FrameCodec::new(max_body).decode(&mut BytesMut::from(bytes));
                assert!(matches!(again, Ok(Some(Inbound::Frame(f))) if f == *frame));
            }
            (Inbound::Oversized(header), Expect::Oversized(want)) => assert_eq!(header, want),
            (Inbound::Malformed { header, reason }, Expect::Malformed(want)) => {
                assert_eq!(header, want);
                assert!(!reason.is_empty());
            }
            (item, want) => panic!("codec yielded {item:?}, expected {want:?}"),
        }
    }
    match (failure, expected.bad_magic) {
        (Some(CodecError::BadMagic(magic)), Some(want)) => assert_eq!(magic, want),
        (None, None) => assert_eq!(buf.len(), expected.held, "bytes held back at the end"),
        (failure, want) => panic!("codec failed with {failure:?}, expected bad magic {want:?}"),
    }
}

/// What the reference reading of a stream expects the codec to yield.
#[derive(Debug)]
enum Expect {
    Frame(Range<usize>),
    Oversized(FrameHeader),
    Malformed(FrameHeader),
}

#[derive(Debug, Default)]
struct Reference {
    items: Vec<Expect>,
    bad_magic: Option<u32>,
    /// Bytes of an incomplete last frame the codec must still hold.
    held: usize,
}

/// PROTOCOL.md's framing rules, written out plainly over a whole stream.
fn reference_decode(stream: &[u8], max_body: u32) -> Reference {
    let mut out = Reference::default();
    let mut at = 0;
    loop {
        let rest = &stream[at..];
        let Some((magic, header)) = FrameHeader::read_from(rest) else {
            out.held = rest.len();
            return out;
        };
        if magic != MAGIC {
            out.bad_magic = Some(magic);
            return out;
        }
        let body = header.body_len as usize;
        let present = rest.len() - HEADER_LEN;
        if header.body_len > max_body {
            out.items.push(Expect::Oversized(header));
            if body >= present {
                return out;
            }
            at += HEADER_LEN + body;
            continue;
        }
        if present < body {
            out.held = rest.len();
            return out;
        }
        let sound = header.version == VERSION
            && (1..=6).contains(&header.kind)
            && u32::from(header.head_len) <= header.body_len;
        out.items.push(if sound {
            Expect::Frame(at..at + HEADER_LEN + body)
        } else {
            Expect::Malformed(header)
        });
        at += HEADER_LEN + body;
    }
}

/// Cuts a stream into reads whose sizes follow a small generator seeded by one byte.
struct Chunks<'a> {
    rest: &'a [u8],
    state: u32,
    max: usize,
}

impl<'a> Chunks<'a> {
    fn new(stream: &'a [u8], seed: u8) -> Self {
        const MAX: [usize; 8] = [1, 2, 5, 23, 24, 25, 100, usize::MAX];
        Self {
            rest: stream,
            state: u32::from(seed).wrapping_mul(0x9E37_79B9) | 1,
            max: MAX[usize::from(seed % 8)],
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let len = if self.max == usize::MAX {
            self.rest.len()
        } else {
            1 + self.state as usize % self.max
        };
        let (chunk, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        Some(chunk)
    }
}

/// Target `request_head`: the input is a request head section.
///
/// Checks that the borrowed and owned decoders agree, and that an accepted head
/// re-encodes to exactly its input (the encoding is canonical).
pub fn request_head(data: &[u8]) {
    match (RequestHeadRef::decode(data), RequestHead::decode(data)) {
        (Ok(borrowed), Ok(owned)) => {
            assert_eq!(borrowed.clone().into_owned(), owned);
            let mut encoded = BytesMut::new();
            owned
                .encode(&mut encoded)
                .expect("a decoded head re-encodes");
            assert_eq!(&encoded[..], data, "head does not re-encode to its bytes");
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            assert!(!a.is_empty());
        }
        (a, b) => panic!("borrowed decode gave {a:?}, owned {b:?}"),
    }
}

/// Target `request`: `[config, stream...]`, the bytes a provider reads.
///
/// `LIMITS[config % 8]` is the provider's frame and inflate limit, `(config >> 3) % 3`
/// picks the reply compression and bit 6 drops its threshold to 0. Every frame in
/// `stream` goes through the provider's request decoding. Checks that refusals are
/// `BadRequest` with a reason; an accepted request matches its head, never inflates
/// past the limit, and its arguments, when they decode as one of the probe types,
/// survive a reply round trip and a request re-encode under the same serializer and
/// compression.
pub fn request(data: &[u8]) {
    let [config, stream @ ..] = data else {
        return;
    };
    let max = LIMITS[usize::from(config % 8)];
    let reply = CompressionPolicy {
        algorithm: Compression::ALL[usize::from(config >> 3) % 3],
        threshold: if config & 0x40 == 0 { 64 } else { 0 },
    };
    for frame in frames(stream, max) {
        check_request(&frame, reply, max as usize);
    }
}

fn check_request(frame: &Frame, reply: CompressionPolicy, max: usize) {
    let inbound = match decode_request(frame, reply, max) {
        Ok(inbound) => inbound,
        Err((status, reason)) => {
            assert_eq!(status, Status::BadRequest, "{reason}");
            assert!(!reason.is_empty());
            return;
        }
    };
    let mut head = RequestHeadRef::decode(&frame.head).expect("decode_request accepted it");
    let metadata = std::mem::take(&mut head.metadata);
    assert_eq!(inbound.head, head);
    let request = inbound.request;
    assert_eq!(request.metadata, metadata);
    assert_eq!(request.request_id, frame.header.request_id);
    assert_eq!(request.serialization.id(), frame.header.serializer);
    if frame.header.compression == Compression::None.id() {
        assert_eq!(request.payload, frame.payload);
    } else {
        assert!(request.payload.len() <= max, "inflated past {max} bytes");
    }
    let compression = Compression::from_id(frame.header.compression).expect("decoded");
    let resend = Resend {
        head: &head,
        metadata: &metadata,
        compression,
        id: frame.header.request_id,
    };
    probe_request::<serde_json::Value>(&request, &resend);
    probe_request::<Probe>(&request, &resend);
    probe_request::<(i64, i64)>(&request, &resend);
    probe_request::<(String, Vec<u8>)>(&request, &resend);
}

/// What is needed to send a decoded request again.
struct Resend<'a> {
    head: &'a RequestHeadRef<'a>,
    metadata: &'a Metadata,
    compression: Compression,
    id: u64,
}

fn probe_request<T>(request: &Request, resend: &Resend<'_>)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(args) = request.args::<T>() else {
        return;
    };
    let head = resend.head;
    let key = ServiceKey::new(head.interface, head.group, head.version);
    // The reply carries the arguments back under the caller's serializer.
    if let Ok(reply) = request.reply(&args) {
        let back = frames(&reply.0, u32::MAX);
        assert_eq!(back.len(), 1, "a reply is one frame");
        let echoed: T = decode_response(&back[0], &key, head.method, "fuzz", usize::MAX)
            .expect("a reply decodes");
        assert_eq!(echoed, args, "reply round trip");
    }
    // The same call sent again decodes to the same arguments.
    let out = OutboundRequest {
        key: &key,
        method: head.method,
        names: None,
        timeout: head.deadline.unwrap_or(Duration::from_secs(1)),
        metadata: resend.metadata,
        serialization: request.serialization,
        compression: CompressionPolicy {
            algorithm: resend.compression,
            threshold: 0,
        },
        max_frame: u32::MAX,
    };
    let Ok(encoded) = out.encode(&args) else {
        return;
    };
    let sent = encoded.with_id(resend.id);
    let again = frames(&sent.to_bytes(), u32::MAX);
    assert_eq!(again.len(), 1, "a request is one frame");
    let decoded = decode_request(&again[0], CompressionPolicy::default(), usize::MAX)
        .expect("a re-encoded request decodes");
    assert_eq!(decoded.head.method, head.method);
    assert_eq!(decoded.request.args::<T>().expect("args decode"), args);
}

/// Target `response`: `[config, stream...]`, the bytes a consumer reads.
///
/// `LIMITS[config % 8]` is the consumer's frame and inflate limit. Every frame in
/// `stream` is decoded as the answer to a call, into each probe type. Checks that only
/// status `Ok` yields a value, error statuses map to their typed errors carrying the
/// payload as message, no payload inflates past the limit, and a decoded value survives
/// a round trip under the frame's serializer and compression.
pub fn response(data: &[u8]) {
    let [config, stream @ ..] = data else {
        return;
    };
    let max = LIMITS[usize::from(config % 8)] as usize;
    for frame in frames(stream, max as u32) {
        check_response(&frame, max);
    }
}

fn check_response(frame: &Frame, max: usize) {
    let status = Status::from_u8(frame.header.status);
    if let Ok((serialization, payload)) = open_payload(frame, max) {
        assert_eq!(serialization.id(), frame.header.serializer);
        assert!(payload.len() <= max.max(frame.payload.len()));
    }
    if status != Status::Ok {
        let err = decode_response::<serde_json::Value>(frame, &probe_key(), "m", "fuzz", max)
            .expect_err("an error status yields no value");
        let message = String::from_utf8_lossy(&frame.payload).into_owned();
        match (status, &err) {
            (Status::Overloaded, Error::Overloaded(m))
            | (Status::HandlerPanicked, Error::HandlerPanicked(m))
            | (Status::Unauthenticated, Error::Unauthenticated(m))
            | (Status::Unknown, Error::Remote { message: m, .. }) => assert_eq!(*m, message),
            (
                Status::FrameTooLarge,
                Error::FrameTooLarge {
                    direction: crate::FrameDirection::Request,
                    ..
                },
            ) => {}
            (Status::BadRequest, Error::Decode(m)) | (Status::EncodeFailed, Error::Encode(m)) => {
                assert!(m.ends_with(&message))
            }
            (Status::ServiceNotFound, Error::ServiceNotFound { .. })
            | (Status::MethodNotFound, Error::MethodNotFound { .. })
            | (Status::Cancelled, Error::Cancelled)
            | (Status::ShuttingDown, Error::GoingAway { .. })
            | (Status::DeadlineExceeded, Error::Remote { .. }) => {}
            (status, err) => panic!("status {status:?} became {err:?}"),
        }
        return;
    }
    probe_response::<serde_json::Value>(frame, max);
    probe_response::<Probe>(frame, max);
    probe_response::<(i64, i64)>(frame, max);
    probe_response::<Option<String>>(frame, max);
}

fn probe_response<T>(frame: &Frame, max: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let key = probe_key();
    let Ok(value) = decode_response::<T>(frame, &key, "m", "fuzz", max) else {
        return;
    };
    let serialization = Serialization::from_id(frame.header.serializer).expect("decoded");
    let compression = Compression::from_id(frame.header.compression).expect("decoded");
    let Ok(encoded) = response_frame(frame.header.request_id, serialization, compression, &value)
    else {
        return;
    };
    let back = frames(&encoded, u32::MAX);
    assert_eq!(back.len(), 1, "a response is one frame");
    let again: T = decode_response(&back[0], &key, "m", "fuzz", usize::MAX)
        .expect("a re-encoded response decodes");
    assert_eq!(again, value, "response round trip");
}

fn probe_key() -> ServiceKey {
    ServiceKey::new("fuzz::Probe", "", "1.0")
}

/// The well-formed frames in `stream`, read with body limit `max_body`.
fn frames(stream: &[u8], max_body: u32) -> Vec<Frame> {
    let mut codec = FrameCodec::new(max_body);
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    while let Ok(Some(item)) = codec.decode(&mut buf) {
        if let Inbound::Frame(frame) = item {
            out.push(frame);
        }
    }
    out
}

/// A value shaped like typical call arguments: the typed probe the targets decode
/// payloads into (postcard, not self-describing, needs one), and what the seed corpus
/// and the proptests encode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// An id.
    pub id: u64,
    /// A signed number.
    pub delta: i32,
    /// Some text.
    pub name: String,
    /// Raw bytes.
    pub bytes: Vec<u8>,
    /// An optional list of pairs.
    pub tags: Option<Vec<(String, u16)>>,
    /// A map.
    pub counts: BTreeMap<String, i64>,
    /// An enum.
    pub shape: Shape,
    /// A flag.
    pub flag: bool,
}

/// An enum with every variant form, inside [`Probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// Unit variant.
    Empty,
    /// Tuple variant.
    Pair(i16, char),
    /// Struct variant.
    Named {
        /// Text.
        label: String,
        /// Numbers.
        items: Vec<u32>,
    },
}

/// A request frame for `fuzz::Probe.call` carrying `args`, as a consumer sends it.
pub fn request_frame<A: Serialize + ?Sized>(
    request_id: u64,
    serialization: Serialization,
    compression: Compression,
    metadata: &Metadata,
    args: &A,
) -> Result<Bytes, Error> {
    let out = OutboundRequest {
        key: &probe_key(),
        method: "call",
        names: None,
        timeout: Duration::from_millis(3000),
        metadata,
        serialization,
        compression: CompressionPolicy {
            algorithm: compression,
            threshold: 0,
        },
        max_frame: u32::MAX,
    };
    let frame = out.encode(args)?.with_id(request_id);
    Ok(frame.to_bytes())
}

/// A successful response frame carrying `value`, as a provider sends it.
pub fn response_frame<T: Serialize + ?Sized>(
    request_id: u64,
    serialization: Serialization,
    compression: Compression,
    value: &T,
) -> Result<Bytes, Error> {
    let request = Request {
        request_id,
        serialization,
        compression: CompressionPolicy {
            algorithm: compression,
            threshold: 0,
        },
        payload: Bytes::new(),
        metadata: Metadata::new(),
        context: None,
    };
    request.reply(value).map(|reply| reply.0.freeze())
}
