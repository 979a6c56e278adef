// A type with neither trait: one error per missing trait, on the type.
pub struct Blob(pub Vec<u8>);

#[erpc::service]
pub trait Storage {
    async fn put(&self, blob: Blob) -> Result<Blob, String>;
}

fn main() {}
