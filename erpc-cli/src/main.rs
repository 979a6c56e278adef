//! `erpc`: a grpcurl- and ghz-like tool for erpc services, with no generated code.
//!
//! ```text
//! erpc --registry nacos://127.0.0.1:8848 list
//! erpc --addr 127.0.0.1:9000 --admin 127.0.0.1:9100 describe demo_api::Calculator
//! erpc --addr 127.0.0.1:9000 call demo_api::Calculator add '[2, 3]'
//! erpc --registry nacos://127.0.0.1:8848 --group test1 call demo_api::HelloService hello \
//!      '[{"message": "hi", "description": "from the CLI"}]'
//! erpc --addr 127.0.0.1:9000 bench demo_api::Calculator add '[2, 3]' -c 64 -d 10s
//! erpc --registry nacos://127.0.0.1:8848 watch demo_api::Calculator
//! erpc --registry nacos://127.0.0.1:8848 monitor --listen 127.0.0.1:9090 --token "$TOKEN"
//! erpc completions bash
//! ```
//!
//! Calls travel in the JSON serializer, so arguments are a JSON array (one element per
//! method argument) and results print as JSON. Exit codes: 0 ok, 1 remote or
//! application error, 2 usage, 3 registry or provider unreachable (see [`error::Exit`]).

mod args;
mod commands;
mod error;
mod explain;
mod output;
mod target;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    // clap exits 2 on usage errors and 0 for --help / --version.
    let cli = args::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("erpc: {}", error.message);
            error.exit.into()
        }
    }
}
