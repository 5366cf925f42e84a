//! The data source kinds this connector knows: their forms, and opening a configured source.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::form::FormSchema;
use crate::sources::{csv, simulated, sqlite};
use crate::{DataSource, SourceConfig, SourceContext, SourceError};
pub use uplink_source::typed_settings;

/// Every kind's form, in the order a user interface offers them.
pub fn kinds() -> Vec<FormSchema> {
    vec![
        simulated::schema(),
        csv::schema(),
        sqlite::schema(),
        uplink_source_modbus::schema(),
        uplink_source_mqtt::schema(),
        uplink_source_opcua::schema(),
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

/// Opens a configured source outside a connector (no data folder: kinds that keep state there,
/// such as OPC UA's certificates, refuse to open). See [`open_in`].
///
/// # Errors
/// As [`open_in`].
pub async fn open(config: &SourceConfig) -> Result<Arc<dyn DataSource>, SourceError> {
    open_in(config, &SourceContext::default()).await
}

/// Opens a configured source: settings are validated against the kind's form first, then the
/// source checks what it reads (the file exists, the table has the columns, the server
/// answers…). `context` gives the connector's data folder. When the settings ask for recording,
/// the source is wrapped so that its live values are recorded to its edge historian file under
/// `DATA_DIR/historian/` (and a source with no history of its own answers history from it).
///
/// # Errors
/// [`SourceError::InvalidSettings`] with field-level errors, or whatever opening found, or bad
/// recording settings, or a historian file that cannot be opened.
pub async fn open_in(
    config: &SourceConfig,
    context: &SourceContext,
) -> Result<Arc<dyn DataSource>, SourceError> {
    let source = open_kind(config, context).await?;
    record_as_asked(config, context, source).await
}

/// Wraps a source opened by [`open_without_recording`] the way [`open_in`] would have: so a
/// source a form's Test just read is added without reading it again.
///
/// # Errors
/// Bad recording settings, or a historian file that cannot be opened.
pub async fn record_as_asked(
    config: &SourceConfig,
    context: &SourceContext,
    source: Arc<dyn DataSource>,
) -> Result<Arc<dyn DataSource>, SourceError> {
    let source = journal_events(config, context, source).await?;
    match historian_file(config, context) {
        Some(file) => uplink_historian::Recorded::wrap(source, &config.settings, file).await,
        // Outside a connector (a form being checked by a tool) nothing is recorded.
        None => Ok(source),
    }
}

/// Journals the events of a kind that keeps them only in memory (MQTT event topics), so
/// time-range event reads survive a restart: in `DATA_DIR/historian/NAME.events`, the newest
/// 10 000 events and at most 32 MiB of them.
async fn journal_events(
    config: &SourceConfig,
    context: &SourceContext,
    source: Arc<dyn DataSource>,
) -> Result<Arc<dyn DataSource>, SourceError> {
    let Some(dir) = context.data_dir.as_ref().map(|d| d.join(HISTORIAN_DIR)) else {
        return Ok(source);
    };
    if config.kind != uplink_source_mqtt::KIND || !source.descriptor().capabilities.events {
        return Ok(source);
    }
    let options = uplink_historian::JournalOptions {
        max_events: uplink_source_mqtt::events::LOG_CAPACITY as u64,
        max_bytes: uplink_source_mqtt::events::LOG_BYTES as u64,
    };
    uplink_historian::Journaled::wrap(
        source,
        uplink_historian::events_file(&dir, &config.name),
        options,
    )
    .await
}

/// The folder where MQTT sources remember what their kept broker sessions are subscribed to,
/// under the connector's data folder.
pub const MQTT_SESSIONS_DIR: &str = "mqtt-sessions";

/// The folder of the edge historian files, under the connector's data folder.
pub const HISTORIAN_DIR: &str = "historian";

/// The edge historian file of `config`'s source, when there is a data folder to keep it in.
fn historian_file(config: &SourceConfig, context: &SourceContext) -> Option<std::path::PathBuf> {
    let dir = context.data_dir.as_ref()?.join(HISTORIAN_DIR);
    Some(uplink_historian::historian_file(&dir, &config.name))
}

/// Opens a configured source as [`open_in`] does, without recording: for trying a form (the
/// Test button, `uplink sources add`), which must not write to the historian file the
/// connector records into (one-off reads use [`open_for_reading`]).
///
/// # Errors
/// As [`open_in`], less the recording's.
pub async fn open_without_recording(
    config: &SourceConfig,
    context: &SourceContext,
) -> Result<Arc<dyn DataSource>, SourceError> {
    open_kind(config, context).await
}

/// Opens a configured source for one-off reads by another process than the connector
/// (`uplink query`): as the connector serves it, without recording. When the settings ask for
/// recording and the source has no history of its own, its raw, plot, processed and
/// values-at-times answers come from its edge historian file under `DATA_DIR/historian/`,
/// read-only (the runtime's rule); a source with its own history answers from it. An MQTT
/// source's time-range event reads come from its event journal there, read-only, as the
/// connector's do; and it connects to the broker with a clean session under a client id of its
/// own, so that it never takes over the connector's session (nor the messages the broker
/// queued for it).
///
/// # Errors
/// As [`open_without_recording`], or a historian or journal file that cannot be read.
pub async fn open_for_reading(
    config: &SourceConfig,
    context: &SourceContext,
) -> Result<Arc<dyn DataSource>, SourceError> {
    let config = &beside_the_connector(config);
    let mut source = open_kind(config, context).await?;
    if let Some(dir) = context.data_dir.as_ref().map(|d| d.join(HISTORIAN_DIR))
        && config.kind == uplink_source_mqtt::KIND
    {
        let file = uplink_historian::events_file(&dir, &config.name);
        source = uplink_historian::Journaled::read_only(source, file).await?;
    }
    match historian_file(config, context) {
        Some(file) => uplink_historian::Recorded::read_only(source, &config.settings, file).await,
        None => Ok(source),
    }
}

/// `config` as another opener than the connector must use it while the connector may be running
/// the same source (`uplink query`, the Test of a saved source's form): an MQTT source connects
/// with a clean session under a client id of its own, so that it never takes over the
/// connector's session, nor the messages the broker queued for it.
#[must_use]
pub fn beside_the_connector(config: &SourceConfig) -> SourceConfig {
    let mut config = config.clone();
    if config.kind == uplink_source_mqtt::KIND {
        config.settings.remove("clientId");
        config
            .settings
            .insert("cleanSession".into(), Value::Bool(true));
    }
    config
}

async fn open_kind(
    config: &SourceConfig,
    context: &SourceContext,
) -> Result<Arc<dyn DataSource>, SourceError> {
    // A bad writable pattern is a field error when the form is saved, never a write refused
    // later for a reason the owner cannot see.
    uplink_source::writing::WritableTags::from_settings(&config.settings)?;
    Ok(match config.kind.as_str() {
        simulated::KIND => Arc::new(simulated::SimulatedSource::open(config)?),
        // A saved source reopening keeps serving while its files are missing or empty; one
        // being added or tested is refused for it, with the field to change.
        csv::KIND if context.retry_unreachable => Arc::new(csv::CsvSource::open(config).await?),
        csv::KIND => Arc::new(csv::CsvSource::open_new(config).await?),
        sqlite::KIND => Arc::new(sqlite::SqliteSource::open(config).await?),
        uplink_source_modbus::KIND => {
            Arc::new(uplink_source_modbus::ModbusSource::open(config).await?)
        }
        uplink_source_mqtt::KIND => {
            let sessions = context.data_dir.as_ref().map(|d| d.join(MQTT_SESSIONS_DIR));
            Arc::new(uplink_source_mqtt::MqttSource::open_in(config, sessions.as_deref()).await?)
        }
        uplink_source_opcua::KIND => {
            Arc::new(uplink_source_opcua::OpcUaSource::open(config, context).await?)
        }
        uplink_source_postgres::KIND => {
            Arc::new(uplink_source_postgres::PostgresSource::open(config).await?)
        }
        other => return Err(schema(other).expect_err("not a known kind")),
    })
}

/// Puts the server certificate of a source that has one (an OPC UA server's) on the
/// connector's trust list, checked against `expected` when given; returns its thumbprints in
/// words.
///
/// # Errors
/// [`SourceError::Unsupported`] for a kind without server certificates; field errors when the
/// server cannot be reached or the thumbprint does not match.
pub async fn trust_server(
    config: &SourceConfig,
    context: &SourceContext,
    expected: Option<&str>,
) -> Result<String, SourceError> {
    match config.kind.as_str() {
        uplink_source_opcua::KIND => {
            Ok(uplink_source_opcua::trust_server(config, context, expected)
                .await?
                .to_string())
        }
        _ => Err(SourceError::Unsupported {
            source_name: config.name.clone(),
            what: "trusting a server certificate",
        }),
    }
}

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
    use serde_json::json;

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

    #[test]
    fn beside_the_connector_an_mqtt_source_keeps_no_session_and_other_kinds_are_unchanged() {
        let mqtt = SourceConfig {
            name: "line".into(),
            kind: "mqtt".into(),
            description: String::new(),
            settings: json!({"host": "127.0.0.1", "clientId": "site-a", "cleanSession": false})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let beside = beside_the_connector(&mqtt);
        assert_eq!(beside.settings.get("clientId"), None);
        assert_eq!(beside.settings.get("cleanSession"), Some(&json!(true)));
        assert_eq!(beside.settings.get("host"), Some(&json!("127.0.0.1")));
        let modbus = SourceConfig {
            kind: "modbus".into(),
            ..mqtt
        };
        assert_eq!(beside_the_connector(&modbus), modbus);
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

    fn opcua(settings: serde_json::Value) -> SourceConfig {
        SourceConfig {
            name: "plc".into(),
            kind: "opcua".into(),
            description: String::new(),
            settings: settings.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn the_opcua_kind_is_offered_with_its_password_secret() {
        let schema = schema("opcua").unwrap();
        assert_eq!(schema.secret_fields().collect::<Vec<_>>(), ["password"]);
        let shown = redacted_settings(&opcua(json!({
            "endpointUrl": "opc.tcp://plc:4840/", "identity": "userName",
            "userName": "op", "password": "hunter2"
        })));
        assert_eq!(shown["password"], "***");
        assert_eq!(shown["userName"], "op");
    }

    #[tokio::test]
    async fn an_opcua_source_needs_the_connectors_data_folder_and_checks_its_form_first() {
        let err = open(&opcua(json!({"endpointUrl": "opc.tcp://127.0.0.1:1/"})))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("data folder"), "{err}");
        let err = open_in(
            &opcua(json!({"endpointUrl": "http://plc/"})),
            &SourceContext::in_dir("/nonexistent"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.field_errors()[0].field, "endpointUrl");
    }

    #[tokio::test]
    async fn kinds_that_write_offer_the_writable_tags_field_and_check_it() {
        for kind in ["simulated", "modbus", "mqtt", "opcua"] {
            let form = schema(kind).unwrap();
            assert!(
                form.fields
                    .iter()
                    .any(|f| f.name == uplink_source::writing::WRITABLE_TAGS),
                "{kind}"
            );
        }
        for kind in ["csv", "sqlite", "postgres"] {
            let form = schema(kind).unwrap();
            assert!(
                !form
                    .fields
                    .iter()
                    .any(|f| f.name == uplink_source::writing::WRITABLE_TAGS),
                "{kind} cannot write"
            );
        }
        let config = SourceConfig {
            name: "sim".into(),
            kind: "simulated".into(),
            description: String::new(),
            settings: json!({"writableTags": "sim.ramp.*\n\n"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let source = open(&config).await.unwrap();
        assert!(source.descriptor().capabilities.write);
    }

    #[tokio::test]
    async fn only_kinds_with_server_certificates_can_trust_one() {
        let csv = SourceConfig {
            name: "files".into(),
            kind: "csv".into(),
            description: String::new(),
            settings: serde_json::Map::new(),
        };
        let err = trust_server(&csv, &SourceContext::default(), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "unsupported");
    }
}

#[cfg(test)]
#[path = "kinds_recording_tests.rs"]
mod recording_tests;
