//! The connector's durable configuration: its data sources and settings, in one versioned JSON
//! file in the data dir, written atomically; secret fields live apart in an owner-only file.
//!
//! A write goes to a temporary file that is flushed to disk, renamed over the old one, and the
//! directory flushed too, so a crash leaves either the old file or the new one, never half of
//! one. A file that cannot be read is reported and moved aside, never silently overwritten.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::form::FieldError;
pub use uplink_source::SourceConfig;

use crate::{SourceError, kinds};

/// The configuration file's name in the data dir.
pub const CONFIG_FILE: &str = "connector.json";
/// The owner-only file holding secret settings, apart from the configuration.
pub const SECRETS_FILE: &str = "secrets.json";
/// The format version this build writes.
pub const CONFIG_VERSION: u32 = 1;

/// Everything the connector keeps between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorConfig {
    /// The format version.
    pub version: u32,
    /// Connector-wide settings.
    #[serde(default)]
    pub settings: ConnectorSettings,
    /// The configured data sources, in the order added.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Each source's stable key, by its current name: chosen when the source is added, moved
    /// with it when it is renamed, sent to the hub at registration so the source keeps its
    /// hub id and its grants across a rename (see [`source_key`](Self::source_key)).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_keys: BTreeMap<String, String>,
}

/// Connector-wide settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorSettings {
    /// A name for this connector shown on the hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The hub to link to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_url: Option<String>,
}

impl Default for ConnectorConfig {
    /// The embedded default: one simulated source, so a fresh connector has data to show.
    fn default() -> Self {
        Self {
            version: CONFIG_VERSION,
            settings: ConnectorSettings::default(),
            sources: vec![SourceConfig {
                name: "simulated".into(),
                kind: "simulated".into(),
                description: "Simulated process data".into(),
                settings: kinds::schema("simulated")
                    .and_then(|s| {
                        s.validate(&Map::new())
                            .map_err(SourceError::InvalidSettings)
                    })
                    .expect("the simulated source's defaults are valid"),
            }],
            source_keys: BTreeMap::new(),
        }
    }
}

/// The longest data source name.
const MAX_NAME_LEN: usize = 64;

impl ConnectorConfig {
    /// Adds a source after checking its name and validating its settings against its kind's
    /// form; the stored settings are the validated ones (defaults filled in).
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] with one error per bad field (including `name`), or
    /// [`SourceError::UnknownKind`].
    pub fn add_source(&mut self, mut source: SourceConfig) -> Result<&SourceConfig, SourceError> {
        let schema = kinds::schema(&source.kind)?;
        let mut errors = Vec::new();
        if let Err(message) = check_name(&source.name) {
            errors.push(FieldError::new("name", message));
        } else if self.sources.iter().any(|s| s.name == source.name) {
            errors.push(FieldError::new(
                "name",
                format!(
                    "is taken: a data source named '{}' already exists; choose another name",
                    source.name
                ),
            ));
        }
        match schema.validate(&source.settings) {
            Ok(valid) => source.settings = valid,
            Err(field_errors) => errors.extend(field_errors),
        }
        if !errors.is_empty() {
            return Err(SourceError::InvalidSettings(errors));
        }
        self.source_keys
            .insert(source.name.clone(), new_source_key());
        self.sources.push(source);
        Ok(self.sources.last().expect("just pushed"))
    }

    /// Replaces the source named `name` by `source` (which may rename it), in the same place
    /// in the list and under the same stable key, checked as [`add_source`](Self::add_source)
    /// checks. Returns the old configuration and the stored new one.
    ///
    /// # Errors
    /// As `add_source`; [`SourceError::UnknownSource`]. Nothing changes on error.
    pub fn replace_source(
        &mut self,
        name: &str,
        source: SourceConfig,
    ) -> Result<(SourceConfig, &SourceConfig), SourceError> {
        let index = self
            .sources
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| SourceError::UnknownSource(name.to_owned()))?;
        let key = self.source_key(name);
        let mut edited = self.clone();
        let old = edited.sources.remove(index);
        edited.source_keys.remove(name);
        edited.add_source(source)?;
        let new = edited.sources.pop().expect("just added");
        edited.source_keys.insert(new.name.clone(), key);
        edited.sources.insert(index, new);
        *self = edited;
        Ok((old, &self.sources[index]))
    }

    /// The stable key of the source named `name`. A source configured before keys existed
    /// has none stored: its key is made from its name, and kept under the new name when the
    /// source is renamed, so the hub's first key for it is the one it keeps.
    pub fn source_key(&self, name: &str) -> String {
        self.source_keys
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("name:{name}"))
    }

    /// Removes the named source and returns it.
    ///
    /// # Errors
    /// [`SourceError::UnknownSource`].
    pub fn remove_source(&mut self, name: &str) -> Result<SourceConfig, SourceError> {
        let index = self
            .sources
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| SourceError::UnknownSource(name.to_owned()))?;
        self.source_keys.remove(name);
        Ok(self.sources.remove(index))
    }

    /// The named source's configuration.
    ///
    /// # Errors
    /// [`SourceError::UnknownSource`].
    pub fn source(&self, name: &str) -> Result<&SourceConfig, SourceError> {
        self.sources
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| SourceError::UnknownSource(name.to_owned()))
    }
}

