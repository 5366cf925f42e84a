//! The data source commands: the forms, adding, editing, removing, and a test read that
//! shows sample values before anything is saved.

use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use ts_rs::TS;
use uplink_connector::form::FormSchema;

use uplink_connector::{ConfigStore, DataSource, Health, SourceConfig, kinds};
use uplink_model::TagSearch;

use crate::{Control, ControlError, ControlErrorCode, lock};

/// What a test read found.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SourceTest {
    /// Whether the source works.
    pub health: Health,
    /// How many tags it has (counted up to `MAX_COUNTED_TAGS`, 100 000).
    pub tag_count: u32,
    /// The current values of its first few tags.
    pub sample: Vec<SampleValue>,
}

/// One current value.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SampleValue {
    /// The tag.
    pub tag: String,
    /// The value: a number, a text or digital state, or none.
    #[ts(type = "number | string | null")]
    pub value: Value,
    /// When it was sampled.
    pub time: Option<String>,
    /// Its engineering unit.
    pub unit: Option<String>,
}

/// Tag counting stops here: the number is for display.
pub const MAX_COUNTED_TAGS: u32 = 100_000;
const SAMPLE_SIZE: u32 = 5;

impl Control {
    /// The form of every data source kind.
    pub fn source_kinds(&self) -> Vec<FormSchema> {
        kinds::kinds()
    }

    fn configured_sources(&self) -> Result<Vec<SourceConfig>, ControlError> {
        Ok(ConfigStore::new(&self.inner.data_dir)
            .load()
            .map_err(|e| ControlError::lower(e.code(), e.to_string()))?
            .sources)
    }

    /// A source's settings for its Edit form, secrets blanked (a blank secret on edit keeps
    /// the stored one).
    pub fn source_settings(&self, name: &str) -> Result<SourceConfig, ControlError> {
        let mut source = self
            .configured_sources()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| unknown_source(name))?;
        let schema = kinds::schema(&source.kind)?;
        for secret in schema.secret_fields() {
            if let Some(value) = source.settings.get_mut(secret) {
                *value = Value::String(String::new());
            }
        }
        Ok(source)
    }

    /// Adds a data source: validated, opened, saved, announced to the hub. A source the last
    /// Test opened with the very same settings is taken as it is, not read a second time.
    pub async fn add_source(&self, source: SourceConfig) -> Result<(), ControlError> {
        let tested = self.take_tested(&source);
        self.runtime()
            .await?
            .add_source_opened(source, tested)
            .await?;
        Ok(())
    }

    /// The source the last Test opened, when it was opened with `source`'s settings.
    fn take_tested(&self, source: &SourceConfig) -> Option<Arc<dyn DataSource>> {
        let (config, opened) = lock(&self.inner.tested).take()?;
        let mut validated = source.clone();
        validated.settings = kinds::schema(&source.kind)
            .ok()?
            .validate(&source.settings)
            .ok()?;
        (validated == config).then_some(opened)
    }

    /// Replaces the source named `name`.
    pub async fn edit_source(&self, name: &str, source: SourceConfig) -> Result<(), ControlError> {
        let source = self.keep_blank_secrets(Some(name), source)?;
        self.runtime().await?.edit_source(name, source).await?;
        Ok(())
    }

    /// Removes the source named `name`; apps lose it at once.
    pub async fn remove_source(&self, name: &str) -> Result<(), ControlError> {
        self.runtime().await?.remove_source(name).await?;
        Ok(())
    }

    /// Opens `source` without saving it and reads a few current values; `run_id` lets the
    /// window stop it ([`cancel_run`](Self::cancel_run)). `saved` names the saved source the
    /// form edits, if it does (the form may have renamed it). The opened source is kept for an
    /// Add of the same settings that follows.
    pub async fn test_source(
        &self,
        source: SourceConfig,
        saved: Option<String>,
        run_id: Option<String>,
    ) -> Result<SourceTest, ControlError> {
        // Whatever the last Test kept is let go first: only one is ever held.
        lock(&self.inner.tested).take();
        self.cancellable(
            run_id,
            "test of the data source",
            self.open_and_test(source, saved),
        )
        .await
    }

    /// What a Test of `source` opens, and whether it is a saved source's: one named `saved`,
    /// or by the form's name. A saved source is running in the connector, under whatever name
    /// the form now shows: its Test must not take over the source's broker session (it opens
    /// beside the connector), and what it opens is not kept for an Add. Blank secrets are the
    /// saved source's.
    fn to_test(
        &self,
        source: SourceConfig,
        saved: Option<&str>,
    ) -> Result<(SourceConfig, bool), ControlError> {
        let configured = self.configured_sources()?;
        let existing = [saved, Some(source.name.as_str())]
            .into_iter()
            .flatten()
            .find(|name| configured.iter().any(|s| s.name == *name))
            .map(str::to_owned);
        let mut source = self.keep_blank_secrets(existing.as_deref(), source)?;
        source.settings = kinds::schema(&source.kind)?
            .validate(&source.settings)
            .map_err(ControlError::invalid_form)?;
        Ok(match existing {
            Some(_) => (kinds::beside_the_connector(&source), true),
            None => (source, false),
        })
    }

    async fn open_and_test(
        &self,
        source: SourceConfig,
        saved: Option<String>,
    ) -> Result<SourceTest, ControlError> {
        let (source, existing) = self.to_test(source, saved.as_deref())?;
        let context = uplink_connector::SourceContext::in_dir(&self.inner.data_dir);
        let opened = kinds::open_without_recording(&source, &context).await?;
        let mut tag_count = 0u32;
        let mut sample_tags = Vec::new();
        let mut offset = 0;
        loop {
            let page = opened
                .search(&TagSearch {
                    pattern: "*".into(),
                    offset,
                    limit: 1_000,
                })
                .await?;
            tag_count = tag_count.saturating_add(page.tags.len() as u32);
            for tag in page.tags {
                if sample_tags.len() < SAMPLE_SIZE as usize {
                    sample_tags.push(tag);
                }
            }
            match page.next_offset {
                Some(next) if tag_count < MAX_COUNTED_TAGS => offset = next,
                _ => break,
            }
        }
        let names: Vec<String> = sample_tags.iter().map(|t| t.name.clone()).collect();
        let values = if names.is_empty() {
            Vec::new()
        } else {
            opened.snapshot(&names).await?
        };
        let sample = sample_tags
            .iter()
            .zip(values)
            .map(|(tag, value)| SampleValue {
                tag: tag.name.clone(),
                value: match (value.value, value.text) {
                    (Some(number), _) => serde_json::json!(number),
                    (None, Some(text)) => Value::String(text),
                    (None, None) => Value::Null,
                },
                time: Some(value.time.to_rfc3339()),
                unit: (!tag.units.is_empty()).then(|| tag.units.clone()),
            })
            .collect();
        let tested = SourceTest {
            health: opened.health(),
            tag_count,
            sample,
        };
        if !existing {
            *lock(&self.inner.tested) = Some((source, opened));
        }
        Ok(tested)
    }

    /// Fills blank secret settings from the stored source named `name`.
    fn keep_blank_secrets(
        &self,
        name: Option<&str>,
        mut source: SourceConfig,
    ) -> Result<SourceConfig, ControlError> {
        let Some(name) = name else {
            return Ok(source);
        };
        let Some(stored) = self
            .configured_sources()?
            .into_iter()
            .find(|s| s.name == name)
        else {
            return Ok(source);
        };
        let schema = kinds::schema(&source.kind)?;
        for secret in schema.secret_fields() {
            let blank = source
                .settings
                .get(secret)
                .is_none_or(|v| v.as_str() == Some(""));
            if blank && let Some(kept) = stored.settings.get(secret) {
                source.settings.insert(secret.to_owned(), kept.clone());
            }
        }
        Ok(source)
    }
}

