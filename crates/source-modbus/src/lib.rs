//! The Modbus TCP data source (`modbus` kind): a register map — tag name, table, address, type,
//! word and byte order, scale and offset — polled from one device at a fixed interval with
//! neighbouring addresses coalesced into as few requests as the protocol allows. It serves the
//! snapshot from the last poll, live values after every poll, and writes to coils and holding
//! registers. Stored values (raw, plot, processed) wait for the edge historian.

#![warn(missing_docs)]

pub mod codec;
pub mod map;
pub mod plan;
mod poll;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use uplink_model::time_expr::Span;
use uplink_model::{
    Capabilities, DataSourceDescriptor, DataType, RawRequest, Tag, TagPage, TagSearch, TagValue,
};
use uplink_source::form::{FieldError, FieldSchema, FieldType, FormSchema};
use uplink_source::{
    ChangeStream, DataSource, Health, RawStream, SnapshotStream, SourceConfig, SourceError,
    WriteValue,
};

pub use map::{RegisterMap, Row, Table, ValueType};
pub use poll::PollStats;

use crate::map::MapProblem;
use crate::poll::Shared;

/// The kind's identifier.
pub const KIND: &str = "modbus";

/// The longest register map text the form accepts (about 20 000 rows).
const MAX_MAP_LENGTH: usize = 2 * 1024 * 1024;

/// The form of a Modbus TCP source.
pub fn schema() -> FormSchema {
    let mut map = FieldSchema::new(
        "registerMap",
        "Register map",
        FieldType::Lines,
        true,
        "CSV with the header name,table,address,type,order,scale,offset,units,description. Table: coil, discrete input, input register or holding register; address from 0; type u16, i16, u32, i32, f32, f64 or bool; order ABCD (default), CDAB, BADC or DCBA; value = raw × scale + offset.",
    );
    map.constraints.max_length = Some(MAX_MAP_LENGTH);
    FormSchema {
        kind: KIND.into(),
        title: "Modbus TCP device".into(),
        description: "Registers and coils of a PLC or meter over Modbus TCP, polled at an interval; coils and holding registers can be written.".into(),
        fields: vec![
            FieldSchema::new("host", "Host", FieldType::Text, true, "The device's (or gateway's) host name or IP address."),
            FieldSchema::new("port", "Port", FieldType::Integer, true, "The Modbus TCP port.")
                .default_value(502)
                .range(1.0, 65_535.0),
            FieldSchema::new("unitId", "Unit id", FieldType::Integer, true, "The unit (slave) id requests carry; 1 for most devices, the serial address behind a gateway, 255 for some TCP-only devices.")
                .default_value(1)
                .range(0.0, 255.0),
            FieldSchema::new("pollInterval", "Poll interval", FieldType::Duration, true, "How often every mapped address is read, such as 1s or 500ms.")
                .default_value("1s"),
            FieldSchema::new("timeout", "Timeout", FieldType::Duration, true, "How long one request may wait for an answer before the device counts as not answering.")
                .default_value("1s"),
            FieldSchema::new("maxGap", "Largest gap", FieldType::Integer, true, "Unmapped addresses one request may read over to join two rows; 0 when the device refuses reads of addresses it does not have.")
                .default_value(10)
                .range(0.0, 124.0),
            FieldSchema::new("maxRegisters", "Registers per request", FieldType::Integer, true, "The most registers one read asks for; the protocol allows 125, some devices fewer.")
                .default_value(125)
                .range(1.0, 125.0),
            map,
        ]
        .into_iter()
        .chain(uplink_source::recording::fields())
        .chain(uplink_source::writing::fields())
        .collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    host: String,
    port: u16,
    unit_id: u8,
    poll_interval: Span,
    timeout: Span,
    max_gap: u16,
    max_registers: u16,
    register_map: String,
}

fn std_duration(span: Span) -> Duration {
    Duration::from_micros(u64::try_from(span.as_micros()).unwrap_or(0).max(1_000))
}

/// Field errors for a register map's problems, one per row.
pub fn map_errors(problems: &[MapProblem]) -> Vec<FieldError> {
    problems
        .iter()
        .map(|p| FieldError::new("registerMap", p.to_string()))
        .collect()
}

/// Reads a register map's CSV as the form does.
///
/// # Errors
/// [`SourceError::InvalidSettings`] with one `registerMap` error per bad row.
pub fn parse_map(text: &str) -> Result<RegisterMap, SourceError> {
    let map = RegisterMap::parse(text).map_err(|p| SourceError::InvalidSettings(map_errors(&p)))?;
    if map.rows().is_empty() {
        return Err(SourceError::InvalidSettings(vec![FieldError::new(
            "registerMap",
            "has no rows: add a line per tag below the header",
        )]));
    }
    Ok(map)
}

/// A Modbus TCP data source; clones share the device connection and the poller.
#[derive(Debug, Clone)]
pub struct ModbusSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    description: String,
    tags: Vec<Tag>,
    index: HashMap<String, usize>,
    shared: Arc<Shared>,
    _poller: Poller,
}