/// A fresh stable key for a data source: `s_` and 22 random letters and digits.
fn new_source_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let key: String = (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("s_{key}")
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is required".into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!("must be at most {MAX_NAME_LEN} characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may hold only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid configuration; it was moved aside so nothing overwrites it.
    #[error("the configuration {} could not be read ({reason}); it was moved to {} and a fresh configuration is used", .path.display(), .moved_to.display())]
    Corrupt {
        /// Where it was.
        path: PathBuf,
        /// Where it is now.
        moved_to: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer Uplink; it is left alone.
    #[error("the configuration {} has format version {version}, newer than this Uplink understands ({CONFIG_VERSION}); update Uplink", .path.display())]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u32,
    },
    /// Reading or writing failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Corrupt { .. } => "config_corrupt",
            ConfigError::NewerVersion { .. } => "config_newer_version",
            ConfigError::Io { .. } => "config_io",
        }
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ConfigError + 'a {
    move |source| ConfigError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The configuration files in one data dir.
///
/// ```
/// use uplink_connector::config::{ConfigStore, ConnectorConfig};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = ConfigStore::new(dir.path());
/// let mut config = store.load().unwrap(); // the embedded default
/// config.settings.display_name = Some("Line 1".into());
/// store.save(&config).unwrap();
/// assert_eq!(store.load().unwrap(), config);
/// ```
#[derive(Debug, Clone)]
pub struct ConfigStore {
    dir: PathBuf,
}

