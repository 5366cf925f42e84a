//! The desktop app's tray host.
//!
//! The desktop app runs as two processes so that the one that lives in the tray all day holds no
//! web view. This process owns the connector runtime (and the embedded local hub), the tray icon,
//! the notifications and starting at login; it serves the control commands and status events
//! on a loopback bridge. The window is a second process (the Tauri shell in `src-tauri`),
//! started when the owner opens it and gone when they close it; it finds the bridge through
//! [`bridge`] and forwards every command and event.
//!
//! [`view`] is what the tray shows, a pure function of the status shared by every platform's
//! tray, and [`tray_loop`] the one loop that follows the status, draws the view, raises the
//! alerts and carries out the clicks, behind a [`TrayHost`] each platform implements. The host
//! here is written for Linux, where the tray is a StatusNotifierItem on the session bus;
//! elsewhere the Tauri shell hosts the runtime and the tray (Tauri's) in one process.
//!
//! Each process logs to standard error and to `DATA_DIR/logs/` ([`init_logging`]).
#![warn(missing_docs)]

pub mod bridge;
pub mod shortcuts;
pub mod tray_loop;
pub mod view;

pub use tray_loop::{TrayEnd, TrayHost, TrayLoop};

#[cfg(target_os = "linux")]
mod autostart;
#[cfg(target_os = "linux")]
mod host;
#[cfg(target_os = "linux")]
mod instance;
#[cfg(target_os = "linux")]
mod notify;
#[cfg(target_os = "linux")]
mod sni;
#[cfg(target_os = "linux")]
mod windows;

#[cfg(target_os = "linux")]
pub use host::run;

use std::path::PathBuf;

use uplink_control::Control;

/// The desktop app's program: the tray process on Linux, the whole app elsewhere; its log is
/// `DATA_DIR/logs/uplink-desktop.log`.
pub const TRAY_PROGRAM: &str = "uplink-desktop";

/// The window process on Linux; its log is `DATA_DIR/logs/uplink-window.log`.
pub const WINDOW_PROGRAM: &str = "uplink-window";

/// The app's identifier: names its data folder, and must match `tauri.conf.json`.
pub const IDENTIFIER: &str = "dev.uplink.desktop";

/// Where the connector keeps its configuration, credentials and logs unless told otherwise: the
/// platform's app data folder (on Linux `~/.local/share/dev.uplink.desktop`), the same folder
/// the Tauri shell's path resolver names.
pub fn default_data_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join(IDENTIFIER))
}

/// Command-line options of the desktop app.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "uplink-desktop",
    version,
    about = "Uplink desktop app: the site connector in your tray"
)]
pub struct Options {
    /// Open the window at start instead of starting to the tray (for tests and screenshots).
    #[arg(long)]
    pub show_window: bool,
    /// Where the connector keeps its configuration, credentials and logs [default: the
    /// platform's app data folder].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// With no hub configured yet, start the embedded local hub with a simulated data source
    /// and a demo app, so everything works at once.
    #[arg(long)]
    pub local_hub: bool,
}

/// Logs to standard error and to `DATA_DIR/logs/PROGRAM.log` (rolled over at 5 MiB, five files
/// kept), at `info` unless `RUST_LOG` says otherwise, with secrets redacted.
pub fn init_logging(program: &str, data_dir: Option<&std::path::Path>) {
    if let Some(path) = uplink_logs::init(program, data_dir) {
        tracing::info!(path = %path.display(), "logging to a file");
    }
}

/// What `--local-hub` does: with no hub configured, links the connector to the embedded local
/// hub. A local hub chosen before starts by itself; a connector signed in elsewhere keeps its
/// hub (the control surface refuses, and says so).
pub async fn link_local_hub(control: Control) {
    if control.settings().local_hub {
        return;
    }
    match control.use_local_hub().await {
        Ok(()) => tracing::info!("linked to the embedded local hub"),
        Err(error) if error.code == "already_configured" => {
            tracing::info!("a hub is configured: --local-hub has nothing to do")
        }
        Err(error) => tracing::error!(code = %error.code, %error, "the local hub did not start"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identifier_is_the_one_the_desktop_app_is_configured_with() {
        let config: serde_json::Value =
            serde_json::from_str(include_str!("../../../tauri.conf.json")).unwrap();
        assert_eq!(config["identifier"], super::IDENTIFIER);
        let dir = super::default_data_dir().expect("a home folder");
        assert!(dir.ends_with(super::IDENTIFIER), "{}", dir.display());
    }
}
