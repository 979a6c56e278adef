//! What a connection, and the whole server, may hold at once: counted in calls and bytes.
//!
//! A provider sits on the network edge, so every byte a peer can make it hold is paid
//! for before it is held:
//!
//! - **In-flight calls per connection** ([`ConnectionBudget::take_slot`]): the reader takes
//!   a slot before it reads the next frame, so a connection at its limit is simply not
//!   read (TCP backpressure) instead of queueing work without bound.
//! - **Bytes per connection** ([`ConnectionBudget::reserve`]): a request's bytes (on the
//!   wire, then inflated) are held until its handler finishes; an answer's bytes from
//!   the moment it is ready until the writer has put it on the socket. A peer that stops
//!   reading its answers therefore stops being read itself once this budget is full, and
//!   the write timeout cuts it off.
//! - **Request bytes server-wide** ([`MemoryBudget`]): the sum of every connection's
//!   request bodies (inflated) that handlers still hold. A request that does not fit is
//!   refused `Overloaded` before it is decompressed or run, so the caller may retry it
//!   elsewhere.
//!
//! Per-connection byte counts are semaphore permits, so waiting is fair (first come,
//! first served); the server-wide budget is never waited on and is a plain atomic
//! counter. Every charge is released by dropping it. A single charge larger than a budget is clamped
//! to the whole budget, so one maximum-size frame can always pass on its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Bytes held against a budget; released when dropped.
pub(crate) type Charge = OwnedSemaphorePermit;

/// Clamps a byte count to a semaphore's permit range.
fn permits(bytes: usize, capacity: usize) -> u32 {
    u32::try_from(bytes.min(capacity)).unwrap_or(u32::MAX)
}

/// The server-wide budget for request bodies held by handlers.
///
/// Never waited on (a request that does not fit is refused), so a counter does: taking
/// and returning bytes is one atomic operation each, with no lock.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    used: Arc<AtomicUsize>,
    capacity: usize,
}

/// Bytes held against the [`MemoryBudget`]; returned when dropped.
#[derive(Debug)]
pub(crate) struct MemoryCharge {
    used: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for MemoryCharge {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl MemoryBudget {
    /// A budget of `capacity` bytes (at least one byte).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            used: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// Takes `bytes` now, or says the budget is in use (the caller refuses the request).
    pub(crate) fn try_reserve(&self, bytes: usize) -> Result<MemoryCharge, String> {
        let bytes = bytes.min(self.capacity);
        let fits = |used: usize| {
            used.checked_add(bytes)
                .filter(|&total| total <= self.capacity)
        };
        match self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, fits)
        {
            Ok(_) => Ok(MemoryCharge {
                used: self.used.clone(),
                bytes,
            }),
            Err(_) => Err(format!(
                "server memory budget of {} bytes for request bodies is in use",
                self.capacity
            )),
        }
    }

    /// Bytes not held by any request right now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.capacity - self.used.load(Ordering::Acquire)
    }
}

/// The connection ended: its budget no longer hands out anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

/// One connection's budgets: in-flight calls, bytes, and its turn at decompression.
#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    slots: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    capacity: usize,
    /// One decompression at a time per connection: a peer sending compression bombs
    /// occupies at most one blocking thread, never the others' workers.
    inflating: Arc<Semaphore>,
}

impl ConnectionBudget {
    /// A budget of `max_in_flight` calls and `max_bytes` bytes (each at least one).
    pub(crate) fn new(max_in_flight: usize, max_bytes: usize) -> Self {
        let capacity = max_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(
                max_in_flight.clamp(1, Semaphore::MAX_PERMITS),
            )),
            bytes: Arc::new(Semaphore::new(capacity)),
            capacity,
            inflating: Arc::new(Semaphore::new(1)),
        }
    }

    /// Waits for an in-flight call slot.
    pub(crate) async fn take_slot(&self) -> Result<OwnedSemaphorePermit, Closed> {
        self.slots.clone().acquire_owned().await.map_err(|_| Closed)
    }

    /// An in-flight call slot if one is free now.
    pub(crate) fn try_take_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Waits until `bytes` fit in the connection's byte budget.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<Charge, Closed> {
        let permits = permits(bytes, self.capacity);
        // Most charges fit at once: no acquire future, no waiter list.
        match self.bytes.clone().try_acquire_many_owned(permits) {
            Ok(charge) => Ok(charge),
            Err(TryAcquireError::Closed) => Err(Closed),
            Err(TryAcquireError::NoPermits) => self
                .bytes
                .clone()
                .acquire_many_owned(permits)
                .await
                .map_err(|_| Closed),
        }
    }

    /// Waits until `bytes` of an answer fit in the byte budget and takes them for the
    /// writer to give back ([`ConnectionBudget::release`]) once they are on the socket.
    /// Returns the permits taken.
    pub(crate) async fn reserve_for_writer(&self, bytes: usize) -> Result<u32, Closed> {
        let permits = permits(bytes, self.capacity);
        match self.bytes.try_acquire_many(permits) {
            Ok(taken) => taken.forget(),
            Err(TryAcquireError::Closed) => return Err(Closed),
            Err(TryAcquireError::NoPermits) => self
                .bytes
                .acquire_many(permits)
                .await
                .map_err(|_| Closed)?
                .forget(),
        }
        Ok(permits)
    }

    /// Gives back budget taken by [`ConnectionBudget::reserve_for_writer`].
    pub(crate) fn release(&self, permits: u32) {
        self.bytes.add_permits(permits as usize);
    }

    /// Waits for this connection's turn to decompress a request body.
    pub(crate) async fn inflate_turn(&self) -> Result<OwnedSemaphorePermit, Closed> {
        self.inflating
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Closed)
    }

    /// Ends the connection's budget: every waiter, now and later, gets [`Closed`].
    pub(crate) fn close(&self) {
        self.slots.close();
        self.bytes.close();
        self.inflating.close();
    }

    /// Bytes not held right now.
    #[cfg(test)]
    pub(crate) fn available_bytes(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_charge_over_the_budget_takes_the_whole_budget_instead_of_waiting_forever() {
        let budget = ConnectionBudget::new(4, 100);
        let charge = budget.reserve(1_000).await.unwrap();
        assert_eq!(budget.available_bytes(), 0);
        drop(charge);
        assert_eq!(budget.available_bytes(), 100);
    }

    #[tokio::test]
    async fn reserve_waits_for_bytes_and_close_wakes_waiters() {
        let budget = Arc::new(ConnectionBudget::new(4, 10));
        let held = budget.reserve(8).await.unwrap();
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(5).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "5 more bytes do not fit beside 8 of 10"
        );
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        let _all = budget.reserve(10).await.unwrap();
        let blocked = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(1).await.map(|_| ()) })
        };
        budget.close();
        assert_eq!(blocked.await.unwrap(), Err(Closed));
        assert_eq!(budget.take_slot().await.map(|_| ()), Err(Closed));
    }

    #[test]
    fn memory_budget_refuses_instead_of_waiting() {
        let budget = MemoryBudget::new(10);
        let held = budget.try_reserve(6).unwrap();
        let refused = budget.try_reserve(6).unwrap_err();
        assert!(refused.contains("10 bytes"), "{refused}");
        drop(held);
        assert!(budget.try_reserve(6).is_ok());
        assert_eq!(budget.available(), 10);
    }
}
