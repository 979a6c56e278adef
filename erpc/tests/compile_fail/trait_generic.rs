#[erpc::service]
pub trait Store<K, const N: usize> {
    async fn get(&self, key: String) -> String;
}

fn main() {}
