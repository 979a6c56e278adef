#![deny(unused_must_use)]

// A builder does nothing until it is built or served.
fn main() {
    erpc::Server::builder().bind("127.0.0.1:0");
}
