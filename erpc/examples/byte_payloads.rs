//! Prints what a 1 MiB byte payload costs as `Vec<u8>` and as `erpc::ByteBuf` in each
//! serializer: bytes on the wire and encode/decode time. The figures in the crate docs
//! come from `cargo run --release -p erpc --example byte_payloads`; an argument sets
//! the number of rounds (default 20; the test suite runs one).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use erpc::{ByteBuf, Serialization};
use rand::RngCore;
use serde::{de::DeserializeOwned, Serialize};

const PAYLOAD: usize = 1 << 20;
const DEFAULT_ROUNDS: u32 = 20;

/// Bytes on the wire, mean encode time and mean decode time of `value` as an argument tuple.
fn measure<T: Serialize + DeserializeOwned>(
    serialization: Serialization,
    value: &T,
    rounds: u32,
) -> Result<(usize, Duration, Duration), erpc::Error> {
    let mut wire = BytesMut::new();
    let started = Instant::now();
    for _ in 0..rounds {
        wire.clear();
        serialization.encode(&(value,), &mut wire)?;
    }
    let encode = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..rounds {
        let _: (T,) = serialization.decode(&wire)?;
    }
    let decode = started.elapsed() / rounds;
    Ok((wire.len(), encode, decode))
}

fn main() -> Result<(), erpc::Error> {
    let rounds = match std::env::args().nth(1) {
        Some(arg) => arg.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
            erpc::Error::Config(format!("rounds must be a positive number, not {arg:?}"))
        })?,
        None => DEFAULT_ROUNDS,
    };
    let mut bytes = vec![0; PAYLOAD];
    rand::thread_rng().fill_bytes(&mut bytes);
    let buf = ByteBuf::from(bytes.clone());
    println!("1 MiB of random bytes, mean of {rounds} rounds\n");
    println!("| serializer | type | bytes on the wire | encode ms | decode ms |");
    println!("|---|---|---:|---:|---:|");
    for serialization in Serialization::ALL {
        let rows = [
            ("Vec<u8>", measure(serialization, &bytes, rounds)?),
            ("ByteBuf", measure(serialization, &buf, rounds)?),
        ];
        for (name, (size, encode, decode)) in rows {
            println!(
                "| {} | `{name}` | {size} | {:.2} | {:.2} |",
                serialization.name(),
                encode.as_secs_f64() * 1e3,
                decode.as_secs_f64() * 1e3,
            );
        }
    }
    Ok(())
}
