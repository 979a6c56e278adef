//! `erpc monitor`: a live page of every service and provider of a registry, with
//! per-provider rates read from the providers' admin `/metrics`, and governance (weight,
//! disable/enable) through the registry.
//!
//! The monitor serves, over HTTP/1.1 on `--listen`:
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the page (one HTML file with its script; no external resources) |
//! | `GET /api/state` | JSON: services, providers, figures, history ([`state::Snapshot`]) |
//! | `POST /api/governance` | JSON [`state::Action`] (`application/json`, else `415`); needs the header `x-erpc-token` when `--token` is set (else `401`) |
//!
//! Governance works on Nacos (instance weight and `enabled`); on ZooKeeper it answers
//! `501` with the reason, and the page says so. Providers disabled outside the monitor
//! are shown (and can be enabled) where Nacos lists disabled instances
//! ([`erpc::nacos::NacosRegistry::instances`]: Nacos 2.x/3.x, not rnacos).

mod prom;
mod state;

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::args::{Global, MonitorArgs};
use crate::error::CliError;
use state::{Action, ActionError, Monitor};

/// The header that carries the operator token.
pub(crate) const TOKEN_HEADER: &str = "x-erpc-token";

/// The page.
const PAGE: &str = include_str!("page.html");

/// Largest governance request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// Serves the monitor until ctrl-c.
pub(crate) async fn run(global: &Global, args: &MonitorArgs) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    // Fail now, with one clear line, on a registry that lists no services or is down.
    if target.services().await?.is_none() {
        return Err(CliError::usage(format!(
            "{} keeps no service catalogue: monitor needs a nacos:// or zookeeper:// registry",
            target.shown()
        )));
    }
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let token = args.token.clone().filter(|t| !t.is_empty());
    let monitor = Arc::new(Monitor::new(target, args.interval, token.is_some()));
    let poller = {
        let monitor = monitor.clone();
        tokio::spawn(async move { monitor.poll_forever().await })
    };
    println!("erpc monitor on http://{addr}/");
    let token: Option<Arc<str>> = token.map(Into::into);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let accepted = tokio::select! {
            _ = &mut ctrl_c => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (monitor, token) = (monitor.clone(), token.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (monitor, token) = (monitor.clone(), token.clone());
                async move { Ok::<_, Infallible>(respond(&monitor, token.as_deref(), request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    poller.abort();
    Ok(())
}

/// Answers one request.
async fn respond(
    monitor: &Monitor,
    token: Option<&str>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/") => reply(StatusCode::OK, "text/html; charset=utf-8", PAGE.into()),
        (&Method::GET, "/api/state") => {
            let body = serde_json::to_vec(&monitor.snapshot()).unwrap_or_default();
            reply(StatusCode::OK, "application/json", body.into())
        }
        (&Method::POST, "/api/governance") => {
            if let Some(expected) = token {
                let given = request
                    .headers()
                    .get(TOKEN_HEADER)
                    .map(|v| v.as_bytes())
                    .unwrap_or_default();
                if !bool::from(given.ct_eq(expected.as_bytes())) {
                    return error(
                        StatusCode::UNAUTHORIZED,
                        &format!("a valid operator token ({TOKEN_HEADER}) is required"),
                    );
                }
            }
            // JSON only: a cross-site form cannot send it without a CORS preflight,
            // which this server never grants.
            let json = request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            if !json {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the action as application/json",
                );
            }
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(body) => body.to_bytes(),
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
            };
            let action: Action = match serde_json::from_slice(&body) {
                Ok(action) => action,
                Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad action: {e}")),
            };
            match monitor.act(&action).await {
                Ok(()) => reply(StatusCode::OK, "application/json", r#"{"ok":true}"#.into()),
                Err(ActionError::Unsupported(why)) => error(StatusCode::NOT_IMPLEMENTED, &why),
                Err(ActionError::UnknownProvider(why)) => error(StatusCode::NOT_FOUND, &why),
                Err(ActionError::Invalid(why)) => error(StatusCode::BAD_REQUEST, &why),
                Err(ActionError::Registry(why)) => error(StatusCode::BAD_GATEWAY, &why),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    reply(status, "application/json", body.into())
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