impl ConfigStore {
    /// The store in `data_dir` (created on first save).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: data_dir.into(),
        }
    }

    /// The configuration file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    fn secrets_path(&self) -> PathBuf {
        self.dir.join(SECRETS_FILE)
    }

    /// Reads the configuration; the embedded default when there is none yet.
    ///
    /// # Errors
    /// [`ConfigError::Corrupt`] after moving an unreadable file aside (the next save starts
    /// afresh); [`ConfigError::NewerVersion`]; [`ConfigError::Io`].
    pub fn load(&self) -> Result<ConnectorConfig, ConfigError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConnectorConfig::default());
            }
            Err(err) => return Err(io("read", &path)(err)),
        };
        let mut config = match parse(&bytes) {
            Ok(config) => config,
            Err(Unreadable::Newer(version)) => {
                return Err(ConfigError::NewerVersion { path, version });
            }
            Err(Unreadable::Corrupt(reason)) => return Err(self.move_aside(&path, reason)),
        };
        if let Some(secrets) = self.load_secrets()? {
            for source in &mut config.sources {
                if let Some(Value::Object(fields)) = secrets.get(&source.name) {
                    source
                        .settings
                        .extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        Ok(config)
    }

    /// Like [`load`](Self::load), but a corrupt file yields the default configuration and the
    /// problem, so the connector keeps running and can say what happened.
    ///
    /// # Errors
    /// As `load`, except [`ConfigError::Corrupt`].
    pub fn load_or_recover(&self) -> Result<(ConnectorConfig, Option<ConfigError>), ConfigError> {
        match self.load() {
            Ok(config) => Ok((config, None)),
            Err(err @ ConfigError::Corrupt { .. }) => {
                tracing::warn!(error = %err, "connector configuration was corrupt");
                Ok((ConnectorConfig::default(), Some(err)))
            }
            Err(err) => Err(err),
        }
    }

    /// Writes the configuration atomically; secret fields go to the owner-only secrets file.
    ///
    /// # Errors
    /// [`ConfigError::Io`].
    pub fn save(&self, config: &ConnectorConfig) -> Result<(), ConfigError> {
        fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let mut public = config.clone();
        public.version = CONFIG_VERSION;
        let secrets = split_secrets(&mut public, &|kind| {
            kinds::schema(kind)
                .map(|schema| schema.secret_fields().map(str::to_owned).collect())
                .unwrap_or_default()
        });
        let json = serde_json::to_vec_pretty(&public).expect("configuration serialises");
        write_atomically(&self.path(), &json, false)?;
        let secrets_path = self.secrets_path();
        if secrets.is_empty() {
            match fs::remove_file(&secrets_path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &secrets_path)(err));
                }
                _ => {}
            }
        } else {
            let json = serde_json::to_vec(&Value::Object(secrets)).expect("secrets serialise");
            write_atomically(&secrets_path, &json, true)?;
        }
        Ok(())
    }

    fn load_secrets(&self) -> Result<Option<Map<String, Value>>, ConfigError> {
        let path = self.secrets_path();
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(Some(map)),
                // The message never quotes the file: it holds secrets.
                _ => Err(self.move_aside(&path, "not a JSON object of secrets".into())),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io("read", &path)(err)),
        }
    }

    fn move_aside(&self, path: &Path, reason: String) -> ConfigError {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let moved_to = path.with_file_name(format!("{name}.corrupt-{stamp}"));
        if let Err(source) = fs::rename(path, &moved_to) {
            return ConfigError::Io {
                action: "move aside the unreadable",
                path: path.to_owned(),
                source,
            };
        }
        ConfigError::Corrupt {
            path: path.to_owned(),
            moved_to,
            reason,
        }
    }
}

/// Takes the secret fields out of every source's settings: `{source: {field: value}}`.
fn split_secrets(
    config: &mut ConnectorConfig,
    secret_fields: &dyn Fn(&str) -> Vec<String>,
) -> Map<String, Value> {
    let mut secrets = Map::new();
    for source in &mut config.sources {
        let hidden: Map<String, Value> = secret_fields(&source.kind)
            .into_iter()
            .filter_map(|field| source.settings.remove(&field).map(|v| (field, v)))
            .collect();
        if !hidden.is_empty() {
            secrets.insert(source.name.clone(), Value::Object(hidden));
        }
    }
    secrets
}

enum Unreadable {
    Newer(u32),
    Corrupt(String),
}

fn parse(bytes: &[u8]) -> Result<ConnectorConfig, Unreadable> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let version = serde_json::from_slice::<Versioned>(bytes)
        .map_err(|err| Unreadable::Corrupt(err.to_string()))?
        .version;
    if version > CONFIG_VERSION {
        return Err(Unreadable::Newer(version));
    }
    serde_json::from_slice(bytes).map_err(|err| Unreadable::Corrupt(err.to_string()))
}

/// Writes `bytes` to `path` atomically (`uplink_files::write_atomically`): readers see the old or
/// the new file whole, owner-only (0600) when `owner_only`.
pub fn write_atomically(path: &Path, bytes: &[u8], owner_only: bool) -> Result<(), ConfigError> {
    uplink_files::write_atomically(path, bytes, uplink_files::Access::owner_only(owner_only))
        .map_err(|e| ConfigError::Io {
            action: e.action,
            path: e.path,
            source: e.source,
        })
}

#[cfg(test)]
mod tests;
