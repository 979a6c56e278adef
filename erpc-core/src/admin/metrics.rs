//! Call metrics: a per-instance `prometheus-client` registry with erpc's call families.
//!
//! Each server and client that has metrics on owns one [`CallMetrics`]; nothing is
//! global, so several servers and clients in one process stay apart. A call is observed
//! by [`CallMetrics::begin`], which returns an [`InFlight`] guard: the in-flight gauge
//! goes up at once and down when the guard goes, and [`InFlight::finish`] counts the
//! call, its error kind if any, and its latency. A guard dropped without `finish` (the
//! caller cancelled, or the handler was aborted) counts as a `cancelled` error.
//!
//! Handles of one service method are resolved once and cached (two borrowed-key hash
//! lookups under a read lock per call; callers that know their methods keep the handles:
//! the server's routing table, the generated stubs), so recording costs a few relaxed
//! atomic adds, the latency histogram's too (`LatencyHistogram`); with metrics off,
//! the call path only checks an `Option`.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::histogram::LatencyHistogram;
use crate::service::ServiceKey;

/// Upper bounds (seconds) of the `erpc_call_duration_seconds` buckets: 100 µs to 10 s,
/// about three per decade, which resolves both loopback calls and slow handlers.
pub const DURATION_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Which end of a call is observed: the `side` label, `"server"` or `"client"`.
///
/// The variants are not named `Server` and `Client`: rustc would then spell
/// `erpc::Server` and `erpc::Client` in full in every diagnostic about them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The provider (`side="server"`): a request dispatched to a hosted service.
    Provider,
    /// The consumer (`side="client"`): one logical call, retries included.
    Consumer,
}

