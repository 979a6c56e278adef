//! The admin listener: HTTP/1.1 with hyper, one task per connection, all stopped
//! together.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::endpoints::{respond, View};
use crate::Error;

/// A bound admin listener, not yet serving.
#[derive(Debug)]
pub(crate) struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

/// Binds the admin listener on `addr` (`127.0.0.1:0` picks a free port). Needs a tokio
/// runtime.
pub(crate) fn bind(addr: &str) -> Result<Listener, Error> {
    let context = || format!("binding the admin listener on {addr}");
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| Error::io(context(), e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| Error::io(context(), e))?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Config(format!(
            "the admin listener on {addr} needs a tokio runtime: build inside one"
        )));
    }
    let listener = TcpListener::from_std(std_listener).map_err(|e| Error::io(context(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the admin listener's address", e))?;
    Ok(Listener { listener, addr })
}

impl Listener {
    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `view` on a background task until the returned guard is dropped.
    pub(crate) fn start(self, view: View) -> Running {
        let (stop, addr) = (CancellationToken::new(), self.addr);
        tokio::spawn(serve(self, Arc::new(view), stop.clone()));
        Running { stop, addr }
    }
}

/// A serving admin listener; dropping it stops the listener and its connections.
#[derive(Debug)]
pub(crate) struct Running {
    stop: CancellationToken,
    addr: SocketAddr,
}

impl Running {
    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(listener: Listener, view: Arc<View>, stop: CancellationToken) {
    let addr = listener.addr;
    tracing::info!(%addr, "erpc admin listening");
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (view, stop) = (view.clone(), stop.clone());
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&view, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "admin connection failed");
                    }
                }
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    tracing::info!(%addr, "erpc admin stopped");
}
