use serde::Serialize;

// Results travel from the server to the client: they need `Serialize` and `Deserialize`.
#[derive(Serialize)]
pub struct Hit {
    pub score: f64,
}

#[erpc::service]
pub trait Search {
    async fn best(&self, text: String) -> Hit;
    async fn all(&self, text: String) -> Vec<Hit>;
}

fn main() {}
