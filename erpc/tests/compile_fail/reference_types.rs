#[erpc::service]
pub trait Store {
    async fn get(&self, key: &str) -> String;
    async fn many(&self, keys: Vec<&'static str>) -> usize;
    async fn raw(&self, bytes: &[u8], ptr: *const u8);
    async fn first(&self) -> &'static str;
    async fn myself(&self, other: Box<Self>) -> Box<Self>;
}

fn main() {}
