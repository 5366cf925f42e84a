//! How this connector proves itself to its hub, kept in the data dir: the hub's address, the
//! connector's id, the CA to trust (for hubs with their own certificate), and one secret — the
//! credential an administrator issued, or the rotating refresh token of a device-flow sign-in.
//!
//! The file is owner-only (0600) and written atomically, so a refresh token that rotates is
//! never lost half-written. Where an OS keyring is reachable (the Secret Service of a desktop
//! session), the secret itself goes there and the file keeps only a marker saying so; where none is
//! (a headless server, a service account, CI), the secret stays in the file. The choice is made
//! afresh at every save, so a keyring that appears or goes away is followed. `Debug` output and
//! errors never show the secret.
//!
//! ```no_run
//! use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
//!
//! let store = CredentialStore::new("/var/lib/uplink");
//! store.save(&LinkCredentials {
//!     hub_url: "https://hub.example".into(),
//!     connector_id: "con_example".into(),
//!     ca_pem: None,
//!     secret: LinkSecret::ClientCredential { credential: "issued-secret".into() },
//! })?;
//! assert!(store.load()?.is_some());
//! # Ok::<(), uplink_connector::config::ConfigError>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, write_atomically};

pub mod keyring_store;
use keyring_store::{Found, KeyringEntry};

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

impl LinkSecret {
    fn kind(&self) -> SecretKind {
        match self {
            LinkSecret::ClientCredential { .. } => SecretKind::ClientCredential,
            LinkSecret::RefreshToken { .. } => SecretKind::RefreshToken,
        }
    }

    fn value(&self) -> &str {
        match self {
            LinkSecret::ClientCredential { credential } => credential,
            LinkSecret::RefreshToken { refresh_token } => refresh_token,
        }
    }
}

/// Which secret the OS keyring holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum SecretKind {
    ClientCredential,
    RefreshToken,
}

impl SecretKind {
    fn with(self, value: String) -> LinkSecret {
        match self {
            SecretKind::ClientCredential => LinkSecret::ClientCredential { credential: value },
            SecretKind::RefreshToken => LinkSecret::RefreshToken {
                refresh_token: value,
            },
        }
    }
}

/// `credentials.json` as written: the secret itself, or a marker that the OS keyring holds it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialsFile {
    hub_url: String,
    connector_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_pem: Option<String>,
    secret: FileSecret,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum FileSecret {
    #[serde(rename_all = "camelCase")]
    ClientCredential { credential: String },
    #[serde(rename_all = "camelCase")]
    RefreshToken { refresh_token: String },
    /// `{"kind": "keyring", "holds": "refreshToken"}`.
    Keyring { holds: SecretKind },
}

impl CredentialsFile {
    fn new(credentials: &LinkCredentials, secret: FileSecret) -> Self {
        Self {
            hub_url: credentials.hub_url.clone(),
            connector_id: credentials.connector_id.clone(),
            ca_pem: credentials.ca_pem.clone(),
            secret,
        }
    }

    fn with_secret_inside(credentials: &LinkCredentials) -> Self {
        let secret = match credentials.secret.clone() {
            LinkSecret::ClientCredential { credential } => {
                FileSecret::ClientCredential { credential }
            }
            LinkSecret::RefreshToken { refresh_token } => {
                FileSecret::RefreshToken { refresh_token }
            }
        };
        Self::new(credentials, secret)
    }

    fn with_keyring_marker(credentials: &LinkCredentials) -> Self {
        Self::new(
            credentials,
            FileSecret::Keyring {
                holds: credentials.secret.kind(),
            },
        )
    }
}

/// Where a [`CredentialStore`] keeps the secret now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretHome {
    /// No credentials are stored.
    Nowhere,
    /// In `credentials.json` itself (owner-only).
    File,
    /// In the OS keyring; `credentials.json` holds a marker.
    Keyring,
}

/// The credentials of one data dir: `credentials.json`, and the OS keyring entry of that data dir.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    keyring: KeyringEntry,
}

