//! The built-in `Tracing` filter over real servers, seen through a `tracing` layer that
//! captures spans and their fields: one span per call on each side with service,
//! method, peer, request id, trace ids, outcome and latency; the provider's span is the
//! consumer's child by `traceparent`; a handler that calls another provider keeps one
//! trace id; `tracing` is selectable by name from the configuration; with nobody
//! interested in the spans no trace context is drawn.
//!
//! Each test installs its subscriber for its own thread and runs on a current-thread
//! runtime, so the servers' tasks report to the same subscriber and tests stay apart.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use erpc::context::{self, TRACEPARENT};
use erpc::filter::{self, Tracing};
use erpc::{Client, ClientConfig, ServerConfig, ServerHandle};
use support::{bounded, direct, server, spawn, TEST_LIMIT};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A service whose handler may call the next hop.
#[erpc::service]
pub trait Relay {
    /// Calls the next hop (if any) and returns the `traceparent` this hop received.
    async fn relay(&self) -> Option<String>;
    /// Always panics (the call fails with `handler_panicked` on the provider).
    async fn fail(&self);
}

#[derive(Clone, Default)]
struct RelayImpl {
    next: Option<RelayClient>,
}

impl Relay for RelayImpl {
    async fn relay(&self) -> Option<String> {
        if let Some(next) = &self.next {
            next.relay().await.expect("the next hop answers");
        }
        let ctx = context::current()?;
        ctx.metadata().get(TRACEPARENT).map(str::to_string)
    }

    async fn fail(&self) {
        panic!("this method always fails");
    }
}

/// One captured span.
#[derive(Debug, Clone)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<&'static str, String>,
    closed: bool,
}

impl SpanRecord {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("span {} has no field {name}: {self:#?}", self.name))
    }
}

/// A layer that keeps every span on target `erpc::trace` with its fields.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<SpanRecord>>>);

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().target() != "erpc::trace" {
            return;
        }
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.id().into_u64());
        self.0.lock().unwrap().push(SpanRecord {
            id: id.into_u64(),
            name: attrs.metadata().name(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        self.with_open(id, |span| values.record(&mut Fields(&mut span.fields)));
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        self.with_open(&id, |span| span.closed = true);
    }
}

impl Captured {
    /// Runs `f` on the open span `id` (ids are reused once a span closed).
    fn with_open(&self, id: &Id, f: impl FnOnce(&mut SpanRecord)) {
        let mut spans = self.0.lock().unwrap();
        if let Some(span) = spans
            .iter_mut()
            .rev()
            .find(|s| s.id == id.into_u64() && !s.closed)
        {
            f(span);
        }
    }

    /// The closed spans, in the order they were created.
    fn closed(&self) -> Vec<SpanRecord> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.closed).cloned().collect()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    (captured, tracing::subscriber::set_default(subscriber))
}

async fn hop(next: Option<RelayClient>) -> ServerHandle {
    hop_sampled(next, Tracing::default()).await
}

