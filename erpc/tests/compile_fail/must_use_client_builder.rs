#![deny(unused_must_use)]

// A builder does nothing until it is built.
fn main() {
    erpc::Client::builder().timeout(std::time::Duration::from_secs(1));
}
