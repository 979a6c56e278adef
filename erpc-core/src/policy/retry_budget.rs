//! How many retries a client's retry budget allows.

/// How many retries the budget allows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetPolicy {
    /// Retries allowed per call made (0.2 = at most 20% extra load).
    pub ratio: f64,
    /// Retries allowed per second regardless of volume.
    pub min_per_second: f64,
}

impl Default for RetryBudgetPolicy {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10.0,
        }
    }
}
