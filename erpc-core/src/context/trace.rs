//! The W3C Trace Context `traceparent` value that travels in a call's metadata.
//!
//! Format (version `00` only): `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`,
//! lowercase, 55 characters; an all-zero trace or span id is invalid
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>). Parsing is strict and a
//! malformed value is ignored, never an error of the call.

use std::fmt;

/// The metadata key the trace context travels under.
pub const TRACEPARENT: &str = "traceparent";

/// A parsed `traceparent`: the trace a call belongs to and the span that made it.
///
/// ```
/// use erpc_core::context::TraceParent;
///
/// let parent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
/// let child = parent.child();
/// assert_eq!(child.trace_id(), parent.trace_id());
/// assert_ne!(child.span_id(), parent.span_id());
/// assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
/// assert_eq!(TraceParent::parse("00-not-a-trace"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

const LEN: usize = 55;

/// The `sampled` bit of the trace flags.
const SAMPLED: u8 = 0x01;

impl TraceParent {
    /// Parses a version-00 `traceparent`; `None` for anything malformed (including
    /// uppercase hex, which the W3C format does not allow).
    pub fn parse(value: &str) -> Option<Self> {
        let b = value.as_bytes();
        if b.len() != LEN
            || &b[..3] != b"00-"
            || b[35] != b'-'
            || b[52] != b'-'
            || b.iter().any(u8::is_ascii_uppercase)
        {
            return None;
        }
        // The table-driven decoder: for these few bytes several times cheaper than the
        // SIMD one. A `0x` it would strip leaves a slice too short for the array.
        let trace_id = const_hex::const_decode_to_array::<16>(&b[3..35]).ok()?;
        let span_id = const_hex::const_decode_to_array::<8>(&b[36..52]).ok()?;
        let flags = const_hex::const_decode_to_array::<1>(&b[53..55]).ok()?;
        let (trace_id, span_id) = (u128::from_be_bytes(trace_id), u64::from_be_bytes(span_id));
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            flags: flags[0],
        })
    }

    /// A new trace with random ids (sampled flag set).
    pub fn random() -> Self {
        Self {
            trace_id: nonzero(random),
            span_id: nonzero(random),
            flags: SAMPLED,
        }
    }

    /// The same trace and flags with a new random span id: what a call made on behalf
    /// of this span sends.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero(random),
            ..*self
        }
    }

    /// The 16-byte trace id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The 8-byte span id of the caller.
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller recorded its span (the W3C `sampled` flag, bit 0): the next
    /// hops of a sampled trace record theirs too.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The same ids with the `sampled` flag set to `sampled`.
    ///
    /// ```
    /// use erpc_core::context::TraceParent;
    ///
    /// let unsampled = TraceParent::random().with_sampled(false);
    /// assert!(!unsampled.sampled());
    /// assert!(unsampled.to_string().ends_with("-00"));
    /// assert!(unsampled.child().with_sampled(true).sampled());
    /// ```
    pub fn with_sampled(self, sampled: bool) -> Self {
        let flags = match sampled {
            true => self.flags | SAMPLED,
            false => self.flags & !SAMPLED,
        };
        Self { flags, ..self }
    }
}

impl TraceParent {
    /// The header value, in one allocation of its exact size (what `to_string` would
    /// grow to in several).
    pub(crate) fn header_value(&self) -> String {
        let mut value = String::with_capacity(LEN);
        // Writing to a `String` cannot fail.
        let _ = self.write_to(&mut value);
        value
    }

    /// Writes `00-<trace id>-<span id>-<flags>` in lowercase hex.
    fn write_to(&self, out: &mut impl fmt::Write) -> fmt::Result {
        // `const_encode` is the table-driven encoder: for these few bytes it is
        // several times cheaper than the SIMD one, and its output needs no checking.
        out.write_str("00-")?;
        out.write_str(const_hex::const_encode::<16, false>(&self.trace_id.to_be_bytes()).as_str())?;
        out.write_str("-")?;
        out.write_str(const_hex::const_encode::<8, false>(&self.span_id.to_be_bytes()).as_str())?;
        out.write_str("-")?;
        out.write_str(const_hex::const_encode::<1, false>(&[self.flags]).as_str())
    }
}

impl fmt::Display for TraceParent {
    /// `00-<trace id>-<span id>-<flags>` in lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

/// Draws ids from a per-thread `SmallRng` seeded from the OS: ids must be unique and
/// unpredictable enough to spread over samplers, not secret (OpenTelemetry's SDK draws
/// them the same way), and the thread-local `ChaCha` generator costs several times as
/// much per id.
pub(crate) fn random<T>() -> T
where
    rand::distributions::Standard: rand::distributions::Distribution<T>,
{
    use rand::{Rng, SeedableRng};
    thread_local! {
        static IDS: std::cell::RefCell<rand::rngs::SmallRng> =
            std::cell::RefCell::new(rand::rngs::SmallRng::from_entropy());
    }
    IDS.with(|rng| rng.borrow_mut().gen())
}

fn nonzero<T: Default + PartialEq>(mut draw: impl FnMut() -> T) -> T {
    loop {
        let value = draw();
        if value != T::default() {
            return value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_w3c_example() {
        let tp = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(tp.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(tp.span_id(), 0x00f067aa0ba902b7);
        assert_eq!(tp.flags(), 1);
        assert_eq!(tp.to_string(), SAMPLE);
    }

    #[test]
    fn refuses_malformed_values() {
        let bad = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902é-01",
            "00-0x4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0x00f067aa0ba902-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ];
        for value in bad {
            assert_eq!(TraceParent::parse(value), None, "{value:?} was accepted");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceParent::parse(SAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_eq!(child.flags(), parent.flags());
        assert_ne!(child.span_id(), parent.span_id());
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
        let fresh = TraceParent::random();
        assert_eq!(TraceParent::parse(&fresh.to_string()), Some(fresh));
        assert_eq!(fresh.header_value(), fresh.to_string());
        assert_eq!(fresh.header_value().capacity(), LEN);
    }
}
