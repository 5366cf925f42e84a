//! The site's own veto: apps and data sources the data owner blocked on this connector. A
//! blocked query is refused on site with `vetoed`, whatever the hub granted — defence in depth.
//!
//! The policy lives in `policy.json` in the data dir, written atomically; a running connector
//! notices when another process (`uplink connector policy …`) replaced the file, and applies a
//! change to the queries already running too: those the new policy refuses stop at once.
//!
//! A blocked data source is kept by its stable key (`ConnectorConfig::source_key`), never its
//! name, so renaming a source keeps it blocked. Files written before keys (no `version`) held
//! names: the first read turns each into its source's key from `connector.json` beside it and
//! saves the file again, atomically; a name no source has any more keeps the key a source of
//! that name had before keys existed (`name:…`), so nothing is lost.
//!
//! ```
//! use uplink_connector::policy::{LocalPolicy, PolicyStore};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = PolicyStore::new(dir.path());
//! let mut policy = store.load().unwrap();
//! policy.block_app("app_dashboard");
//! store.save(&policy).unwrap();
//! let veto = store.load().unwrap().check("app_dashboard", "line-1", "s_key").unwrap_err();
//! assert_eq!(veto.code, "vetoed");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_link::{QueryFailure, failure};

use crate::config::{CONFIG_FILE, ConfigError, write_atomically};

/// The policy file's name in the data dir.
pub const POLICY_FILE: &str = "policy.json";
/// The policy file's format: 2 keeps blocked sources by stable key; without a version (1),
/// by name.
pub const POLICY_VERSION: u32 = 2;

/// The policy as the file holds it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    /// Absent in files written before sources were kept by key.
    #[serde(default)]
    version: Option<u32>,
    #[serde(flatten)]
    policy: LocalPolicy,
}

