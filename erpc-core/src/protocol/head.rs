//! The request head: what a request carries besides its arguments.
//!
//! ```text
//! u32  deadline in milliseconds, relative to receipt (0 = none)
//! str  interface      (u16 length + UTF-8)
//! str  group
//! str  version
//! str  method
//! u16  metadata pair count, then per pair: str key, str value
//! ```

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use smallvec::SmallVec;

use super::trace::{self, TraceParent, TRACEPARENT};
use super::ServiceKey;

/// Key/value pairs that travel with a request (trace ids, caller name, ...).
///
/// Keys erpc itself sets, and those it reads off the wire that are well known
/// (`traceparent`, `tracestate`, `authorization`), are kept without a copy, and one
/// pair (a traced call's `traceparent`) is kept without allocating a list. A
/// well-formed `traceparent` is kept as its parsed ids beside its text: written once
/// by the client that sends it, parsed once by the server that reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(SmallVec<[(Cow<'static, str>, Value); 1]>);

/// A metadata value.
#[derive(Clone)]
enum Value {
    /// Any text.
    Text(String),
    /// A well-formed `traceparent` (boxed: every `Metadata`, most of them empty, stays
    /// as small as with text only).
    Trace(Box<TraceValue>),
}

/// A well-formed `traceparent`: its ids and its text (ASCII).
#[derive(Clone)]
struct TraceValue {
    parent: TraceParent,
    text: [u8; trace::LEN],
}

impl Value {
    fn trace(parent: TraceParent) -> Self {
        let text = parent.encode();
        Value::Trace(Box::new(TraceValue { parent, text }))
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Text(text) => text.as_bytes(),
            Value::Trace(trace) => &trace.text,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Value::Text(text) => text,
            // ASCII by construction: the check cannot fail.
            Value::Trace(trace) => std::str::from_utf8(&trace.text).unwrap_or_default(),
        }
    }
}

/// Values are equal when their text is: a `traceparent` is the same whether it was
/// set as text or as ids.
impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Value {}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Keys decoded without allocating: the W3C trace context and the auth filter's.
const WELL_KNOWN_KEYS: [&str; 3] = [TRACEPARENT, "tracestate", "authorization"];

impl Metadata {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.set(Cow::Owned(key.into()), Value::Text(value.into()));
    }

    /// [`Metadata::insert`] for a key known when compiling (no copy of it is made).
    pub(crate) fn insert_static(&mut self, key: &'static str, value: String) {
        self.set(Cow::Borrowed(key), Value::Text(value));
    }

    /// Sets the `traceparent` to `parent` (its text is written here, into the set).
    pub(crate) fn set_trace(&mut self, parent: TraceParent) {
        self.set(Cow::Borrowed(TRACEPARENT), Value::trace(parent));
    }

    /// The `traceparent`, when present and well formed (parsed here only if it was
    /// set as text).
    pub(crate) fn trace(&self) -> Option<TraceParent> {
        match &self.find(TRACEPARENT)?.1 {
            Value::Trace(trace) => Some(trace.parent),
            Value::Text(text) => TraceParent::parse(text),
        }
    }

    fn find(&self, key: &str) -> Option<&(Cow<'static, str>, Value)> {
        self.0.iter().find(|(k, _)| k == key)
    }

    fn set(&mut self, key: Cow<'static, str>, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Adds a pair read off the wire (a repeated key is kept as sent); fails on a key
    /// or value that is not UTF-8. A well-formed `traceparent` is parsed here, not
    /// copied into a `String`.
    fn push_decoded(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        if key == TRACEPARENT.as_bytes() {
            if let (Some(parent), Ok(text)) = (TraceParent::parse_bytes(value), value.try_into()) {
                let trace = Value::Trace(Box::new(TraceValue { parent, text }));
                self.0.push((Cow::Borrowed(TRACEPARENT), trace));
                return Ok(());
            }
        }
        let key = utf8(key, "metadata key")?;
        let value = utf8(value, "metadata value")?;
        let key = match WELL_KNOWN_KEYS.iter().find(|known| **known == key) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(key.to_owned()),
        };
        self.0.push((key, Value::Text(value.to_owned())));
        Ok(())
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|(_, v)| v.as_str())
    }

    /// All pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// The pairs as they are written on the wire.
    fn wire_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes `key`, returning its value.
    ///
    /// ```
    /// let mut metadata = erpc_core::Metadata::new();
    /// metadata.insert("k", "v");
    /// assert_eq!(metadata.remove("k").as_deref(), Some("v"));
    /// assert!(metadata.is_empty());
    /// ```
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(match self.0.remove(at).1 {
            Value::Text(text) => text,
            trace => trace.as_str().to_owned(),
        })
    }
}

