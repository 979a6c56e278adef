use serde::Deserialize;

// Arguments travel from the client to the server: they need `Serialize` and `Deserialize`.
#[derive(Deserialize)]
pub struct Query {
    pub text: String,
}

#[erpc::service]
pub trait Search {
    async fn search(&self, query: Query, limit: u32) -> Vec<String>;
    async fn count(&self, query: Query) -> u64;
}

fn main() {}
