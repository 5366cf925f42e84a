//! How the window process finds the tray process: the tray publishes its loopback bridge's
//! address and this run's access token in a file only its owner can read, next to the
//! connector's own credentials, and withdraws it when it stops. Nothing goes on a command line,
//! where other users of the machine could read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file's name in the data folder.
pub const FILE_NAME: &str = "desktop-bridge.json";

/// Where a running tray process answers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeAddress {
    /// The bridge's base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// This run's access token, sent as `Authorization: Bearer …`.
    pub token: String,
}

impl std::fmt::Debug for BridgeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeAddress")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why the bridge could not be found.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// No tray process runs for this data folder.
    #[error(
        "Uplink is not running for {0} (start uplink-desktop first; the window is opened from its tray)"
    )]
    NotRunning(PathBuf),
    /// The file is there but unreadable or not ours.
    #[error("the bridge file {path} is unreadable: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What went wrong, with no secret in it.
        reason: String,
    },
    /// The file could not be written.
    #[error("the bridge file {path} could not be written: {reason}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// The bridge file of `data_dir`.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Publishes `address` for window processes, atomically and readable by the owner only.
pub fn publish(data_dir: &Path, address: &BridgeAddress) -> Result<(), BridgeError> {
    let path = path(data_dir);
    let unwritable = |reason: String| BridgeError::Unwritable {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| unwritable(e.to_string()))?;
    let json = serde_json::to_vec(address).map_err(|e| unwritable(e.to_string()))?;
    uplink_connector::config::write_atomically(&path, &json, true)
        .map_err(|e| unwritable(e.to_string()))
}

/// Reads the address the tray process of `data_dir` published.
pub fn read(data_dir: &Path) -> Result<BridgeAddress, BridgeError> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BridgeError::NotRunning(data_dir.to_owned()));
        }
        Err(e) => {
            return Err(BridgeError::Unreadable {
                path,
                reason: e.to_string(),
            });
        }
    };
    // serde_json's messages quote no input, so the token cannot leak through them.
    serde_json::from_slice(&bytes).map_err(|e| BridgeError::Unreadable {
        path,
        reason: e.to_string(),
    })
}

/// Removes the file as the tray process stops, if it still names this run.
pub fn withdraw(data_dir: &Path, address: &BridgeAddress) {
    if read(data_dir).is_ok_and(|published| &published == address) {
        let _ = std::fs::remove_file(path(data_dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(token: &str) -> BridgeAddress {
        BridgeAddress {
            url: "http://127.0.0.1:4321".into(),
            token: token.into(),
        }
    }

    #[test]
    fn a_published_address_reads_back_and_only_its_owner_may_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("uplink");
        publish(&data_dir, &address("s3cret")).unwrap();
        assert_eq!(read(&data_dir).unwrap(), address("s3cret"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(&data_dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another run's address is left alone; this run's goes.
        withdraw(&data_dir, &address("other"));
        assert!(read(&data_dir).is_ok());
        withdraw(&data_dir, &address("s3cret"));
        assert!(matches!(read(&data_dir), Err(BridgeError::NotRunning(_))));
    }

    #[test]
    fn errors_and_debug_output_never_show_the_token() {
        assert!(!format!("{:?}", address("s3cret")).contains("s3cret"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            path(dir.path()),
            br#"{"url": "http://127.0.0.1:1", "token": s3cret}"#,
        )
        .unwrap();
        let error = read(dir.path()).unwrap_err();
        assert!(matches!(error, BridgeError::Unreadable { .. }), "{error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
        let missing = read(&dir.path().join("nowhere")).unwrap_err();
        assert!(missing.to_string().contains("not running"), "{missing}");
    }
}
