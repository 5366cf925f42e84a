//! Wall-clock time as the store keeps it: Unix seconds, UTC.

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
