#[erpc::service]
pub trait Store {
    async fn get(self, key: String) -> String;
    async fn boxed(self: Box<Self>, key: String) -> String;
}

fn main() {}
