//! The data source kinds this connector knows: their forms, and opening a configured source.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::form::FormSchema;
use crate::sources::{csv, simulated, sqlite};
use crate::{DataSource, SourceConfig, SourceError};
pub use uplink_source::typed_settings;

/// Every kind's form, in the order a user interface offers them.
pub fn kinds() -> Vec<FormSchema> {
    vec![
        simulated::schema(),
        csv::schema(),
        sqlite::schema(),
        uplink_source_modbus::schema(),
        uplink_source_mqtt::schema(),
        uplink_source_postgres::schema(),
    ]
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
        uplink_source_modbus::KIND => {
            Arc::new(uplink_source_modbus::ModbusSource::open(config).await?)
        }
        uplink_source_mqtt::KIND => Arc::new(uplink_source_mqtt::MqttSource::open(config).await?),
        uplink_source_postgres::KIND => {
            Arc::new(uplink_source_postgres::PostgresSource::open(config).await?)
        }
        other => return Err(schema(other).expect_err("not a known kind")),
    })
}

/// Opens a configured source as [`open`] does, and when its settings ask for recording, wraps
/// it so its live values are recorded to its edge historian file under `data_dir/historian/`
/// (and a source with no history of its own answers history from that recording).
///
/// # Errors
/// As [`open`], or bad recording settings, or a historian file that cannot be opened.
pub async fn open_in(
    config: &SourceConfig,
    data_dir: &std::path::Path,
) -> Result<Arc<dyn DataSource>, SourceError> {
    let source = open(config).await?;
    let file = uplink_historian::historian_file(&data_dir.join(HISTORIAN_DIR), &config.name);
    uplink_historian::Recorded::wrap(source, &config.settings, file).await
}

/// The folder of the edge historian files, under the connector's data folder.
pub const HISTORIAN_DIR: &str = "historian";

/// The settings with secret fields replaced by `***`, for display and logs.
pub fn redacted_settings(config: &SourceConfig) -> Map<String, Value> {
    let secrets: Vec<String> = schema(&config.kind)
        .map(|s| s.secret_fields().map(str::to_owned).collect())
        .unwrap_or_default();
    config
        .settings
        .iter()
        .map(|(k, v)| {
            let shown = if secrets.contains(k) {
                Value::String("***".into())
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn modbus_is_offered_and_opened_through_the_registry() {
        assert!(kinds().iter().any(|k| k.kind == "modbus"));
        let form = schema("modbus").unwrap();
        let map = form
            .fields
            .iter()
            .find(|f| f.name == "registerMap")
            .unwrap();
        assert_eq!(map.field_type, crate::form::FieldType::Lines);
        // Opening reaches the kind's own checks: an overlapping map is a field error naming rows.
        let config = SourceConfig {
            name: "plc".into(),
            kind: "modbus".into(),
            description: String::new(),
            settings: serde_json::json!({
                "host": "127.0.0.1",
                "registerMap": "name,table,address,type\na,hr,0,f32\nb,hr,1,u16\n",
            })
            .as_object()
            .cloned()
            .unwrap(),
        };
        let err = open(&config).await.unwrap_err();
        assert_eq!(err.field_errors()[0].field, "registerMap");
        assert!(
            err.field_errors()[0]
                .message
                .starts_with("line 3 (b): holding registers 1–1 overlap line 2 (a)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn mqtt_is_offered_and_opened_through_the_registry() {
        let form = schema("mqtt").unwrap();
        let field = |name: &str| form.fields.iter().find(|f| f.name == name).unwrap();
        assert_eq!(
            field("subscriptions").field_type,
            crate::form::FieldType::Lines
        );
        assert!(field("password").secret);
        let config = SourceConfig {
            name: "broker".into(),
            kind: "mqtt".into(),
            description: String::new(),
            settings: serde_json::json!({
                "brokerUrl": "mqtt://127.0.0.1:1",
                "password": "not-shown",
                "username": "u",
                "subscriptions": "plant/+/temp plain\nplant/#/x plain",
            })
            .as_object()
            .cloned()
            .unwrap(),
        };
        assert_eq!(redacted_settings(&config)["password"], "***");
        let err = open(&config).await.unwrap_err();
        assert_eq!(err.field_errors()[0].field, "subscriptions");
        assert!(
            err.field_errors()[0].message.starts_with("line 2: "),
            "{err}"
        );
    }
}

#[cfg(test)]
#[path = "kinds_recording_tests.rs"]
mod recording_tests;
