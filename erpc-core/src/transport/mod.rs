//! Moving frames over TCP: the coalescing writer shared by both sides and the client's
//! multiplexed connection.

pub(crate) mod connection;
pub(crate) mod writer;

pub(crate) use connection::{Connection, ConnectionSettings};
