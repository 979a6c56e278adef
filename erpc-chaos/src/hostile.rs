//! Raw-socket tools for the hostile-input suite: frames built by hand as PROTOCOL.md
//! lays them out, and a reader of the answers, so a test can speak to a provider the way
//! an attacker's script would, without the erpc client's manners.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use erpc::protocol::{
    encode_frame, FrameCodec, FrameHeader, Inbound, MessageType, Metadata, RequestHead,
};
use erpc::{Compression, Serialization, ServiceKey};
use futures::StreamExt;
use serde::Serialize;
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::FramedRead;

use crate::{BULK_DESCRIPTOR, PROBE_DESCRIPTOR};

/// The wire key of [`crate::Bulk`].
pub fn bulk_key() -> ServiceKey {
    let d = &BULK_DESCRIPTOR;
    ServiceKey::new(d.interface, d.default_group, d.default_version)
}

/// The wire key of [`crate::Probe`].
pub fn probe_key() -> ServiceKey {
    let d = &PROBE_DESCRIPTOR;
    ServiceKey::new(d.interface, d.default_group, d.default_version)
}

/// An argument tuple serialized as msgpack, the default serializer.
///
/// # Panics
/// When `args` cannot be serialized (a bug in the test, not hostile data).
pub fn msgpack<T: Serialize + ?Sized>(args: &T) -> Bytes {
    let mut out = BytesMut::new();
    Serialization::MsgPack
        .encode(args, &mut out)
        .expect("test arguments serialize");
    out.freeze()
}

/// A request frame for `key`/`method` whose payload is `payload`, already compressed
/// with `compression` (or not, for [`Compression::None`]); msgpack, no deadline.
///
/// # Panics
/// When a name is longer than 65535 bytes.
pub fn request(
    request_id: u64,
    key: &ServiceKey,
    method: &str,
    payload: &[u8],
    compression: Compression,
) -> Bytes {
    let mut head = BytesMut::new();
    RequestHead {
        deadline: None,
        service: key.clone(),
        method: method.to_string(),
        metadata: Metadata::new(),
    }
    .encode(&mut head)
    .expect("short names");
    let mut header = FrameHeader::new(MessageType::Request, request_id);
    header.serializer = Serialization::MsgPack.id();
    header.compression = compression.id();
    encode_frame(header, &head, payload)
}

/// A ping frame.
pub fn ping(request_id: u64) -> Bytes {
    encode_frame(FrameHeader::new(MessageType::Ping, request_id), &[], &[])
}

/// A compressed payload that inflates to `inflated` zero bytes.
///
/// # Panics
/// When the compressor fails (it does not on in-memory data).
pub fn bomb(compression: Compression, inflated: usize) -> Vec<u8> {
    compression
        .compress(&vec![0u8; inflated])
        .expect("compressing zeros")
}

/// What [`Answers::next`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A frame arrived (payload dropped).
    Frame(FrameHeader),
    /// The provider closed the connection (or reset it).
    Closed,
    /// Nothing within the timeout.
    TimedOut,
}

/// Reads the frames a provider sends on a raw connection.
#[derive(Debug)]
pub struct Answers {
    frames: FramedRead<OwnedReadHalf, FrameCodec>,
}

impl Answers {
    /// Reads from `read`; frames up to 64 MiB are accepted.
    pub fn new(read: OwnedReadHalf) -> Self {
        Self {
            frames: FramedRead::new(read, FrameCodec::new(64 << 20)),
        }
    }

    /// The next frame's header, or why there is none.
    pub async fn next(&mut self, timeout: Duration) -> Answer {
        match tokio::time::timeout(timeout, self.frames.next()).await {
            Err(_) => Answer::TimedOut,
            Ok(Some(Ok(Inbound::Frame(frame)))) => Answer::Frame(frame.header),
            Ok(Some(Ok(Inbound::Oversized(header) | Inbound::Malformed { header, .. }))) => {
                Answer::Frame(header)
            }
            Ok(Some(Err(_)) | None) => Answer::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use erpc::protocol::RequestHeadRef;

    #[test]
    fn a_request_frame_reads_back() {
        let frame = request(
            7,
            &bulk_key(),
            "blob",
            &msgpack(&(5u32,)),
            Compression::None,
        );
        let (magic, header) = FrameHeader::read_from(&frame).expect("a header");
        assert_eq!(magic, erpc::protocol::MAGIC);
        assert_eq!(header.request_id, 7);
        assert_eq!(
            header.body_len as usize,
            frame.len() - erpc::protocol::HEADER_LEN
        );
        let head = &frame[erpc::protocol::HEADER_LEN..][..usize::from(header.head_len)];
        let head = RequestHeadRef::decode(head).expect("head decodes");
        assert_eq!(head.method, "blob");
    }

    #[test]
    fn a_bomb_is_small_and_inflates_past_the_frame_limit() {
        let limit = erpc::protocol::DEFAULT_MAX_FRAME as usize;
        let bomb = bomb(Compression::Zstd, limit + 1024);
        assert!(bomb.len() < 4096, "{} bytes", bomb.len());
        assert!(Compression::Zstd.decompress(&bomb, limit).is_err());
    }
}