impl CredentialStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            path: data_dir.as_ref().join(CREDENTIALS_FILE),
            keyring: KeyringEntry::for_data_dir(data_dir.as_ref()),
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
    /// never quoted: it holds a secret), or when the file says the OS keyring holds the secret and
    /// the keyring is not reachable or holds nothing for this connector.
    pub fn load(&self) -> Result<Option<LinkCredentials>, ConfigError> {
        let Some(CredentialsFile {
            hub_url,
            connector_id,
            ca_pem,
            secret,
        }) = self.read_file()?
        else {
            return Ok(None);
        };
        let secret = match secret {
            FileSecret::ClientCredential { credential } => {
                LinkSecret::ClientCredential { credential }
            }
            FileSecret::RefreshToken { refresh_token } => {
                LinkSecret::RefreshToken { refresh_token }
            }
            FileSecret::Keyring { holds } => match self.keyring.get() {
                Ok(Found::Secret(value)) => holds.with(value),
                Ok(Found::Nothing) => {
                    return Err(self.keyring_error(
                        "the OS keyring holds no secret for this connector; sign in again".into(),
                    ));
                }
                Err(why) => {
                    return Err(self.keyring_error(format!(
                        "the OS keyring holds the secret but is not reachable ({why}); unlock it \
                         and reconnect, or sign in again"
                    )));
                }
            },
        };
        Ok(Some(LinkCredentials {
            hub_url,
            connector_id,
            ca_pem,
            secret,
        }))
    }

    /// Where the secret is kept now, from the file alone (the keyring is not asked).
    ///
    /// # Errors
    /// As [`CredentialStore::load`] for the file.
    pub fn secret_home(&self) -> Result<SecretHome, ConfigError> {
        Ok(match self.read_file()? {
            None => SecretHome::Nowhere,
            Some(CredentialsFile {
                secret: FileSecret::Keyring { .. },
                ..
            }) => SecretHome::Keyring,
            Some(_) => SecretHome::File,
        })
    }

    /// Saves the credentials: the secret into the OS keyring when one is reachable, else into the
    /// file; the file is written atomically and readable by the owner only.
    ///
    /// The newest secret is always in one of the two, whatever fails or stops midway: a keyring
    /// write that fails falls back to the file, and when the file held the previous secret itself,
    /// it takes the new one before the keyring does. (A first sign-in that stops between the
    /// keyring write and the file write leaves no file: the owner signs in again.)
    ///
    /// The keyring is asked over D-Bus with blocking calls, each bounded by a few seconds; from
    /// async code use [`CredentialStore::save_async`].
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be written.
    pub fn save(&self, credentials: &LinkCredentials) -> Result<(), ConfigError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        let inside = CredentialsFile::with_secret_inside(credentials);
        if let Err(why) = keyring_store::probe() {
            tracing::info!(store = "file", path = %self.path.display(), reason = %why, "credentials saved in the owner-only file");
            return self.write_file(&inside);
        }
        let mut newest_in_file = false;
        if self.secret_home().ok() == Some(SecretHome::File) {
            // The file holds the previous secret: give it the newest before the keyring.
            self.write_file(&inside)?;
            newest_in_file = true;
        }
        match self.keyring.set(credentials.secret.value()) {
            Ok(()) => {
                self.write_file(&CredentialsFile::with_keyring_marker(credentials))?;
                tracing::info!(
                    store = "keyring",
                    account = self.keyring.account(),
                    "credentials saved; the secret is in the OS keyring"
                );
                Ok(())
            }
            Err(why) => {
                tracing::warn!(store = "file", path = %self.path.display(), reason = %why, "the OS keyring refused the secret; saved in the owner-only file");
                if newest_in_file {
                    Ok(())
                } else {
                    self.write_file(&inside)
                }
            }
        }
    }

    /// [`CredentialStore::save`] on a blocking thread, for async callers (the keyring's D-Bus
    /// calls would otherwise hold up the async runtime).
    ///
    /// # Errors
    /// As [`CredentialStore::save`].
    pub async fn save_async(&self, credentials: &LinkCredentials) -> Result<(), ConfigError> {
        let (store, credentials) = (self.clone(), credentials.clone());
        tokio::task::spawn_blocking(move || store.save(&credentials))
            .await
            .map_err(|_| ConfigError::Io {
                action: "save",
                path: self.path.clone(),
                source: std::io::Error::other("the save was interrupted"),
            })?
    }

    /// Forgets the credentials (sign out): deletes the keyring entry, then the file.
    ///
    /// A keyring that cannot be reached is logged, not an error: the file is what makes the
    /// connector signed in, and the entry is overwritten at the next sign-in.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be removed.
    pub fn remove(&self) -> Result<(), ConfigError> {
        let in_keyring = self.secret_home().ok() == Some(SecretHome::Keyring);
        match self.keyring.delete() {
            Ok(removed) => {
                tracing::info!(
                    removed,
                    account = self.keyring.account(),
                    "keyring entry removed"
                )
            }
            Err(why) if in_keyring => {
                tracing::warn!(reason = %why, account = self.keyring.account(), "the secret could not be removed from the OS keyring")
            }
            Err(why) => tracing::debug!(reason = %why, "no OS keyring to clear"),
        }
        match fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(ConfigError::Io {
                action: "remove",
                path: self.path.clone(),
                source: err,
            }),
            _ => Ok(()),
        }
    }

    fn read_file(&self) -> Result<Option<CredentialsFile>, ConfigError> {
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

    fn write_file(&self, file: &CredentialsFile) -> Result<(), ConfigError> {
        let json = serde_json::to_vec_pretty(file).expect("credentials serialise");
        write_atomically(&self.path, &json, true)
    }

    fn keyring_error(&self, message: String) -> ConfigError {
        ConfigError::Io {
            action: "read the secret for",
            path: self.path.clone(),
            source: std::io::Error::other(message),
        }
    }
}

