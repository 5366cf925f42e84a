//! The hub's data folder is its owner's alone: the folder is 0700 and the hub's files in it —
//! the store (`hub.db` and its `-wal`, `-shm` and `-journal` files) and the token keys
//! ([`KEY_FILE`]) — are 0600. A hub refuses to start on a folder or file another local user
//! could read ([`prepare`]); the embedded local hub, whose folder only it uses, tightens its
//! own instead ([`tighten`]). `docs/hardening.md` tells operators what to do.
//!
//! The access-token keys live in [`KEY_FILE`], never in `hub.db`: whoever reads a key can mint
//! tokens the hub accepts, so the key is kept where nothing else is kept and nothing else
//! reads. Keys found in an older hub's store are moved there on first start ([`KeyFile`]).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::{HubError, Result};
use crate::store::TokenKeyRecord;

/// The store's file name in the data folder.
pub const STORE_FILE: &str = "hub.db";
/// The access-token keys' file name in the data folder.
pub const KEY_FILE: &str = "token-keys.json";

/// The files of the hub's own that must be 0600: the store and its companions, the keys.
fn own_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| dir.join(format!("{STORE_FILE}{suffix}")))
        .collect();
    files.push(dir.join(KEY_FILE));
    files.push(dir.join(crate::id_token::ID_KEY_FILE));
    files
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> HubError {
    move |source| HubError::Io { context, source }
}

/// Creates the data folder (0700) if it is missing, and the store file (0600, so SQLite's
/// `-wal` and `-shm` files are made 0600 too), then refuses a folder or file that others may
/// read or write.
///
/// # Errors
/// [`HubError::Permissions`] naming the path, its mode and the command that fixes it; I/O
/// errors.
pub fn prepare(dir: &Path) -> Result<()> {
    prepare_folder(dir)?;
    create_private_file(&dir.join(STORE_FILE))
}

/// As [`prepare`] without the store file: for a hub whose store is in PostgreSQL, whose data
/// folder holds only its key files, certificates and logs.
///
/// # Errors
/// As [`prepare`].
pub fn prepare_folder(dir: &Path) -> Result<()> {
    create_private_dir(dir)?;
    check(dir)
}

/// Sets the folder to 0700 and the hub's own files in it to 0600, creating the folder if it
/// is missing: for the embedded local hub, whose folder nobody else manages.
///
/// # Errors
/// I/O errors.
pub fn tighten(dir: &Path) -> Result<()> {
    create_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let set = |path: &Path, mode: u32| -> Result<()> {
            match std::fs::metadata(path) {
                Ok(meta) if meta.permissions().mode() & 0o777 != mode => {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                        .map_err(io(format!("cannot make {} private", path.display())))?;
                    tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "made private");
                    Ok(())
                }
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
            }
        };
        set(dir, 0o700)?;
        for file in own_files(dir) {
            set(&file, 0o600)?;
        }
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io(format!(
        "cannot create data directory {}",
        dir.display()
    )))
}

fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .map(drop)
        .map_err(io(format!("cannot create {}", path.display())))
}

/// Refuses a data folder others may enter, or a file of the hub's that others may read.
fn check(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode_of = |path: &Path| -> Result<Option<u32>> {
            match std::fs::metadata(path) {
                Ok(meta) => Ok(Some(meta.permissions().mode() & 0o777)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
            }
        };
        if let Some(mode) = mode_of(dir)?
            && mode & 0o077 != 0
        {
            return Err(loose(dir, mode, "700"));
        }
        for file in own_files(dir) {
            if let Some(mode) = mode_of(&file)?
                && mode & 0o077 != 0
            {
                return Err(loose(&file, mode, "600"));
            }
        }
    }
    Ok(())
}

fn loose(path: &Path, mode: u32, wanted: &str) -> HubError {
    HubError::Permissions(format!(
        "{} has mode {mode:03o}: other local users could read the hub's accounts, tokens or keys. Make it the hub user's alone (chmod {wanted} {}) and start again; see docs/hardening.md",
        path.display(),
        path.display()
    ))
}

