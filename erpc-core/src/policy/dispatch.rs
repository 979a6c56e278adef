//! Where a provider runs a call's handler: on the connection's reader, or as a task.

use std::str::FromStr;

use crate::Error;

/// How a provider hands an admitted call to its handler (Dubbo's `dispatcher`).
///
/// A call that is its own task from the start costs a task spawn, and under load the
/// runtime wakes another worker thread to share the new tasks: thread wake-ups that
/// cost more than a small call itself. Polling the call once on the connection's reader
/// costs neither when the handler finishes in that poll, as most do (a lookup, a
/// computation, a cache hit). A handler that has to wait (on I/O, a lock, another
/// service) continues as its own task from where it stopped.
///
/// What the reader runs delays the connection's next requests, so the reader runs a
/// call's first poll only for a method whose last first poll, timed wherever it ran,
/// took at most 100 µs. A method's first call is its own task (nothing is known of it
/// yet); after a long first poll (CPU-heavy work before the first wait) the method's
/// calls are spawned and timed there until one is short again, and at least for the
/// next 256 calls (twice as many each time long ones come back), so a method that is
/// only sometimes long stays off the reader. The reader never tries a method to learn
/// its pace. Choose [`Dispatch::Spawn`] when even a short first poll on the reader is
/// unwelcome, e.g. handlers whose first poll is sometimes long without warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// A call's first poll runs on the connection's reader when its method's first
    /// polls are short; a handler that waits continues as its own task, and a new or
    /// CPU-heavy method is its own task from the start (default).
    #[default]
    Adaptive,
    /// Every call is its own task from the start (Dubbo's `all` dispatcher).
    Spawn,
}

impl Dispatch {
    /// The configuration name: `adaptive` or `spawn`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::Spawn => "spawn",
        }
    }
}

impl std::fmt::Display for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dispatch {
    type Err = Error;

    /// `adaptive` or `spawn`, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "adaptive" => Ok(Self::Adaptive),
            "spawn" => Ok(Self::Spawn),
            _ => Err(Error::Config(format!(
                "unknown dispatch {s:?} (adaptive, spawn)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_unknown_ones_are_refused() {
        for dispatch in [Dispatch::Adaptive, Dispatch::Spawn] {
            assert_eq!(dispatch.to_string().parse::<Dispatch>().unwrap(), dispatch);
        }
        assert_eq!(" SPAWN ".parse::<Dispatch>().unwrap(), Dispatch::Spawn);
        let error = "inline".parse::<Dispatch>().unwrap_err().to_string();
        assert!(error.contains("adaptive, spawn"), "{error}");
    }
}
