#[erpc::service]
pub trait Store {
    async fn get(&self, key: impl Into<String>) -> String;
    async fn keys(&self) -> impl Iterator<Item = String>;
}

fn main() {}
