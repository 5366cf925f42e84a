//! What every Uplink data source is: the one streaming trait each kind implements, what a source
//! reports about its health, the schema-driven form its settings are entered and validated with,
//! and the errors it names. Kinds live in crates of their own (or in the connector for the small
//! built-in ones) and depend on this crate only; the connector's registry opens them.

#![warn(missing_docs)]

pub mod changes;
mod config;
mod error;
pub mod form;
pub mod recording;
pub mod writing;

pub use changes::{Change, ChangeFeed, ChangeStream, Changes};
pub use config::{SourceConfig, typed_settings};
pub use error::{SourceError, io_words};

use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_model::{
    AtTimesRequest, Boundary, Computed, DataSourceDescriptor, EventMessage, EventPage,
    EventsRequest, Function, PlotRequest, ProcessedRequest, RawRequest, Sample, TagPage, TagSearch,
    TagValue, TimeRange, aggregate,
};

/// Values of a raw read, oldest first, in chunks of at most [`CHUNK`] samples. The read runs
/// only as fast as the stream is polled, and dropping the stream cancels it.
pub type RawStream = BoxStream<'static, Result<Vec<Sample>, SourceError>>;

/// Current values pushed by a source that can: each item holds one value per subscribed tag,
/// in the order subscribed.
pub type SnapshotStream = BoxStream<'static, Vec<TagValue>>;

/// Alarms and events pushed by a source that has them, as they happen, oldest first; each item
/// holds the events of one moment.
pub type EventStream = BoxStream<'static, Vec<EventMessage>>;

/// A processed answer: each function asked, in order, with its value per interval.
pub type ProcessedSeriesList = Vec<(Function, Vec<Sample>)>;

/// The most samples in one chunk of a [`RawStream`]: large enough that per-chunk costs vanish,
/// small enough that a slow reader holds little memory.
pub const CHUNK: usize = 8_192;

/// A value to set on a tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(untagged)]
pub enum WriteValue {
    /// A switch: a coil, a boolean variable.
    Bool(bool),
    /// A number, converted to the tag's own type by the source (refused when it does not fit).
    Number(f64),
    /// A text, or a digital state's name.
    Text(String),
}

/// What the connector gives a source when opening it, beside its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceContext {
    /// The connector's data folder, where a source keeps its own state (an OPC UA client's
    /// application certificate and trust list); `None` when opened outside a connector.
    pub data_dir: Option<PathBuf>,
    /// Whether a source whose server does not answer opens anyway, failed in its health, and
    /// keeps trying (a connector starting or reloading its configuration), rather than
    /// failing to open (a form being tested or saved, where the owner should see the error).
    pub retry_unreachable: bool,
}

impl SourceContext {
    /// The context of a connector whose data folder is `data_dir`, for a source being added or
    /// tested (an unreachable server is an error).
    pub fn in_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: Some(data_dir.into()),
            retry_unreachable: false,
        }
    }

    /// The same context, for a connector starting up: an unreachable server is retried.
    pub fn retrying(mut self) -> Self {
        self.retry_unreachable = true;
        self
    }
}

/// A place process data can be read from: a historian, a file, a database, a simulation.
///
/// Sources answer raw reads natively; plot, values-at-times and processed queries have default
/// answers computed by [`uplink_model::aggregate`] from a raw read, which a source overrides only
/// when it can do better. Each computed answer says who computed it ([`Computed`]): the defaults
/// say Uplink, an override that pushed the work down to the source says Source (and Uplink when
/// it fell back). Requests arrive validated and resolved, so a source never sees a reversed
/// range or a zero interval.
#[async_trait]
pub trait DataSource: Send + Sync + fmt::Debug {
    /// Name, kind, description and capabilities.
    fn descriptor(&self) -> DataSourceDescriptor;

    /// Whether the source works, and what went wrong if not (bad rows, unreadable files…).
    fn health(&self) -> Health;

    /// Tags whose names match, a page at a time.
    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError>;

    /// The current value of each tag, in the order asked.
    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError>;

    /// Stored values of one tag in a range, streamed in chunks.
    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError>;

    /// Shape-preserving down-sampling: by default a raw read folded chunk by chunk into an
    /// [`aggregate::PlotBuilder`], so memory stays at four samples per interval.
    async fn plot(&self, request: &PlotRequest) -> Result<Computed<Vec<Sample>>, SourceError> {
        let raw = RawRequest {
            tag: request.tag.clone(),
            range: request.range,
            max_count: None,
            boundary: Boundary::Inside,
        };
        let mut stream = self.raw(&raw).await?;
        let mut builder = aggregate::PlotBuilder::new(request.intervals());
        while let Some(chunk) = stream.next().await {
            builder.push(&chunk?);
        }
        Ok(Computed::by_uplink(builder.finish()))
    }

