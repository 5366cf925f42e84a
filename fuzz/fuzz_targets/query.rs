//! The query validators: a POST body the hub accepts has absolute, ordered times within the
//! limits, and the connector resolves it to exactly the request the hub checked.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::query::query(data));
