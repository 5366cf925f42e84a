//! The hub's access-token decoder with a fixed key: nothing forged verifies, and what
//! verifies is exactly what was written.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::token::access_token(data));
