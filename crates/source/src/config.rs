//! One configured data source as the connector keeps it, and reading its settings into a kind's
//! own settings type through the kind's form.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::SourceError;
use crate::form::{FieldError, FormSchema};

/// One configured data source.
#[derive(Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct SourceConfig {
    /// Unique on this connector; what grants refer to.
    pub name: String,
    /// The adapter (`simulated`, `csv`, `sqlite`, …).
    pub kind: String,
    /// What it holds, for people.
    #[serde(default)]
    pub description: String,
    /// The kind's settings, as validated by its form schema.
    #[serde(default)]
    #[ts(type = "Record<string, string | number | boolean>")]
    pub settings: Map<String, Value>,
}

impl std::fmt::Debug for SourceConfig {
    /// Only the names of the settings are shown: which of them are secret is known to the
    /// kind's form, and a debug line must never carry one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Validates `settings` against `schema` and reads them into a kind's settings type.
///
/// # Errors
/// [`SourceError::InvalidSettings`] with one error per bad field.
pub fn typed_settings<T: DeserializeOwned>(
    schema: &FormSchema,
    settings: &Map<String, Value>,
) -> Result<T, SourceError> {
    let valid = schema
        .validate(settings)
        .map_err(SourceError::InvalidSettings)?;
    serde_json::from_value(Value::Object(valid)).map_err(|err| {
        SourceError::InvalidSettings(vec![FieldError::new("settings", err.to_string())])
    })
}
