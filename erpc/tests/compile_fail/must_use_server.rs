#![deny(unused_must_use)]

// A built server accepts no calls until it is served or spawned.
async fn start() -> Result<(), erpc::Error> {
    erpc::Server::builder().bind("127.0.0.1:0").build().await?;
    Ok(())
}

fn main() {
    let _ = start();
}
