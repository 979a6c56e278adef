//! Plain-data policies the runtimes follow and the configuration names: cluster mode,
//! circuit breaker, retry budget, overload limits, handler dispatch.
//!
//! They sit below `config`, `client` and `server`, which all read them, so none of
//! those three imports another to learn a setting's type.

mod breaker;
mod cluster;
mod dispatch;
mod limit;
mod retry_budget;

pub use breaker::BreakerPolicy;
pub use cluster::ClusterMode;
pub use dispatch::Dispatch;
pub use limit::LimitRule;
pub use retry_budget::RetryBudgetPolicy;
