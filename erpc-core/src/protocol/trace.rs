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
    /// The trace id's high and low halves (two words rather than a `u128`: 8-byte
    /// alignment, so metadata keeping one beside its text needs no padding for it).
    trace_id: [u64; 2],
    span_id: u64,
    flags: u8,
}

/// Length of a version-00 `traceparent`.
pub(crate) const LEN: usize = 55;

/// The `sampled` bit of the trace flags.
const SAMPLED: u8 = 0x01;

impl TraceParent {
    /// Parses a version-00 `traceparent`; `None` for anything malformed (including
    /// uppercase hex, which the W3C format does not allow).
    pub fn parse(value: &str) -> Option<Self> {
        Self::parse_bytes(value.as_bytes())
    }

    /// [`TraceParent::parse`] on bytes off the wire: a value it accepts is ASCII.
    pub(crate) fn parse_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != LEN || &b[..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = hex16(&b[3..19]).zip(hex16(&b[19..35]));
        let span_id = hex16(&b[36..52]);
        let flags = hex2(b[53], b[54]);
        let (Some((high, low)), Some(span_id), Some(flags)) = (trace_id, span_id, flags) else {
            return None;
        };
        ((high, low) != (0, 0) && span_id != 0).then_some(Self {
            trace_id: [high, low],
            span_id,
            flags,
        })
    }

