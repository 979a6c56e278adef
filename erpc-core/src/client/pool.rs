//! Per-provider endpoints: one connection each (opened on first use, re-opened with
//! backoff), the client's in-flight cap, latency estimate and circuit breaker.
//!
//! Concurrent callers to an address with no live connection wait for a single connect
//! attempt instead of each opening their own. After a failed attempt the address is
//! avoided until its backoff (doubling up to a ceiling) has passed: balancers send
//! calls to other providers meanwhile. A call that has no other provider left is not
//! failed for the backoff's sake: it reconnects once [`PROBE_INTERVAL`] has passed since
//! the last attempt (or the backoff ended, if sooner), within its deadline, so a
//! provider that comes back is used within about that interval however long it was
//! gone, while a dead one sees at most a few connects a second from each client.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::breaker::{Breaker, BreakerPolicy};
use crate::admin::CallMetrics;
use crate::transport::{Connection, ConnectionSettings};
use crate::Error;

/// Reconnect backoff bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

/// Endpoint-level settings shared by every endpoint of a pool.
#[derive(Debug, Clone)]
pub(crate) struct EndpointSettings {
    pub(crate) connection: ConnectionSettings,
    pub(crate) backoff: Backoff,
    pub(crate) breaker: BreakerPolicy,
    pub(crate) max_in_flight: usize,
    /// Counts ejections, when metrics are on.
    pub(crate) metrics: Option<CallMetrics>,
}

/// Longest wait between connect attempts for calls that have no other provider.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Link {
    connection: Option<Arc<Connection>>,
    failures: u32,
    /// End of the backoff: until then other providers are preferred.
    retry_at: Option<Instant>,
    /// When the last connect attempt failed.
    failed_at: Option<Instant>,
    last_error: String,
}

/// Peak-sensitive moving average of round-trip time: a slow sample takes effect at
/// once, fast samples pull it down gradually (time constant `DECAY`).
#[derive(Debug, Default)]
struct PeakEwma {
    nanos: f64,
    stamp: Option<Instant>,
}

const DECAY: Duration = Duration::from_secs(5);

/// Least time between two updates of a latency estimate by answers no slower than it
/// (see [`Endpoint::samples_latency`]).
const SAMPLE_SPACING: Duration = Duration::from_micros(100);

/// Age after which the balancer sees a latency estimate decay (see [`Endpoint::latency_at`]).
/// Providers that get calls are sampled far more often, so their estimate never decays.
const STALE_AFTER: Duration = Duration::from_secs(1);

impl PeakEwma {
    fn observe(&mut self, rtt: Duration, now: Instant) {
        let sample = rtt.as_nanos() as f64;
        self.nanos = match self.stamp {
            None => sample,
            Some(_) if sample > self.nanos => sample,
            Some(stamp) => {
                let age = now.duration_since(stamp).as_secs_f64();
                let keep = (-age / DECAY.as_secs_f64()).exp();
                self.nanos * keep + sample * (1.0 - keep)
            }
        };
        self.stamp = Some(now);
    }

    fn get(&self) -> Option<Duration> {
        self.stamp.map(|_| Duration::from_nanos(self.nanos as u64))
    }
}

/// One provider address as this client sees it.
pub(crate) struct Endpoint {
    addr: String,
    link: RwLock<Link>,
    connecting: tokio::sync::Mutex<()>,
    breaker: Breaker,
    latency: Mutex<PeakEwma>,
    /// The estimate in `latency`, in nanoseconds (0: none yet), read without the lock.
    latency_nanos: AtomicU64,
    /// When that estimate was last updated, in nanoseconds since `born`.
    latency_stamp: AtomicU64,
    born: Instant,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    metrics: Option<CallMetrics>,
}

impl Endpoint {
    /// The current connection, when it can take calls.
    pub(crate) fn usable(&self) -> Option<Arc<Connection>> {
        self.link
            .read()
            .connection
            .as_ref()
            .filter(|c| c.is_usable())
            .cloned()
    }

    /// Calls this client has in flight here.
    pub(crate) fn in_flight(&self) -> usize {
        self.max_in_flight - self.permits.available_permits()
    }