/// The polling task, stopped when dropped: with the source, or with an `open` given up halfway.
#[derive(Debug)]
struct Poller(tokio::task::JoinHandle<()>);

impl Drop for Poller {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl ModbusSource {
    /// Checks the settings and the register map, starts polling, and returns once the first
    /// poll has finished (so health says at once whether the device answers). A device that
    /// does not answer is not an error here: the source opens, its health says so, and polling
    /// goes on until it answers.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] naming the field, and for the map every bad row.
    pub async fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        let host = settings.host.trim();
        let bad_host = (host.is_empty() || host.contains(char::is_whitespace))
            .then(|| FieldError::new("host", "must be a host name or IP address without spaces"));
        // Every problem at once: the host's and each bad row's.
        let map = match (parse_map(&settings.register_map), bad_host) {
            (Ok(map), None) => map,
            (Ok(_), Some(host)) => return Err(SourceError::InvalidSettings(vec![host])),
            (Err(err), host) => {
                let mut errors: Vec<FieldError> = host.into_iter().collect();
                errors.extend(err.field_errors().iter().cloned());
                return Err(SourceError::InvalidSettings(errors));
            }
        };
        let blocks = plan::plan(&map, settings.max_gap, settings.max_registers);
        let endpoint = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", settings.port)
        } else {
            format!("{host}:{}", settings.port)
        };
        let tags = map.rows().iter().map(tag_of).collect();
        let index = map
            .rows()
            .iter()
            .enumerate()
            .map(|(i, row)| (row.name.clone(), i))
            .collect();
        let shared = Arc::new(Shared::new(
            endpoint,
            settings.unit_id,
            std_duration(settings.timeout),
            map.rows().to_vec(),
            blocks,
        ));
        let mut first = shared.watch();
        let poller = Poller(tokio::spawn(run(
            shared.clone(),
            std_duration(settings.poll_interval),
        )));
        // The poller always finishes its first poll (every step of it is bounded by the timeout).
        let _ = first.changed().await;
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                description: config.description.clone(),
                tags,
                index,
                shared,
                _poller: poller,
            }),
        })
    }

    /// Request counts: requests per poll after coalescing, and how many were sent.
    pub fn stats(&self) -> PollStats {
        self.inner.shared.stats()
    }

    /// Polls once more now (besides the interval) and returns when done.
    pub async fn poll_now(&self) {
        self.inner.shared.poll().await;
    }

    /// Waits until `n` polls have finished since the source opened.
    pub async fn wait_for_polls(&self, n: u64) {
        let mut polls = self.inner.shared.watch();
        let _ = polls.wait_for(|&done| done >= n).await;
    }

    fn position(&self, tag: &str) -> Result<usize, SourceError> {
        self.inner
            .index
            .get(tag)
            .copied()
            .ok_or_else(|| SourceError::UnknownTag {
                source_name: self.inner.name.clone(),
                tag: tag.to_owned(),
            })
    }

    fn positions(&self, tags: &[String]) -> Result<Vec<usize>, SourceError> {
        tags.iter().map(|tag| self.position(tag)).collect()
    }
}