    /// A new trace with random ids (sampled flag set).
    pub fn random() -> Self {
        let trace_id: u128 = nonzero(random);
        Self {
            trace_id: [(trace_id >> 64) as u64, trace_id as u64],
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
        let [high, low] = self.trace_id;
        u128::from(high) << 64 | u128::from(low)
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
    /// `00-<trace id>-<span id>-<flags>` in lowercase hex (the value is written for
    /// every call a client traces, sampled or not: eight digits per few word
    /// operations).
    pub(crate) fn encode(&self) -> [u8; LEN] {
        let mut out = [b'-'; LEN];
        out[..2].copy_from_slice(b"00");
        let [high, low] = self.trace_id;
        out[3..19].copy_from_slice(&hex_digits(high));
        out[19..35].copy_from_slice(&hex_digits(low));
        out[36..52].copy_from_slice(&hex_digits(self.span_id));
        out[53..].copy_from_slice(&hex_digits(u64::from(self.flags))[14..]);
        out
    }
}

/// The 16 lowercase hex digits of `value`, most significant first.
fn hex_digits(value: u64) -> [u8; 16] {
    let [high, low] = [(value >> 32) as u32, value as u32].map(spread_nibbles);
    let mut out = [0; 16];
    out[..8].copy_from_slice(&ascii_digits(high).to_be_bytes());
    out[8..].copy_from_slice(&ascii_digits(low).to_be_bytes());
    out
}

/// The eight nibbles of `value`, one per byte lane, the most significant in the
/// highest lane.
fn spread_nibbles(value: u32) -> u64 {
    let x = u64::from(value);
    let x = (x | x << 16) & 0x0000_FFFF_0000_FFFF;
    let x = (x | x << 8) & 0x00FF_00FF_00FF_00FF;
    (x | x << 4) & 0x0F0F_0F0F_0F0F_0F0F
}

/// Every lane's nibble as its lowercase hex digit: `0` + n, plus 39 more (up to
/// `a`) in the lanes of 10 and above, which adding 6 carries into bit 4.
fn ascii_digits(nibbles: u64) -> u64 {
    let letters = ((nibbles + 6 * LANES) >> 4) & LANES;
    nibbles + u64::from(b'0') * LANES + 39 * letters
}

impl fmt::Display for TraceParent {
    /// `00-<trace id>-<span id>-<flags>` in lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ASCII by construction, so the check cannot fail; no `String` is made.
        f.write_str(std::str::from_utf8(&self.encode()).map_err(|_| fmt::Error)?)
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

/// A byte's bit in every lane of a `u64` read as eight bytes.
const LANES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every lane.
const HIGH_BITS: u64 = 0x80 * LANES;

/// The value of 16 lowercase hex digits; `None` if `digits` holds anything else.
///
/// Eight digits at a time as the lanes of a `u64` (SWAR): the range checks and the
/// nibble packing are a few word operations instead of a table load and a branch per
/// digit. A server parses the `traceparent` of every traced call it takes.
fn hex16(digits: &[u8]) -> Option<u64> {
    let (first, second) = digits.split_first_chunk::<8>()?;
    let second: &[u8; 8] = second.try_into().ok()?;
    let high = hex8(u64::from_le_bytes(*first))?;
    let low = hex8(u64::from_le_bytes(*second))?;
    Some(u64::from(high) << 32 | u64::from(low))
}

/// The value of eight lowercase hex digits read little-endian (the first digit in the
/// lowest lane); `None` unless every lane is `0`–`9` or `a`–`f`.
fn hex8(lanes: u64) -> Option<u32> {
    if lanes & HIGH_BITS != 0 {
        return None; // not ASCII: the range checks below assume 7-bit lanes
    }
    let digits = in_range(lanes, b'0', b'9');
    let letters = in_range(lanes, b'a', b'f');
    if digits | letters != HIGH_BITS {
        return None;
    }
    // `0`–`9` are 0x30–0x39 and `a`–`f` 0x61–0x66: the low nibble, plus 9 for letters
    // (bit 6 set). No lane carries into the next.
    let nibbles = (lanes & (0x0F * LANES)) + 9 * ((lanes >> 6) & LANES);
    // Lane k holds the (k+1)th most significant nibble: fold pairs of lanes, then
    // pairs of 16-bit halves, then of 32-bit ones.
    let bytes = (nibbles << 4 | nibbles >> 8) & 0x00FF_00FF_00FF_00FF;
    let halves = (bytes << 8 | bytes >> 16) & 0x0000_FFFF_0000_FFFF;
    Some(((halves << 16 | halves >> 32) & 0xFFFF_FFFF) as u32)
}

/// The high bit of each 7-bit lane of `lanes` that lies in `low..=high`.
fn in_range(lanes: u64, low: u8, high: u8) -> u64 {
    // Adding 0x80 - low sets a lane's high bit exactly when it is >= low; adding
    // 0x7F - high exactly when it is > high. Neither sum leaves its lane.
    let at_least_low = lanes + u64::from(0x80 - low) * LANES;
    let above_high = lanes + u64::from(0x7F - high) * LANES;
    at_least_low & !above_high & HIGH_BITS
}

/// The value of two lowercase hex digits (the trace flags).
fn hex2(first: u8, second: u8) -> Option<u8> {
    let digit = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    Some(digit(first)? << 4 | digit(second)?)
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
    }

    #[test]
    fn every_byte_in_every_digit_position_is_read_as_the_format_says() {
        // Any byte in any of the 50 hex positions: accepted exactly when it is a
        // lowercase hex digit, and then read as that digit's value.
        let positions = (3..35).chain(36..52).chain(53..55);
        for at in positions {
            for byte in 0..=u8::MAX {
                let mut value = SAMPLE.as_bytes().to_vec();
                value[at] = byte;
                let Ok(value) = String::from_utf8(value) else {
                    continue; // a lone non-ASCII byte is no `&str`
                };
                let expected = char::from(byte)
                    .to_digit(16)
                    .filter(|_| !byte.is_ascii_uppercase());
                let parsed = TraceParent::parse(&value);
                match expected {
                    None => assert_eq!(parsed, None, "{value:?} was accepted"),
                    Some(_) => {
                        let parsed = parsed.unwrap_or_else(|| panic!("{value:?} refused"));
                        assert_eq!(parsed.to_string(), value, "{value:?} read wrongly");
                    }
                }
            }
        }
        // Non-ASCII in place of two digits keeps the length: refused too.
        for at in (3..34).chain(36..51).chain(53..54) {
            let value = format!("{}é{}", &SAMPLE[..at], &SAMPLE[at + 2..]);
            assert_eq!(TraceParent::parse(&value), None, "{value:?} was accepted");
        }
    }

    #[test]
    fn ids_round_trip_through_the_text_form() {
        let extremes = [
            (1, 1, 0),
            (u128::MAX, u64::MAX, 0xff),
            (1 << 127, 1 << 63, 0x01),
        ];
        for (trace_id, span_id, flags) in extremes {
            let tp = TraceParent {
                trace_id: [(trace_id >> 64) as u64, trace_id as u64],
                span_id,
                flags,
            };
            assert_eq!(tp.trace_id(), trace_id);
            assert_eq!(TraceParent::parse(&tp.to_string()), Some(tp));
        }
        for _ in 0..10_000 {
            let tp = TraceParent::random().with_sampled(random());
            let text = tp.to_string();
            assert_eq!(text.len(), LEN);
            assert_eq!(TraceParent::parse(&text), Some(tp), "{text}");
        }
    }

    #[test]
    fn the_digits_written_are_those_of_the_standard_formatter() {
        let mut values = vec![0, 1, 9, 10, 15, 16, u64::MAX, 0x0123_4567_89ab_cdef];
        values.extend((0..16).map(|nibble| nibble * 0x1111_1111_1111_1111));
        values.extend((0..64).map(|bit| 1 << bit));
        values.extend((0..10_000).map(|_| random::<u64>()));
        for value in values {
            let digits = hex_digits(value);
            assert_eq!(
                std::str::from_utf8(&digits),
                Ok(format!("{value:016x}").as_str())
            );
        }
        for _ in 0..1_000 {
            let tp = TraceParent::random().with_sampled(random());
            let expected = format!(
                "00-{:032x}-{:016x}-{:02x}",
                tp.trace_id(),
                tp.span_id(),
                tp.flags()
            );
            assert_eq!(tp.to_string(), expected);
        }
    }
}
