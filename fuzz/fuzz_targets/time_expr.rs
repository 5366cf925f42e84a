//! The time-expression and duration parser: what parses is written back as text that parses
//! to itself, and resolved times read back as the same instant.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::time_expr::time_expr(data));
