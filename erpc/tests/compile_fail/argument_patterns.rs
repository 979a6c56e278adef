#[erpc::service]
pub trait Store {
    async fn put(&self, (key, value): (String, String));
    async fn skip(&self, _: String);
    async fn by_ref(&self, ref key: String);
}

fn main() {}
