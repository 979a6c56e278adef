//! Heartbeats that keep ephemeral instances alive, one background task per registration.
//!
//! Nacos marks an ephemeral instance unhealthy 15 s after its last beat and removes it at
//! 30 s. The task beats at the server's `clientBeatInterval` and registers the instance
//! again when the server no longer knows it (code 20404, or 21003 on the v3 API). After a
//! failed beat it registers instead of beating until that succeeds: a server that was
//! unreachable may have come back empty.
//! On network failure it retries with a growing delay, capped at the beat interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::task::AbortHandle;

use crate::ops::{Beat, InstanceSpec, Naming};

/// First retry delay after a failed beat.
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// The running beat tasks, by (service, ip, port); all are stopped when this is dropped.
#[derive(Debug, Default)]
pub(crate) struct BeatTasks {
    tasks: Mutex<HashMap<(String, String, u16), AbortHandle>>,
}

impl BeatTasks {
    /// Starts beating for `spec`, replacing an earlier task for the same instance.
    pub(crate) fn start(&self, naming: Arc<Naming>, spec: InstanceSpec) {
        let key = (spec.service.clone(), spec.ip.clone(), spec.port);
        let task = tokio::spawn(run(naming, spec)).abort_handle();
        if let Some(old) = self.tasks.lock().insert(key, task) {
            old.abort();
        }
    }

    /// Stops beating for `spec`.
    pub(crate) fn stop(&self, spec: &InstanceSpec) {
        let key = (spec.service.clone(), spec.ip.clone(), spec.port);
        if let Some(task) = self.tasks.lock().remove(&key) {
            task.abort();
        }
    }
}

impl Drop for BeatTasks {
    fn drop(&mut self) {
        for (_, task) in self.tasks.get_mut().drain() {
            task.abort();
        }
    }
}

async fn run(naming: Arc<Naming>, spec: InstanceSpec) {
    let mut interval = naming.config.beat_interval;
    let mut delay = interval;
    // Consecutive failures; while there are any, the task registers instead of beating.
    let mut failures: u32 = 0;
    loop {
        tokio::time::sleep(delay).await;
        // After a failure the server may have come back empty: register (which a server
        // also takes as a beat) rather than beat, so that no beat re-creates a bare
        // instance there for a listing to see before the registration lands.
        let reregister = failures > 0
            || match naming.beat(&spec).await {
                Ok(Beat::Alive(stated)) => {
                    if let Some(stated) = stated {
                        interval = stated;
                    }
                    false
                }
                Ok(Beat::Unknown) => {
                    tracing::info!(service = %spec.service, ip = %spec.ip, port = spec.port, "Nacos lost the instance; registering again");
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, service = %spec.service, "Nacos heartbeat failed; retrying");
                    failures += 1;
                    delay = retry_delay(failures, interval);
                    continue;
                }
            };
        if reregister {
            match naming.register(&spec).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(service = %spec.service, "Nacos reachable again; instance registered");
                    }
                    failures = 0;
                }
                Err(error) => {
                    tracing::debug!(%error, service = %spec.service, "registering again with Nacos failed; retrying");
                    failures += 1;
                    delay = retry_delay(failures, interval);
                    continue;
                }
            }
        }
        delay = interval;
    }
}

/// 250 ms after the first failure, doubling, jittered by ±20 %, capped at `interval`.
fn retry_delay(failures: u32, interval: Duration) -> Duration {
    let base = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
        .min(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_to_the_interval() {
        let interval = Duration::from_secs(5);
        assert!(retry_delay(1, interval) <= Duration::from_millis(300));
        assert!(retry_delay(3, interval) >= Duration::from_millis(800));
        assert_eq!(retry_delay(10, interval), interval);
        assert_eq!(retry_delay(u32::MAX, interval), interval);
    }
}
