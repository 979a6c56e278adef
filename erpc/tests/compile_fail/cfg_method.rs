#[erpc::service]
pub trait Store {
    #[cfg(unix)]
    async fn wipe(&self);
    async fn get(&self, key: String) -> String;
}

fn main() {}
