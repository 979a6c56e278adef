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
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut flags = [0u8; 1];
        hex::decode_to_slice(&b[3..35], &mut trace_id).ok()?;
        hex::decode_to_slice(&b[36..52], &mut span_id).ok()?;
        hex::decode_to_slice(&b[53..55], &mut flags).ok()?;
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
            trace_id: nonzero(rand::random),
            span_id: nonzero(rand::random),
            flags: SAMPLED,
        }
    }

    /// The same trace and flags with a new random span id: what a call made on behalf
    /// of this span sends.
    pub fn child(&self) -> Self {
        Self {
            span_id: nonzero(rand::random),
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
    /// The header's bytes: `00-<trace id>-<span id>-<flags>` in lowercase hex.
    fn encode(&self) -> Result<[u8; LEN], hex::FromHexError> {
        let mut out = [b'-'; LEN];
        out[..2].copy_from_slice(b"00");
        hex::encode_to_slice(self.trace_id.to_be_bytes(), &mut out[3..35])?;
        hex::encode_to_slice(self.span_id.to_be_bytes(), &mut out[36..52])?;
        hex::encode_to_slice([self.flags], &mut out[53..55])?;
        Ok(out)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The slices above have exactly the lengths the ids need; hex is ASCII.
        let bytes = self.encode().map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&bytes).map_err(|_| fmt::Error)?)
    }
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
    }
}
