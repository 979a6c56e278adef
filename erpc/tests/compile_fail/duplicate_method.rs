#[erpc::service]
pub trait Store {
    async fn get(&self, key: String) -> String;
    async fn r#get(&self, key: u64) -> String;
}

fn main() {}
