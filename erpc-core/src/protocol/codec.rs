//! Frame codec: splits a byte stream into frames, refusing oversized ones unread.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::{FrameHeader, MessageType, DEFAULT_MAX_FRAME, HEADER_LEN, MAGIC, VERSION};

/// A frame queued on a client connection: a whole frame, or a request's shared body
/// after a header of its own, so that each attempt of a request (another id, maybe
/// another connection) sends the encoded body without copying it.
#[derive(Debug)]
pub(crate) struct OutFrame {
    /// The header for `body`, when `body` is not a whole frame itself.
    pub(crate) header: Option<[u8; HEADER_LEN]>,
    pub(crate) body: Bytes,
}

impl OutFrame {
    /// The whole frame in one buffer (for tests and fuzzing).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.header {
            Some(header) => [&header[..], &self.body].concat().into(),
            None => self.body.clone(),
        }
    }
}

impl From<Bytes> for OutFrame {
    fn from(frame: Bytes) -> Self {
        Self {
            header: None,
            body: frame,
        }
    }
}

/// Smallest step by which the read buffer grows while a large frame arrives.
const READ_CHUNK: usize = 64 * 1024;

/// One complete frame: header, head section and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The fixed header.
    pub header: FrameHeader,
    /// The head section (request head for requests, empty otherwise).
    pub head: Bytes,
    /// The payload (serialized, maybe compressed).
    pub payload: Bytes,
}

/// What the decoder hands up: a frame, or a frame it consumed but could not accept.
///
/// Rejected frames are reported (not errors) so the receiver can answer the request id
/// with an error status and keep the connection serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A well-formed frame.
    Frame(Frame),
    /// The body was over the size limit and is being skipped without buffering it.
    Oversized(FrameHeader),
    /// The frame's header fields contradict each other or name an unknown version/type.
    Malformed {
        /// The header as read.
        header: FrameHeader,
        /// What is wrong.
        reason: String,
    },
}

/// Errors after which the byte stream cannot be trusted: the connection must close.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The first four bytes of a frame were not `0xCAFEBABE`.
    #[error("bad magic 0x{0:08X}: not an erpc peer or stream out of sync")]
    BadMagic(u32),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Tokio codec for erpc frames.
#[derive(Debug)]
pub struct FrameCodec {
    max_body: u32,
    discarding: usize,
}

impl FrameCodec {
    /// A codec refusing bodies longer than `max_body` bytes.
    pub fn new(max_body: u32) -> Self {
        Self {
            max_body,
            discarding: 0,
        }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Inbound;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, CodecError> {
        if self.discarding > 0 {
            let skip = self.discarding.min(src.len());
            src.advance(skip);
            self.discarding -= skip;
            if self.discarding > 0 {
                return Ok(None);
            }
        }
        let Some((magic, header)) = FrameHeader::read_from(src) else {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        };
        if magic != MAGIC {
            return Err(CodecError::BadMagic(magic));
        }
        if header.body_len > self.max_body {
            src.advance(HEADER_LEN);
            let body = header.body_len as usize;
            let skip = body.min(src.len());
            src.advance(skip);
            self.discarding = body - skip;
            return Ok(Some(Inbound::Oversized(header)));
        }
        let total = HEADER_LEN + header.body_len as usize;
        if src.len() < total {
            // Grow with the bytes that arrive (at most doubling), never to the declared
            // length at once: a header alone must not make the receiver allocate 16 MiB.
            let missing = total - src.len();
            src.reserve(missing.min(src.len().max(READ_CHUNK)));
            return Ok(None);
        }
        let mut body = src.split_to(total).freeze();
        body.advance(HEADER_LEN);
        if let Some(reason) = header_problem(&header) {
            return Ok(Some(Inbound::Malformed { header, reason }));
        }
        let head = body.split_to(usize::from(header.head_len));
        Ok(Some(Inbound::Frame(Frame {
            header,
            head,
            payload: body,
        })))
    }
}

fn header_problem(header: &FrameHeader) -> Option<String> {
    if header.version != VERSION {
        return Some(format!("unsupported protocol version {}", header.version));
    }
    if header.message_type().is_none() {
        return Some(format!("unknown message type {}", header.kind));
    }
    if u32::from(header.head_len) > header.body_len {
        return Some(format!(
            "head length {} exceeds body length {}",
            header.head_len, header.body_len
        ));
    }
    None
}

/// Encodes a whole frame; lengths in `header` are filled in from `head` and `payload`.
///
/// # Panics
/// When `head` is longer than 65535 bytes or the body longer than `u32::MAX` (callers
/// build heads with [`super::RequestHead::encode`], which checks its string lengths).
pub fn encode_frame(mut header: FrameHeader, head: &[u8], payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + head.len() + payload.len());
    header.head_len = u16::try_from(head.len()).expect("head longer than 65535 bytes");
    header.body_len = u32::try_from(head.len() + payload.len()).expect("body over 4 GiB");
    header.write_to(&mut out);
    out.put_slice(head);
    out.put_slice(payload);
    out.freeze()
}

/// Builds a frame in place: header placeholder, then head, then payload, then patch.
pub(crate) struct FrameBuilder {
    buf: BytesMut,
    header: FrameHeader,
    head_len: usize,
}

impl FrameBuilder {
    pub(crate) fn new(header: FrameHeader, capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(HEADER_LEN + capacity);
        buf.put_bytes(0, HEADER_LEN);
        Self {
            buf,
            header,
            head_len: 0,
        }
    }

