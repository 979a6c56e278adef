//! One `tracing` span per call, on both sides, linked across hops by the W3C
//! `traceparent` in the call's metadata.
//!
//! # Where the trace context comes from
//!
//! The call context ([`crate::context`]) already carries a `traceparent` from hop to hop:
//! a server parses the incoming one into [`CallContext::trace`](crate::context::CallContext::trace),
//! and a call made inside a handler sends the same trace id with a new span id. These
//! filters build on that and do not format a second header:
//!
//! - Client: a call that carries no `traceparent` (made outside any handler) starts a
//!   trace ([`TraceParent::random`]) when its span is recorded; the span's `trace_id`
//!   and `span_id` fields are those of the `traceparent` sent.
//! - Server: the span's `trace_id` and `parent_span_id` fields are those of the
//!   incoming `traceparent`. The handler runs inside the span, so the spans of the
//!   calls it makes are its children.
//!
//! # OpenTelemetry (feature `otel`)
//!
//! With the feature on and a `tracing_opentelemetry` layer in the subscriber, the spans
//! become OpenTelemetry spans: the client injects its span's context as `traceparent`
//! (replacing the one the call context derived), and the server sets its span's parent
//! from the incoming `traceparent`. Both go through `opentelemetry`'s
//! `TraceContextPropagator` over the call's metadata rather than through
//! [`TraceParent`]: the propagator also carries `tracestate` and follows the SDK's
//! sampling decisions, and the ids are then the exporter's own. Without such a layer
//! the spans fall back to the behaviour above.
//!
//! # Cost
//!
//! The spans are `info` spans on target `erpc::trace`. The filter wraps only the
//! calls whose span is recorded ([`ClientFilter::wraps`], [`ServerFilter::wraps`]):
//! the others pass it by without a future, and when it is the only filter they take
//! the path of a client or server without filters. When no subscriber wants the spans,
//! a call pays for one callsite-interest check per side (a load and a compare); no
//! field is formatted, no id drawn, no clock read.
//!
//! Once a subscriber wants them, every call carries a `traceparent` (an unsampled one
//! too, so that the next hops follow the decision), which costs drawing two ids and
//! writing the value's 55 characters on the client (eight digits per few word
//! operations, straight into the call's metadata: no `String`), and parsing it once on
//! the server, while the request's head is decoded (no UTF-8 check, no copy): the
//! filters and the handler's [`CallContext`](crate::context::CallContext) read the
//! parsed ids. Recorded spans cost what the subscriber makes of them; their text fields
//! are `Display` values, which a formatting subscriber writes as they are (no quoting or
//! escaping).
//!
//! `erpc-bench`'s `erpc+tracing` row (this filter on both ends) against plain `erpc`,
//! 64 B × 64 in flight, best of 3 × 2 s per row, on a 2-core VM where client and server
//! share the cores; two runs (`ERPC_BENCH_SUBSCRIBER`, `ERPC_BENCH_TRACE_SAMPLE_RATIO`):
//!
//! | subscriber (both processes) | erpc+tracing QPS ÷ erpc QPS | client CPU per call ÷ erpc's |
//! |---|---:|---:|
//! | none (spans disabled) | 0.94, 0.98 | 1.03, 1.06 |
//! | bare `registry()` at INFO, [`Tracing::sampled`]`(0.1)` | 0.89, 0.94 | 1.10, 1.13 |
//! | `fmt()` at INFO, no ANSI, to `io::sink`, [`Tracing::sampled`]`(0.1)` | 0.77, 0.80 | 1.17, 1.27 |
//! | the same, every call traced | 0.53, 0.53 | 1.89, 1.94 |
//!
//! The `fmt` rows are the subscriber formatting every field of every recorded span
//! (about 1.5k instructions a field under callgrind); the unsampled calls of the
//! sampled rows cost the `traceparent` only.

#[cfg(feature = "otel")]
use std::fmt;