fn unknown_source(name: &str) -> ControlError {
    ControlError::new(
        ControlErrorCode::UnknownSource,
        format!("no data source named '{name}' is configured"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::HostKind;

    fn mqtt(name: &str, settings: Value) -> SourceConfig {
        serde_json::from_value(json!({"name": name, "kind": "mqtt", "settings": settings})).unwrap()
    }

    /// The Test of a saved MQTT source, under its name or renamed in the form, connects
    /// beside the connector (a clean session under a client id of its own, the saved
    /// password); a new source's Test uses its settings as they are.
    #[tokio::test]
    async fn a_saved_mqtt_source_is_tested_beside_the_connector_even_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConfigStore::new(dir.path());
        let mut config = store.load().unwrap();
        let settings = json!({
            "brokerUrl": "mqtt://127.0.0.1:1",
            "subscriptions": "plant/# plain",
            "clientId": "line-1-connector",
            "cleanSession": false,
            "username": "line",
            "password": "kept secret",
        });
        config.add_source(mqtt("line-1", settings.clone())).unwrap();
        store.save(&config).unwrap();
        let control = Control::start(HostKind::Desktop, dir.path().to_owned());

        let mut form = settings.clone();
        form["password"] = json!("");
        for (name, saved) in [
            ("line-1", None),
            ("line-1", Some("line-1")),
            ("line-1-renamed", Some("line-1")),
        ] {
            let (opened, existing) = control.to_test(mqtt(name, form.clone()), saved).unwrap();
            assert!(existing, "{name} {saved:?}");
            assert_eq!(opened.settings.get("clientId"), None, "{name} {saved:?}");
            assert_eq!(
                opened.settings["cleanSession"],
                json!(true),
                "{name} {saved:?}"
            );
            assert_eq!(opened.settings["password"], json!("kept secret"));
        }

        let (opened, existing) = control
            .to_test(mqtt("line-2", settings.clone()), None)
            .unwrap();
        assert!(!existing);
        assert_eq!(opened.settings["clientId"], json!("line-1-connector"));
        assert_eq!(opened.settings["cleanSession"], json!(false));
    }
}
