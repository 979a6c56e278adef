#[erpc::service]
pub trait Store {
    fn get(&self, key: String) -> String;
}

fn main() {}
