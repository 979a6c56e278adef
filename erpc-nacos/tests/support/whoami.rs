//! A provider that answers with its own address, and callers that log every call:
//! what the discovery tests count calls per provider with. erpc-zookeeper's tests
//! include this file by path, so it depends on nothing else in this `support`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The service key's interface of [`Whoami`].
pub const INTERFACE: &str = "erpc.test.Whoami";

/// Answers with the provider's own address.
#[erpc::service(name = "erpc.test.Whoami")]
pub trait Whoami {
    /// The serving provider's address.
    async fn whoami(&self) -> String;
}

/// A [`Whoami`] provider named by its address.
pub struct Named(pub String);

impl Whoami for Named {
    async fn whoami(&self) -> String {
        self.0.clone()
    }
}

/// The service key the providers register under.
pub fn key() -> erpc::ServiceKey {
    erpc::ServiceKey::new(INTERFACE, "", "1.0")
}

/// Calls made by [`load`]: when each started and what it got (the provider's address
/// or the error's text).
#[derive(Default)]
pub struct Log {
    pub calls: parking_lot::Mutex<Vec<(Instant, Result<String, String>)>>,
}

/// `tasks` callers in a loop (5 ms apart each) until `stop` is set.
pub fn load(
    client: &WhoamiClient,
    tasks: usize,
    log: &Arc<Log>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|_| {
            let (client, log, stop) = (client.clone(), log.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let result = client.whoami().await.map_err(|e| e.to_string());
                    log.calls.lock().push((start, result));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect()
}