use async_trait::async_trait;
use tokio::time::Instant;
use tracing::field::{display, Empty};
use tracing::{Instrument, Span};

use super::{
    outcome_name, ClientCall, ClientFilter, ClientNext, ServerCall, ServerFilter, ServerNext,
};
use crate::context::{TraceParent, TRACEPARENT};
use crate::service::Reply;
use crate::Error;

/// A `tracing` span around every call, for either side (`"tracing"` in
/// [`BUILT_IN`](super::BUILT_IN)).
///
/// Span `erpc.client` / `erpc.server` on target `erpc::trace`, level `info`, with
/// fields `service`, `method`, `peer` (server: the caller; client: the provider of the
/// last attempt), `request_id` (server), `trace_id`, `span_id` (client) or
/// `parent_span_id` (server), and once the call ends `status` (`ok` or the error's
/// [kind](crate::Error::kind)), `error` (its message) and `latency_us`. With the
/// `otel` feature, `otel.kind` and, on failure, `otel.status_code` are set for
/// `tracing-opentelemetry` (without it, only the latter). Text values are recorded as
/// `Display`, so a formatting subscriber writes them without quotes or escaping.
///
/// # Sampling
///
/// [`Tracing::default`] records every call. [`Tracing::sampled`] records a share of
/// the traces, decided once where a trace starts and followed by every hop after it,
/// as OpenTelemetry's `ParentBased(TraceIdRatioBased)` sampler and Spring Boot's
/// `management.tracing.sampling.probability` (which Dubbo's observability uses; 0.1
/// by default there) do:
///
/// - a call that continues a trace (its `traceparent` came from the caller) is recorded
///   exactly when the caller's was: the W3C `sampled` flag says so, and the next hop
///   gets the same flag;
/// - a call that starts a trace is recorded when its trace id falls in the sampled
///   share, and sends that decision on in its `traceparent`.
///
/// An unsampled call still carries its trace id to the next hop (logs can join on it),
/// but creates no span: it costs the filter a few comparisons. Configured by name,
/// `trace_sample_ratio` in `erpc.toml` (`ERPC_CLIENT_TRACE_SAMPLE_RATIO`,
/// `ERPC_SERVER_TRACE_SAMPLE_RATIO`) sets the share.
///
/// ```no_run
/// # async fn run() -> Result<(), erpc_core::Error> {
/// use erpc_core::{filter::Tracing, Client, Server};
///
/// tracing_subscriber::fmt().with_env_filter("erpc::trace=info").init();
/// let server = Server::builder().bind("127.0.0.1:0").filter(Tracing::default()).build().await?;
/// let client = Client::builder()
///     .direct([server.local_addr().to_string()])
///     .filter(Tracing::sampled(0.1)) // one trace in ten starts recorded
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracing {
    /// Traces whose id's low 64 bits are below this start recorded; `None`: all.
    threshold: Option<u64>,
}

impl Default for Tracing {
    /// Every call recorded.
    fn default() -> Self {
        Self { threshold: None }
    }
}

impl Tracing {
    /// Records the share `ratio` (0.0 to 1.0; clamped, NaN counts as 0) of the traces
    /// that start here, and every call of a trace a caller recorded (see the type's
    /// doc).
    ///
    /// ```
    /// use erpc_core::filter::Tracing;
    /// assert_eq!(Tracing::sampled(1.0), Tracing::default());
    /// assert_eq!(Tracing::sampled(7.0), Tracing::default());
    /// assert_ne!(Tracing::sampled(0.1), Tracing::default());
    /// ```
    pub fn sampled(ratio: f64) -> Self {
        if ratio >= 1.0 {
            return Self::default();
        }
        let ratio = if ratio.is_nan() { 0.0 } else { ratio.max(0.0) };
        // `as` saturates: exact enough for a share (2^-53 off at worst).
        Self {
            threshold: Some((ratio * u64::MAX as f64) as u64),
        }
    }