/// The decoded head of a request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Time the caller still waits, measured from when the frame was sent.
    pub deadline: Option<Duration>,
    /// Service interface, group and version.
    pub service: ServiceKey,
    /// Method name.
    pub method: String,
    /// Request metadata.
    pub metadata: Metadata,
}

/// Borrowed view used to encode a head without building a [`RequestHead`].
pub(crate) struct HeadRef<'a> {
    pub(crate) deadline: Option<Duration>,
    pub(crate) service: &'a ServiceKey,
    pub(crate) method: &'a str,
    /// `service` and `method` already encoded ([`encode_names`]), when the caller keeps
    /// them: written as they are.
    pub(crate) names: Option<&'a [u8]>,
    pub(crate) metadata: &'a Metadata,
}

/// The head's four names (interface, group, version, method), each after its length,
/// as [`HeadRef::encode`] writes them: what a calling handle encodes once per method.
/// Fails when a name is longer than 65535 bytes.
pub(crate) fn encode_names(service: &ServiceKey, method: &str) -> Result<Box<[u8]>, String> {
    let mut out = BytesMut::with_capacity(names_len(service, method));
    put_names(&mut out, service, method)?;
    Ok(out.to_vec().into_boxed_slice())
}

/// The four names in the order the head writes them.
fn names_of<'a>(service: &'a ServiceKey, method: &'a str) -> [&'a str; 4] {
    [&service.interface, &service.group, &service.version, method]
}

/// The bytes the four names take in a head.
fn names_len(service: &ServiceKey, method: &str) -> usize {
    names_of(service, method)
        .iter()
        .map(|s| STRING_PREFIX + s.len())
        .sum()
}

/// Writes the four names, each after its length.
fn put_names(out: &mut BytesMut, service: &ServiceKey, method: &str) -> Result<(), String> {
    for name in names_of(service, method) {
        put_bytes(out, name.as_bytes())?;
    }
    Ok(())
}

impl HeadRef<'_> {
    /// Appends the encoded head to `out`; fails when a string is longer than 65535 bytes.
    /// The bytes [`HeadRef::encode`] writes: the deadline, four strings, the pair count
    /// and the pairs, each string after its 2-byte length.
    pub(crate) fn encoded_len(&self) -> usize {
        let strings = match self.names {
            Some(names) => names.len(),
            None => names_len(self.service, self.method),
        };
        let pairs = self
            .metadata
            .wire_pairs()
            .map(|(k, v)| 2 * STRING_PREFIX + k.len() + v.len())
            .sum::<usize>();
        DEADLINE_LEN + strings + PAIR_COUNT_LEN + pairs
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), String> {
        let millis = self
            .deadline
            .map(|d| d.as_millis().clamp(1, u32::MAX as u128) as u32)
            .unwrap_or(0);
        out.put_u32(millis);
        match self.names {
            Some(names) => out.put_slice(names),
            None => put_names(out, self.service, self.method)?,
        }
        let count = u16::try_from(self.metadata.len())
            .map_err(|_| "more than 65535 metadata pairs".to_string())?;
        out.put_u16(count);
        for (k, v) in self.metadata.wire_pairs() {
            put_bytes(out, k)?;
            put_bytes(out, v)?;
        }
        Ok(())
    }
}

impl RequestHead {
    /// Encodes this head (see the module docs for the layout).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), String> {
        HeadRef {
            deadline: self.deadline,
            service: &self.service,
            method: &self.method,
            names: None,
            metadata: &self.metadata,
        }
        .encode(out)
    }

    /// Decodes a head; every length is checked against the bytes present.
    pub fn decode(buf: &[u8]) -> Result<Self, String> {
        RequestHeadRef::decode(buf).map(RequestHeadRef::into_owned)
    }
}

/// A request head borrowing its strings from the frame: what the server routes on,
/// without copying them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeadRef<'a> {
    /// Time the caller still waits, measured from when the frame was sent.
    pub deadline: Option<Duration>,
    /// Service interface name.
    pub interface: &'a str,
    /// Service group.
    pub group: &'a str,
    /// Service version.
    pub version: &'a str,
    /// Method name.
    pub method: &'a str,
    /// Request metadata (no allocation when there is none).
    pub metadata: Metadata,
}

impl<'a> RequestHeadRef<'a> {
    /// Decodes a head; every length is checked against the bytes present.
    pub fn decode(buf: &'a [u8]) -> Result<Self, String> {
        RawHead::decode(buf)?.checked()
    }

