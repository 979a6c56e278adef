// `with_cluster` is a builder method of the generated clients.
#[erpc::service]
pub trait Store {
    async fn with_cluster(&self, on: bool);
}

fn main() {}