    /// Whether a trace that starts with `trace_id` is recorded.
    fn starts_recorded(&self, trace_id: u128) -> bool {
        self.threshold.is_none_or(|t| (trace_id as u64) < t)
    }
}

#[cfg(feature = "otel")]
/// 32 lowercase hex digits, as in `traceparent`.
struct TraceId(u128);

#[cfg(feature = "otel")]
impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(feature = "otel")]
/// 16 lowercase hex digits, as in `traceparent`.
struct SpanId(u64);

#[cfg(feature = "otel")]
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Tracing {
    /// Whether the span of a served call is recorded (when a subscriber wants it): as
    /// its caller decided when the call continues a trace, by this filter's share for
    /// one that starts here.
    fn records_served(&self, incoming: Option<TraceParent>) -> bool {
        match incoming {
            Some(parent) => parent.sampled(),
            None => self.threshold.is_none() || self.starts_recorded(crate::context::random_id()),
        }
    }

    /// Whether the span of a call sent is recorded. Spans that no subscriber wants
    /// are never recorded and nothing is drawn or written for them. Otherwise a call
    /// outside any trace starts one here, and its `traceparent` carries the decision
    /// (the ids then become the span's fields, or OpenTelemetry replaces them).
    fn records_sent(&self, call: &mut ClientCall<'_>) -> bool {
        if !tracing::span_enabled!(target: "erpc::trace", tracing::Level::INFO) {
            return false;
        }
        if let Some(parent) = call.metadata().trace() {
            return parent.sampled();
        }
        let fresh = TraceParent::random();
        let recorded = self.starts_recorded(fresh.trace_id());
        call.metadata_mut().set_trace(fresh.with_sampled(recorded));
        recorded
    }
}

/// Records the call's outcome, latency and (client) provider on `span`.
fn finish<T>(span: &Span, started: Option<Instant>, result: &Result<T, Error>, peer: Option<&str>) {
    if span.is_disabled() {
        return;
    }
    if let Some(peer) = peer {
        span.record("peer", display(peer));
    }
    span.record("status", display(outcome_name(result)));
    if let Err(e) = result {
        span.record("error", display(e));
        span.record("otel.status_code", "ERROR");
    }
    if let Some(started) = started {
        span.record("latency_us", started.elapsed().as_micros() as u64);
    }
}

#[async_trait]
impl ServerFilter for Tracing {
    /// Calls whose span is recorded: a subscriber wants the spans, and the call is
    /// sampled (its caller's decision, or this filter's share for a trace that starts
    /// here). The others pass this filter by.
    fn wraps(&self, call: &mut ServerCall) -> bool {
        tracing::span_enabled!(target: "erpc::trace", tracing::Level::INFO)
            && self.records_served(call.incoming_trace())
    }

    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        // `wraps` took the sampling decision; only what it read off the call (so the
        // same answer again) is checked here, for a caller that skipped it.
        let incoming = call.incoming_trace();
        if incoming.is_some_and(|parent| !parent.sampled()) {
            return next.run(call).await;
        }
        // Well formed when `incoming` is set: the ids are read off it as written.
        let written = incoming.and(call.metadata().get(TRACEPARENT));
        let span = tracing::info_span!(
            target: "erpc::trace",
            "erpc.server",
            otel.kind = Empty,
            service = %call.service(),
            method = %call.method(),
            peer = %call.peer(),
            request_id = call.request_id(),
            trace_id = written.map(trace_id_of).map(display),
            parent_span_id = written.map(span_id_of).map(display),
            status = Empty,
            error = Empty,
            latency_us = Empty,
            otel.status_code = Empty,
        );
        let started = (!span.is_disabled()).then(|| {
            #[cfg(feature = "otel")]
            link_server(&span, call, incoming.is_some());
            Instant::now()
        });
        let result = next.run(call).instrument(span.clone()).await;
        finish(&span, started, &result, None);
        result
    }
}

