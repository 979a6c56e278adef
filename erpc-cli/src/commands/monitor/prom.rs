//! A provider's admin `/metrics` (Prometheus text), reduced to what the monitor shows:
//! per service, the calls, errors, in-flight calls and latency buckets of the server side.

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value};

/// The server-side totals of one service in one scrape (summed over its methods).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Totals {
    /// Calls completed (`erpc_calls_total`), failures included.
    pub(crate) calls: f64,
    /// Calls that failed (`erpc_call_errors_total`, every kind).
    pub(crate) errors: f64,
    /// Calls in progress (`erpc_calls_in_flight`).
    pub(crate) in_flight: f64,
    /// Cumulative latency buckets (upper bound in seconds, count), ascending.
    pub(crate) buckets: Vec<(f64, f64)>,
}

impl Totals {
    /// What happened between `earlier` and `self` (counters that went down, as after a
    /// provider restart, count from zero).
    pub(crate) fn since(&self, earlier: &Totals) -> Totals {
        let delta = |now: f64, then: f64| if now >= then { now - then } else { now };
        let restarted = self.calls < earlier.calls;
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, count)| {
                let then = earlier
                    .buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0.0, |(_, c)| *c);
                (le, if restarted { count } else { delta(count, then) })
            })
            .collect();
        Totals {
            calls: delta(self.calls, earlier.calls),
            errors: if restarted {
                self.errors
            } else {
                delta(self.errors, earlier.errors)
            },
            in_flight: self.in_flight,
            buckets,
        }
    }

    /// Adds `other`'s counts (same bucket bounds) to these.
    pub(crate) fn add(&mut self, other: &Totals) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.in_flight += other.in_flight;
        for &(le, count) in &other.buckets {
            match self.buckets.iter_mut().find(|(l, _)| *l == le) {
                Some(bucket) => bucket.1 += count,
                None => self.buckets.push((le, count)),
            }
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// The 99th percentile latency in seconds, interpolated within its bucket as
    /// Prometheus' `histogram_quantile` does; `None` without observations.
    pub(crate) fn p99(&self) -> Option<f64> {
        quantile(0.99, &self.buckets)
    }
}

/// The `q` quantile of cumulative `buckets` (ascending upper bounds, the last `+Inf`).
pub(crate) fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                // Beyond the highest finite bound: that bound is all one can say.
                return Some(lower.0);
            }
            let within = count - lower.1;
            let fraction = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * fraction);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

/// The server-side totals by service label (`group/interface:version`) of one scrape.
pub(crate) fn server_totals(text: &str) -> Result<HashMap<String, Totals>, String> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = Scrape::parse(lines).map_err(|e| format!("not Prometheus text: {e}"))?;
    let mut by_service: HashMap<String, Totals> = HashMap::new();
    for sample in &scrape.samples {
        if sample.labels.get("side") != Some("server") {
            continue;
        }
        let Some(service) = sample.labels.get("service") else {
            continue;
        };
        let totals = by_service.entry(service.to_string()).or_default();
        let scalar = match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(*v),
            _ => None,
        };
        match (sample.metric.as_str(), &sample.value, scalar) {
            ("erpc_calls_total" | "erpc_calls", _, Some(v)) => totals.calls += v,
            ("erpc_call_errors_total" | "erpc_call_errors", _, Some(v)) => totals.errors += v,
            ("erpc_calls_in_flight", _, Some(v)) => totals.in_flight += v,
            ("erpc_call_duration_seconds", Value::Histogram(counts), _) => {
                let method = Totals {
                    buckets: counts.iter().map(|c| (c.less_than, c.count)).collect(),
                    ..Totals::default()
                };
                totals.add(&method);
            }
            _ => {}
        }
    }
    Ok(by_service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use erpc::admin::{CallMetrics, Side};
    use erpc::ServiceKey;

    #[test]
    fn reads_what_erpc_serves() {
        let metrics = CallMetrics::new();
        let calc = ServiceKey::new("demo::Calc", "", "1.0");
        let hello = ServiceKey::new("demo::Hello", "test1", "1.0");
        metrics.begin(Side::Provider, &calc, "add").finish(Ok(()));
        metrics
            .begin(Side::Provider, &calc, "add")
            .finish(Err("timeout"));
        metrics
            .begin(Side::Provider, &calc, "divide")
            .finish(Ok(()));
        let _running = metrics.begin(Side::Provider, &hello, "hello");
        // Client-side samples are not the provider's.
        metrics.begin(Side::Consumer, &calc, "add").finish(Ok(()));
        let totals = server_totals(&metrics.encode()).unwrap();
        let calc_totals = &totals["demo::Calc:1.0"];
        assert_eq!(calc_totals.calls, 3.0);
        assert_eq!(calc_totals.errors, 1.0);
        assert_eq!(calc_totals.in_flight, 0.0);
        assert_eq!(calc_totals.buckets.last().map(|b| b.1), Some(3.0));
        assert!(calc_totals.p99().is_some_and(|p| p > 0.0 && p < 1.0));
        assert_eq!(totals["test1/demo::Hello:1.0"].in_flight, 1.0);
        assert_eq!(totals["test1/demo::Hello:1.0"].calls, 0.0);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let buckets = [
            (0.001, 50.0),
            (0.01, 90.0),
            (0.1, 100.0),
            (f64::INFINITY, 100.0),
        ];
        // 99th of 100: rank 99, in (0.01, 0.1] which holds 10, 9 of them in.
        let p99 = quantile(0.99, &buckets).unwrap();
        assert!((p99 - 0.091).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(0.5, &buckets), Some(0.001));
        assert_eq!(quantile(0.99, &[(f64::INFINITY, 0.0)]), None);
        assert_eq!(
            quantile(0.99, &[(0.5, 1.0), (f64::INFINITY, 10.0)]),
            Some(0.5)
        );
    }

    #[test]
    fn deltas_survive_a_restart() {
        let earlier = Totals {
            calls: 10.0,
            errors: 2.0,
            in_flight: 1.0,
            buckets: vec![(0.1, 10.0), (f64::INFINITY, 10.0)],
        };
        let now = Totals {
            calls: 15.0,
            errors: 3.0,
            in_flight: 0.0,
            buckets: vec![(0.1, 14.0), (f64::INFINITY, 15.0)],
        };
        let delta = now.since(&earlier);
        assert_eq!((delta.calls, delta.errors), (5.0, 1.0));
        assert_eq!(delta.buckets, [(0.1, 4.0), (f64::INFINITY, 5.0)]);
        let restarted = Totals {
            calls: 3.0,
            errors: 0.0,
            in_flight: 0.0,
            buckets: vec![(0.1, 3.0), (f64::INFINITY, 3.0)],
        };
        assert_eq!(restarted.since(&now).calls, 3.0);
        assert_eq!(restarted.since(&now).buckets[1], (f64::INFINITY, 3.0));
    }
}
