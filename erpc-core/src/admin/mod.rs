//! Observability: call metrics and the optional admin HTTP listener.
//!
//! A server or client with metrics on (`.metrics(true)`, or an admin address) records
//! every call in its own [`CallMetrics`]. With `.admin("127.0.0.1:9100")` (config key
//! `admin` in `[server]` / `[client]`, variables `ERPC_SERVER_ADMIN` /
//! `ERPC_CLIENT_ADMIN`) it also serves, over plain HTTP/1.1:
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the metrics in the Prometheus text format ([`CONTENT_TYPE`]) |
//! | `/health` | `200` while the process serves |
//! | `/ready` | server: `200` once every service is registered and until graceful shutdown starts, else `503`; client: `200` once built |
//! | `/services` | JSON: a server's hosted services (key, methods, descriptor); a client's subscribed services and their provider count |
//!
//! A server registers the listener's address (as others reach it) in its registry
//! metadata under `erpc.admin`, where monitors such as `erpc monitor` find it.
//!
//! Any other path is `404`. The listener stops with its server, or when the last
//! handle of its client is dropped.

mod endpoints;
mod histogram;
mod http;
mod metrics;

pub use metrics::{CallMetrics, InFlight, Side, CONTENT_TYPE, DURATION_BUCKETS};

pub(crate) use endpoints::{hosted_service, subscribed_service, View};
pub(crate) use http::{bind, Listener, Running};
pub(crate) use metrics::MethodObserver;
