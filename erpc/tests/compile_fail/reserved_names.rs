#[erpc::service]
pub trait Store {
    async fn new(&self) -> u32;
    async fn descriptor(&self) -> String;
    async fn with_timeout(&self, millis: u64);
    async fn runtime(&self);
    async fn __erpc_call(&self);
    async fn get(&self, __erpc_request: String) -> String;
    async fn clone(&self) -> u32;
}

fn main() {}
