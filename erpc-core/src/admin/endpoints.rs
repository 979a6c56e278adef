//! What the admin paths answer.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};

use serde_json::json;

use super::metrics::{self, CallMetrics};
use crate::service::{Service, ServiceKey};

/// What a server or client shows on its admin listener.
pub(crate) struct View {
    /// `/ready`: true when the process takes calls.
    pub(crate) ready: Box<dyn Fn() -> bool + Send + Sync>,
    /// `/services`: the JSON document.
    pub(crate) services: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// `/metrics`: `None` when metrics were turned off explicitly.
    pub(crate) metrics: Option<CallMetrics>,
}

/// The answer to `request`.
pub(crate) fn respond<B>(view: &View, request: &Request<B>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/metrics" => match &view.metrics {
            Some(m) => with_type(StatusCode::OK, metrics::CONTENT_TYPE, m.encode()),
            None => text(StatusCode::NOT_FOUND, "metrics are off (metrics = false)\n"),
        },
        "/health" => text(StatusCode::OK, "ok\n"),
        "/ready" if (view.ready)() => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/services" => {
            let body = serde_json::to_string_pretty(&(view.services)())
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            with_type(StatusCode::OK, "application/json", body)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health, /ready, /services\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// A hosted service as `/services` shows it: key, descriptor and methods.
pub(crate) fn hosted_service(service: &dyn Service) -> serde_json::Value {
    let descriptor = service.descriptor();
    let methods: Vec<_> = descriptor
        .methods
        .iter()
        .map(|m| json!({"name": m.name, "args": m.args, "idempotent": m.idempotent}))
        .collect();
    json!({
        "service": service.key().to_string(),
        "interface": descriptor.interface,
        "group": service.group(),
        "version": service.version(),
        "descriptor": {
            "interface": descriptor.interface,
            "default_group": descriptor.default_group,
            "default_version": descriptor.default_version,
        },
        "methods": methods,
    })
}

/// A subscribed service as a client's `/services` shows it.
pub(crate) fn subscribed_service(key: &ServiceKey, providers: usize) -> serde_json::Value {
    json!({
        "service": key.to_string(),
        "interface": key.interface,
        "group": key.group,
        "version": key.version,
        "providers": providers,
    })
}