    /// Interpolated values at the requested instants ([`aggregate::at_times`] by default).
    async fn at_times(
        &self,
        request: &AtTimesRequest,
    ) -> Result<Computed<Vec<Sample>>, SourceError> {
        let times = request.times_us();
        let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
            return Ok(Computed::by_uplink(Vec::new()));
        };
        let range = TimeRange::new(
            uplink_model::time_expr::from_micros(first),
            uplink_model::time_expr::from_micros(last),
        )?;
        let samples = self
            .collect_raw(&request.tag, range, Boundary::Outside)
            .await?;
        Ok(Computed::by_uplink(aggregate::at_times(&samples, &times)))
    }

    /// Each function over each interval ([`aggregate::processed`] by default).
    async fn processed(
        &self,
        request: &ProcessedRequest,
    ) -> Result<Computed<ProcessedSeriesList>, SourceError> {
        let samples = self
            .collect_raw(&request.tag, request.range, Boundary::Outside)
            .await?;
        let intervals = request.intervals();
        Ok(Computed::by_uplink(
            request
                .functions
                .iter()
                .map(|&function| {
                    (
                        function,
                        aggregate::processed(&samples, &intervals, function),
                    )
                })
                .collect(),
        ))
    }

    /// New current values as they arrive, for sources that push.
    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        let _ = tags;
        Err(SourceError::Unsupported {
            source_name: self.descriptor().name,
            what: "snapshot subscriptions",
        })
    }

    /// Alarms and events with start ≤ time ≤ end, oldest first, at most `request.limit` of
    /// them after `request.cursor` (a page's `next`, which only this source reads); `next` is
    /// set when more follow in the range. For a source whose capabilities say `events`.
    async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
        let _ = request;
        Err(SourceError::Unsupported {
            source_name: self.descriptor().name,
            what: "alarms and events",
        })
    }

    /// New alarms and events as they happen. The connector shares one such stream per source
    /// among every app subscribed to it.
    async fn subscribe_events(&self) -> Result<EventStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: self.descriptor().name,
            what: "alarms and events",
        })
    }

    /// Every new value of every tag as it arrives, one by one (several values of one tag between
    /// two reads are all there, unlike [`subscribe`](Self::subscribe)'s snapshots), in a bounded
    /// queue that counts what a slow reader lost (see [`changes`]). What the edge historian
    /// records from; tags that appear later (a new MQTT topic) come too.
    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: self.descriptor().name,
            what: "change streams",
        })
    }

    /// Sets a tag's value on the source (a PLC setpoint, a coil). The connector calls it only
    /// for a source whose site settings enable writing, and only for an app the owner allowed
    /// to write; a source that cannot write keeps this default.
    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        let _ = (tag, value);
        Err(SourceError::Unsupported {
            source_name: self.descriptor().name,
            what: "writes",
        })
    }

    /// What this source records to the edge historian, when it records (see [`recording`]).
    fn recording(&self) -> Option<recording::RecordingStatus> {
        None
    }

    /// A whole raw read in memory: for the aggregations, which need every sample of the range.
    async fn collect_raw(
        &self,
        tag: &str,
        range: TimeRange,
        boundary: Boundary,
    ) -> Result<Vec<Sample>, SourceError> {
        let request = RawRequest {
            tag: tag.to_owned(),
            range,
            max_count: None,
            boundary,
        };
        let mut stream = self.raw(&request).await?;
        let mut samples = Vec::new();
        while let Some(chunk) = stream.next().await {
            samples.extend(chunk?);
        }
        Ok(samples)
    }
}

/// How a source is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// The summary.
    pub state: HealthState,
    /// Problems found, oldest first, at most [`Health::MAX_ISSUES`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<HealthIssue>,
    /// How many problems there were in all (more than `issues` holds when many).
    #[serde(default)]
    #[ts(type = "number")]
    pub issue_count: u64,
}

impl Default for Health {
    fn default() -> Self {
        Self::ok()
    }
}

impl Health {
    /// The most issues kept; the count goes on.
    pub const MAX_ISSUES: usize = 100;

