// `with_hash_key` is a builder method of the generated clients.
#[erpc::service]
pub trait Store {
    async fn with_hash_key(&self, on: bool);
}

fn main() {}
