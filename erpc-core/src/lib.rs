//! erpc-core: the runtime behind `#[erpc::service]`.
//!
//! - [`protocol`]: the wire format (`PROTOCOL.md`), frame codec and request head.
//! - [`serialize`] and [`compress`]: payload encodings, chosen per call.
//! - [`Client`]: providers from a [`registry::Registry`], balancing, one multiplexed
//!   connection per provider, heartbeats, deadlines and cancellation.
//! - [`Server`]: dispatch to hosted [`Service`]s with a concurrency limit, panic
//!   isolation, registration and graceful shutdown.
//! - [`admin`]: call metrics and the admin HTTP listener (`/metrics`, `/health`, ...).
//! - [`context`] and [`filter`]: the call's context inside handlers (deadline, trace,
//!   metadata) and the interception seam on both sides.
//! - [`Config`]: settings from builders, `erpc.toml` and `ERPC_*` variables.
//!
//! Users normally depend on the `erpc` facade crate, which re-exports all of this.

#![forbid(unsafe_code)]

pub mod admin;
pub mod balance;
mod client;
pub mod compress;
pub mod config;
pub mod context;
mod error;
pub mod filter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod message;
mod policy;
pub mod protocol;
pub mod registry;
pub mod serialize;
mod server;
mod service;
mod transport;

/// The attribute [`registry::Registry`] implementations are written with (re-exported so
/// a custom registry needs no extra dependency).
pub use async_trait::async_trait;
pub use client::{
    BlockingClient, BreakerPolicy, CallOptions, Client, ClientBuilder, ClusterMode,
    RetryBudgetPolicy, ServiceClient,
};
pub use compress::{Compression, CompressionPolicy};
pub use config::{ClientConfig, Config, ServerConfig};
pub use error::{Error, FrameDirection, Result};
pub use protocol::Metadata;
pub use serialize::Serialization;
pub use server::{termination_signal, Dispatch, LimitRule, Server, ServerBuilder, ServerHandle};
pub use service::{MethodDescriptor, Reply, Request, Service, ServiceDescriptor, ServiceKey};
#[cfg(feature = "tls")]
pub use transport::tls::{TlsClientConfig, TlsServerConfig, DEFAULT_HANDSHAKE_TIMEOUT};
