#[erpc::service(group = test1, version = 1.0, name = "", idempotent, group = "a", group = "b")]
pub trait Store {
    async fn get(&self, key: String) -> String;
}

fn main() {}