    /// A source with nothing wrong.
    pub fn ok() -> Self {
        Self {
            state: HealthState::Ok,
            issues: Vec::new(),
            issue_count: 0,
        }
    }

    /// Records a problem; the source still answers, so it is degraded unless already failed.
    pub fn report(&mut self, issue: HealthIssue) {
        if self.state == HealthState::Ok {
            self.state = HealthState::Degraded;
        }
        self.issue_count += 1;
        if self.issues.len() < Self::MAX_ISSUES {
            self.issues.push(issue);
        }
    }

    /// Records a problem that stops the source answering.
    pub fn fail(&mut self, issue: HealthIssue) {
        self.report(issue);
        self.state = HealthState::Failed;
    }
}

/// The summary of a source's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum HealthState {
    /// Everything read cleanly.
    Ok,
    /// It answers, but some data was skipped (see the issues).
    Degraded,
    /// It cannot answer.
    Failed,
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthState::Ok => "ok",
            HealthState::Degraded => "degraded",
            HealthState::Failed => "failed",
        })
    }
}

/// One problem, with the file and line when it came from a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HealthIssue {
    /// What is wrong, for a person.
    pub message: String,
    /// The file, when the problem is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line in that file, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl fmt::Display for HealthIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.message),
            (Some(file), None) => write!(f, "{file}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Cuts a sorted in-memory series into a raw stream (for sources that hold their data).
pub fn stream_slice(samples: std::sync::Arc<Vec<Sample>>, lo: usize, hi: usize) -> RawStream {
    futures::stream::unfold(lo, move |at| {
        let samples = samples.clone();
        async move {
            if at >= hi {
                return None;
            }
            let end = (at + CHUNK).min(hi);
            Some((Ok(samples[at..end].to_vec()), end))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use uplink_model::{
        ComputedBy, DataSourceDescriptor, Function, PlotRequest, ProcessedRequest, RawRequest,
        Sample, Span, TagPage, TagSearch, TagValue, TimeRange, time_expr::from_micros,
    };

    use super::*;

    /// One tag holding a ramp, answering raw reads only.
    #[derive(Debug)]
    struct Ramp(Arc<Vec<Sample>>);

    #[async_trait]
    impl DataSource for Ramp {
        fn descriptor(&self) -> DataSourceDescriptor {
            DataSourceDescriptor {
                name: "ramp".into(),
                kind: "test".into(),
                description: String::new(),
                capabilities: uplink_model::Capabilities::all_from_raw(),
            }
        }
        fn health(&self) -> Health {
            Health::ok()
        }
        async fn search(&self, _: &TagSearch) -> Result<TagPage, SourceError> {
            unreachable_in_test()
        }
        async fn snapshot(&self, _: &[String]) -> Result<Vec<TagValue>, SourceError> {
            unreachable_in_test()
        }
        async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
            let (lo, hi) = (request.range.start_us(), request.range.end_us());
            let from = self.0.partition_point(|s| s.time_us < lo);
            let to = self.0.partition_point(|s| s.time_us <= hi);
            Ok(stream_slice(self.0.clone(), from, to))
        }
    }

    fn unreachable_in_test<T>() -> Result<T, SourceError> {
        Err(SourceError::UnknownSource("not used by this test".into()))
    }

    #[tokio::test]
    async fn the_default_answers_say_uplink_computed_them() {
        let ramp = Ramp(Arc::new(
            (0..600)
                .map(|s| Sample::good(s * 1_000_000, s as f64))
                .collect(),
        ));
        let range = TimeRange::new(from_micros(0), from_micros(599_000_000)).unwrap();
        let plot = ramp
            .plot(&PlotRequest {
                tag: "x".into(),
                range,
                intervals: 4,
            })
            .await
            .unwrap();
        assert_eq!(plot.by, ComputedBy::Uplink);
        assert!(!plot.values.is_empty());
        let at = ramp
            .at_times(&AtTimesRequest {
                tag: "x".into(),
                times: vec![from_micros(10_000_000), from_micros(20_000_000)],
            })
            .await
            .unwrap();
        assert_eq!(at.by, ComputedBy::Uplink);
        assert_eq!(at.values[1].value, 20.0);
        let processed = ramp
            .processed(&ProcessedRequest {
                tag: "x".into(),
                range,
                interval: Span::from_secs(60),
                functions: vec![Function::Count],
            })
            .await
            .unwrap();
        assert_eq!(processed.by, ComputedBy::Uplink);
        assert_eq!(processed.values[0].1[0].value, 60.0);
    }
}
