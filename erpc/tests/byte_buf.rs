//! Byte payloads: `erpc::ByteBuf` travels as MessagePack `bin` (its length plus a
//! 5-byte header), where a plain `Vec<u8>` becomes an integer array of up to twice the
//! bytes, so 12 MiB of random bytes overflowed the 16 MiB frame.

use std::time::Duration;

use bytes::BytesMut;
use erpc::{Client, ClientConfig, Serialization, Server, ServerHandle};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The payload type under test (with `Vec<u8>` the last two tests fail: 1.5x the bytes).
type Payload = erpc::ByteBuf;

/// Stores nothing: echoes and measures byte payloads.
#[erpc::service]
pub trait Blobs {
    /// Returns `data` unchanged.
    async fn echo(&self, data: Payload) -> Payload;
    /// The payload's length, so a large upload need not come back.
    async fn len(&self, data: Payload) -> u64;
}

struct Echo;

impl Blobs for Echo {
    async fn echo(&self, data: Payload) -> Payload {
        data
    }

    async fn len(&self, data: Payload) -> u64 {
        data.len() as u64
    }
}

async fn start() -> ServerHandle {
    Server::builder()
        .bind("127.0.0.1:0")
        .add_service(BlobsServer::new(Echo))
        .build()
        .await
        .expect("server binds")
        .spawn()
}

fn client_for(server: &ServerHandle, serialization: Serialization) -> BlobsClient {
    let client = Client::builder()
        .direct([server.local_addr().to_string()])
        .serialization(serialization)
        .build()
        .expect("client builds");
    BlobsClient::new(client).with_timeout(Duration::from_secs(60))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_payloads_round_trip_in_every_serializer() {
    let server = start().await;
    let sent = random_bytes(64 * 1024);
    for serialization in Serialization::ALL {
        let blobs = client_for(&server, serialization);
        let echoed = blobs.echo(Payload::from(sent.clone())).await.unwrap();
        assert_eq!(&echoed[..], &sent[..], "{serialization:?}");
        let empty = blobs.echo(Payload::from(Vec::new())).await.unwrap();
        assert!(empty.is_empty(), "{serialization:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_mib_of_random_bytes_fit_the_default_frame_under_msgpack() {
    let limit = ClientConfig::default().max_frame_bytes as usize;
    assert_eq!(limit, 16 << 20, "the test assumes the default 16 MiB frame");
    let server = start().await;
    let blobs = client_for(&server, Serialization::MsgPack);
    let sent = random_bytes(12 << 20);
    let len = blobs.len(Payload::from(sent.clone())).await.unwrap();
    assert_eq!(len, 12 << 20);
    let echoed = blobs.echo(Payload::from(sent.clone())).await.unwrap();
    assert!(echoed[..] == sent[..]);
    server.shutdown().await.unwrap();
}

#[test]
fn byte_payloads_cost_their_length_plus_a_few_bytes_in_binary_serializers() {
    let sent = random_bytes(1 << 20);
    for serialization in [Serialization::MsgPack, Serialization::Postcard] {
        let mut wire = BytesMut::new();
        // Arguments travel as a tuple.
        serialization
            .encode(&(Payload::from(sent.clone()),), &mut wire)
            .unwrap();
        let overhead = wire.len() - sent.len();
        assert!(
            overhead <= 8,
            "{serialization:?}: {} bytes for a {} byte payload",
            wire.len(),
            sent.len()
        );
        let (decoded,): (Payload,) = serialization.decode(&wire).unwrap();
        assert!(decoded[..] == sent[..], "{serialization:?}");
    }
}

/// A user type with a byte field.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Upload {
    name: String,
    #[serde(with = "erpc::serde_bytes")]
    data: Vec<u8>,
}

#[test]
fn serde_bytes_fields_travel_as_bytes() {
    let upload = Upload {
        name: "a".into(),
        data: random_bytes(1 << 20),
    };
    for serialization in Serialization::ALL {
        let mut wire = BytesMut::new();
        serialization.encode(&(&upload,), &mut wire).unwrap();
        if serialization != Serialization::Json {
            // Field names (msgpack) and the name's bytes, not 1.5x the payload.
            assert!(
                wire.len() <= (1 << 20) + 32,
                "{serialization:?}: {}",
                wire.len()
            );
        }
        let (decoded,): (Upload,) = serialization.decode(&wire).unwrap();
        assert_eq!(decoded, upload, "{serialization:?}");
    }
}
