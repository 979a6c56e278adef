//! Turning calls into frames and frames into results, on both sides of the wire.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::compress::{Compression, CompressionPolicy};
use crate::protocol::codec::FrameBuilder;
use crate::protocol::head::HeadRef;
use crate::protocol::{
    encode_frame, Frame, FrameHeader, MessageType, Metadata, OutFrame, RawHead, ServiceKey, Status,
    HEADER_LEN,
};
use crate::serialize::Serialization;
use crate::{Error, FrameDirection};

/// Bytes reserved for arguments encoded straight into a request frame: most are
/// small, larger ones grow the buffer as they are written.
const SMALL_ARGUMENTS: usize = 128;

/// Serializes a call's arguments into a frame being built.
pub(crate) type ArgsWriter<'a> = dyn Fn(&mut BytesMut) -> Result<(), Error> + Sync + 'a;

/// Everything needed to encode a request except the request id (set per connection).
pub(crate) struct OutboundRequest<'a> {
    pub(crate) key: &'a ServiceKey,
    pub(crate) method: &'a str,
    /// `key` and `method` as the head writes them, when the caller keeps them encoded.
    pub(crate) names: Option<&'a [u8]>,
    pub(crate) timeout: Duration,
    pub(crate) metadata: &'a Metadata,
    pub(crate) serialization: Serialization,
    pub(crate) compression: CompressionPolicy,
    /// Largest body a provider is expected to accept; larger requests are refused here,
    /// before any byte is sent.
    pub(crate) max_frame: u32,
}

impl OutboundRequest<'_> {
    /// Encodes a request frame; the connection sets the request id per attempt.
    pub(crate) fn encode<A: Serialize + ?Sized>(&self, args: &A) -> Result<EncodedRequest, Error> {
        self.build(SMALL_ARGUMENTS, |buf| self.serialization.encode(args, buf))
    }

    /// [`OutboundRequest::encode`] for callers that cannot be generic over the
    /// arguments (the client filters' end of the chain): `write_args` serializes them
    /// with this request's serializer into the frame.
    pub(crate) fn encode_with(&self, write_args: &ArgsWriter<'_>) -> Result<EncodedRequest, Error> {
        self.build(SMALL_ARGUMENTS, write_args)
    }

    fn build(
        &self,
        payload_hint: usize,
        payload: impl FnOnce(&mut BytesMut) -> Result<(), Error>,
    ) -> Result<EncodedRequest, Error> {
        let mut header = FrameHeader::new(MessageType::Request, 0);
        header.serializer = self.serialization.id();
        let head = HeadRef {
            deadline: Some(self.timeout),
            service: self.key,
            method: self.method,
            names: self.names,
            metadata: self.metadata,
        };
        // Allocated once for small payloads.
        let mut frame = FrameBuilder::new(header, head.encoded_len() + payload_hint);
        head.encode(frame.buf()).map_err(Error::Encode)?;
        frame.end_head();
        payload(frame.buf())?;
        self.compression.apply(&mut frame)?;
        let size = frame.body_len();
        if size > self.max_frame as usize {
            return Err(Error::FrameTooLarge {
                size: size as u64,
                limit: u64::from(self.max_frame),
                direction: FrameDirection::Request,
            });
        }
        let mut frame = frame.finish().map_err(Error::Encode)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&frame[..HEADER_LEN]);
        frame.advance(HEADER_LEN);
        Ok(EncodedRequest {
            header,
            body: frame.freeze(),
        })
    }
}

/// An encoded request: its header (request id still 0) and its body, kept apart so each
/// attempt sends the shared body after a header of its own.
#[derive(Debug, Clone)]
pub(crate) struct EncodedRequest {
    header: [u8; HEADER_LEN],
    body: Bytes,
}

impl EncodedRequest {
    /// The frame to send with request id `id`.
    pub(crate) fn with_id(&self, id: u64) -> OutFrame {
        let mut header = self.header;
        FrameHeader::set_request_id(&mut header, id);
        OutFrame {
            header: Some(header),
            body: self.body.clone(),
        }
    }
}

/// Resolves a frame's serializer and compression ids.
fn payload_codecs(frame: &Frame) -> Result<(Serialization, Compression), Error> {
    let serialization = Serialization::from_id(frame.header.serializer).ok_or_else(|| {
        Error::Decode(format!("unknown serializer id {}", frame.header.serializer))
    })?;
    let compression = Compression::from_id(frame.header.compression).ok_or_else(|| {
        Error::Decode(format!(
            "unknown compression id {}",
            frame.header.compression
        ))
    })?;
    Ok((serialization, compression))
}

/// The payload as the serializer reads it: `payload` inflated, at most `max_len` bytes.
pub(crate) fn inflate(
    compression: Compression,
    payload: &Bytes,
    max_len: usize,
) -> Result<Bytes, Error> {
    match compression {
        Compression::None => Ok(payload.clone()),
        other => other.decompress(payload, max_len).map(Bytes::from),
    }
}