    /// Observed latency as last updated, if any.
    pub(crate) fn latency(&self) -> Option<Duration> {
        match self.latency_nanos.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// Observed latency as the balancer should see it at `now`: an estimate not updated
    /// for more than [`STALE_AFTER`] decays toward zero with the time constant `DECAY`
    /// (as tower's and Finagle's peak EWMA do). Without it, one slow answer would keep a
    /// provider that callers then avoid at its slow estimate forever: no call, no new
    /// sample. With it, an avoided provider is tried again after a while, and its
    /// next answer says whether it is still slow.
    pub(crate) fn latency_at(&self, now: Instant) -> Option<Duration> {
        let nanos = self.latency_nanos.load(Ordering::Relaxed);
        if nanos == 0 {
            return None;
        }
        let stamp = Duration::from_nanos(self.latency_stamp.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(self.born + stamp);
        if age <= STALE_AFTER {
            return Some(Duration::from_nanos(nanos));
        }
        let keep = (-age.as_secs_f64() / DECAY.as_secs_f64()).exp();
        Some(Duration::from_nanos(((nanos as f64) * keep).max(1.0) as u64))
    }

    /// True when new calls should go elsewhere if possible: the provider said goaway
    /// on a connection that is still open (it is draining), or the address is inside
    /// its reconnect backoff. Once the goaway connection has closed the provider may be
    /// back (restarted on the same address): the next pick reconnects, and a refused
    /// connect starts the backoff.
    pub(crate) fn is_avoided(&self, now: Instant) -> bool {
        let link = self.link.read();
        let going_away = link
            .connection
            .as_ref()
            .is_some_and(|c| c.is_going_away() && !c.is_closed());
        let backing_off = link.retry_at.is_some_and(|t| now < t);
        going_away || backing_off
    }

    /// The breaker admits a call now.
    pub(crate) fn admits(&self, now: Instant) -> bool {
        self.breaker.admits(now)
    }

    /// Forgets connect failures and ejection: the provider reappeared in the registry.
    pub(crate) fn reset(&self) {
        {
            let mut link = self.link.write();
            link.failures = 0;
            link.retry_at = None;
            link.failed_at = None;
        }
        self.breaker.reset();
    }

    /// An in-flight slot, if one is free now.
    pub(crate) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    /// Waits for an in-flight slot (bounded by the caller's deadline).
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, Error> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Config("endpoint closed".into()))
    }

    /// Starts a call through the breaker; false when it must not be sent.
    pub(crate) fn begin(&self) -> bool {
        self.breaker.begin()
    }

    /// Records the outcome of a call that was sent and ended at `now`.
    pub(crate) fn record(&self, success: bool, rtt: Duration, now: Instant) {
        self.judge(success, now);
        if !success {
            return;
        }
        // The clock as a count of nanoseconds since `born`: one subtraction of
        // `Instant`s per call, and integers from there.
        let now_nanos =
            u64::try_from(now.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX);
        if !self.samples_latency(rtt, now_nanos) {
            return;
        }
        let mut latency = self.latency.lock();
        latency.observe(rtt, now);
        let nanos = latency.get().map_or(0, |d| d.as_nanos().max(1));
        self.latency_nanos
            .store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.latency_stamp.store(now_nanos, Ordering::Relaxed);
    }

    /// Whether an answer that took `rtt` updates the latency estimate. Under load,
    /// answers no slower than the estimate update it at most once per
    /// [`SAMPLE_SPACING`]: the average is weighted by time, so the answers skipped in
    /// between would have moved it by as much as the one taken does, and the lock and
    /// `exp` are paid once per spacing instead of once per call. A slower answer
    /// always applies at once (the peak). `now_nanos` counts from `born`.
    fn samples_latency(&self, rtt: Duration, now_nanos: u64) -> bool {
        let estimate = self.latency_nanos.load(Ordering::Relaxed);
        if estimate == 0 || rtt.as_nanos() > u128::from(estimate) {
            return true;
        }
        let stamp = self.latency_stamp.load(Ordering::Relaxed);
        u128::from(now_nanos.saturating_sub(stamp)) >= SAMPLE_SPACING.as_nanos()
    }

    /// Passes an outcome to the breaker, counting the ejection it may cause.
    fn judge(&self, success: bool, now: Instant) {
        if self.breaker.record(success, now) {
            if let Some(metrics) = &self.metrics {
                metrics.ejection(&self.addr);
            }
        }
    }

    /// A call that was sent ended without a verdict (cancelled by the caller).
    pub(crate) fn abandon(&self) {
        self.breaker.abandon_probe();
    }

    /// A live connection, connecting if needed. Inside the backoff the connect waits
    /// for the end of the backoff or [`PROBE_INTERVAL`] after the last attempt,
    /// whichever comes first; if that is past `deadline` the call fails at once.
    pub(crate) async fn connection(
        &self,
        settings: &EndpointSettings,
        deadline: Instant,
    ) -> Result<Arc<Connection>, Error> {
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.usable() {
            return Ok(connection);
        }
        let next_try = {
            let link = self.link.read();
            let next = match (link.retry_at, link.failed_at) {
                (Some(retry_at), Some(failed_at)) => Some(retry_at.min(failed_at + PROBE_INTERVAL)),
                (retry_at, _) => retry_at,
            };
            match next.filter(|t| Instant::now() < *t) {
                Some(next) if next >= deadline => {
                    return Err(Error::Connect {
                        addr: self.addr.clone(),
                        reason: format!(
                            "backing off for {:?}, past the call's deadline, after {} failed attempts (last: {})",
                            next - Instant::now(),
                            link.failures,
                            link.last_error
                        ),
                    });
                }
                next => next,
            }
        };
        if let Some(next) = next_try {
            tokio::time::sleep_until(next).await;
        }
        let result = Connection::connect(&self.addr, &settings.connection).await;
        let mut link = self.link.write();
        match &result {
            Ok(connection) => {
                link.connection = Some(connection.clone());
                link.failures = 0;
                link.retry_at = None;
                link.failed_at = None;
            }
            Err(e) => {
                // A refused or timed-out connect is the provider's failure; the calls
                // refused during the backoff that follows are not counted again.
                self.judge(false, Instant::now());
                link.connection = None;
                link.failures += 1;
                let exp = link.failures.saturating_sub(1).min(16);
                let delay = settings
                    .backoff
                    .initial
                    .saturating_mul(1 << exp)
                    .min(settings.backoff.max);
                let now = Instant::now();
                link.retry_at = Some(now + delay);
                link.failed_at = Some(now);
                link.last_error = e.to_string();
            }
        }
        result
    }
}

