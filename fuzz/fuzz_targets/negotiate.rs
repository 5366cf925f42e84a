//! Negotiate both ways: the client reading the server's answer, the server reading query
//! parameters and bearer tokens, and the redacted form it logs.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::negotiate::negotiate(data));
