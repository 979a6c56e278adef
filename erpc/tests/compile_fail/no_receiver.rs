#[erpc::service]
pub trait Store {
    async fn open(path: String) -> bool;
}

fn main() {}
