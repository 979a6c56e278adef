//! Per-service and per-method overload limits a server applies.

use serde::{Deserialize, Serialize};

/// A limit on one service (interface) or one of its methods.
///
/// ```
/// use erpc_core::LimitRule;
/// let rule = LimitRule::service("demo_api::Calculator").max_concurrency(100).rate(500.0, 50.0);
/// let per_method = LimitRule::method("demo_api::Calculator", "divide").max_concurrency(4);
/// # let _ = (rule, per_method);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// Interface name the rule applies to.
    pub service: String,
    /// Method name; the rule covers the whole service when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Calls running at once.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Calls admitted per second (token bucket refill rate).
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Bucket size: calls admitted in a burst (defaults to one second's worth).
    #[serde(default)]
    pub burst: Option<f64>,
}

impl LimitRule {
    /// A rule for every method of `service`.
    pub fn service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            method: None,
            max_concurrency: None,
            rate_per_second: None,
            burst: None,
        }
    }

    /// A rule for one method.
    pub fn method(service: impl Into<String>, method: impl Into<String>) -> Self {
        Self {
            method: Some(method.into()),
            ..Self::service(service)
        }
    }

    /// Caps calls running at once.
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = Some(limit);
        self
    }

    /// Admits `per_second` calls per second with bursts of up to `burst`.
    pub fn rate(mut self, per_second: f64, burst: f64) -> Self {
        self.rate_per_second = Some(per_second);
        self.burst = Some(burst);
        self
    }
}
