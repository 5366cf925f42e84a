//! The data source kinds this connector knows: their forms, and opening a configured source.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::form::{FieldError, FormSchema};
use crate::sources::{csv, simulated, sqlite};
use crate::{DataSource, SourceConfig, SourceError};

/// Every kind's form, in the order a user interface offers them.
pub fn kinds() -> Vec<FormSchema> {
    vec![simulated::schema(), csv::schema(), sqlite::schema()]
}

/// One kind's form.
///
/// # Errors
/// [`SourceError::UnknownKind`].
pub fn schema(kind: &str) -> Result<FormSchema, SourceError> {
    kinds()
        .into_iter()
        .find(|schema| schema.kind == kind)
        .ok_or_else(|| SourceError::UnknownKind {
            kind: kind.to_owned(),
            known: kinds()
                .iter()
                .map(|s| s.kind.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Opens a configured source: settings are validated against the kind's form first, then the
/// source checks what it reads (the file exists, the table has the columns…).
///
/// # Errors
/// [`SourceError::InvalidSettings`] with field-level errors, or whatever opening found.
pub async fn open(config: &SourceConfig) -> Result<Arc<dyn DataSource>, SourceError> {
    Ok(match config.kind.as_str() {
        simulated::KIND => Arc::new(simulated::SimulatedSource::open(config)?),
        csv::KIND => Arc::new(csv::CsvSource::open(config).await?),
        sqlite::KIND => Arc::new(sqlite::SqliteSource::open(config).await?),
        other => return Err(schema(other).expect_err("not a known kind")),
    })
}

/// Validates `settings` against `schema` and reads them into a kind's settings type.
pub(crate) fn typed_settings<T: DeserializeOwned>(
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