    /// The same head with owned strings.
    pub fn into_owned(self) -> RequestHead {
        RequestHead {
            deadline: self.deadline,
            service: ServiceKey::new(self.interface, self.group, self.version),
            method: self.method.to_owned(),
            metadata: self.metadata,
        }
    }
}

/// A request head whose names are bytes not yet checked to be UTF-8: what the server
/// routes on. A name equal to one the server hosts is UTF-8 by that equality, so a
/// routed call's names are never checked (the route's own strings are used), and only
/// a request that routes nowhere is checked, for its error.
#[derive(Debug)]
pub(crate) struct RawHead<'a> {
    pub(crate) deadline: Option<Duration>,
    pub(crate) interface: &'a [u8],
    pub(crate) group: &'a [u8],
    pub(crate) version: &'a [u8],
    pub(crate) method: &'a [u8],
    /// Checked like any metadata (keys and values are UTF-8).
    pub(crate) metadata: Metadata,
}

impl<'a> RawHead<'a> {
    /// Decodes a head; every length is checked against the bytes present.
    pub(crate) fn decode(mut buf: &'a [u8]) -> Result<Self, String> {
        if buf.remaining() < 4 {
            return Err("request head shorter than its deadline field".into());
        }
        let millis = buf.get_u32();
        let interface = get_bytes(&mut buf, "interface")?;
        let group = get_bytes(&mut buf, "group")?;
        let version = get_bytes(&mut buf, "version")?;
        let method = get_bytes(&mut buf, "method")?;
        if buf.remaining() < 2 {
            return Err("request head lacks its metadata count".into());
        }
        let count = buf.get_u16();
        let mut metadata = Metadata::new();
        for _ in 0..count {
            let key = get_bytes(&mut buf, "metadata key")?;
            let value = get_bytes(&mut buf, "metadata value")?;
            metadata.push_decoded(key, value)?;
        }
        if buf.has_remaining() {
            return Err(format!(
                "{} stray bytes after request head",
                buf.remaining()
            ));
        }
        Ok(Self {
            deadline: (millis > 0).then(|| Duration::from_millis(u64::from(millis))),
            interface,
            group,
            version,
            method,
            metadata,
        })
    }

    /// The head with its names checked to be UTF-8.
    pub(crate) fn checked(self) -> Result<RequestHeadRef<'a>, String> {
        let [interface, group, version, method] = self.names()?;
        Ok(RequestHeadRef {
            deadline: self.deadline,
            interface,
            group,
            version,
            method,
            metadata: self.metadata,
        })
    }

    /// Interface, group, version and method, each checked to be UTF-8 (in that order:
    /// the error names the first that is not).
    pub(crate) fn names(&self) -> Result<[&'a str; 4], String> {
        Ok([
            utf8(self.interface, "interface")?,
            utf8(self.group, "group")?,
            utf8(self.version, "version")?,
            utf8(self.method, "method")?,
        ])
    }
}

/// Bytes of the deadline (milliseconds, `u32`).
const DEADLINE_LEN: usize = 4;
/// Bytes of the metadata pair count (`u16`).
const PAIR_COUNT_LEN: usize = 2;
/// Bytes of a string's length prefix (`u16`).
const STRING_PREFIX: usize = 2;

fn put_bytes(out: &mut BytesMut, s: &[u8]) -> Result<(), String> {
    let len =
        u16::try_from(s.len()).map_err(|_| format!("string of {} bytes exceeds 65535", s.len()))?;
    out.put_u16(len);
    out.put_slice(s);
    Ok(())
}

/// The next length-prefixed string's bytes (not yet checked to be UTF-8).
fn get_bytes<'a>(buf: &mut &'a [u8], field: &str) -> Result<&'a [u8], String> {
    if buf.remaining() < 2 {
        return Err(format!("request head truncated before {field}"));
    }
    let len = usize::from(buf.get_u16());
    if buf.remaining() < len {
        return Err(format!(
            "{field} claims {len} bytes, {} present",
            buf.remaining()
        ));
    }
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    Ok(bytes)
}

