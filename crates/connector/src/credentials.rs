//! How this connector proves itself to its hub, kept in the data dir: the hub's address, the
//! connector's id, the CA to trust (for hubs with their own certificate), and one secret — the
//! credential an administrator issued, or the rotating refresh token of a device-flow sign-in.
//!
//! The file is owner-only (0600) and written atomically, so a refresh token that rotates is
//! never lost half-written. Its `Debug` output never shows the secret.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, write_atomically};

/// The credentials file's name in the data dir.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// Everything the link needs to sign in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkCredentials {
    /// The hub's base URL (`https://hub.example`).
    pub hub_url: String,
    /// The connector's id (`con_…`).
    pub connector_id: String,
    /// A PEM CA certificate to trust instead of the platform's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// The secret.
    pub secret: LinkSecret,
}

/// The one secret a connector keeps.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum LinkSecret {
    /// Issued by an administrator (`uplink hub connector add`): client credentials.
    #[serde(rename_all = "camelCase")]
    ClientCredential {
        /// The credential.
        credential: String,
    },
    /// From the device flow (`uplink connector login`): rotates at every use.
    #[serde(rename_all = "camelCase")]
    RefreshToken {
        /// The current refresh token.
        refresh_token: String,
    },
}

impl std::fmt::Debug for LinkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCredentials")
            .field("hub_url", &self.hub_url)
            .field("connector_id", &self.connector_id)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("secret", &self.secret)
            .finish()
    }
}

impl std::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkSecret::ClientCredential { .. } => "ClientCredential(<redacted>)",
            LinkSecret::RefreshToken { .. } => "RefreshToken(<redacted>)",
        })
    }
}

/// The credentials file in one data dir.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

impl CredentialStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            path: data_dir.as_ref().join(CREDENTIALS_FILE),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored credentials; `None` when the connector was never signed in.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read or is not credentials (its content is
    /// never quoted: it holds a secret).
    pub fn load(&self) -> Result<Option<LinkCredentials>, ConfigError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| ConfigError::Io {
                    action: "read the credentials in",
                    path: self.path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not a credentials file; sign in again",
                    ),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ConfigError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Writes the credentials atomically, readable by the owner only.
    ///
    /// # Errors
    /// [`ConfigError::Io`].
    pub fn save(&self, credentials: &LinkCredentials) -> Result<(), ConfigError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        let json = serde_json::to_vec_pretty(credentials).expect("credentials serialise");
        write_atomically(&self.path, &json, true)
    }

    /// Forgets the credentials (sign out).
    ///
    /// # Errors
    /// [`ConfigError::Io`].
    pub fn remove(&self) -> Result<(), ConfigError> {
        match fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(ConfigError::Io {
                action: "remove",
                path: self.path.clone(),
                source: err,
            }),
            _ => Ok(()),
        }
    }
}

/// A fresh connector id for a device-flow sign-in: `con_` and 22 random URL-safe characters.
pub fn generate_connector_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let id: String = (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("con_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LinkCredentials {
        LinkCredentials {
            hub_url: "https://hub.example".into(),
            connector_id: generate_connector_id(),
            ca_pem: None,
            secret: LinkSecret::RefreshToken {
                refresh_token: "rt-very-secret".into(),
            },
        }
    }

    #[test]
    fn credentials_round_trip_owner_only_and_never_show_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let credentials = sample();
        store.save(&credentials).unwrap();
        assert_eq!(store.load().unwrap().unwrap(), credentials);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{credentials:?}").contains("rt-very-secret"));
        store.remove().unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn an_unreadable_file_is_named_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        fs::write(store.path(), b"secret-garbage").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("sign in again"), "{err}");
        assert!(!err.contains("secret-garbage"));
    }

    #[test]
    fn generated_ids_follow_the_protocol() {
        let id = generate_connector_id();
        let rest = id.strip_prefix("con_").unwrap();
        assert!((20..=64).contains(&rest.len()));
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(id, generate_connector_id());
    }
}
