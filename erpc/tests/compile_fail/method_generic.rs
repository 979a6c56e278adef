#[erpc::service]
pub trait Store {
    async fn get<T>(&self, key: T) -> String;
    async fn batch<const N: usize>(&self, keys: [String; N]) -> Vec<String>;
    async fn filtered(&self, key: String) -> String
    where
        Self: Sized;
}

fn main() {}