/// Refuses a key file that other local users may read or write.
///
/// # Errors
/// [`HubError::Permissions`] naming the file and the command that fixes it; I/O errors.
pub fn refuse_loose_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(io(format!("cannot read {}", path.display())))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(loose(path, mode, "600"));
        }
    }
    Ok(())
}

/// The keys as the key file holds them, newest first.
#[derive(Serialize, Deserialize)]
struct KeyFileContents {
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    id: String,
    /// The 32 key bytes, base64.
    key: String,
    created_at: i64,
    /// When a rotation retired it; absent while it is current (and in files older hubs wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

/// The access-token keys' own file, 0600, written atomically (temporary file, fsync, rename,
/// fsync of the folder).
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    /// The key file at `path` (usually `<data dir>/token-keys.json`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys it holds, newest first; empty when there is no file yet.
    ///
    /// # Errors
    /// A file others may read ([`HubError::Permissions`]), or one that cannot be read or
    /// parsed. The file's contents are never quoted.
    pub fn load(&self) -> Result<Vec<TokenKeyRecord>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(format!("cannot read {}", self.path.display()))(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&self.path)
                .map_err(io(format!("cannot read {}", self.path.display())))?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(loose(&self.path, mode, "600"));
            }
        }
        let unreadable = |what: &str| {
            HubError::TokenIssue(format!(
                "the key file {} is not readable: {what}",
                self.path.display()
            ))
        };
        let contents: KeyFileContents =
            serde_json::from_slice(&bytes).map_err(|_| unreadable("not the expected JSON"))?;
        contents
            .keys
            .into_iter()
            .map(|entry| {
                let bytes = STANDARD
                    .decode(entry.key.as_bytes())
                    .map_err(|_| unreadable("a key is not base64"))?;
                let mut record = crate::token::Keyring::key_record(&bytes, entry.created_at)?;
                record.retired_at = entry.retired_at;
                if record.id != entry.id {
                    return Err(unreadable("a key does not match its id"));
                }
                Ok(record)
            })
            .collect()
    }

    /// Replaces the file's keys with `keys` (newest first), atomically, 0600.
    ///
    /// # Errors
    /// I/O errors.
    pub fn save(&self, keys: &[TokenKeyRecord]) -> Result<()> {
        let contents = KeyFileContents {
            keys: keys
                .iter()
                .map(|k| KeyEntry {
                    id: k.id.clone(),
                    key: STANDARD.encode(&k.key_bytes),
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&contents)
            .map_err(|e| HubError::TokenIssue(format!("cannot write the key file: {e}")))?;
        uplink_files::write_atomically(&self.path, &json, uplink_files::Access::OwnerOnly)
            .map_err(|e| HubError::Io {
                context: format!("cannot {} the key file {}", e.action, e.path.display()),
                source: e.source,
            })?;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_fresh_folder_and_store_are_private() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("hub-data");
        prepare(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(STORE_FILE)), 0o600);
    }

    #[test]
    fn loose_folders_and_files_are_refused_and_tightened_on_request() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("hub");
        prepare(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = prepare(&dir).unwrap_err();
        assert_eq!(err.code(), "insecure_permissions");
        assert!(err.to_string().contains("chmod 700"), "{err}");
        tighten(&dir).unwrap();
        let wal = dir.join("hub.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = prepare(&dir).unwrap_err();
        assert!(err.to_string().contains("hub.db-wal has mode 644"), "{err}");
        tighten(&dir).unwrap();
        assert_eq!(mode(&wal), 0o600);
        prepare(&dir).unwrap();
    }

    #[test]
    fn the_key_file_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile::new(dir.path().join(KEY_FILE));
        assert!(file.load().unwrap().is_empty());
        let key = crate::token::Keyring::key_record(&[7u8; 32], 5).unwrap();
        file.save(std::slice::from_ref(&key)).unwrap();
        assert_eq!(mode(file.path()), 0o600);
        let loaded = file.load().unwrap();
        assert_eq!(loaded[0].id, key.id);
        assert_eq!(loaded[0].key_bytes, key.key_bytes);
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = file.load().unwrap_err();
        assert_eq!(err.code(), "insecure_permissions");
    }
}
