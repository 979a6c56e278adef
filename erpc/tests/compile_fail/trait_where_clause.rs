#[erpc::service]
pub trait Store
where
    Self: Sized,
{
    async fn get(&self, key: String) -> String;
}

fn main() {}
