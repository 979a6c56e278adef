//! Serializers: how arguments and return values become bytes.
//!
//! The serializer id travels in every frame and the server answers in the caller's
//! serializer, so clients with different settings can share one provider.

mod depth;

use bytes::{BufMut, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::Error;
pub use depth::MAX_DEPTH;
use depth::{decode_error, Limited};

/// A serde-based wire format with a stable one-byte id.
pub trait Serializer {
    /// The id written into frames.
    const ID: u8;
    /// Human-readable name used in configuration (`msgpack`, `json`, `postcard`).
    const NAME: &'static str;
    /// Appends `value` to `out`.
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), Error>;
    /// Reads a value from `bytes`.
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error>;
}

/// MessagePack via `rmp-serde` (the default; structs travel as maps, so fields may be
/// added to a type without breaking older peers).
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPack;

impl Serializer for MsgPack {
    const ID: u8 = 1;
    const NAME: &'static str = "msgpack";
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), Error> {
        let mut writer = out.writer();
        rmp_serde::encode::write_named(&mut writer, value).map_err(|e| Error::Encode(e.to_string()))
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
        T::deserialize(Limited::new(&mut deserializer)).map_err(decode_error)
    }
}

/// JSON via `serde_json` (readable on the wire; used by the command-line tool).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Serializer for Json {
    const ID: u8 = 2;
    const NAME: &'static str = "json";
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), Error> {
        serde_json::to_writer(out.writer(), value).map_err(|e| Error::Encode(e.to_string()))
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        T::deserialize(Limited::new(&mut deserializer))
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(decode_error)
    }
}

/// Postcard: a compact, fast Rust-native binary format (both sides must agree on the
/// exact types; no field names on the wire).
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Serializer for Postcard {
    const ID: u8 = 3;
    const NAME: &'static str = "postcard";
    fn encode<T: Serialize + ?Sized>(value: &T, out: &mut BytesMut) -> Result<(), Error> {
        postcard::to_io(value, out.writer())
            .map(|_| ())
            .map_err(|e| Error::Encode(e.to_string()))
    }
    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        let mut deserializer = postcard::Deserializer::from_bytes(bytes);
        T::deserialize(Limited::new(&mut deserializer)).map_err(decode_error)
    }
}

/// The serializer chosen for a call, dispatching to a [`Serializer`] implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Serialization {
    /// [`MsgPack`].
    #[default]
    MsgPack,
    /// [`Json`].
    Json,
    /// [`Postcard`].
    Postcard,
}

impl Serialization {
    /// Every supported serializer.
    pub const ALL: [Serialization; 3] = [Self::MsgPack, Self::Json, Self::Postcard];

    /// The id written into frames.
    pub fn id(self) -> u8 {
        match self {
            Self::MsgPack => MsgPack::ID,
            Self::Json => Json::ID,
            Self::Postcard => Postcard::ID,
        }
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::MsgPack => MsgPack::NAME,
            Self::Json => Json::NAME,
            Self::Postcard => Postcard::NAME,
        }
    }

    /// The serializer with this frame id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Appends `value` to `out`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T, out: &mut BytesMut) -> Result<(), Error> {
        match self {
            Self::MsgPack => MsgPack::encode(value, out),
            Self::Json => Json::encode(value, out),
            Self::Postcard => Postcard::encode(value, out),
        }
    }

    /// Reads a value from `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, Error> {
        match self {
            Self::MsgPack => MsgPack::decode(bytes),
            Self::Json => Json::decode(bytes),
            Self::Postcard => Postcard::decode(bytes),
        }
    }
}

impl std::str::FromStr for Serialization {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown serializer {s:?} (msgpack, json, postcard)"
                ))
            })
    }
}

impl std::fmt::Display for Serialization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        n: i64,
        list: Vec<u8>,
    }

    #[test]
    fn every_serializer_round_trips_and_ids_are_unique() {
        let value = Sample {
            name: "x".into(),
            n: -5,
            list: vec![1, 2],
        };
        for s in Serialization::ALL {
            let mut out = BytesMut::new();
            s.encode(&value, &mut out).unwrap();
            assert_eq!(s.decode::<Sample>(&out).unwrap(), value, "{s}");
            assert_eq!(Serialization::from_id(s.id()), Some(s));
            assert_eq!(s.name().parse::<Serialization>().unwrap(), s);
        }
    }

    /// Found by the `response` fuzz target (erpc_core::fuzzing): JSON delivered this
    /// f64 one unit in the last place off (serde_json's fast float parser).
    #[test]
    fn every_serializer_delivers_floats_exactly() {
        for value in [
            5.263160490053527e198,
            0.1,
            f64::MIN_POSITIVE,
            1.7976931348623157e308,
        ] {
            for s in Serialization::ALL {
                let mut out = BytesMut::new();
                s.encode(&value, &mut out).unwrap();
                assert_eq!(
                    s.decode::<f64>(&out).unwrap().to_bits(),
                    value.to_bits(),
                    "{s}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for s in Serialization::ALL {
            let err = s.decode::<Sample>(&[0xC1, 0xFF, 0x00]).unwrap_err();
            assert!(matches!(err, Error::Decode(_)), "{s}: {err}");
        }
        assert!("kryo".parse::<Serialization>().is_err());
    }
}
