//! One module per command; [`run`] dispatches.

mod bench;
mod call;
mod describe;
mod list;
mod monitor;
mod providers;
mod watch;

use crate::args::{Cli, Command};
use crate::error::CliError;

/// Runs the command `cli` names, printing its results on stdout.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let global = &cli.global;
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "erpc", &mut std::io::stdout());
            Ok(())
        }
        Command::List => list::run(global).await,
        Command::Describe { service } => describe::run(global, service).await,
        Command::Providers { service, all } => providers::run(global, service, *all).await,
        Command::Call(args) => call::run(global, args).await,
        Command::Bench(args) => bench::run(global, args).await,
        Command::Monitor(args) => monitor::run(global, args).await,
        Command::Watch { service, count } => watch::run(global, service, *count).await,
    }
}
