//! Generated clients and servers talking over a real connection: every argument count,
//! unit and `Result` returns, default bodies, every serializer, and the blocking client.

use std::time::Duration;

use erpc::{Client, Serialization, Server, ServerHandle};
use serde::{Deserialize, Serialize};

/// A struct argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Greeting text.
    pub message: String,
    /// Repeat count.
    pub times: u8,
}

/// An application error, delivered as a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalcError {
    /// The sum did not fit.
    Overflow,
}

/// The service under test.
#[erpc::service(group = "roundtrip", version = "1.2")]
pub trait Calc {
    /// No arguments.
    async fn answer(&self) -> u32;
    /// One struct argument.
    async fn hello(&self, hello: Hello) -> String;
    /// Three arguments and an application error.
    async fn add3(&self, a: i64, b: i64, c: i64) -> Result<i64, CalcError>;
    /// Unit result, retry-safe.
    #[erpc(idempotent)]
    async fn ping(&self, nonce: u64);
    /// Served by the trait's default body.
    async fn double(&self, x: u32) -> u32 {
        x * 2
    }
}

struct Calculator;

impl Calc for Calculator {
    async fn answer(&self) -> u32 {
        42
    }

    async fn hello(&self, hello: Hello) -> String {
        hello.message.repeat(usize::from(hello.times))
    }

    async fn add3(&self, a: i64, b: i64, c: i64) -> Result<i64, CalcError> {
        a.checked_add(b)
            .and_then(|ab| ab.checked_add(c))
            .ok_or(CalcError::Overflow)
    }

    async fn ping(&self, _nonce: u64) {}
}

async fn start() -> ServerHandle {
    Server::builder()
        .bind("127.0.0.1:0")
        .add_service(CalcServer::new(Calculator))
        .build()
        .await
        .expect("server binds")
        .spawn()
}

fn client_for(server: &ServerHandle, serialization: Serialization) -> CalcClient {
    let client = Client::builder()
        .direct([server.local_addr().to_string()])
        .serialization(serialization)
        .build()
        .expect("client builds");
    CalcClient::new(client).with_timeout(Duration::from_secs(5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_shape_round_trips_in_every_serializer() {
    let server = start().await;
    for serialization in Serialization::ALL {
        let calc = client_for(&server, serialization);
        let hello = Hello {
            message: "ab".into(),
            times: 3,
        };
        assert_eq!(calc.answer().await.unwrap(), 42, "{serialization:?}");
        assert_eq!(
            calc.hello(hello).await.unwrap(),
            "ababab",
            "{serialization:?}"
        );
        assert_eq!(
            calc.add3(1, 2, 3).await.unwrap(),
            Ok(6),
            "{serialization:?}"
        );
        assert_eq!(
            calc.add3(i64::MAX, 1, 0).await.unwrap(),
            Err(CalcError::Overflow),
            "{serialization:?}"
        );
        calc.ping(7).await.unwrap();
        assert_eq!(calc.double(21).await.unwrap(), 42, "{serialization:?}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_group_is_a_call_error_not_a_hang() {
    let server = start().await;
    let calc = client_for(&server, Serialization::MsgPack).with_group("elsewhere");
    let error = calc.answer().await.unwrap_err();
    assert!(
        matches!(error, erpc::Error::ServiceNotFound { .. }),
        "{error:?}"
    );
    server.shutdown().await.unwrap();
}

#[test]
fn blocking_client_calls_without_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(start());
    let blocking =
        erpc::BlockingClient::new(Client::builder().direct([server.local_addr().to_string()]))
            .unwrap();
    let calc = CalcBlockingClient::new(blocking).with_timeout(Duration::from_secs(5));
    assert_eq!(calc.answer().unwrap(), 42);
    assert_eq!(calc.add3(1, 2, 3).unwrap(), Ok(6));
    calc.ping(1).unwrap();
    runtime.block_on(server.shutdown()).unwrap();
}
