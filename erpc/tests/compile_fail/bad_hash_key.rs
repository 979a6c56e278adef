#[erpc::service]
pub trait Store {
    #[erpc(hash_key = "user")]
    async fn get(&self, user_id: String) -> String;
    #[erpc(hash_key = 3)]
    async fn put(&self, key: String);
    #[erpc(hash_key = "key", hash_key = "key")]
    async fn del(&self, key: String);
}

fn main() {}