#[async_trait]
impl ClientFilter for Tracing {
    /// Calls whose span is recorded: a subscriber wants the spans, and the call is
    /// sampled (its trace's decision, or this filter's share for a trace that starts
    /// here). Once a subscriber wants the spans, every call gets its `traceparent`
    /// here, recorded or not. The others pass this filter by.
    fn wraps(&self, call: &mut ClientCall<'_>) -> bool {
        self.records_sent(call)
    }

    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
        // Reads back the decision `wraps` wrote (or takes it, for a caller that
        // skipped `wraps`).
        if !self.records_sent(call) {
            return next.run(call).await;
        }
        traced_call(call, next).await
    }
}

/// A call sent inside its `erpc.client` span.
async fn traced_call(call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
    // Without OpenTelemetry the ids sent are known before the span exists, so they are
    // fields from the start (well formed: parsed or written by `records_sent`).
    let sent = match cfg!(feature = "otel") {
        true => None,
        false => call.metadata().get(TRACEPARENT),
    };
    let span = tracing::info_span!(
        target: "erpc::trace",
        "erpc.client",
        otel.kind = Empty,
        service = %call.service(),
        method = %call.method(),
        peer = Empty,
        trace_id = sent.map(trace_id_of).map(display),
        span_id = sent.map(span_id_of).map(display),
        status = Empty,
        error = Empty,
        latency_us = Empty,
        otel.status_code = Empty,
    );
    let started = (!span.is_disabled()).then(|| {
        #[cfg(feature = "otel")]
        link_client(&span, call);
        Instant::now()
    });
    let result = next.run(call).instrument(span.clone()).await;
    finish(&span, started, &result, call.peer());
    result
}

/// Makes the client span the one the provider sees as its parent, and records its ids.
#[cfg(feature = "otel")]
fn link_client(span: &Span, call: &mut ClientCall<'_>) {
    // Before the OpenTelemetry span is built (by `inject`): its kind is fixed then.
    span.record("otel.kind", "client");
    let (trace_id, span_id) = match otel::inject(span, call.metadata_mut()) {
        Some(ids) => ids,
        // No OpenTelemetry layer: the call context's trace, or a new one.
        None => {
            let sent = match call.metadata().trace() {
                Some(propagated) => propagated,
                None => {
                    let fresh = TraceParent::random();
                    call.metadata_mut().set_trace(fresh);
                    fresh
                }
            };
            (sent.trace_id(), sent.span_id())
        }
    };
    span.record("trace_id", display(TraceId(trace_id)));
    span.record("span_id", display(SpanId(span_id)));
}

/// The trace id of a well-formed `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, all
/// ASCII), as written in it.
fn trace_id_of(traceparent: &str) -> &str {
    traceparent.get(3..35).unwrap_or_default()
}

/// The span id of a well-formed `traceparent`, as written in it.
fn span_id_of(traceparent: &str) -> &str {
    traceparent.get(36..52).unwrap_or_default()
}

/// Makes the server span a child of the caller's (its ids are fields from the start).
#[cfg(feature = "otel")]
fn link_server(span: &Span, call: &ServerCall, continues_trace: bool) {
    span.record("otel.kind", "server");
    if continues_trace {
        otel::extract(span, call.metadata());
    } else if let Some(trace_id) = otel::trace_id(span) {
        // No caller's trace: the span is the root of a new OpenTelemetry trace.
        span.record("trace_id", display(TraceId(trace_id)));
    }
}

#[cfg(feature = "otel")]
mod otel {
    //! The OpenTelemetry side: `traceparent` (and `tracestate`) in and out of the call's
    //! metadata through the W3C propagator, and span parents through
    //! `tracing_opentelemetry`.

    use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::protocol::Metadata;