/// Polls at the interval until the source is dropped; a slow poll delays the next one rather
/// than bunching them up.
async fn run(shared: Arc<Shared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        shared.poll().await;
    }
}

fn tag_of(row: &Row) -> Tag {
    let data_type = match row.value_type {
        ValueType::Bool => DataType::Boolean,
        ValueType::F32 | ValueType::F64 => DataType::Float,
        _ if row.is_scaled() => DataType::Float,
        _ => DataType::Integer,
    };
    let mut tag = Tag::new(row.name.clone(), data_type)
        .with_description(row.description.clone())
        .with_units(row.units.clone())
        .with_property("table", row.table.name())
        .with_property("address", row.address.to_string())
        .with_property("type", row.value_type.name())
        .with_property("writable", row.table.is_writable().to_string());
    if row.width() > 1 || row.order.bytes_swapped {
        tag = tag.with_property("order", row.order.name());
    }
    if row.is_scaled() {
        tag = tag
            .with_property("scale", row.scale.to_string())
            .with_property("offset", row.offset.to_string());
    }
    tag
}

/// A write value as a number: a switch is 1 or 0, a text must read as a number or a switch.
fn number_of(value: &WriteValue) -> Result<f64, String> {
    match value {
        WriteValue::Bool(on) => Ok(f64::from(u8::from(*on))),
        WriteValue::Number(n) => Ok(*n),
        WriteValue::Text(text) => {
            let text = text.trim();
            match text.to_ascii_lowercase().as_str() {
                "true" | "on" => Ok(1.0),
                "false" | "off" => Ok(0.0),
                _ => text
                    .parse::<f64>()
                    .map_err(|_| format!("'{text}' is not a number or on/off")),
            }
        }
    }
}

#[async_trait]
impl DataSource for ModbusSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.inner.name.clone(),
            kind: KIND.into(),
            description: self.inner.description.clone(),
            capabilities: Capabilities {
                write: true,
                ..Capabilities::live_only()
            },
        }
    }

    fn health(&self) -> Health {
        self.inner.shared.health()
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        Ok(search.page(&self.inner.tags)?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let positions = self.positions(tags)?;
        Ok(self.inner.shared.values(&positions))
    }

    async fn raw(&self, _request: &RawRequest) -> Result<RawStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: self.inner.name.clone(),
            what: "stored values (raw, plot and processed reads need the edge historian, which does not record Modbus values yet)",
        })
    }

    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        let positions = self.positions(tags)?;
        let source = self.clone();
        let mut polls = self.inner.shared.watch();
        polls.mark_changed();
        Ok(futures::stream::unfold(
            (source, polls, positions),
            |(source, mut polls, positions)| async move {
                polls.changed().await.ok()?;
                let values = source.inner.shared.values(&positions);
                Some((values, (source, polls, positions)))
            },
        )
        .boxed())
    }

    /// Every row's value from every poll (the historian keeps only those that changed).
    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        Ok(self.inner.shared.feed.subscribe())
    }

    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        let index = self.position(tag)?;
        let row = &self.inner.shared.rows[index];
        let refused = |reason: String| SourceError::WriteRefused {
            source_name: self.inner.name.clone(),
            tag: tag.to_owned(),
            reason,
        };
        if !row.table.is_writable() {
            return Err(refused(format!(
                "it is a {}, which Modbus only reads",
                row.table
            )));
        }
        let number = number_of(value).map_err(refused)?;
        let words = if row.table.is_bits() || row.value_type == ValueType::Bool {
            if number != 0.0 && number != 1.0 {
                return Err(refused(format!(
                    "a {} takes on or off (1 or 0), not {number}",
                    row.table
                )));
            }
            vec![u16::from(number != 0.0)]
        } else {
            codec::encode(row, number).map_err(|err| refused(err.to_string()))?
        };
        tracing::info!(source = %self.inner.name, tag, table = %row.table, address = row.address, "modbus write");
        self.inner
            .shared
            .write(index, &words)
            .await
            .map_err(|message| SourceError::Device {
                source_name: self.inner.name.clone(),
                message,
            })
    }
}
