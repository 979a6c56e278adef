#[erpc::service]
pub trait Store {
    async unsafe fn get(&self, key: String) -> String;
    async extern "C" fn put(&self, key: String);
    const async fn len(&self) -> usize;
}

fn main() {}