/// When `next` signs the connector in again to the hub `previous` was signed in to, ends the
/// previous sign-in there (RFC 7009 revocation of its refresh token), so the hub lets the new
/// one register the connector. Best effort: an unreachable hub or a token it no longer knows
/// is logged, and the new sign-in goes on (the owner can still revoke the old one on the hub's
/// settings page).
pub async fn end_replaced_sign_in(previous: &LinkCredentials, next: &LinkCredentials) {
    let (
        LinkSecret::RefreshToken { refresh_token: old },
        LinkSecret::RefreshToken { refresh_token: new },
    ) = (&previous.secret, &next.secret)
    else {
        return;
    };
    let hub = previous.hub_url.trim_end_matches('/');
    if old == new || hub != next.hub_url.trim_end_matches('/') {
        return;
    }
    let trust = match &previous.ca_pem {
        Some(pem) => uplink_tls::Trust::CustomCa(pem.clone()),
        None => uplink_tls::Trust::Platform,
    };
    let ended = match uplink_tls::client_config(&trust) {
        Ok(tls) => match crate::oauth::OAuthClient::new(hub, tls) {
            Ok(oauth) => oauth.revoke(old).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match ended {
        Ok(()) => tracing::info!(hub, "the sign-in replaced by the new one was ended"),
        Err(error) => {
            tracing::warn!(hub, %error, "the sign-in replaced by the new one could not be ended");
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
    fn a_keyring_marker_names_the_kind_and_holds_no_secret() {
        let credentials = sample();
        let json =
            serde_json::to_string(&CredentialsFile::with_keyring_marker(&credentials)).unwrap();
        assert!(!json.contains("rt-very-secret"), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["secret"],
            serde_json::json!({"kind": "keyring", "holds": "refreshToken"})
        );
        assert_eq!(value["connectorId"], credentials.connector_id.as_str());
        // A file from before the keyring still reads the same way.
        let inside =
            serde_json::to_value(CredentialsFile::with_secret_inside(&credentials)).unwrap();
        assert_eq!(inside, serde_json::to_value(&credentials).unwrap());
    }

    #[test]
    fn a_marker_without_its_keyring_secret_is_an_error_that_says_so_and_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        let credentials = sample();
        store
            .write_file(&CredentialsFile::with_keyring_marker(&credentials))
            .unwrap();
        assert_eq!(store.secret_home().unwrap(), SecretHome::Keyring);
        // Unreachable (no session bus) or reachable but empty: either way, never an empty secret.
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("OS keyring"), "{err}");
        assert!(err.contains("sign in again"), "{err}");
        assert!(!err.contains("rt-very-secret"));
        store.remove().unwrap();
        assert_eq!(store.secret_home().unwrap(), SecretHome::Nowhere);
    }

    #[test]
    fn debug_output_of_the_store_and_secrets_never_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path());
        let shown = format!(
            "{store:?} {:?} {:?}",
            sample(),
            keyring_store::Found::Secret("rt-very-secret".into())
        );
        assert!(!shown.contains("rt-very-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
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
