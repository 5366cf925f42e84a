//! The handshake, the 0x1E record reader and the JSON hub protocol a server runs on every
//! connection: no panic, the same messages in any chunking, every message re-encodes to itself.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::signalr::json(data));
