//! When a client ejects a provider (circuit breaker settings).

use std::time::Duration;

/// When to eject an endpoint and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub consecutive_failures: u32,
    /// Failure share over the window that opens it (0.0–1.0)...
    pub error_rate: f64,
    /// ...once the window holds at least this many calls.
    pub min_calls: u32,
    /// Length of the error-rate window.
    pub window: Duration,
    /// First ejection time; doubles on each ejection in a row.
    pub base_ejection: Duration,
    /// Longest ejection time.
    pub max_ejection: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_rate: 0.5,
            min_calls: 20,
            window: Duration::from_secs(10),
            base_ejection: Duration::from_secs(5),
            max_ejection: Duration::from_secs(60),
        }
    }
}
