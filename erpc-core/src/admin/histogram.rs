//! A call-latency histogram recorded with atomic adds, exposed through the
//! `prometheus-client` registry like its own histogram.
//!
//! `prometheus_client::metrics::histogram::Histogram` takes a mutex on every
//! observation: with metrics on, every call on every core would take the same lock of
//! its method. Here an observation is a binary search over fixed bounds and two relaxed
//! atomic adds. A scrape reads the buckets one by one while calls go on, so it may see
//! an observation in a bucket but not yet in the sum (never the reverse order of
//! buckets and count: the count is the buckets' total as read).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Durations counted in fixed buckets; clones share the counts.
#[derive(Clone, Debug)]
pub(crate) struct LatencyHistogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, ascending (the `le` labels).
    bounds: &'static [f64],
    /// The same bounds in nanoseconds, for the search.
    bounds_ns: Box<[u64]>,
    /// One count per bound, then one for `+Inf`; not cumulative.
    counts: Box<[AtomicU64]>,
    /// Sum of the observed durations in nanoseconds (wraps after 584 years of latency).
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    /// An empty histogram with these upper bounds (seconds, ascending).
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        Self(Arc::new(Inner {
            bounds,
            bounds_ns: bounds.iter().map(|s| (s * 1e9) as u64).collect(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }))
    }

    /// Counts one call that took `elapsed`.
    pub(crate) fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is at least `ns` (`le` is inclusive); past the
        // last bound, the `+Inf` one.
        let bucket = self.0.bounds_ns.partition_point(|&bound| bound < ns);
        if let Some(count) = self.0.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = &self.0;
        // The encoder adds the counts up itself; `f64::MAX` is its `+Inf` bound.
        let buckets: Vec<(f64, u64)> = inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(inner.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = inner.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    const BOUNDS: [f64; 3] = [0.001, 0.01, 0.1];

    #[test]
    fn counts_land_in_inclusive_buckets_and_encode_cumulatively() {
        let histogram = LatencyHistogram::new(&BOUNDS);
        for ms in [0, 1, 2, 10, 50, 100, 5000] {
            histogram.observe(Duration::from_millis(ms));
        }
        let mut registry = Registry::default();
        registry.register("latency", "test", histogram.clone());
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "# TYPE latency histogram",
            "latency_sum 5.163",
            "latency_count 7",
            "latency_bucket{le=\"0.001\"} 2",
            "latency_bucket{le=\"0.01\"} 4",
            "latency_bucket{le=\"0.1\"} 6",
            "latency_bucket{le=\"+Inf\"} 7",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
