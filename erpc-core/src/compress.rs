//! Payload compression: gzip or zstd, applied only above a size threshold.

use std::io::{Read, Write};

use crate::protocol::codec::FrameBuilder;
use crate::Error;

/// A compression algorithm; its id travels in every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Payload as is.
    #[default]
    None,
    /// gzip (flate2).
    Gzip,
    /// zstd, level 1 (fast).
    Zstd,
}

impl Compression {
    /// Every algorithm.
    pub const ALL: [Compression; 3] = [Self::None, Self::Gzip, Self::Zstd];

    /// Frame id.
    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Zstd => 2,
        }
    }

    /// The algorithm with this frame id.
    pub fn from_id(id: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }

    /// Configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }

    /// Compresses `data`.
    pub fn compress(self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let fail = |e: std::io::Error| Error::Encode(format!("{} compression: {e}", self.name()));
        match self {
            Self::None => Ok(data.to_vec()),
            Self::Gzip => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(data).map_err(fail)?;
                enc.finish().map_err(fail)
            }
            Self::Zstd => zstd::bulk::compress(data, 1).map_err(fail),
        }
    }

    /// Decompresses `data`, refusing output larger than `limit` bytes (a small frame
    /// must not inflate into an unbounded allocation).
    pub fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
        let fail = |e: std::io::Error| Error::Decode(format!("{} decompression: {e}", self.name()));
        let mut out = Vec::new();
        // One byte past the limit tells "at the limit" from "beyond it".
        let cap = (limit as u64).saturating_add(1);
        let read = match self {
            Self::None => return Ok(data.to_vec()),
            Self::Gzip => flate2::read::GzDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out),
            Self::Zstd => zstd::stream::read::Decoder::new(data)
                .and_then(|d| d.take(cap).read_to_end(&mut out)),
        };
        read.map_err(fail)?;
        if out.len() > limit {
            return Err(Error::Decode(format!(
                "{} payload inflates beyond the {limit}-byte limit",
                self.name()
            )));
        }
        Ok(out)
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::Config(format!("unknown compression {s:?} (none, gzip, zstd)")))
    }
}

/// When to compress: an algorithm and the payload size from which it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionPolicy {
    /// Algorithm for payloads at or above the threshold.
    pub algorithm: Compression,
    /// Smallest payload, in bytes, that gets compressed.
    pub threshold: usize,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        Self {
            algorithm: Compression::None,
            threshold: 8 * 1024,
        }
    }
}

impl CompressionPolicy {
    /// The algorithm to use for a payload of `len` bytes.
    pub fn for_len(&self, len: usize) -> Compression {
        if len >= self.threshold {
            self.algorithm
        } else {
            Compression::None
        }
    }

    /// Compresses the payload written into `frame` when this policy says so, and marks
    /// the frame's header with the algorithm used.
    pub(crate) fn apply(&self, frame: &mut FrameBuilder) -> Result<(), Error> {
        let algorithm = self.for_len(frame.payload_len());
        if algorithm != Compression::None {
            let packed = algorithm.compress(frame.payload())?;
            frame.replace_payload(&packed);
        }
        frame.header_mut().compression = algorithm.id();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bombs() {
        let data = vec![7u8; 100_000];
        for c in Compression::ALL {
            let packed = c.compress(&data).unwrap();
            assert_eq!(c.decompress(&packed, data.len()).unwrap(), data, "{c:?}");
            if c != Compression::None {
                assert!(packed.len() < 1_000, "{c:?} did not compress");
                assert!(
                    c.decompress(&packed, 1_000).is_err(),
                    "{c:?} ignored the limit"
                );
                assert!(matches!(
                    c.decompress(b"not compressed", 1_000),
                    Err(Error::Decode(_))
                ));
            }
        }
    }

    /// Found by the `request` fuzz target (erpc_core::fuzzing): `limit as u64 + 1`
    /// overflowed for a limit of `usize::MAX` ("no limit").
    #[test]
    fn the_largest_limit_does_not_overflow() {
        let data = b"payload";
        for c in Compression::ALL {
            let packed = c.compress(data).unwrap();
            assert_eq!(c.decompress(&packed, usize::MAX).unwrap(), data, "{c:?}");
        }
    }

    #[test]
    fn threshold_selects_algorithm() {
        let p = CompressionPolicy {
            algorithm: Compression::Zstd,
            threshold: 10,
        };
        assert_eq!(p.for_len(9), Compression::None);
        assert_eq!(p.for_len(10), Compression::Zstd);
    }
}
