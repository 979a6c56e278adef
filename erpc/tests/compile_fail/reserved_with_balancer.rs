// `with_balancer` is a builder method of the generated clients.
#[erpc::service]
pub trait Store {
    async fn with_balancer(&self, on: bool);
}

fn main() {}
