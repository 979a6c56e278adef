//! One connection per provider address, opened on first use and re-opened with backoff.
//!
//! Concurrent callers to an address that has no live connection wait for a single
//! connect attempt instead of each opening their own. After a failed attempt the address
//! is not tried again until its backoff (doubling up to a ceiling) has passed: calls in
//! that window fail fast with [`Error::Connect`] instead of storming a dead provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::transport::{Connection, ConnectionSettings};
use crate::Error;

/// Reconnect backoff bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

#[derive(Default)]
struct SlotState {
    connection: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn usable(&self) -> Option<Arc<Connection>> {
        self.state
            .lock()
            .connection
            .as_ref()
            .filter(|c| c.is_usable())
            .cloned()
    }
}

/// Connections keyed by provider address.
pub(crate) struct Pool {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    settings: ConnectionSettings,
    backoff: Backoff,
}

impl Pool {
    pub(crate) fn new(settings: ConnectionSettings, backoff: Backoff) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            settings,
            backoff,
        }
    }

    fn slot(&self, addr: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(addr) {
            return slot.clone();
        }
        slots.entry(addr.to_string()).or_default().clone()
    }

    /// A live connection to `addr`, connecting if needed.
    pub(crate) async fn get(&self, addr: &str) -> Result<Arc<Connection>, Error> {
        let slot = self.slot(addr);
        if let Some(connection) = slot.usable() {
            return Ok(connection);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(connection) = slot.usable() {
            return Ok(connection);
        }
        {
            let state = slot.state.lock();
            if let Some(retry_at) = state.retry_at.filter(|t| Instant::now() < *t) {
                return Err(Error::Connect {
                    addr: addr.to_string(),
                    reason: format!(
                        "backing off for {:?} after {} failed attempts (last: {})",
                        retry_at - Instant::now(),
                        state.failures,
                        state.last_error
                    ),
                });
            }
        }
        let result = Connection::connect(addr, &self.settings).await;
        let mut state = slot.state.lock();
        match &result {
            Ok(connection) => {
                state.connection = Some(connection.clone());
                state.failures = 0;
                state.retry_at = None;
            }
            Err(e) => {
                state.connection = None;
                state.failures += 1;
                let exp = state.failures.saturating_sub(1).min(16);
                let delay = self
                    .backoff
                    .initial
                    .saturating_mul(1 << exp)
                    .min(self.backoff.max);
                state.retry_at = Some(Instant::now() + delay);
                state.last_error = e.to_string();
            }
        }
        result
    }

    /// Calls in flight to `addr` (0 when not connected).
    pub(crate) fn in_flight(&self, addr: &str) -> usize {
        let slots = self.slots.lock();
        slots
            .get(addr)
            .and_then(|s| s.state.lock().connection.as_ref().map(|c| c.in_flight()))
            .unwrap_or(0)
    }

    /// True when `addr` should not get new calls now: it said goaway, or it is inside
    /// its reconnect backoff.
    pub(crate) fn is_avoided(&self, addr: &str) -> bool {
        let slots = self.slots.lock();
        let Some(slot) = slots.get(addr) else {
            return false;
        };
        let state = slot.state.lock();
        let going_away = state.connection.as_ref().is_some_and(|c| c.is_going_away());
        let backing_off = state.retry_at.is_some_and(|t| Instant::now() < t);
        going_away || backing_off
    }
}
