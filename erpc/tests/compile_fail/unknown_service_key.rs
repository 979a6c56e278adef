#[erpc::service(grop = "test1", verison = "1.0", timeout = "5s")]
pub trait Store {
    async fn get(&self, key: String) -> String;
}

fn main() {}
