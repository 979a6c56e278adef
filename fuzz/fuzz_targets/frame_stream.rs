//! The frame codec fed a byte stream split into arbitrary reads.
//! Input layout and invariants: `erpc_core::fuzzing::frame_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| erpc_core::fuzzing::frame_stream(data));
