#[erpc::service]
pub trait Store<'a> {
    async fn get(&self, key: String) -> String;
}

fn main() {}
