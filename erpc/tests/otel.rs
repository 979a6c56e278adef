//! The `Tracing` filter with feature `otel`: spans go through `tracing-opentelemetry`
//! into the OpenTelemetry SDK's in-memory exporter, over real servers. A call gives a
//! client span and a server span in one trace, the server's parent being the client
//! span; a handler that calls another provider keeps one trace id across every span,
//! each server span the child of the client span that called it.
//!
//! Each test installs its subscriber for its own thread and runs on a current-thread
//! runtime, so the servers' tasks report to the same subscriber and tests stay apart.
#![cfg(feature = "otel")]

mod support;

use std::time::Duration;

use erpc::filter::Tracing;
use erpc::ServerHandle;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use support::{bounded, direct, eventually, server, spawn, TEST_LIMIT};
use tracing_subscriber::layer::SubscriberExt;

/// A service whose handler may call the next hop.
#[erpc::service]
pub trait Relay {
    /// Calls the next hop (if any); returns how many hops answered from here on.
    async fn relay(&self) -> u32;
}

#[derive(Clone, Default)]
struct RelayImpl {
    next: Option<RelayClient>,
}

impl Relay for RelayImpl {
    async fn relay(&self) -> u32 {
        match &self.next {
            Some(next) => next.relay().await.expect("the next hop answers") + 1,
            None => 1,
        }
    }
}

/// An SDK pipeline exporting to memory, installed for this thread.
struct Pipeline {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Pipeline {
    fn install() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("erpc-test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        Self {
            exporter,
            provider,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Waits until `n` spans were exported (the server's span ends after its answer).
    async fn spans(&self, n: usize) -> Vec<SpanData> {
        let ready = eventually(TEST_LIMIT, || {
            self.provider.force_flush().is_ok()
                && self.exporter.get_finished_spans().unwrap_or_default().len() >= n
        })
        .await;
        let spans = self.exporter.get_finished_spans().unwrap();
        assert!(ready, "expected {n} spans: {spans:#?}");
        spans
    }
}

async fn hop(next: Option<RelayClient>) -> ServerHandle {
    let service = RelayServer::new(RelayImpl { next });
    spawn(server().filter(Tracing::default()).add_service(service)).await
}

fn client_of(server: &ServerHandle) -> RelayClient {
    let client = direct(server.local_addr())
        .filter(Tracing::default())
        .build()
        .unwrap();
    RelayClient::new(client).with_timeout(Duration::from_secs(20))
}

fn of_kind(spans: &[SpanData], kind: SpanKind) -> Vec<SpanData> {
    spans
        .iter()
        .filter(|s| s.span_kind == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_server_span_is_the_client_spans_child_in_one_trace() {
    let pipeline = Pipeline::install();
    bounded(TEST_LIMIT, async {
        let server = hop(None).await;
        assert_eq!(client_of(&server).relay().await.unwrap(), 1);

        let spans = pipeline.spans(2).await;
        let clients = of_kind(&spans, SpanKind::Client);
        let servers = of_kind(&spans, SpanKind::Server);
        assert_eq!((clients.len(), servers.len()), (1, 1), "{spans:#?}");
        let (client, server_span) = (&clients[0], &servers[0]);
        assert_eq!(client.name, "erpc.client");
        assert_eq!(server_span.name, "erpc.server");
        assert_eq!(
            server_span.span_context.trace_id(),
            client.span_context.trace_id()
        );
        assert_eq!(server_span.parent_span_id, client.span_context.span_id());
        assert!(server_span.parent_span_is_remote);
        let attribute = |span: &SpanData, key: &str| {
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attribute(client, "status").as_deref(), Some("ok"));
        assert_eq!(attribute(server_span, "method").as_deref(), Some("relay"));
        assert_eq!(
            attribute(client, "trace_id"),
            Some(client.span_context.trace_id().to_string()),
            "the span's trace_id field is the exporter's trace id"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_handler_calling_another_provider_keeps_one_trace_id() {
    let pipeline = Pipeline::install();
    bounded(TEST_LIMIT, async {
        let last = hop(None).await;
        let middle = hop(Some(client_of(&last))).await;
        assert_eq!(client_of(&middle).relay().await.unwrap(), 2);

        let spans = pipeline.spans(4).await;
        let clients = of_kind(&spans, SpanKind::Client);
        let servers = of_kind(&spans, SpanKind::Server);
        assert_eq!((clients.len(), servers.len()), (2, 2), "{spans:#?}");
        let trace_id = spans[0].span_context.trace_id();
        assert!(
            spans.iter().all(|s| s.span_context.trace_id() == trace_id),
            "one trace: {spans:#?}"
        );
        // consumer → middle server → its call out → last server.
        let root = clients
            .iter()
            .find(|c| {
                !servers
                    .iter()
                    .any(|s| s.span_context.span_id() == c.parent_span_id)
            })
            .expect("the consumer's span has no server parent");
        let middle_span = servers
            .iter()
            .find(|s| s.parent_span_id == root.span_context.span_id())
            .expect("the middle provider's span is the consumer's child");
        let call_out = clients
            .iter()
            .find(|c| c.parent_span_id == middle_span.span_context.span_id())
            .expect("the middle provider's call out is its span's child");
        let last_span = servers
            .iter()
            .find(|s| s.parent_span_id == call_out.span_context.span_id())
            .expect("the last provider's span is that call's child");
        assert_ne!(
            last_span.span_context.span_id(),
            middle_span.span_context.span_id()
        );
        middle.shutdown().await.unwrap();
        last.shutdown().await.unwrap();
    })
    .await;
}