fn client_of(server: &ServerHandle) -> RelayClient {
    sampled_client_of(server, Tracing::default())
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Waits until `n` spans closed (the server's span closes after its answer is sent).
async fn closed_spans(captured: &Captured, n: usize) -> Vec<SpanRecord> {
    let ready = support::eventually(TEST_LIMIT, || captured.closed().len() >= n).await;
    let spans = captured.closed();
    assert!(ready, "expected {n} closed spans: {spans:#?}");
    spans
}

#[tokio::test]
async fn a_call_is_a_span_on_each_side_with_fields_outcome_and_parent() {
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        let server = hop(None).await;
        let relay = client_of(&server);
        let received = relay.relay().await.unwrap().expect("a traceparent arrived");
        let error = relay.fail().await.unwrap_err();

        let spans = closed_spans(&captured, 4).await;
        let [client_ok, client_err] = [0, 1].map(|i| {
            spans
                .iter()
                .filter(|s| s.name == "erpc.client")
                .nth(i)
                .cloned()
                .expect("two client spans")
        });
        let [server_ok, server_err] = [0, 1].map(|i| {
            spans
                .iter()
                .filter(|s| s.name == "erpc.server")
                .nth(i)
                .cloned()
                .expect("two server spans")
        });

        let interface = RelayClient::descriptor().interface;
        for span in [&client_ok, &client_err, &server_ok, &server_err] {
            assert!(span.field("service").contains(interface), "{span:#?}");
            assert!(span.field("latency_us").parse::<u64>().is_ok(), "{span:#?}");
            assert!(is_hex(span.field("trace_id"), 32), "{span:#?}");
        }
        assert_eq!(client_ok.field("method"), "relay");
        assert_eq!(client_err.field("method"), "fail");
        assert_eq!(server_ok.field("method"), "relay");

        // Outcome.
        assert_eq!(client_ok.field("status"), "ok");
        assert_eq!(server_ok.field("status"), "ok");
        assert_eq!(server_err.field("status"), "handler_panicked");
        assert_eq!(client_err.field("status"), error.kind());
        assert_eq!(client_err.field("otel.status_code"), "ERROR");
        assert!(!client_err.field("error").is_empty());
        assert!(!client_ok.fields.contains_key("error"), "{client_ok:#?}");

        // Peers: the client names the provider, the server the caller.
        let provider = server.local_addr().to_string();
        assert_eq!(client_ok.field("peer"), provider);
        let caller: std::net::SocketAddr = server_ok.field("peer").parse().unwrap();
        assert!(caller.ip().is_loopback());
        assert_ne!(caller, server.local_addr());
        assert!(server_ok.field("request_id").parse::<u64>().is_ok());

        // The provider's span is the consumer's child, by the traceparent it sent.
        assert!(is_hex(client_ok.field("span_id"), 16), "{client_ok:#?}");
        assert_eq!(server_ok.field("trace_id"), client_ok.field("trace_id"));
        assert_eq!(
            server_ok.field("parent_span_id"),
            client_ok.field("span_id")
        );
        assert_eq!(
            received,
            format!(
                "00-{}-{}-01",
                client_ok.field("trace_id"),
                client_ok.field("span_id")
            )
        );
        // Each root call starts its own trace.
        assert_ne!(client_err.field("trace_id"), client_ok.field("trace_id"));
        assert_eq!(
            server_err.field("parent_span_id"),
            client_err.field("span_id")
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_handler_calling_another_provider_keeps_one_trace() {
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        let last = hop(None).await;
        let middle = hop(Some(client_of(&last))).await;
        client_of(&middle).relay().await.unwrap();

        let spans = closed_spans(&captured, 4).await;
        let by_name = |name: &str| -> Vec<SpanRecord> {
            spans.iter().filter(|s| s.name == name).cloned().collect()
        };
        let clients = by_name("erpc.client");
        let servers = by_name("erpc.server");
        assert_eq!((clients.len(), servers.len()), (2, 2), "{spans:#?}");
        // The consumer's span opens first; the middle provider's call out opens inside
        // the middle provider's span.
        let (root, inner) = (&clients[0], &clients[1]);
        let middle_span = servers
            .iter()
            .find(|s| s.parent.is_none() && s.field("parent_span_id") == root.field("span_id"))
            .expect("the middle provider's span is the consumer's child");
        let last_span = servers
            .iter()
            .find(|s| s.field("parent_span_id") == inner.field("span_id"))
            .expect("the last provider's span is the middle provider's call's child");
        assert_eq!(inner.parent, Some(middle_span.id), "{inner:#?}");
        let trace_id = root.field("trace_id");
        for span in [inner, middle_span, last_span] {
            assert_eq!(span.field("trace_id"), trace_id, "{span:#?}");
            assert_eq!(span.field("status"), "ok");
        }
        middle.shutdown().await.unwrap();
        last.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn tracing_is_selected_by_name_from_the_configuration() {
    assert!(filter::BUILT_IN.contains(&"tracing"));
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        let mut config = ServerConfig::default();
        config.bind = "127.0.0.1:0".into();
        config.filters = vec!["tracing".into()];
        let server = erpc::Server::builder()
            .config(config)
            .add_service(RelayServer::new(RelayImpl::default()))
            .build()
            .await
            .unwrap()
            .spawn();
        let mut client_config = ClientConfig::default();
        client_config.filters = vec!["tracing".into()];
        let client = Client::builder()
            .config(client_config)
            .direct([server.local_addr().to_string()])
            .build()
            .unwrap();
        RelayClient::new(client).relay().await.unwrap();
        let spans = closed_spans(&captured, 2).await;
        let mut names: Vec<_> = spans.iter().map(|s| s.name).collect();
        names.sort_unstable();
        assert_eq!(names, ["erpc.client", "erpc.server"]);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn with_nobody_interested_no_trace_context_is_drawn() {
    // A subscriber that records nothing on target `erpc::trace`.
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("erpc::trace=off,info"));
    let _guard = tracing::subscriber::set_default(subscriber);
    bounded(TEST_LIMIT, async {
        let server = hop(None).await;
        let received = client_of(&server).relay().await.unwrap();
        assert_eq!(received, None, "a disabled client span drew a trace");
        server.shutdown().await.unwrap();
    })
    .await;
}

async fn hop_sampled(next: Option<RelayClient>, tracing: Tracing) -> ServerHandle {
    let service = RelayServer::new(RelayImpl { next });
    spawn(server().filter(tracing).add_service(service)).await
}

fn sampled_client_of(server: &ServerHandle, tracing: Tracing) -> RelayClient {
    let client = direct(server.local_addr()).filter(tracing).build().unwrap();
    RelayClient::new(client).with_timeout(Duration::from_secs(20))
}

/// All spans on target `erpc::trace` seen so far, open or closed.
fn all_spans(captured: &Captured) -> Vec<SpanRecord> {
    captured.0.lock().unwrap().clone()
}

#[tokio::test]
async fn an_unsampled_trace_is_followed_by_every_hop() {
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        // The next hops record every trace they start, but follow a caller's decision.
        let last = hop_sampled(None, Tracing::default()).await;
        let middle = hop_sampled(Some(client_of(&last)), Tracing::default()).await;
        let consumer = sampled_client_of(&middle, Tracing::sampled(0.0));
        for _ in 0..5 {
            let received = consumer
                .relay()
                .await
                .unwrap()
                .expect("a traceparent arrived");
            let parsed = context::TraceParent::parse(&received).expect("well-formed");
            assert!(!parsed.sampled(), "sent as sampled: {received}");
        }
        // A span is created before its call is sent or its handler runs: none exist.
        assert_eq!(all_spans(&captured).len(), 0, "{:#?}", all_spans(&captured));
        middle.shutdown().await.unwrap();
        last.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_sampled_share_of_new_traces_is_recorded_on_both_sides() {
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        let server = hop_sampled(None, Tracing::default()).await;
        let consumer = sampled_client_of(&server, Tracing::sampled(0.5));
        let calls = 200;
        let mut sampled_sent = 0;
        for _ in 0..calls {
            let received = consumer
                .relay()
                .await
                .unwrap()
                .expect("a traceparent arrived");
            let parsed = context::TraceParent::parse(&received).expect("well-formed");
            sampled_sent += usize::from(parsed.sampled());
        }
        // Binomial(200, 0.5): 60..140 is over 5 standard deviations either side.
        assert!(
            (60..=140).contains(&sampled_sent),
            "{sampled_sent} of {calls}"
        );
        let spans = closed_spans(&captured, 2 * sampled_sent).await;
        let count = |name: &str| spans.iter().filter(|s| s.name == name).count();
        assert_eq!(count("erpc.client"), sampled_sent, "{spans:#?}");
        assert_eq!(count("erpc.server"), sampled_sent, "{spans:#?}");
        // Every recorded server span continues a recorded client span's trace.
        for served in spans.iter().filter(|s| s.name == "erpc.server") {
            assert!(
                spans.iter().any(|s| s.name == "erpc.client"
                    && s.field("span_id") == served.field("parent_span_id")
                    && s.field("trace_id") == served.field("trace_id")),
                "{served:#?}"
            );
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_sample_ratio_is_read_from_the_configuration() {
    let (captured, _guard) = capture();
    bounded(TEST_LIMIT, async {
        let server = hop_sampled(None, Tracing::default()).await;
        let mut config = ClientConfig::default();
        config.filters = vec!["tracing".into()];
        config.trace_sample_ratio = 0.0;
        let client = Client::builder()
            .config(config)
            .direct([server.local_addr().to_string()])
            .build()
            .unwrap();
        let received = RelayClient::new(client).relay().await.unwrap();
        let received = received.expect("the unsampled decision travels");
        assert!(received.ends_with("-00"), "{received}");
        assert_eq!(all_spans(&captured).len(), 0, "{:#?}", all_spans(&captured));
        server.shutdown().await.unwrap();
    })
    .await;
}

/// A layer that keeps the message of every event at DEBUG or above.
#[derive(Clone, Default)]
struct Messages(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Messages {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(message) = fields.get("message") {
            self.0.lock().unwrap().push(message.clone());
        }
    }
}

#[tokio::test]
async fn a_malformed_traceparent_is_ignored_and_logged_once_per_call() {
    let (captured, messages) = (Captured::default(), Messages::default());
    let subscriber = tracing_subscriber::registry()
        .with(captured.clone())
        .with(messages.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    let _guard = tracing::subscriber::set_default(subscriber);
    bounded(TEST_LIMIT, async {
        let server = hop(None).await;
        let malformed = "00-not-a-trace";
        let client = RelayClient::new(direct(server.local_addr()).build().unwrap())
            .with_metadata(TRACEPARENT, malformed);
        assert_eq!(client.relay().await.unwrap().as_deref(), Some(malformed));

        let spans = closed_spans(&captured, 1).await;
        assert_eq!(spans[0].name, "erpc.server");
        assert!(
            !spans[0].fields.contains_key("parent_span_id"),
            "a malformed traceparent names no parent: {spans:#?}"
        );
        let logged = messages
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.contains("malformed traceparent"))
            .count();
        assert_eq!(logged, 1, "{:#?}", messages.0.lock().unwrap());
        server.shutdown().await.unwrap();
    })
    .await;
}