    struct Out<'m>(&'m mut Metadata);

    impl Injector for Out<'_> {
        fn set(&mut self, key: &str, value: String) {
            self.0.insert(key, value);
        }
    }

    struct In<'m>(&'m Metadata);

    impl Extractor for In<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key)
        }

        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| k).collect()
        }
    }

    /// Injects `span`'s OpenTelemetry context into `metadata`; its trace and span ids,
    /// or `None` when no OpenTelemetry layer records the span.
    pub(super) fn inject(span: &Span, metadata: &mut Metadata) -> Option<(u128, u64)> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        if !span_context.is_valid() {
            return None;
        }
        TraceContextPropagator::new().inject_context(&context, &mut Out(metadata));
        Some((
            u128::from_be_bytes(span_context.trace_id().to_bytes()),
            u64::from_be_bytes(span_context.span_id().to_bytes()),
        ))
    }

    /// Sets `span`'s OpenTelemetry parent from the `traceparent` in `metadata`.
    pub(super) fn extract(span: &Span, metadata: &Metadata) {
        let parent = TraceContextPropagator::new().extract(&In(metadata));
        if parent.span().span_context().is_remote() {
            // Fails only without an OpenTelemetry layer: nothing to link then.
            let _ = span.set_parent(parent);
        }
    }

    /// The OpenTelemetry trace id of `span`, when a layer records it.
    pub(super) fn trace_id(span: &Span) -> Option<u128> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context
            .is_valid()
            .then(|| u128::from_be_bytes(span_context.trace_id().to_bytes()))
    }

    #[cfg(test)]
    mod tests {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        use opentelemetry::Context;

        use super::*;
        use crate::context::{TraceParent, TRACEPARENT};

        #[test]
        fn the_propagator_reads_and_writes_what_traceparent_parses() {
            let sent =
                TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                    .unwrap();
            let mut metadata = Metadata::new();
            metadata.insert_static(TRACEPARENT, sent.to_string());
            let extracted = TraceContextPropagator::new().extract(&In(&metadata));
            let remote = extracted.span().span_context().clone();
            assert!(remote.is_remote() && remote.is_sampled());
            assert_eq!(remote.trace_id(), TraceId::from(sent.trace_id()));
            assert_eq!(remote.span_id(), SpanId::from(sent.span_id()));

            let local = SpanContext::new(
                TraceId::from(7u128),
                SpanId::from(9u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            );
            let mut out = Metadata::new();
            TraceContextPropagator::new().inject_context(
                &Context::new().with_remote_span_context(local),
                &mut Out(&mut out),
            );
            let written = out.get(TRACEPARENT).and_then(TraceParent::parse).unwrap();
            assert_eq!(
                (written.trace_id(), written.span_id(), written.flags()),
                (7, 9, 1)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trace ids spread evenly over the low 64 bits.
    fn spread(n: u64) -> impl Iterator<Item = u128> {
        (0..n).map(move |i| u128::from(i * (u64::MAX / n)) | (1 << 100))
    }

    #[test]
    fn the_sampled_share_of_new_traces_is_the_ratio() {
        let recorded = |tracing: Tracing| {
            spread(1000)
                .filter(|&id| tracing.starts_recorded(id))
                .count()
        };
        assert_eq!(recorded(Tracing::default()), 1000);
        assert_eq!(recorded(Tracing::sampled(1.0)), 1000);
        assert_eq!(recorded(Tracing::sampled(0.0)), 0);
        assert_eq!(recorded(Tracing::sampled(f64::NAN)), 0);
        assert_eq!(recorded(Tracing::sampled(-3.0)), 0);
        assert!((99..=101).contains(&recorded(Tracing::sampled(0.1))));
        assert!((499..=501).contains(&recorded(Tracing::sampled(0.5))));
    }

    #[test]
    fn a_served_call_follows_its_callers_decision() {
        let never = Tracing::sampled(0.0);
        let sampled = TraceParent::random();
        let unsampled = sampled.with_sampled(false);
        assert!(never.records_served(Some(sampled)));
        assert!(!Tracing::default().records_served(Some(unsampled)));
        // No (or a malformed) traceparent: the trace starts here, by this filter's share.
        assert!(!never.records_served(None));
        assert!(Tracing::default().records_served(None));
    }
}
