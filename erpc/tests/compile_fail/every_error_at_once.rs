#[erpc::service(grop = "g")]
pub trait Store<T> {
    type Key;
    fn get(&self, key: &str) -> String;
    async fn put(self, (k, v): (String, String));
    #[erpc(retry)]
    async fn new(&mut self);
}

fn main() {}