/// Reads the payload of a frame: resolves serializer and compression ids, inflates.
pub(crate) fn open_payload(frame: &Frame, max_len: usize) -> Result<(Serialization, Bytes), Error> {
    let (serialization, compression) = payload_codecs(frame)?;
    Ok((
        serialization,
        inflate(compression, &frame.payload, max_len)?,
    ))
}

/// Decodes a response frame into the call's result.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_response<R: DeserializeOwned>(
    frame: &Frame,
    key: &ServiceKey,
    method: &str,
    addr: &str,
    max_len: usize,
) -> Result<R, Error> {
    check_status(frame, key, method, addr)?;
    decode_payload(frame, max_len)
}

/// A response frame's status as the caller's error (`Ok` for status ok).
pub(crate) fn check_status(
    frame: &Frame,
    key: &ServiceKey,
    method: &str,
    addr: &str,
) -> Result<(), Error> {
    let status = Status::from_u8(frame.header.status);
    if status != Status::Ok {
        let message = String::from_utf8_lossy(&frame.payload).into_owned();
        return Err(status_error(status, message, key, method, addr));
    }
    Ok(())
}

/// Decodes the payload of a response whose status is ok.
pub(crate) fn decode_payload<R: DeserializeOwned>(
    frame: &Frame,
    max_len: usize,
) -> Result<R, Error> {
    let (serialization, payload) = open_payload(frame, max_len)?;
    serialization.decode(&payload)
}

fn status_error(
    status: Status,
    message: String,
    key: &ServiceKey,
    method: &str,
    addr: &str,
) -> Error {
    match status {
        Status::ServiceNotFound => Error::ServiceNotFound {
            service: key.to_string(),
        },
        Status::MethodNotFound => Error::MethodNotFound {
            service: key.to_string(),
            method: method.to_string(),
        },
        Status::BadRequest => {
            Error::Decode(format!("provider could not decode the request: {message}"))
        }
        Status::Overloaded => Error::Overloaded(message),
        Status::HandlerPanicked => Error::HandlerPanicked(message),
        Status::Cancelled => Error::Cancelled,
        Status::EncodeFailed => {
            Error::Encode(format!("provider could not encode the result: {message}"))
        }
        Status::ShuttingDown => Error::GoingAway {
            addr: addr.to_string(),
        },
        Status::Unauthenticated => Error::Unauthenticated(message),
        Status::FrameTooLarge => {
            let (size, limit) = oversized_figures(&message).unwrap_or_default();
            Error::FrameTooLarge {
                size,
                limit,
                direction: FrameDirection::Request,
            }
        }
        _ => Error::Remote { status, message },
    }
}

/// What the server reads of a request before any work on its body: the head (names
/// borrowed from the frame, as bytes: routing checks them) and the payload's codecs.
/// Admission is decided on this.
pub(crate) struct RequestEnvelope<'a> {
    pub(crate) head: RawHead<'a>,
    pub(crate) serialization: Serialization,
    pub(crate) compression: Compression,
}

/// Reads a request frame's head and codec ids; failures carry the status to answer with.
pub(crate) fn read_request_envelope(
    frame: &Frame,
) -> Result<RequestEnvelope<'_>, (Status, String)> {
    let bad = |m: String| (Status::BadRequest, m);
    let head = RawHead::decode(&frame.head).map_err(bad)?;
    let (serialization, compression) = payload_codecs(frame).map_err(|e| bad(e.to_string()))?;
    Ok(RequestEnvelope {
        head,
        serialization,
        compression,
    })
}

/// The refusal message of an oversized frame, as [`oversized_message`] writes it.
pub(crate) fn oversized_message(size: u32, limit: u32) -> String {
    format!("frame body of {size} bytes exceeds the {limit}-byte limit")
}

/// Size and limit read back from an [`oversized_message`].
fn oversized_figures(message: &str) -> Option<(u64, u64)> {
    let rest = message.strip_prefix("frame body of ")?;
    let (size, rest) = rest.split_once(" bytes exceeds the ")?;
    let limit = rest.strip_suffix("-byte limit")?;
    Some((size.parse().ok()?, limit.parse().ok()?))
}

/// A request as the server sees it after routing-independent decoding; the head
/// borrows its strings from the frame.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) struct InboundRequest<'a> {
    pub(crate) head: crate::protocol::RequestHeadRef<'a>,
    pub(crate) request: crate::service::Request,
}

