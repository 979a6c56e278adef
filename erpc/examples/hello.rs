//! A provider and a consumer in one process over a static address list: the embedding
//! path for tests and applications (`build`, `local_addr`, `spawn`, `shutdown`).
//!
//! ```sh
//! cargo run -p erpc --example hello
//! ```

use std::time::Duration;

/// Says hello.
#[erpc::service(group = "examples", version = "1.0")]
pub trait Greeter {
    /// Greets `name`.
    async fn greet(&self, name: String) -> String;
}

struct English;

impl Greeter for English {
    async fn greet(&self, name: String) -> String {
        format!("Hello, {name}!")
    }
}

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    // `build` binds (port 0 picks a free one); `spawn` serves in the background.
    let server = erpc::Server::builder()
        .bind("127.0.0.1:0")
        .add_service(GreeterServer::new(English))
        .build()
        .await?;
    let addr = server.local_addr();
    let handle = server.spawn();

    // `direct` is a static provider list: no registry needed.
    let client = erpc::Client::builder().direct([addr.to_string()]).build()?;
    let greeter = GreeterClient::new(client).with_timeout(Duration::from_secs(2));
    println!("{}", greeter.greet("erpc".into()).await?);

    // Graceful: deregister, goaway, drain in-flight calls, close.
    handle.shutdown().await?;
    println!("server at {addr} stopped");
    Ok(())
}
