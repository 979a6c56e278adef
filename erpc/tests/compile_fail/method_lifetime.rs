#[erpc::service]
pub trait Store {
    async fn get<'a>(&self, key: String) -> String;
    async fn borrowed(&'static self, key: String) -> String;
    async fn cow(&self, key: std::borrow::Cow<'_, str>) -> String;
}

fn main() {}