/// What the data owner blocked on this connector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LocalPolicy {
    /// Apps (by client id) refused on every data source.
    #[serde(default)]
    pub blocked_apps: BTreeSet<String>,
    /// Data sources (by stable key, so a rename keeps the block) refused to every app.
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

    /// Refuses every app on the source whose stable key is `source_key`; `false` if it
    /// already was.
    pub fn block_source(&mut self, source_key: &str) -> bool {
        self.blocked_sources.insert(source_key.to_owned())
    }

    /// Lifts the block on the source whose stable key is `source_key`; `false` if it was not
    /// blocked.
    pub fn unblock_source(&mut self, source_key: &str) -> bool {
        self.blocked_sources.remove(source_key)
    }

    /// Whether the source whose stable key is `source_key` is blocked.
    pub fn source_blocked(&self, source_key: &str) -> bool {
        self.blocked_sources.contains(source_key)
    }

    /// `Ok` when `app_id` may read the source named `source` (whose stable key is
    /// `source_key`) as far as this site is concerned; else the `vetoed` failure to answer
    /// with, naming the source by its current name.
    ///
    /// # Errors
    /// A [`QueryFailure`] with code `vetoed` naming what is blocked.
    pub fn check(&self, app_id: &str, source: &str, source_key: &str) -> Result<(), QueryFailure> {
        let message = if self.blocked_apps.contains(app_id) {
            format!("the app '{app_id}' is blocked on this connector by its local policy")
        } else if self.blocked_sources.contains(source_key) {
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

    /// Reads the policy; an empty one when there is no file. A file that kept blocked
    /// sources by name is migrated to keys first (see the module's documentation).
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read or is not a policy (or is a legacy
    /// one whose `connector.json` cannot be read to migrate it); a policy that cannot be
    /// read is never taken for "nothing blocked".
    pub fn load(&self) -> Result<LocalPolicy, ConfigError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LocalPolicy::default());
            }
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: PolicyFile = serde_json::from_slice(&bytes)
            .map_err(|err| self.unreadable("read the local policy", &self.path, err))?;
        match file.version {
            Some(POLICY_VERSION) => Ok(file.policy),
            Some(newer) => Err(self.unreadable(
                "read the local policy",
                &self.path,
                format!("it was written in format {newer}, newer than this connector reads ({POLICY_VERSION}); update Uplink"),
            )),
            None => self.migrate(file.policy),
        }
    }

    /// Turns a policy that names its blocked sources into one that keys them, and saves it.
    fn migrate(&self, mut policy: LocalPolicy) -> Result<LocalPolicy, ConfigError> {
        let keys = self.source_keys()?;
        policy.blocked_sources = std::mem::take(&mut policy.blocked_sources)
            .into_iter()
            .map(|name| {
                keys.get(&name)
                    .cloned()
                    .unwrap_or_else(|| format!("name:{name}"))
            })
            .collect();
        self.save(&policy)?;
        tracing::info!(path = %self.path.display(), "the local policy now keeps blocked data sources by key");
        Ok(policy)
    }

    /// The stable keys in `connector.json` beside the policy, by source name (what
    /// `ConnectorConfig::source_keys` holds), read without touching the file.
    fn source_keys(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let config = self.path.with_file_name(CONFIG_FILE);
        let bytes = match fs::read(&config) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(ConfigError::Io {
                    action: "read",
                    path: config,
                    source,
                });
            }
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Keys {
            #[serde(default)]
            source_keys: BTreeMap<String, String>,
        }
        serde_json::from_slice::<Keys>(&bytes)
            .map(|k| k.source_keys)
            .map_err(|err| {
                self.unreadable(
                    "read the data sources' keys to update the local policy from",
                    &config,
                    err,
                )
            })
    }

    fn unreadable(&self, action: &'static str, path: &Path, reason: impl ToString) -> ConfigError {
        ConfigError::Io {
            action,
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.to_string()),
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
        let json = serde_json::to_vec_pretty(&PolicyFile {
            version: Some(POLICY_VERSION),
            policy: policy.clone(),
        })
        .expect("the policy serialises");
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

    /// Checks one query on the source named `source` (stable key `source_key`) against the
    /// policy in force (fail closed when it cannot be read).
    ///
    /// # Errors
    /// The `vetoed` failure to answer with.
    pub fn check(&self, app_id: &str, source: &str, source_key: &str) -> Result<(), QueryFailure> {
        match self.current() {
            Ok(policy) => policy.check(app_id, source, source_key),
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
        assert!(store.check("app_x", "line-1", "s_1").is_ok());
    }

    #[test]
    fn blocked_apps_and_sources_are_vetoed_with_a_clear_message() {
        let mut policy = LocalPolicy::default();
        assert!(policy.block_app("app_bad"));
        assert!(!policy.block_app("app_bad"));
        assert!(policy.block_source("s_secret"));
        let app = policy.check("app_bad", "line-1", "s_1").unwrap_err();
        assert_eq!(app.code, failure::VETOED);
        assert!(app.message.contains("app 'app_bad'"), "{}", app.message);
        let source = policy
            .check("app_ok", "secret-line", "s_secret")
            .unwrap_err();
        assert!(source.message.contains("data source 'secret-line'"));
        // By key: the same source under a new name is still refused, under its new name.
        let renamed = policy.check("app_ok", "renamed", "s_secret").unwrap_err();
        assert!(
            renamed.message.contains("data source 'renamed'"),
            "{}",
            renamed.message
        );
        // A new source that takes the blocked one's old name is another source.
        assert!(policy.check("app_ok", "secret-line", "s_new").is_ok());
        assert!(policy.check("app_ok", "line-1", "s_1").is_ok());
        assert!(policy.unblock_app("app_bad"));
        assert!(policy.check("app_bad", "line-1", "s_1").is_ok());
    }

    #[test]
    fn a_running_store_sees_another_process_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let running = PolicyStore::new(dir.path());
        assert!(running.check("app_a", "s", "s_s").is_ok());
        // Another process (the CLI) saves through its own store.
        let cli = PolicyStore::new(dir.path());
        let mut policy = cli.load().unwrap();
        policy.block_app("app_a");
        cli.save(&policy).unwrap();
        assert_eq!(
            running.check("app_a", "s", "s_s").unwrap_err().code,
            failure::VETOED
        );
        policy.unblock_app("app_a");
        cli.save(&policy).unwrap();
        assert!(running.check("app_a", "s", "s_s").is_ok());
    }

    #[test]
    fn an_unreadable_policy_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = PolicyStore::new(dir.path());
        fs::write(store.path(), b"{not json").unwrap();
        let veto = store.check("app_a", "s", "s_s").unwrap_err();
        assert_eq!(veto.code, failure::VETOED);
        assert!(veto.message.contains("cannot be read"), "{}", veto.message);
        assert!(store.load().is_err());
    }

    #[test]
    fn a_policy_that_named_its_sources_is_migrated_to_keys_atomically() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(CONFIG_FILE),
            br#"{"version":1,"sources":[],"sourceKeys":{"line-1":"s_line1"}}"#,
        )
        .unwrap();
        fs::write(
            dir.path().join(POLICY_FILE),
            br#"{"blockedApps":["app_x"],"blockedSources":["line-1","legacy","gone"]}"#,
        )
        .unwrap();
        let store = PolicyStore::new(dir.path());
        let policy = store.load().unwrap();
        assert_eq!(policy.blocked_apps, BTreeSet::from(["app_x".to_owned()]));
        assert_eq!(
            policy.blocked_sources,
            BTreeSet::from(["s_line1".into(), "name:legacy".into(), "name:gone".into()]),
            "each name became its source's key; none was lost"
        );
        let saved: serde_json::Value =
            serde_json::from_slice(&fs::read(store.path()).unwrap()).unwrap();
        assert_eq!(saved["version"], POLICY_VERSION);
        assert_eq!(
            saved["blockedSources"],
            serde_json::json!(["name:gone", "name:legacy", "s_line1"])
        );
        // Read again, it is not migrated twice (a key is not taken for a name).
        assert_eq!(PolicyStore::new(dir.path()).load().unwrap(), policy);
        assert!(store.check("app_y", "line-one", "s_line1").is_err());
    }

    #[test]
    fn a_legacy_policy_beside_an_unreadable_configuration_fails_closed_and_stays() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CONFIG_FILE), b"{broken").unwrap();
        let legacy = br#"{"blockedApps":[],"blockedSources":["line-1"]}"#;
        fs::write(dir.path().join(POLICY_FILE), legacy).unwrap();
        let store = PolicyStore::new(dir.path());
        let veto = store.check("app_a", "line-1", "s_line1").unwrap_err();
        assert_eq!(veto.code, failure::VETOED);
        assert_eq!(fs::read(store.path()).unwrap(), legacy, "left as it was");
    }

    #[test]
    fn a_policy_from_a_newer_connector_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(POLICY_FILE),
            br#"{"version":9,"blockedApps":[],"blockedSources":[]}"#,
        )
        .unwrap();
        let error = PolicyStore::new(dir.path()).load().unwrap_err().to_string();
        assert!(error.contains("newer"), "{error}");
    }
}
