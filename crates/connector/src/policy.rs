//! The site's own veto: apps and data sources the data owner blocked on this connector. A
//! blocked query is refused on site with `vetoed`, whatever the hub granted — defence in depth.
//!
//! The policy lives in `policy.json` in the data dir, written atomically; a running connector
//! notices when another process (`uplink connector policy …`) replaced the file, and applies a
//! change to the queries already running too: those the new policy refuses stop at once.
//!
//! ```
//! use uplink_connector::policy::{LocalPolicy, PolicyStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = PolicyStore::new(dir.path());
//! let mut policy = store.load().unwrap();
//! policy.block_app("app_dashboard");
//! store.save(&policy).unwrap();
//! let veto = store.load().unwrap().check("app_dashboard", "line-1").unwrap_err();
//! assert_eq!(veto.code, "vetoed");
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_link::{QueryFailure, failure};

use crate::config::{ConfigError, write_atomically};

/// The policy file's name in the data dir.
pub const POLICY_FILE: &str = "policy.json";

/// What the data owner blocked on this connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalPolicy {
    /// Apps (by client id) refused on every data source.
    #[serde(default)]
    pub blocked_apps: BTreeSet<String>,
    /// Data sources (by name) refused to every app.
    #[serde(default)]
    pub blocked_sources: BTreeSet<String>,
}

impl LocalPolicy {
    /// Refuses `app_id` everywhere; `false` if it already was.
    pub fn block_app(&mut self, app_id: &str) -> bool {
        self.blocked_apps.insert(app_id.to_owned())
    }

    /// Lifts the block on `app_id`; `false` if it was not blocked.
    pub fn unblock_app(&mut self, app_id: &str) -> bool {
        self.blocked_apps.remove(app_id)
    }

    /// Refuses every app on `source`; `false` if it already was.
    pub fn block_source(&mut self, source: &str) -> bool {
        self.blocked_sources.insert(source.to_owned())
    }

    /// Lifts the block on `source`; `false` if it was not blocked.
    pub fn unblock_source(&mut self, source: &str) -> bool {
        self.blocked_sources.remove(source)
    }

    /// `Ok` when `app_id` may read `source` as far as this site is concerned; else the
    /// `vetoed` failure to answer with.
    ///
    /// # Errors
    /// A [`QueryFailure`] with code `vetoed` naming what is blocked.
    pub fn check(&self, app_id: &str, source: &str) -> Result<(), QueryFailure> {
        let message = if self.blocked_apps.contains(app_id) {
            format!("the app '{app_id}' is blocked on this connector by its local policy")
        } else if self.blocked_sources.contains(source) {
            format!("the data source '{source}' is blocked on this connector by its local policy")
        } else {
            return Ok(());
        };
        Err(QueryFailure {
            code: failure::VETOED.to_owned(),
            message,
        })
    }
}

/// The policy file in one data dir.
#[derive(Debug)]
pub struct PolicyStore {
    path: PathBuf,
    /// The policy as last read, with the file's identity then, so a query costs a `stat`.
    cached: Mutex<Option<(FileStamp, LocalPolicy)>>,
}

type FileStamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok()?, meta.len(), inode))
}

impl PolicyStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        Self {
            path: data_dir.as_ref().join(POLICY_FILE),
            cached: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the policy; an empty one when there is no file.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read or is not a policy; a policy that
    /// cannot be read is never taken for "nothing blocked".
    pub fn load(&self) -> Result<LocalPolicy, ConfigError> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| ConfigError::Io {
                action: "read the local policy",
                path: self.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, err.to_string()),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(LocalPolicy::default()),
            Err(source) => Err(ConfigError::Io {
                action: "read",
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Writes the policy atomically.
    ///
    /// # Errors
    /// [`ConfigError::Io`].
    pub fn save(&self, policy: &LocalPolicy) -> Result<(), ConfigError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(|source| ConfigError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        let json = serde_json::to_vec_pretty(policy).expect("the policy serialises");
        write_atomically(&self.path, &json, false)?;
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((stamp(&self.path), policy.clone()));
        Ok(())
    }

    /// The policy in force now, re-read when the file changed since the last call.
    ///
    /// # Errors
    /// As [`load`](Self::load); the caller refuses queries then (fail closed).
    pub fn current(&self) -> Result<LocalPolicy, ConfigError> {
        let now = stamp(&self.path);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, policy)) = cached.as_ref()
            && *seen == now
        {
            return Ok(policy.clone());
        }
        let policy = self.load()?;
        *cached = Some((now, policy.clone()));
        Ok(policy)
    }

    /// Checks one query against the policy in force (fail closed when it cannot be read).
    ///
    /// # Errors
    /// The `vetoed` failure to answer with.
    pub fn check(&self, app_id: &str, source: &str) -> Result<(), QueryFailure> {
        match self.current() {
            Ok(policy) => policy.check(app_id, source),
            Err(err) => Err(QueryFailure {
                code: failure::VETOED.to_owned(),
                message: format!(
                    "the connector's local policy cannot be read, so nothing is served: {err}"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_blocked_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(dir.path());
        assert_eq!(store.load().unwrap(), LocalPolicy::default());
        assert!(store.check("app_x", "line-1").is_ok());
    }

    #[test]
    fn blocked_apps_and_sources_are_vetoed_with_a_clear_message() {
        let mut policy = LocalPolicy::default();
        assert!(policy.block_app("app_bad"));
        assert!(!policy.block_app("app_bad"));
        assert!(policy.block_source("secret-line"));
        let app = policy.check("app_bad", "line-1").unwrap_err();
        assert_eq!(app.code, failure::VETOED);
        assert!(app.message.contains("app 'app_bad'"), "{}", app.message);
        let source = policy.check("app_ok", "secret-line").unwrap_err();
        assert!(source.message.contains("data source 'secret-line'"));
        assert!(policy.check("app_ok", "line-1").is_ok());
        assert!(policy.unblock_app("app_bad"));
        assert!(policy.check("app_bad", "line-1").is_ok());
    }

    #[test]
    fn a_running_store_sees_another_process_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let running = PolicyStore::new(dir.path());
        assert!(running.check("app_a", "s").is_ok());
        // Another process (the CLI) saves through its own store.
        let cli = PolicyStore::new(dir.path());
        let mut policy = cli.load().unwrap();
        policy.block_app("app_a");
        cli.save(&policy).unwrap();
        assert_eq!(
            running.check("app_a", "s").unwrap_err().code,
            failure::VETOED
        );
        policy.unblock_app("app_a");
        cli.save(&policy).unwrap();
        assert!(running.check("app_a", "s").is_ok());
    }

    #[test]
    fn an_unreadable_policy_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(dir.path());
        fs::write(store.path(), b"{not json").unwrap();
        let veto = store.check("app_a", "s").unwrap_err();
        assert_eq!(veto.code, failure::VETOED);
        assert!(veto.message.contains("cannot be read"), "{}", veto.message);
        assert!(store.load().is_err());
    }
}
