//! A provider for the chaos tests; see [`erpc_chaos::provider`].

use clap::Parser;
use erpc_chaos::provider::{run, ProviderArgs};

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    run(ProviderArgs::parse()).await
}
