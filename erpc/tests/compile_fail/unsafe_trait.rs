#[erpc::service]
pub unsafe trait Store {
    async fn get(&self, key: String) -> String;
}

fn main() {}
