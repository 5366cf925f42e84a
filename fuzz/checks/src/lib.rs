//! The checks Uplink's fuzz targets run on every input, one function per target.
//!
//! Each function takes arbitrary bytes, feeds them to the real parser a peer's input reaches
//! (through its public entry point) and panics when a property fails: a decoded message that
//! does not re-encode to itself, a parser that reads differently when its input arrives in other
//! chunks, a checked query whose times are not absolute and ordered, a token that verifies
//! without our key. Returning normally means the input passed.
//!
//! The fuzz targets in `fuzz/fuzz_targets/` are one line each around these functions (nightly,
//! `cargo fuzz`); `tests/corpus.rs` replays every file of `fuzz/corpus/<target>/` through the
//! same functions on stable, so `cargo test --workspace` keeps the corpora as regressions.
//! See `docs/fuzzing.md`.

pub mod negotiate;
pub mod query;
pub mod signalr;
pub mod sse;
pub mod time_expr;
pub mod token;

/// A target's check: returns when the input passes, panics when a property fails.
pub type Check = fn(&[u8]);

/// Every target: its name (the fuzz target's file and its corpus folder) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("signalr_decoder", signalr::json),
    ("signalr_messagepack", signalr::messagepack),
    ("long_polling", signalr::long_polling),
    ("sse_framing", sse::framing),
    ("negotiate", negotiate::negotiate),
    ("time_expr", time_expr::time_expr),
    ("query", query::query),
    ("access_token", token::access_token),
];

/// Chunk sizes 1..=256 from one byte, for feeding a stream in pieces.
pub(crate) fn chunk_size(seed: u8) -> usize {
    usize::from(seed) + 1
}