/// Decodes a whole request frame (head, codecs, inflated payload) in one step.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_request(
    frame: &Frame,
    reply_compression: CompressionPolicy,
    max_len: usize,
) -> Result<InboundRequest<'_>, (Status, String)> {
    let RequestEnvelope {
        head,
        serialization,
        compression,
    } = read_request_envelope(frame)?;
    let mut head = head.checked().map_err(|m| (Status::BadRequest, m))?;
    let payload = inflate(compression, &frame.payload, max_len)
        .map_err(|e| (Status::BadRequest, e.to_string()))?;
    let metadata = std::mem::take(&mut head.metadata);
    Ok(InboundRequest {
        head,
        request: crate::service::Request {
            request_id: frame.header.request_id,
            serialization,
            compression: reply_compression,
            payload,
            metadata,
            context: None,
        },
    })
}

/// An error response: the status and a UTF-8 message as payload.
pub(crate) fn error_response(request_id: u64, status: Status, message: &str) -> Bytes {
    let mut header = FrameHeader::new(MessageType::Response, request_id);
    header.status = status as u8;
    encode_frame(header, &[], message.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{FrameCodec, Inbound};
    use tokio_util::codec::Decoder;

    fn parse(bytes: &[u8]) -> Frame {
        match FrameCodec::default()
            .decode(&mut BytesMut::from(bytes))
            .unwrap()
        {
            Some(Inbound::Frame(f)) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn request_and_reply_round_trip_with_every_codec_and_compression() {
        let key = ServiceKey::new("demo::Calc", "g", "1.0");
        let metadata = Metadata::new();
        for serialization in Serialization::ALL {
            for algorithm in Compression::ALL {
                let policy = CompressionPolicy {
                    algorithm,
                    threshold: 0,
                };
                let out = OutboundRequest {
                    key: &key,
                    method: "add",
                    names: None,
                    timeout: Duration::from_secs(1),
                    metadata: &metadata,
                    serialization,
                    compression: policy,
                    max_frame: crate::protocol::DEFAULT_MAX_FRAME,
                };
                let out = out.encode(&(2i64, "x".repeat(50))).unwrap().with_id(42);
                let frame = parse(&out.to_bytes());
                assert_eq!(frame.header.compression, algorithm.id());
                let inbound = decode_request(&frame, policy, 1 << 20).unwrap();
                assert_eq!(inbound.head.method, "add");
                let (n, s): (i64, String) = inbound.request.args().unwrap();
                assert_eq!((n, s.len()), (2, 50));
                let reply = inbound.request.reply(&Some(7u32)).unwrap();
                let frame = parse(&reply.0);
                assert_eq!(frame.header.request_id, 42);
                let got: Option<u32> =
                    decode_response(&frame, &key, "add", "a:1", 1 << 20).unwrap();
                assert_eq!(got, Some(7), "{serialization} {algorithm:?}");
            }
        }
    }

    #[test]
    fn a_request_over_the_frame_limit_is_refused_before_sending() {
        let key = ServiceKey::new("i", "", "1.0");
        let metadata = Metadata::new();
        let out = OutboundRequest {
            key: &key,
            method: "m",
            names: None,
            timeout: Duration::from_secs(1),
            metadata: &metadata,
            serialization: Serialization::MsgPack,
            compression: CompressionPolicy::default(),
            max_frame: 1024,
        };
        let err = out.encode(&(vec![7u8; 4096],)).unwrap_err();
        assert!(
            matches!(err, Error::FrameTooLarge { size, limit: 1024, direction: FrameDirection::Request } if size > 4096),
            "{err:?}"
        );
        assert!(out.encode(&(vec![7u8; 100],)).is_ok());
    }

    #[test]
    fn a_providers_oversized_refusal_carries_its_figures() {
        let key = ServiceKey::new("i", "", "1.0");
        let refusal = error_response(1, Status::FrameTooLarge, &oversized_message(5000, 1024));
        let err = decode_response::<()>(&parse(&refusal), &key, "m", "a:1", 100).unwrap_err();
        assert!(
            matches!(
                err,
                Error::FrameTooLarge {
                    size: 5000,
                    limit: 1024,
                    direction: FrameDirection::Request
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn error_statuses_map_to_typed_errors() {
        let key = ServiceKey::new("i", "", "1.0");
        type Check = fn(&Error) -> bool;
        let cases: [(Status, Check); 4] = [
            (Status::Overloaded, |e| matches!(e, Error::Overloaded(_))),
            (
                Status::HandlerPanicked,
                |e| matches!(e, Error::HandlerPanicked(m) if m == "boom"),
            ),
            (Status::MethodNotFound, |e| {
                matches!(e, Error::MethodNotFound { .. })
            }),
            (Status::ShuttingDown, |e| {
                matches!(e, Error::GoingAway { .. })
            }),
        ];
        for (status, check) in cases {
            let frame = parse(&error_response(1, status, "boom"));
            let err = decode_response::<()>(&frame, &key, "m", "a:1", 100).unwrap_err();
            assert!(check(&err), "{status:?} gave {err:?}");
        }
    }
}
