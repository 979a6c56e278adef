//! A nesting limit for every format's deserializer.
//!
//! A recursive argument type (a tree, `Box<Self>`, nested enums) lets a peer send a
//! few bytes that nest thousands of levels deep; the deserializer recurses once per
//! level and overflows the handler thread's stack, which aborts the whole provider
//! (a stack overflow is not a panic). Postcard has no limit of its own and
//! MessagePack's (1024 levels) is deeper than a debug build's stack allows, so erpc
//! wraps each format's deserializer in [`Limited`], which counts the levels of
//! sequences, maps, enums, options and newtypes on the way down and fails the
//! decode with a normal error past [`MAX_DEPTH`]. Values built up to that point are
//! dropped level by level, well within the stack.
//!
//! The adapter forwards every call to the wrapped deserializer and only wraps the
//! visitor (and the seq/map/enum accessors it hands out), so formats keep their own
//! behaviour, zero-copy borrows included.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

use crate::Error;

/// Deepest nesting a decoded value may have (serde_json's own default is 128 too).
pub const MAX_DEPTH: usize = 128;

/// A deserializer (or visitor, or accessor) with `left` more levels allowed.
pub(crate) struct Limited<T> {
    inner: T,
    left: usize,
}

thread_local! {
    /// Set when a decode on this thread stopped at the limit: some formats (postcard)
    /// replace a deserializer's own error message with a generic one.
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// The error of a decode that failed with `error`: the nesting limit's own message when
/// that is why it failed.
pub(crate) fn decode_error(error: impl fmt::Display) -> Error {
    if TOO_DEEP.with(|flag| flag.replace(false)) {
        Error::Decode(format!("value nests deeper than {MAX_DEPTH} levels"))
    } else {
        Error::Decode(error.to_string())
    }
}

impl<T> Limited<T> {
    /// `inner` allowed to nest [`MAX_DEPTH`] levels.
    pub(crate) fn new(inner: T) -> Self {
        TOO_DEEP.with(|flag| flag.set(false));
        Self {
            inner,
            left: MAX_DEPTH,
        }
    }

    fn wrap<U>(&self, inner: U) -> Limited<U> {
        Limited {
            inner,
            left: self.left,
        }
    }

    /// One level down, or the error that says the value nests too deep.
    fn deeper<U, E: de::Error>(&self, inner: U) -> Result<Limited<U>, E> {
        match self.left.checked_sub(1) {
            Some(left) => Ok(Limited { inner, left }),
            None => {
                TOO_DEEP.with(|flag| flag.set(true));
                Err(E::custom(format_args!(
                    "value nests deeper than {MAX_DEPTH} levels"
                )))
            }
        }
    }
}

/// Forwards `deserialize_*` methods that take only a visitor.
macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// Forwards `visit_*` methods that take one plain value.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Limited<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let deserializer = self.deeper(deserializer)?;
        self.inner.visit_some(deserializer)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        let deserializer = self.deeper(deserializer)?;
        self.inner.visit_newtype_struct(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let seq = self.deeper(seq)?;
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let map = self.deeper(map)?;
        self.inner.visit_map(map)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let data = self.deeper(data)?;
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Limited<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        let deserializer = self.wrap(deserializer);
        self.inner.deserialize(deserializer)
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Limited<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Limited<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Limited<A> {
    type Error = A::Error;
    type Variant = Limited<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let left = self.left;
        let seed = self.wrap(seed);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            Limited {
                inner: variant,
                left,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Limited<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::MAX_DEPTH;
    use crate::serialize::Serialization;

    /// A recursive type, as a user's argument may be.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Tree {
        Leaf(u32),
        Node(Vec<Tree>),
        Boxed(Box<Tree>),
        Maybe(Option<Box<Tree>>),
    }

    fn nested(levels: usize) -> Tree {
        let mut tree = Tree::Leaf(7);
        for level in 0..levels {
            tree = match level % 3 {
                0 => Tree::Node(vec![tree]),
                1 => Tree::Boxed(Box::new(tree)),
                _ => Tree::Maybe(Some(Box::new(tree))),
            };
        }
        tree
    }

    #[test]
    fn values_within_the_limit_decode_in_every_format() {
        let tree = nested(MAX_DEPTH / 4);
        for serialization in Serialization::ALL {
            let mut bytes = bytes::BytesMut::new();
            serialization.encode(&tree, &mut bytes).unwrap();
            let back: Tree = serialization.decode(&bytes).unwrap();
            assert_eq!(back, tree, "{serialization:?}");
        }
    }

    #[test]
    fn hostile_nesting_is_a_decode_error_not_a_stack_overflow() {
        // Postcard: `Node(vec![...])` is variant 1, a length of 1, then the inner
        // value: 100,000 levels in 300 kB. Without the limit this overflows the stack.
        let mut postcard = [1u8, 1].repeat(100_000);
        postcard.extend([0, 7]);
        let error = Serialization::Postcard
            .decode::<Tree>(&postcard)
            .unwrap_err()
            .to_string();
        assert!(error.contains("nests deeper than 128"), "{error}");

        // MessagePack: `{"Node": [...]}` nested the same way.
        let mut msgpack = Vec::new();
        for _ in 0..100_000 {
            msgpack.extend([0x81, 0xa4]);
            msgpack.extend(b"Node");
            msgpack.push(0x91);
        }
        msgpack.extend([0x81, 0xa4]);
        msgpack.extend(b"Leaf");
        msgpack.push(7);
        let error = Serialization::MsgPack
            .decode::<Tree>(&msgpack)
            .unwrap_err()
            .to_string();
        assert!(error.contains("nests deeper than 128"), "{error}");
    }
}
