//! `erpc-bench`: runs the same workload against erpc, tarpc, tonic and a raw framed-TCP
//! baseline, each server in its own process; see `README.md`.

use std::process::ExitCode;

/// Every framework (clients and server processes alike) runs on mimalloc: glibc's
/// allocator serialises frees made on another thread than the allocation, which every
/// multi-threaded RPC stack does per call; production services commonly swap it too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    erpc_bench::main_entry()
}
