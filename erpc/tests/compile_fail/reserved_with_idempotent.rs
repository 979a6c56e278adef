// `with_idempotent` is a builder method of the generated clients.
#[erpc::service]
pub trait Store {
    async fn with_idempotent(&self, on: bool);
}

fn main() {}
