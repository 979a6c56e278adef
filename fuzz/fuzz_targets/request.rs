//! A provider decoding request frames under every serializer and compression.
//! Input layout and invariants: `erpc_core::fuzzing::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| erpc_core::fuzzing::request(data));
