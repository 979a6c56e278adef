#[erpc::service]
pub trait Store {
    type Key;
    const LIMIT: usize;
    my_methods!();
    async fn get(&self, key: String) -> String;
}

fn main() {}