    /// The buffer to append the head to; call [`FrameBuilder::end_head`] afterwards.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub(crate) fn end_head(&mut self) {
        self.head_len = self.buf.len() - HEADER_LEN;
    }

    /// Length of the body (head and payload) written so far.
    pub(crate) fn body_len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }

    /// Length of the payload written so far.
    pub(crate) fn payload_len(&self) -> usize {
        self.buf.len() - HEADER_LEN - self.head_len
    }

    /// Replaces the payload written so far (used after compressing it).
    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf[HEADER_LEN + self.head_len..]
    }

    pub(crate) fn replace_payload(&mut self, payload: &[u8]) {
        self.buf.truncate(HEADER_LEN + self.head_len);
        self.buf.put_slice(payload);
    }

    pub(crate) fn header_mut(&mut self) -> &mut FrameHeader {
        &mut self.header
    }

    /// Patches the lengths into the header; fails when the head or body is too long.
    pub(crate) fn finish(mut self) -> Result<BytesMut, String> {
        self.header.head_len = u16::try_from(self.head_len)
            .map_err(|_| format!("request head of {} bytes exceeds 65535", self.head_len))?;
        let body = self.buf.len() - HEADER_LEN;
        self.header.body_len =
            u32::try_from(body).map_err(|_| format!("frame body of {body} bytes exceeds 4 GiB"))?;
        self.buf[..HEADER_LEN].copy_from_slice(&self.header.to_bytes());
        Ok(self.buf)
    }
}

/// Encodes a frame that has no body (ping, pong, cancel, goaway).
pub(crate) fn control_frame(kind: MessageType, request_id: u64) -> Bytes {
    encode_frame(FrameHeader::new(kind, request_id), &[], &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Vec<Inbound> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            out.push(item);
        }
        out
    }

    #[test]
    fn frames_split_across_reads_are_reassembled() {
        let frame = encode_frame(FrameHeader::new(MessageType::Request, 7), b"hd", b"payload");
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for byte in frame.iter() {
            buf.put_u8(*byte);
            if let Some(item) = codec.decode(&mut buf).unwrap() {
                got = Some(item);
            }
        }
        let Some(Inbound::Frame(f)) = got else {
            panic!("no frame decoded")
        };
        assert_eq!(
            (f.header.request_id, &f.head[..], &f.payload[..]),
            (7, &b"hd"[..], &b"payload"[..])
        );
    }

    #[test]
    fn oversized_body_is_skipped_without_buffering_and_next_frame_decodes() {
        let mut codec = FrameCodec::new(8);
        let big = encode_frame(FrameHeader::new(MessageType::Request, 1), &[], &[0u8; 100]);
        let small = control_frame(MessageType::Ping, 2);
        // Feed the oversized frame in pieces: the decoder must never hold its body.
        let mut buf = BytesMut::from(&big[..30]);
        let first = codec.decode(&mut buf).unwrap();
        assert!(matches!(first, Some(Inbound::Oversized(h)) if h.request_id == 1));
        assert!(buf.is_empty());
        let mut rest = BytesMut::from(&big[30..]);
        rest.extend_from_slice(&small);
        let next = codec.decode(&mut rest).unwrap();
        assert!(matches!(next, Some(Inbound::Frame(f)) if f.header.request_id == 2));
    }

    #[test]
    fn a_declared_length_is_not_allocated_before_the_bytes_arrive() {
        let mut codec = FrameCodec::default();
        let mut header = FrameHeader::new(MessageType::Request, 1);
        header.body_len = 15 * 1024 * 1024;
        let mut buf = BytesMut::new();
        header.write_to(&mut buf);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= 2 * READ_CHUNK,
            "reserved {} bytes for a header alone",
            buf.capacity()
        );
        // As bytes arrive the buffer at most doubles what it holds.
        buf.put_bytes(7, 1024 * 1024);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= 3 * buf.len(),
            "{} for {}",
            buf.capacity(),
            buf.len()
        );
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut frame = BytesMut::from(&control_frame(MessageType::Ping, 1)[..]);
        frame[0] = 0;
        let err = FrameCodec::default().decode(&mut frame).unwrap_err();
        assert!(matches!(err, CodecError::BadMagic(0x00FE_BABE)));
    }

    #[test]
    fn inconsistent_header_is_reported_and_consumed() {
        let mut header = FrameHeader::new(MessageType::Request, 3);
        header.head_len = 10;
        header.body_len = 2;
        let mut buf = BytesMut::new();
        header.write_to(&mut buf);
        buf.put_slice(&[1, 2]);
        buf.extend_from_slice(&control_frame(MessageType::Ping, 4));
        let items = decode_all(&mut FrameCodec::default(), &buf);
        assert!(
            matches!(&items[0], Inbound::Malformed { reason, .. } if reason.contains("head length"))
        );
        assert!(matches!(&items[1], Inbound::Frame(f) if f.header.request_id == 4));
    }

    #[test]
    fn unknown_type_and_version_are_reported() {
        let mut header = FrameHeader::new(MessageType::Ping, 1);
        header.kind = 99;
        let mut buf = BytesMut::new();
        header.write_to(&mut buf);
        header.kind = MessageType::Ping as u8;
        header.version = 9;
        header.write_to(&mut buf);
        let items = decode_all(&mut FrameCodec::default(), &buf);
        assert!(
            matches!(&items[0], Inbound::Malformed { reason, .. } if reason.contains("type 99"))
        );
        assert!(
            matches!(&items[1], Inbound::Malformed { reason, .. } if reason.contains("version 9"))
        );
    }
}
