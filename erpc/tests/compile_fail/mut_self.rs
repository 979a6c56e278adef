#[erpc::service]
pub trait Store {
    async fn put(&mut self, key: String, value: String);
}

fn main() {}
