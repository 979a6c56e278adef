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
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use smallvec::SmallVec;

use super::ServiceKey;

/// Key/value pairs that travel with a request (trace ids, caller name, ...).
///
/// Keys erpc itself sets, and those it reads off the wire that are well known
/// (`traceparent`, `tracestate`, `authorization`), are kept without a copy, and one
/// pair (a traced call's `traceparent`) is kept without allocating a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(SmallVec<[(Cow<'static, str>, String); 1]>);

/// Keys decoded without allocating: the W3C trace context and the auth filter's.
const WELL_KNOWN_KEYS: [&str; 3] = ["traceparent", "tracestate", "authorization"];

impl Metadata {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.set(Cow::Owned(key.into()), value.into());
    }

    /// [`Metadata::insert`] for a key known when compiling (no copy of it is made).
    pub(crate) fn insert_static(&mut self, key: &'static str, value: String) {
        self.set(Cow::Borrowed(key), value);
    }

    fn set(&mut self, key: Cow<'static, str>, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Adds a pair read off the wire (a repeated key is kept as sent).
    fn push_decoded(&mut self, key: &str, value: &str) {
        let key = match WELL_KNOWN_KEYS.iter().find(|known| **known == key) {
            Some(known) => Cow::Borrowed(*known),
            None => Cow::Owned(key.to_owned()),
        };
        self.0.push((key, value.to_owned()));
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
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
        Some(self.0.remove(at).1)
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
    pub(crate) metadata: &'a Metadata,
}

impl HeadRef<'_> {
    /// Appends the encoded head to `out`; fails when a string is longer than 65535 bytes.
    /// The bytes [`HeadRef::encode`] writes: the deadline, four strings, the pair count
    /// and the pairs, each string after its 2-byte length.
    pub(crate) fn encoded_len(&self) -> usize {
        let key = self.service;
        let strings = [&key.interface, &key.group, &key.version, self.method]
            .iter()
            .map(|s| STRING_PREFIX + s.len())
            .sum::<usize>();
        let pairs = self
            .metadata
            .iter()
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
        let key = self.service;
        for s in [&key.interface, &key.group, &key.version, self.method] {
            put_str(out, s)?;
        }
        let count = u16::try_from(self.metadata.len())
            .map_err(|_| "more than 65535 metadata pairs".to_string())?;
        out.put_u16(count);
        for (k, v) in self.metadata.iter() {
            put_str(out, k)?;
            put_str(out, v)?;
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
    pub fn decode(mut buf: &'a [u8]) -> Result<Self, String> {
        if buf.remaining() < 4 {
            return Err("request head shorter than its deadline field".into());
        }
        let millis = buf.get_u32();
        let interface = get_str(&mut buf, "interface")?;
        let group = get_str(&mut buf, "group")?;
        let version = get_str(&mut buf, "version")?;
        let method = get_str(&mut buf, "method")?;
        if buf.remaining() < 2 {
            return Err("request head lacks its metadata count".into());
        }
        let count = buf.get_u16();
        let mut metadata = Metadata::new();
        for _ in 0..count {
            let key = get_str(&mut buf, "metadata key")?;
            let value = get_str(&mut buf, "metadata value")?;
            metadata.push_decoded(key, value);
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

/// Bytes of the deadline (milliseconds, `u32`).
const DEADLINE_LEN: usize = 4;
/// Bytes of the metadata pair count (`u16`).
const PAIR_COUNT_LEN: usize = 2;
/// Bytes of a string's length prefix (`u16`).
const STRING_PREFIX: usize = 2;

fn put_str(out: &mut BytesMut, s: &str) -> Result<(), String> {
    let len =
        u16::try_from(s.len()).map_err(|_| format!("string of {} bytes exceeds 65535", s.len()))?;
    out.put_u16(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn get_str<'a>(buf: &mut &'a [u8], field: &str) -> Result<&'a str, String> {
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
    let s = std::str::from_utf8(bytes).map_err(|_| format!("{field} is not UTF-8"))?;
    *buf = rest;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_keys_are_those_erpc_sets() {
        for key in [crate::context::TRACEPARENT, crate::filter::AUTHORIZATION] {
            assert!(WELL_KNOWN_KEYS.contains(&key), "{key}");
        }
        let mut decoded = Metadata::new();
        decoded.push_decoded("traceparent", "v");
        decoded.push_decoded("x-caller", "w");
        assert!(matches!(decoded.0[0].0, Cow::Borrowed(_)));
        assert_eq!(decoded.get("traceparent"), Some("v"));
        assert_eq!(decoded.get("x-caller"), Some("w"));
    }

    fn sample() -> RequestHead {
        let mut metadata = Metadata::new();
        metadata.insert("trace-id", "abc");
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
    fn the_encoded_length_is_known_before_encoding() {
        for head in [
            sample(),
            RequestHead {
                metadata: Metadata::new(),
                ..sample()
            },
        ] {
            let mut out = BytesMut::new();
            head.encode(&mut out).unwrap();
            let by_ref = HeadRef {
                deadline: head.deadline,
                service: &head.service,
                method: &head.method,
                metadata: &head.metadata,
            };
            assert_eq!(by_ref.encoded_len(), out.len());
        }
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
