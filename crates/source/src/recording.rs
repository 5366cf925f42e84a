//! Recording to the connector's edge historian: the form fields every kind with live values adds
//! with one call ([`fields`]), the settings read from them ([`RecordingSettings`]), and what a
//! recording source reports about its recording ([`RecordingStatus`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use ts_rs::TS;
use uplink_model::Span;

use crate::SourceError;
use crate::form::{FieldError, FieldSchema, FieldType};

/// The settings key of the recording mode (`none`, `all` or `pattern`).
pub const RECORD: &str = "record";
/// The settings key of the recorded tag name pattern.
pub const RECORD_TAGS: &str = "recordTags";
/// The settings key of the deadband.
pub const RECORD_DEADBAND: &str = "recordDeadband";
/// The settings key of the retention age.
pub const RETENTION_AGE: &str = "retentionAge";
/// The settings key of the retention size in megabytes.
pub const RETENTION_SIZE: &str = "retentionSizeMb";

/// The recording fields, appended to a kind's form: `fields.extend(recording::fields())`.
pub fn fields() -> Vec<FieldSchema> {
    vec![
        FieldSchema::new(RECORD, "Record to the edge historian", FieldType::Select, true,
            "Keep live values on this connector's disk so raw, plot and processed queries work: none, every tag, or the tags matching a pattern.")
            .options(&["none", "all", "pattern"])
            .default_value("none"),
        FieldSchema::new(RECORD_TAGS, "Recorded tags", FieldType::Text, false,
            "When recording by pattern: tag names to record, with * for any run and ? for one character (such as TI*).")
            .default_value("*"),
        FieldSchema::new(RECORD_DEADBAND, "Deadband", FieldType::Number, true,
            "A value is recorded only when it moved more than this from the last recorded one (0 records every change).")
            .default_value(0.0)
            .range(0.0, 1e12),
        FieldSchema::new(RETENTION_AGE, "Keep for", FieldType::Duration, true,
            "Recorded values older than this are deleted, such as 30d.")
            .default_value("30d"),
        FieldSchema::new(RETENTION_SIZE, "Keep at most (MB)", FieldType::Integer, true,
            "The oldest recorded values are deleted when the recording takes more disk than this.")
            .default_value(1_024)
            .range(1.0, 10_000_000.0),
    ]
}

/// Which tags are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum RecordMode {
    /// Nothing is recorded.
    None,
    /// Every tag.
    All,
    /// Tags whose names match [`RecordingSettings::pattern`].
    Pattern,
}

/// A source's recording settings, read from its validated settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingSettings {
    /// Which tags.
    pub record: RecordMode,
    /// The name pattern, for [`RecordMode::Pattern`].
    #[serde(rename = "recordTags", default = "all_tags")]
    pub pattern: String,
    /// The smallest change recorded.
    #[serde(rename = "recordDeadband")]
    pub deadband: f64,
    /// Values older than this are deleted.
    pub retention_age: Span,
    /// The most disk the recording takes, in megabytes.
    pub retention_size_mb: u64,
}

fn all_tags() -> String {
    "*".into()
}

impl RecordingSettings {
    /// Reads the recording fields of settings that passed the kind's form; a kind without them
    /// records nothing.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] when the fields hold something the form would refuse.
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Option<Self>, SourceError> {
        if !settings.contains_key(RECORD) {
            return Ok(None);
        }
        let schema = crate::form::FormSchema {
            kind: "recording".into(),
            title: String::new(),
            description: String::new(),
            fields: fields(),
        };
        let own: Map<String, Value> = settings
            .iter()
            .filter(|(key, _)| schema.fields.iter().any(|f| f.name == **key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let parsed: Self = crate::typed_settings(&schema, &own)?;
        if parsed.record == RecordMode::Pattern {
            uplink_model::NamePattern::new(&parsed.pattern).map_err(|err| {
                SourceError::InvalidSettings(vec![FieldError::new(RECORD_TAGS, err.to_string())])
            })?;
        }
        Ok((parsed.record != RecordMode::None).then_some(parsed))
    }

    /// The tag search pattern recorded (`*` for every tag).
    pub fn search_pattern(&self) -> &str {
        match self.record {
            RecordMode::Pattern => &self.pattern,
            _ => "*",
        }
    }
}

/// What a recording source says about its recording (shown per source by the desktop app).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RecordingStatus {
    /// The recorded tags' names (the pattern's matches when the source opened, then each later match).
    pub tags: Vec<String>,
    /// When recording first started for this source, if it has recorded anything.
    pub since: Option<DateTime<Utc>>,
    /// The oldest value still kept.
    pub oldest: Option<DateTime<Utc>>,
    /// The historian file's size on disk, in bytes.
    #[ts(type = "number")]
    pub disk_bytes: u64,
    /// Values recorded since the source opened.
    #[ts(type = "number")]
    pub recorded: u64,
    /// The last problem writing, if any.
    pub last_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings(value: Value) -> Result<Option<RecordingSettings>, SourceError> {
        RecordingSettings::from_settings(value.as_object().unwrap())
    }

    #[test]
    fn recording_is_off_unless_asked_and_defaults_fill_in() {
        assert_eq!(settings(json!({"seed": 1})).unwrap(), None);
        assert_eq!(settings(json!({"record": "none"})).unwrap(), None);
        let on = settings(json!({"record": "all", "seed": 1}))
            .unwrap()
            .unwrap();
        assert_eq!(on.search_pattern(), "*");
        assert_eq!(on.deadband, 0.0);
        assert_eq!(on.retention_age.as_micros(), 30 * 86_400_000_000);
        assert_eq!(on.retention_size_mb, 1_024);
    }

    #[test]
    fn a_bad_pattern_or_deadband_is_a_field_error() {
        let err = settings(json!({"record": "pattern", "recordTags": "", "recordDeadband": -1}))
            .unwrap_err();
        let fields: Vec<&str> = err
            .field_errors()
            .iter()
            .map(|e| e.field.as_str())
            .collect();
        assert_eq!(fields, ["recordDeadband"], "{err}");
        let err = settings(json!({"record": "pattern", "recordTags": ""})).unwrap_err();
        assert_eq!(err.field_errors()[0].field, "recordTags", "{err}");
        let on = settings(json!({"record": "pattern", "recordTags": "TI*"}))
            .unwrap()
            .unwrap();
        assert_eq!(on.search_pattern(), "TI*");
    }
}
