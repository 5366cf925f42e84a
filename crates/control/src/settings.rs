//! What the owner chose in the UI and the app must remember across restarts: a paused link,
//! the transport preference, whether the embedded hub runs. Kept in `control.json`, written
//! atomically; an unreadable file falls back to the defaults and says so.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::view::TransportPreference;
use crate::{ControlError, ControlErrorCode};

/// The file, in the data dir.
pub const SETTINGS_FILE: &str = "control.json";

/// The remembered choices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// The link stays closed until resumed.
    pub paused: bool,
    /// Which transports the link may use.
    pub transport_preference: TransportPreference,
    /// Start the embedded hub with the app.
    pub local_hub: bool,
}

/// Reads and writes [`Settings`] in one data dir.
#[derive(Debug, Clone)]
pub struct SettingsStore {
    path: PathBuf,
}

impl SettingsStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(SETTINGS_FILE),
        }
    }

    /// The saved settings; the defaults when there are none or they cannot be read.
    pub fn load(&self) -> Settings {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %self.path.display(), %error, "unreadable settings; using the defaults");
                Settings::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot read the settings; using the defaults");
                Settings::default()
            }
        }
    }

    /// Saves `settings` atomically.
    pub fn save(&self, settings: &Settings) -> Result<(), ControlError> {
        let json = serde_json::to_vec_pretty(settings).expect("settings serialise");
        uplink_connector::config::write_atomically(&self.path, &json, false).map_err(|e| {
            ControlError::new(
                ControlErrorCode::Io,
                format!("cannot save the settings: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_restart_and_garbage_falls_back_to_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let store = SettingsStore::new(dir.path());
        assert_eq!(store.load(), Settings::default());
        let chosen = Settings {
            paused: true,
            transport_preference: TransportPreference::LongPolling,
            local_hub: true,
        };
        store.save(&chosen).unwrap();
        assert_eq!(SettingsStore::new(dir.path()).load(), chosen);
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json").unwrap();
        assert_eq!(store.load(), Settings::default());
    }
}