fn utf8<'a>(bytes: &'a [u8], field: &str) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|_| format!("{field} is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn well_known_keys_are_those_erpc_sets() {
        for key in [crate::context::TRACEPARENT, crate::filter::AUTHORIZATION] {
            assert!(WELL_KNOWN_KEYS.contains(&key), "{key}");
        }
        let mut decoded = Metadata::new();
        decoded.push_decoded(b"traceparent", b"v").unwrap();
        decoded.push_decoded(b"x-caller", b"w").unwrap();
        assert!(matches!(decoded.0[0].0, Cow::Borrowed(_)));
        assert_eq!(decoded.get("traceparent"), Some("v"));
        assert_eq!(decoded.get("x-caller"), Some("w"));
        assert_eq!(decoded.trace(), None);
    }

    #[test]
    fn a_well_formed_traceparent_is_kept_parsed_and_reads_as_sent() {
        let parent = TraceParent::parse(SAMPLE_TRACE).unwrap();
        let mut decoded = Metadata::new();
        decoded
            .push_decoded(b"traceparent", SAMPLE_TRACE.as_bytes())
            .unwrap();
        assert!(matches!(decoded.0[0].1, Value::Trace(..)));
        assert_eq!(decoded.trace(), Some(parent));
        assert_eq!(decoded.get(TRACEPARENT), Some(SAMPLE_TRACE));
        assert_eq!(
            decoded.iter().collect::<Vec<_>>(),
            [(TRACEPARENT, SAMPLE_TRACE)]
        );
        // Set as ids or as text: the same pair, on the wire too.
        let mut by_ids = Metadata::new();
        by_ids.set_trace(parent);
        let mut by_text = Metadata::new();
        by_text.insert(TRACEPARENT, SAMPLE_TRACE);
        assert_eq!(by_ids, decoded);
        assert_eq!(by_text, decoded);
        assert_eq!(by_text.trace(), Some(parent));
        assert_eq!(format!("{by_ids:?}"), format!("{by_text:?}"));
        // Setting it again replaces it; removing it gives its text.
        let child = parent.child();
        by_ids.set_trace(child);
        assert_eq!((by_ids.len(), by_ids.trace()), (1, Some(child)));
        assert_eq!(by_ids.remove(TRACEPARENT), Some(child.to_string()));
        assert!(by_ids.is_empty());
    }

    #[test]
    fn a_malformed_traceparent_or_a_non_utf8_value_is_what_the_wire_said() {
        let mut decoded = Metadata::new();
        let upper = SAMPLE_TRACE.to_uppercase();
        decoded
            .push_decoded(b"traceparent", upper.as_bytes())
            .unwrap();
        assert_eq!(decoded.get(TRACEPARENT), Some(upper.as_str()));
        assert_eq!(decoded.trace(), None);
        let err = decoded.push_decoded(b"traceparent", b"\xff").unwrap_err();
        assert!(err.contains("metadata value is not UTF-8"), "{err}");
        let err = decoded.push_decoded(b"\xff", b"v").unwrap_err();
        assert!(err.contains("metadata key is not UTF-8"), "{err}");
    }

    fn sample() -> RequestHead {
        let mut metadata = Metadata::new();
        metadata.insert("trace-id", "abc");
        metadata.set_trace(TraceParent::parse(SAMPLE_TRACE).unwrap());
        RequestHead {
            deadline: Some(Duration::from_millis(3000)),
            service: ServiceKey::new("demo::Hello", "g", "1.0"),
            method: "hello".into(),
            metadata,
        }
    }

    #[test]
    fn round_trips() {
        let head = sample();
        let mut out = BytesMut::new();
        head.encode(&mut out).unwrap();
        assert_eq!(RequestHead::decode(&out).unwrap(), head);
    }

    #[test]
    fn the_encoded_length_is_known_before_encoding_and_kept_names_write_the_same_head() {
        for head in [
            sample(),
            RequestHead {
                metadata: Metadata::new(),
                ..sample()
            },
        ] {
            let mut out = BytesMut::new();
            head.encode(&mut out).unwrap();
            let names = encode_names(&head.service, &head.method).unwrap();
            for names in [None, Some(&names[..])] {
                let by_ref = HeadRef {
                    deadline: head.deadline,
                    service: &head.service,
                    method: &head.method,
                    names,
                    metadata: &head.metadata,
                };
                assert_eq!(by_ref.encoded_len(), out.len());
                let mut again = BytesMut::new();
                by_ref.encode(&mut again).unwrap();
                assert_eq!(again, out);
            }
        }
        let long = ServiceKey::new("i".repeat(70_000), "", "1.0");
        assert!(encode_names(&long, "m").is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut out = BytesMut::new();
        sample().encode(&mut out).unwrap();
        for cut in 0..out.len() {
            assert!(RequestHead::decode(&out[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_invalid_utf8_and_trailing_bytes() {
        let mut out = BytesMut::new();
        sample().encode(&mut out).unwrap();
        let mut trailing = out.clone();
        trailing.put_u8(0);
        assert!(RequestHead::decode(&trailing)
            .unwrap_err()
            .contains("stray"));
        let mut bad = out.clone();
        bad[6] = 0xFF; // first byte of the interface name
        assert!(RequestHead::decode(&bad).unwrap_err().contains("UTF-8"));
    }
}
