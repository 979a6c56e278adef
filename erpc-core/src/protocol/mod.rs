//! The erpc wire protocol: the frame header, message types, statuses and the request head.
//!
//! `PROTOCOL.md` at the repository root is the specification; this module mirrors it.
//!
//! ```text
//!  0               4       5       6       7       8       9       10              12
//!  +---------------+-------+-------+-------+-------+-------+-------+---------------+
//!  | magic 0xCAFEBABE      |version| type  | serial| compr | status| flags | head length   |
//!  +---------------+-------+-------+-------+-------+-------+-------+---------------+
//!  | request id (u64)                                              | body length   ...
//!  +---------------------------------------------------------------+---------------+
//!  12                                                              20              24
//!  body = head (head length bytes) ++ payload (body length - head length bytes)
//! ```
//!
//! All integers are big-endian.

pub(crate) mod codec;
pub(crate) mod head;
mod key;
pub(crate) mod trace;

pub(crate) use codec::OutFrame;
pub use codec::{encode_frame, CodecError, Frame, FrameCodec, Inbound};
pub(crate) use head::{encode_names, RawHead};
pub use head::{Metadata, RequestHead, RequestHeadRef};
pub use key::ServiceKey;

/// First four bytes of every frame.
pub const MAGIC: u32 = 0xCAFE_BABE;
/// Protocol version this build speaks.
pub const VERSION: u8 = 1;
/// Size of the fixed frame header in bytes.
pub const HEADER_LEN: usize = 24;
/// Offset of the request id in the header.
const REQUEST_ID_AT: usize = 12;
/// Default largest body a peer accepts (16 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// A call: request head + serialized arguments.
    Request = 1,
    /// The answer to a request with the same id.
    Response = 2,
    /// Heartbeat probe; the peer answers [`MessageType::Pong`].
    Ping = 3,
    /// Heartbeat answer.
    Pong = 4,
    /// The caller gave up on the request with this id; stop its handler.
    Cancel = 5,
    /// The sender is shutting down: send no new requests on this connection.
    GoAway = 6,
}

impl MessageType {
    /// Parses the type byte.
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::Ping,
            4 => Self::Pong,
            5 => Self::Cancel,
            6 => Self::GoAway,
            _ => return None,
        })
    }
}

/// Outcome of a call, in a response frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Status {
    /// Payload is the serialized return value.
    Ok = 0,
    /// No such service (interface, group, version) on the provider.
    ServiceNotFound = 1,
    /// The service has no method of that name.
    MethodNotFound = 2,
    /// The request could not be decoded (head, compression or arguments).
    BadRequest = 3,
    /// The provider refused the call at its concurrency or rate limit.
    Overloaded = 4,
    /// The handler panicked.
    HandlerPanicked = 5,
    /// The handler was cancelled.
    Cancelled = 6,
    /// The request's deadline passed on the provider.
    DeadlineExceeded = 7,
    /// The return value could not be encoded.
    EncodeFailed = 8,
    /// The provider is shutting down and did not run the call.
    ShuttingDown = 9,
    /// A frame was larger than the receiver's limit and was discarded unread.
    FrameTooLarge = 10,
    /// A server filter refused the caller's credentials; not retried elsewhere.
    Unauthenticated = 11,
    /// Any status byte this build does not know.
    Unknown = 255,
}

impl Status {
    /// Parses the status byte; unknown values map to [`Status::Unknown`].
    pub fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::Ok,
            1 => Self::ServiceNotFound,
            2 => Self::MethodNotFound,
            3 => Self::BadRequest,
            4 => Self::Overloaded,
            5 => Self::HandlerPanicked,
            6 => Self::Cancelled,
            7 => Self::DeadlineExceeded,
            8 => Self::EncodeFailed,
            9 => Self::ShuttingDown,
            10 => Self::FrameTooLarge,
            11 => Self::Unauthenticated,
            _ => Self::Unknown,
        }
    }
}

/// The fixed 24-byte header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version of the sender.
    pub version: u8,
    /// Message type byte (kept raw so unknown types can be reported).
    pub kind: u8,
    /// Serializer id of the payload.
    pub serializer: u8,
    /// Compression id of the payload.
    pub compression: u8,
    /// Response status (0 in other frames).
    pub status: u8,
    /// Reserved flags, 0.
    pub flags: u8,
    /// Length of the head section at the start of the body.
    pub head_len: u16,
    /// Request id: pairs a response with its request.
    pub request_id: u64,
    /// Length of everything after the header.
    pub body_len: u32,
}

impl FrameHeader {
    /// A header for `kind` with every other field zero.
    pub fn new(kind: MessageType, request_id: u64) -> Self {
        Self {
            version: VERSION,
            kind: kind as u8,
            serializer: 0,
            compression: 0,
            status: 0,
            flags: 0,
            head_len: 0,
            request_id,
            body_len: 0,
        }
    }

    /// The message type, if known.
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::from_u8(self.kind)
    }

    /// Writes the 24 header bytes.
    pub fn write_to(&self, out: &mut bytes::BytesMut) {
        out.extend_from_slice(&self.to_bytes());
    }

    /// The 24 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&MAGIC.to_be_bytes());
        out[4] = self.version;
        out[5] = self.kind;
        out[6] = self.serializer;
        out[7] = self.compression;
        out[8] = self.status;
        out[9] = self.flags;
        out[10..12].copy_from_slice(&self.head_len.to_be_bytes());
        out[REQUEST_ID_AT..REQUEST_ID_AT + 8].copy_from_slice(&self.request_id.to_be_bytes());
        out[20..24].copy_from_slice(&self.body_len.to_be_bytes());
        out
    }

    /// Overwrites the request id of an encoded header (`header` holds at least its
    /// first 20 bytes); the one place besides [`FrameHeader::write_to`] that knows
    /// where the id sits.
    pub(crate) fn set_request_id(header: &mut [u8], request_id: u64) {
        header[REQUEST_ID_AT..REQUEST_ID_AT + 8].copy_from_slice(&request_id.to_be_bytes());
    }

    /// Reads a header from the first 24 bytes of `buf` without checking the magic.
    ///
    /// Returns `None` when fewer than 24 bytes are given.
    pub fn read_from(buf: &[u8]) -> Option<(u32, Self)> {
        let b: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let header = Self {
            version: b[4],
            kind: b[5],
            serializer: b[6],
            compression: b[7],
            status: b[8],
            flags: b[9],
            head_len: u16::from_be_bytes([b[10], b[11]]),
            request_id: u64::from_be_bytes([
                b[12], b[13], b[14], b[15], b[16], b[17], b[18], b[19],
            ]),
            body_len: u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        };
        Some((magic, header))
    }
}
