//! Uplink desktop app: a thin shell over the connector runtime.

/// Starts the desktop app.
pub fn run() {}
