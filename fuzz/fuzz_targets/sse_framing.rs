//! The client's text/event-stream parser: bounded, chunking-independent, and reading back
//! exactly what the server's encoder writes.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::sse::framing(data));