impl Side {
    /// The label value: `"server"` or `"client"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Provider => "server",
            Side::Consumer => "client",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    side: &'static str,
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    side: &'static str,
    service: String,
    method: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PickLabels {
    service: String,
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

type HistogramFamily = Family<CallLabels, LatencyHistogram, fn() -> LatencyHistogram>;

fn duration_histogram() -> LatencyHistogram {
    LatencyHistogram::new(&DURATION_BUCKETS)
}

/// The resolved handles of one service method on one side.
struct MethodMetrics {
    labels: CallLabels,
    calls: Counter,
    in_flight: Gauge,
    duration: LatencyHistogram,
    errors: Family<ErrorLabels, Counter>,
}

/// Values per (service, name), looked up with borrowed keys.
struct Cache<V>(RwLock<FxHashMap<ServiceKey, FxHashMap<String, V>>>);

impl<V: Clone> Cache<V> {
    fn new() -> Self {
        Self(RwLock::default())
    }

    fn get(&self, key: &ServiceKey, name: &str, make: impl FnOnce() -> V) -> V {
        if let Some(value) = self.0.read().get(key).and_then(|names| names.get(name)) {
            return value.clone();
        }
        let mut all = self.0.write();
        let names = match all.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(FxHashMap::default()),
        };
        names.entry(name.to_string()).or_insert_with(make).clone()
    }
}

struct Inner {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    in_flight: Family<CallLabels, Gauge>,
    duration: HistogramFamily,
    retries: Family<CallLabels, Counter>,
    picks: Family<PickLabels, Counter>,
    ejections: Family<ProviderLabels, Counter>,
    /// Method handles, by side (server, client).
    methods: [Cache<Arc<MethodMetrics>>; 2],
    retry_counters: Cache<Counter>,
    pick_counters: Cache<Counter>,
}

/// erpc's call metrics with their own Prometheus registry; clones share it.
///
/// Families (Prometheus text names):
///
/// | name | type | labels |
/// |---|---|---|
/// | `erpc_calls_total` | counter | `side`, `service`, `method` |
/// | `erpc_call_errors_total` | counter | `side`, `service`, `method`, `kind` ([`crate::Error::kind`]) |
/// | `erpc_calls_in_flight` | gauge | `side`, `service`, `method` |
/// | `erpc_call_duration_seconds` | histogram ([`DURATION_BUCKETS`]) | `side`, `service`, `method` |
/// | `erpc_client_retries_total` | counter | `side`, `service`, `method` |
/// | `erpc_client_picks_total` | counter | `service`, `provider` |
/// | `erpc_client_ejections_total` | counter | `provider` |
///
/// `service` is the service key in Dubbo's form (`group/interface:version`).
///
/// ```
/// use erpc_core::admin::{CallMetrics, Side};
/// use erpc_core::ServiceKey;
///
/// let metrics = CallMetrics::new();
/// let key = ServiceKey::new("demo::Calc", "", "1.0");
/// metrics.begin(Side::Provider, &key, "add").finish(Ok(()));
/// metrics.begin(Side::Provider, &key, "add").finish(Err("timeout"));
/// let text = metrics.encode();
/// assert!(text.contains(
///     r#"erpc_calls_total{side="server",service="demo::Calc:1.0",method="add"} 2"#
/// ));
/// assert!(text.contains(r#"kind="timeout"} 1"#));
/// ```
#[derive(Clone)]
pub struct CallMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetrics").finish_non_exhaustive()
    }
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CallMetrics {
    /// A fresh registry with every erpc family registered (and no samples yet).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let in_flight = Family::<CallLabels, Gauge>::default();
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let retries = Family::<CallLabels, Counter>::default();
        let picks = Family::<PickLabels, Counter>::default();
        let ejections = Family::<ProviderLabels, Counter>::default();
        registry.register("erpc_calls", "Calls completed", calls.clone());
        registry.register(
            "erpc_call_errors",
            "Calls that failed, by error kind",
            errors.clone(),
        );
        registry.register(
            "erpc_calls_in_flight",
            "Calls in progress",
            in_flight.clone(),
        );
        registry.register_with_unit(
            "erpc_call_duration",
            "Call latency",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "erpc_client_retries",
            "Extra attempts sent to other providers (failover retries, forked copies)",
            retries.clone(),
        );
        registry.register(
            "erpc_client_picks",
            "Attempts sent to each provider",
            picks.clone(),
        );
        registry.register(
            "erpc_client_ejections",
            "Circuit-breaker ejections of a provider",
            ejections.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                calls,
                errors,
                in_flight,
                duration,
                retries,
                picks,
                ejections,
                methods: [Cache::new(), Cache::new()],
                retry_counters: Cache::new(),
                pick_counters: Cache::new(),
            }),
        }
    }

    fn labels(side: Side, key: &ServiceKey, method: &str) -> CallLabels {
        CallLabels {
            side: side.as_str(),
            service: key.to_string(),
            method: method.to_string(),
        }
    }

    /// Starts observing one call of `method` on `key`: the in-flight gauge goes up
    /// until the returned guard is finished or dropped.
    pub fn begin(&self, side: Side, key: &ServiceKey, method: &str) -> InFlight {
        self.method(side, key, method).begin()
    }

    /// The handles of one method, resolved once: a caller that knows its methods up
    /// front (the server's routing table) keeps these and skips the lookup per call.
    pub(crate) fn method(&self, side: Side, key: &ServiceKey, method: &str) -> MethodObserver {
        let inner = &self.inner;
        MethodObserver(inner.methods[side as usize].get(key, method, || {
            let labels = Self::labels(side, key, method);
            Arc::new(MethodMetrics {
                calls: inner.calls.get_or_create_owned(&labels),
                in_flight: inner.in_flight.get_or_create_owned(&labels),
                duration: inner.duration.get_or_create_owned(&labels),
                errors: inner.errors.clone(),
                labels,
            })
        }))
    }

    /// Counts an extra attempt (retry or forked copy) of a client call.
    pub fn retry(&self, key: &ServiceKey, method: &str) {
        let inner = &self.inner;
        let counter = inner.retry_counters.get(key, method, || {
            inner
                .retries
                .get_or_create_owned(&Self::labels(Side::Consumer, key, method))
        });
        counter.inc();
    }

    /// Counts an attempt of a call to `key` sent to `provider` (its address).
    pub fn pick(&self, key: &ServiceKey, provider: &str) {
        self.pick_counter(key, provider).inc();
    }

    /// The counter [`CallMetrics::pick`] increments, for a caller that keeps it (the
    /// client's route holds one per provider).
    pub(crate) fn pick_counter(&self, key: &ServiceKey, provider: &str) -> Counter {
        let inner = &self.inner;
        inner.pick_counters.get(key, provider, || {
            inner.picks.get_or_create_owned(&PickLabels {
                service: key.to_string(),
                provider: provider.to_string(),
            })
        })
    }

    /// Counts a circuit-breaker ejection of `provider`.
    pub fn ejection(&self, provider: &str) {
        self.inner
            .ejections
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .inc();
    }

    /// Every family in the Prometheus text format, version 0.0.4 (served as
    /// [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a label set that does not encode is a bug
        // in this module, and its family is then cut short rather than the process.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)
        {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        text
    }
}

