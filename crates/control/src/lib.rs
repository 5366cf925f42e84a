//! The control surface a connector shows its user interfaces: typed commands and the view
//! models they return.
//!
//! The same commands reach the runtime two ways: the desktop app maps each Tauri IPC command
//! to a method of [`Control`], and [`http::router`] serves the web UI and the same commands
//! over loopback HTTP, so a machine without a desktop can be managed from a browser. Every
//! type that crosses either boundary derives [`ts_rs::TS`]; the UI's TypeScript bindings are
//! generated from them and a test fails when they drift.

mod error;
pub mod http;
mod info;

pub use error::ControlError;
pub use info::{AppInfo, HostKind};

/// The commands a user interface may call, independent of how they arrive.
#[derive(Debug, Clone)]
pub struct Control {
    host: HostKind,
}

impl Control {
    /// A control surface for a UI hosted by `host`.
    pub fn new(host: HostKind) -> Self {
        Self { host }
    }

    /// Which product, version and host the UI is talking to (the About page).
    pub fn app_info(&self) -> AppInfo {
        AppInfo::current(self.host)
    }
}

#[cfg(test)]
mod bindings;
