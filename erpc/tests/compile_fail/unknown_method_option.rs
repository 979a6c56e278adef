#[erpc::service]
pub trait Store {
    #[erpc(idempotnt)]
    async fn get(&self, key: String) -> String;
    #[erpc(retries = 3)]
    async fn put(&self, key: String);
    #[erpc]
    async fn len(&self) -> usize;
    #[erpc(idempotent, idempotent)]
    async fn ping(&self);
}

fn main() {}