/// The resolved handles of one service method on one side (see [`CallMetrics::method`]).
#[derive(Clone)]
pub(crate) struct MethodObserver(Arc<MethodMetrics>);

impl std::fmt::Debug for MethodObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodObserver")
            .field("side", &self.0.labels.side)
            .field("service", &self.0.labels.service)
            .field("method", &self.0.labels.method)
            .finish()
    }
}

impl MethodObserver {
    /// Starts observing one call, as [`CallMetrics::begin`] does.
    pub(crate) fn begin(&self) -> InFlight {
        self.0.in_flight.inc();
        InFlight {
            method: self.0.clone(),
            started: Instant::now(),
            finished: false,
        }
    }
}

/// The `Content-Type` of [`CallMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One call being observed (see [`CallMetrics::begin`]).
#[must_use = "a call is counted when its guard is finished; dropping it counts a cancelled call"]
pub struct InFlight {
    method: Arc<MethodMetrics>,
    started: Instant,
    finished: bool,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("service", &self.method.labels.service)
            .field("method", &self.method.labels.method)
            .finish_non_exhaustive()
    }
}

impl InFlight {
    /// Ends the call: counts it, its error kind when `outcome` is `Err(kind)` (a
    /// [`crate::Error::kind`] name), and its latency since [`CallMetrics::begin`].
    pub fn finish(mut self, outcome: Result<(), &'static str>) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Result<(), &'static str>) {
        self.finished = true;
        let method = &self.method;
        method.calls.inc();
        method.duration.observe(self.started.elapsed());
        if let Err(kind) = outcome {
            let labels = &method.labels;
            method
                .errors
                .get_or_create(&ErrorLabels {
                    side: labels.side,
                    service: labels.service.clone(),
                    method: labels.method.clone(),
                    kind,
                })
                .inc();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            self.record(Err("cancelled"));
        }
        self.method.in_flight.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_counts_a_cancelled_call_and_leaves_flight() {
        let metrics = CallMetrics::new();
        let key = ServiceKey::new("a::B", "g", "2");
        let call = metrics.begin(Side::Consumer, &key, "m");
        let text = metrics.encode();
        assert!(
            text.contains(r#"erpc_calls_in_flight{side="client",service="g/a::B:2",method="m"} 1"#),
            "{text}"
        );
        drop(call);
        let text = metrics.encode();
        assert!(
            text.contains(r#"erpc_calls_in_flight{side="client",service="g/a::B:2",method="m"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"erpc_call_errors_total{side="client",service="g/a::B:2",method="m",kind="cancelled"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"erpc_call_duration_seconds_count{side="client",service="g/a::B:2",method="m"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn picks_retries_and_ejections_are_counted_per_label() {
        let metrics = CallMetrics::new();
        let key = ServiceKey::new("a::B", "", "1.0");
        metrics.pick(&key, "10.0.0.1:1");
        metrics.pick(&key, "10.0.0.1:1");
        metrics.pick(&key, "10.0.0.2:1");
        metrics.retry(&key, "m");
        metrics.ejection("10.0.0.2:1");
        let text = metrics.encode();
        for line in [
            r#"erpc_client_picks_total{service="a::B:1.0",provider="10.0.0.1:1"} 2"#,
            r#"erpc_client_picks_total{service="a::B:1.0",provider="10.0.0.2:1"} 1"#,
            r#"erpc_client_retries_total{side="client",service="a::B:1.0",method="m"} 1"#,
            r#"erpc_client_ejections_total{provider="10.0.0.2:1"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
