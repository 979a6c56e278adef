//! A consumer without an async runtime: the generated `XxxBlockingClient` over
//! `erpc::BlockingClient`, as a Java user of Dubbo's synchronous stubs would write.
//!
//! ```sh
//! cargo run -p erpc --example blocking_client
//! ```

/// Adds numbers.
#[erpc::service(version = "1.0")]
pub trait Adder {
    /// `a + b`.
    #[erpc(idempotent)]
    async fn add(&self, a: i64, b: i64) -> i64;
}

struct Plain;

impl Adder for Plain {
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() -> Result<(), erpc::Error> {
    // The provider runs on its own runtime in a background thread, as another process would.
    let runtime = tokio::runtime::Runtime::new().map_err(|e| erpc::Error::io("runtime", e))?;
    let server = runtime.block_on(
        erpc::Server::builder()
            .bind("127.0.0.1:0")
            .add_service(AdderServer::new(Plain))
            .build(),
    )?;
    let addr = server.local_addr();
    let handle =
        runtime.spawn(async move { server.serve_with_shutdown(std::future::pending()).await });

    // Plain synchronous code from here on.
    let client = erpc::BlockingClient::new(erpc::Client::builder().direct([addr.to_string()]))?;
    let adder = AdderBlockingClient::new(client);
    let sum = adder.add(40, 2)?;
    println!("40 + 2 = {sum}");
    assert_eq!(sum, 42);
    handle.abort();
    Ok(())
}
