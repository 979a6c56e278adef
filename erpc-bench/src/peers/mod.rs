//! The systems under test: one module per framework, each with a server and a client
//! that echo a byte payload.

pub(crate) mod erpc_echo;
pub(crate) mod raw;
pub(crate) mod tarpc_echo;
pub(crate) mod tls;
pub(crate) mod tonic_echo;
