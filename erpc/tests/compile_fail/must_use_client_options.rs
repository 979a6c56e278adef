#![deny(unused_must_use)]

// `with_*` returns a new client: the one it is called on is unchanged.
#[erpc::service]
pub trait Store {
    async fn get(&self, key: String) -> String;
}

fn configure(client: StoreClient, blocking: StoreBlockingClient) {
    client.clone().with_timeout(std::time::Duration::from_secs(1));
    client.with_group("blue");
    blocking.with_idempotent(true);
}

fn main() {
    let _ = configure;
}
