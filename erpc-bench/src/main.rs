//! `erpc-bench`: runs the same workload against erpc, tarpc, tonic and a raw framed-TCP
//! baseline, each server in its own process; see `README.md`.

use std::process::ExitCode;

fn main() -> ExitCode {
    erpc_bench::main_entry()
}
