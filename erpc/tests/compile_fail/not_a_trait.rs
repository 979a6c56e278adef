#[erpc::service]
pub struct Store {
    items: Vec<String>,
}

fn main() {}
