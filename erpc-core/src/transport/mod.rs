//! Moving frames over TCP (or TLS over TCP): the byte stream, the coalescing writer
//! shared by both sides and the client's multiplexed connection.

pub(crate) mod connection;
pub(crate) mod stream;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod writer;

pub(crate) use connection::{Connection, ConnectionSettings};
pub(crate) use stream::{ClientTls, ServerTls, Stream};
