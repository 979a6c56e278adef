#![deny(unused_must_use)]

// A spawned server stops when its handle is dropped: ignoring the handle is a bug.
async fn start() -> Result<(), erpc::Error> {
    let server = erpc::Server::builder().bind("127.0.0.1:0").build().await?;
    server.spawn();
    Ok(())
}

fn main() {
    let _ = start();
}
