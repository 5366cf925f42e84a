//! Long-polling and POST bodies as both ends read them: the handshake, then the hub protocol
//! (JSON or MessagePack batches) across bodies handed over whole.
//! The checks live in `uplink-fuzz-checks` (see `docs/fuzzing.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| uplink_fuzz_checks::signalr::long_polling(data));
