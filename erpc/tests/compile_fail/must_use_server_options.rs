#![deny(unused_must_use)]

// `with_group` returns a new server wrapper: the one it is called on is unchanged.
#[erpc::service]
pub trait Store {
    async fn get(&self, key: String) -> String;
}

struct Memory;

impl Store for Memory {
    async fn get(&self, key: String) -> String {
        key
    }
}

fn main() {
    StoreServer::new(Memory).with_group("blue");
}