/// Endpoints keyed by provider address.
pub(crate) struct Pool {
    endpoints: Mutex<FxHashMap<String, Arc<Endpoint>>>,
    pub(crate) settings: EndpointSettings,
}

impl Pool {
    pub(crate) fn new(settings: EndpointSettings) -> Self {
        Self {
            endpoints: Mutex::default(),
            settings,
        }
    }

    /// The endpoint for `addr`, created on first use.
    pub(crate) fn endpoint(&self, addr: &str) -> Arc<Endpoint> {
        let mut endpoints = self.endpoints.lock();
        if let Some(endpoint) = endpoints.get(addr) {
            return endpoint.clone();
        }
        let max = self.settings.max_in_flight.max(1);
        endpoints
            .entry(addr.to_string())
            .or_insert_with(|| {
                Arc::new(Endpoint {
                    addr: addr.to_string(),
                    link: RwLock::default(),
                    connecting: tokio::sync::Mutex::new(()),
                    breaker: Breaker::new(self.settings.breaker),
                    latency: Mutex::default(),
                    latency_nanos: AtomicU64::new(0),
                    latency_stamp: AtomicU64::new(0),
                    born: Instant::now(),
                    permits: Arc::new(Semaphore::new(max)),
                    max_in_flight: max,
                    metrics: self.settings.metrics.clone(),
                })
            })
            .clone()
    }

    /// Forgets endpoints whose address no service lists any more. Their connections
    /// close once the calls still running on them have finished.
    pub(crate) fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.endpoints.lock().retain(|addr, _| {
            let kept = keep(addr);
            if !kept {
                tracing::debug!(%addr, "provider removed; its connection drains and closes");
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peak_ewma_jumps_up_and_decays_down() {
        let mut ewma = PeakEwma::default();
        assert_eq!(ewma.get(), None);
        ewma.observe(Duration::from_millis(1), Instant::now());
        ewma.observe(Duration::from_millis(50), Instant::now());
        assert_eq!(
            ewma.get(),
            Some(Duration::from_millis(50)),
            "peaks apply at once"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        ewma.observe(Duration::from_millis(1), Instant::now());
        let after = ewma.get().unwrap();
        assert!(after < Duration::from_millis(10), "decayed to {after:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_estimate_nobody_updates_decays_for_the_balancer() {
        let pool = Pool::new(super::super::endpoint_settings(&Default::default(), None));
        let endpoint = pool.endpoint("127.0.0.1:1");
        assert_eq!(endpoint.latency_at(Instant::now()), None);
        endpoint.record(true, Duration::from_millis(50), Instant::now());
        tokio::time::advance(STALE_AFTER).await;
        assert_eq!(
            endpoint.latency_at(Instant::now()),
            Some(Duration::from_millis(50)),
            "a recent estimate is used as is"
        );
        tokio::time::advance(Duration::from_secs(15)).await;
        let stale = endpoint.latency_at(Instant::now()).unwrap();
        assert!(
            stale < Duration::from_millis(3),
            "16 s without a sample: {stale:?}"
        );
        assert_eq!(
            endpoint.latency(),
            Some(Duration::from_millis(50)),
            "the estimate itself is unchanged until the next sample"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn answers_no_slower_than_the_estimate_update_it_once_per_spacing() {
        let pool = Pool::new(super::super::endpoint_settings(&Default::default(), None));
        let endpoint = pool.endpoint("127.0.0.1:1");
        let ms = Duration::from_millis;
        endpoint.record(true, ms(10), Instant::now());
        tokio::time::advance(SAMPLE_SPACING / 2).await;
        endpoint.record(true, ms(1), Instant::now());
        assert_eq!(
            endpoint.latency(),
            Some(ms(10)),
            "within the spacing: skipped"
        );

        endpoint.record(true, ms(40), Instant::now());
        assert_eq!(
            endpoint.latency(),
            Some(ms(40)),
            "a slower answer applies at once"
        );

        tokio::time::advance(Duration::from_secs(5)).await;
        endpoint.record(true, ms(1), Instant::now());
        let decayed = endpoint.latency().unwrap();
        assert!(decayed < ms(20), "past the spacing: applied ({decayed:?})");
    }
}
