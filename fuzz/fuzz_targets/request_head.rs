//! The request head decoder.
//! Input layout and invariants: `erpc_core::fuzzing::request_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| erpc_core::fuzzing::request_head(data));
