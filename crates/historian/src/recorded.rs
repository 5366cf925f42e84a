//! A data source with recording on: its live values go to a [`Historian`], and when the source
//! has no history of its own, its raw reads (and so plot, processed and values-at-times, through
//! the model's shared aggregation) are answered from the recording.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use uplink_model::{
    AtTimesRequest, Capabilities, Computed, DataSourceDescriptor, NamePattern, PlotRequest,
    ProcessedRequest, RawRequest, Sample, Status, TagPage, TagSearch, TagValue,
    time_expr::from_micros,
};
use uplink_source::recording::{RecordingSettings, RecordingStatus};
use uplink_source::{
    ChangeStream, DataSource, Health, ProcessedSeriesList, RawStream, SnapshotStream, SourceError,
    WriteValue,
};

use crate::store::{Historian, HistorianOptions, Retention};

/// The tag property naming when a recorded tag's first value was recorded.
pub const RECORDED_SINCE: &str = "recordedSince";

/// The most tags one source records.
const MAX_RECORDED_TAGS: usize = 100_000;
/// The wait before subscribing again after the source's live values stopped.
const RESUBSCRIBE: Duration = Duration::from_secs(5);

/// The historian file of the source named `source` under `folder`: the name is kept readable,
/// with anything but letters, digits, `-` and `_` written as `%xx`.
pub fn historian_file(folder: &Path, source: &str) -> PathBuf {
    let mut file = String::new();
    for byte in source.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            file.push(char::from(byte));
        } else {
            file.push_str(&format!("%{byte:02x}"));
        }
    }
    file.push_str(".historian");
    folder.join(file)
}

/// A source whose live values are recorded; everything else is the source's own.
#[derive(Debug)]
pub struct Recorded {
    inner: Arc<dyn DataSource>,
    historian: Historian,
    /// The source has no raw reads of its own: history comes from the recording.
    from_recording: bool,
    tags: Arc<Mutex<Vec<String>>>,
    /// Values the source's change stream dropped because recording fell behind.
    dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorded {
    /// Wraps `inner` when `settings` asks for recording: opens the historian file at `file`
    /// and starts subscribing to the matching tags' live values. Without recording the source
    /// is returned as it is.
    ///
    /// # Errors
    /// Bad recording settings, or a historian file that cannot be opened.
    pub async fn wrap(
        inner: Arc<dyn DataSource>,
        settings: &serde_json::Map<String, serde_json::Value>,
        file: PathBuf,
    ) -> Result<Arc<dyn DataSource>, SourceError> {
        let Some(settings) = RecordingSettings::from_settings(settings)? else {
            return Ok(inner);
        };
        let options = HistorianOptions {
            deadband: settings.deadband,
            retention: Retention {
                max_age: Some(Duration::from_micros(
                    u64::try_from(settings.retention_age.as_micros()).unwrap_or(u64::MAX),
                )),
                max_bytes: Some(settings.retention_size_mb.saturating_mul(1 << 20)),
            },
            ..HistorianOptions::default()
        };
        let historian = Historian::open(file, options).await?;
        Ok(Arc::new(Self::start(inner, historian, &settings)))
    }

    /// `inner` as the connector serves it when `settings` ask for recording, for a process
    /// that only reads (`uplink query`): history comes from the recording in the historian
    /// file at `file`, opened read-only, when the source has none of its own (the runtime's
    /// rule); nothing is recorded. Without recording, or before anything was recorded (no
    /// file yet), the source is returned as it is.
    ///
    /// # Errors
    /// Bad recording settings, or a historian file that cannot be read.
    pub async fn read_only(
        inner: Arc<dyn DataSource>,
        settings: &serde_json::Map<String, serde_json::Value>,
        file: PathBuf,
    ) -> Result<Arc<dyn DataSource>, SourceError> {
        if RecordingSettings::from_settings(settings)?.is_none() || !file.exists() {
            return Ok(inner);
        }
        let historian = Historian::open_read_only(file).await?;
        let tags = historian.tag_names().await?;
        Ok(Arc::new(Self {
            from_recording: !inner.descriptor().capabilities.raw,
            inner,
            historian,
            tags: Arc::new(Mutex::new(tags)),
            dropped: Arc::new(AtomicU64::new(0)),
            task: tokio::spawn(async {}),
        }))
    }

    /// Records `inner`'s tags matching `settings` into `historian`.
    pub fn start(
        inner: Arc<dyn DataSource>,
        historian: Historian,
        settings: &RecordingSettings,
    ) -> Self {
        let tags = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(record(
            inner.clone(),
            historian.clone(),
            settings.search_pattern().to_owned(),
            Recording {
                tags: tags.clone(),
                dropped: dropped.clone(),
            },
        ));
        Self {
            from_recording: !inner.descriptor().capabilities.raw,
            inner,
            historian,
            tags,
            dropped,
            task,
        }
    }

    /// The historian this source records to.
    pub fn historian(&self) -> &Historian {
        &self.historian
    }
}

/// What the recording task reports to its source.
struct Recording {
    tags: Arc<Mutex<Vec<String>>>,
    dropped: Arc<AtomicU64>,
}

/// Records the source's values: from its change stream when it has one (every value, and tags
/// that appear later), else from snapshot subscriptions of the tags matching when it started.
/// Starts again after [`RESUBSCRIBE`] when the values stop (a device that went away).
async fn record(
    source: Arc<dyn DataSource>,
    historian: Historian,
    pattern: String,
    recording: Recording,
) {
    let name = source.descriptor().name;
    let Ok(matcher) = NamePattern::new(&pattern) else {
        tracing::warn!(source = %name, pattern, "the recording pattern is not valid");
        return;
    };
    loop {
        let stopped = match source.changes().await {
            Ok(changes) => {
                record_changes(
                    source.as_ref(),
                    &historian,
                    &pattern,
                    &matcher,
                    &recording,
                    changes,
                )
                .await
            }
            Err(SourceError::Unsupported { .. }) => {
                record_snapshots(source.as_ref(), &historian, &pattern, &recording).await
            }
            Err(err) => {
                tracing::warn!(source = %name, error = %err, "cannot follow values to record");
                false
            }
        };
        if stopped {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Records every value of the change stream whose tag matches; returns whether the historian
/// stopped.
async fn record_changes(
    source: &dyn DataSource,
    historian: &Historian,
    pattern: &str,
    matcher: &NamePattern,
    recording: &Recording,
    mut changes: ChangeStream,
) -> bool {
    let name = source.descriptor().name;
    // Which names match (decided once each), for at most MAX_RECORDED_TAGS names.
    let mut known: HashMap<Arc<str>, bool> = HashMap::new();
    // The tags there now, with their current values: the stream has what changes from here on.
    match list_tags(source, pattern).await {
        Ok(tags) => {
            for tag in &tags {
                known.insert(Arc::from(tag.as_str()), true);
            }
            *lock(&recording.tags) = tags.clone();
            if let Ok(values) = source.snapshot(&tags).await {
                let batch = tags
                    .iter()
                    .map(|t| Arc::from(t.as_str()))
                    .zip(values)
                    .collect();
                if historian.record_values(batch).await.is_err() {
                    return true;
                }
            }
        }
        Err(err) => tracing::warn!(source = %name, error = %err, "cannot list tags to record"),
    }
    while let Some(changes) = changes.next().await {
        if changes.dropped > 0 {
            let total = recording
                .dropped
                .fetch_add(changes.dropped, Ordering::Relaxed)
                + changes.dropped;
            tracing::warn!(source = %name, dropped = changes.dropped, total, "recording fell behind the live values: values were dropped");
        }
        let mut batch = Vec::with_capacity(changes.values.len());
        for change in changes.values {
            let recorded = match known.get(&change.tag) {
                Some(&recorded) => recorded,
                None if known.len() >= MAX_RECORDED_TAGS => false,
                None => {
                    let recorded = matcher.matches(&change.tag);
                    known.insert(change.tag.clone(), recorded);
                    if recorded {
                        tracing::info!(source = %name, tag = %change.tag, "recording a new tag");
                        lock(&recording.tags).push(change.tag.to_string());
                    }
                    recorded
                }
            };
            if recorded {
                batch.push((change.tag, change.value));
            }
        }
        if historian.record_values(batch).await.is_err() {
            return true;
        }
    }
    tracing::info!(source = %name, "live values ended; following them again");
    false
}

/// Records snapshot subscriptions of the tags matching now (a source without a change stream);
/// returns whether the historian stopped.
async fn record_snapshots(
    source: &dyn DataSource,
    historian: &Historian,
    pattern: &str,
    recording: &Recording,
) -> bool {
    let name = source.descriptor().name;
    match list_tags(source, pattern).await {
        Ok(tags) if !tags.is_empty() => {
            *lock(&recording.tags) = tags.clone();
            let names: Vec<Arc<str>> = tags.iter().map(|t| Arc::from(t.as_str())).collect();
            match source.subscribe(&tags).await {
                Ok(mut stream) => {
                    while let Some(values) = stream.next().await {
                        let batch = names.iter().cloned().zip(values).collect();
                        if historian.record_values(batch).await.is_err() {
                            return true;
                        }
                    }
                    tracing::info!(source = %name, "live values ended; subscribing again");
                }
                Err(err) => {
                    tracing::warn!(source = %name, error = %err, "cannot subscribe to record")
                }
            }
        }
        Ok(_) => tracing::info!(source = %name, pattern, "no tag matches the recording pattern"),
        Err(err) => tracing::warn!(source = %name, error = %err, "cannot list tags to record"),
    }
    false
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn list_tags(source: &dyn DataSource, pattern: &str) -> Result<Vec<String>, SourceError> {
    let mut tags = Vec::new();
    let mut offset = 0;
    loop {
        let page: TagPage = source
            .search(&TagSearch {
                pattern: pattern.to_owned(),
                offset,
                limit: 1_000,
            })
            .await?;
        tags.extend(page.tags.into_iter().map(|t| t.name));
        match page.next_offset {
            Some(next) if tags.len() < MAX_RECORDED_TAGS => offset = next,
            _ => return Ok(tags),
        }
    }
}

#[async_trait]
impl DataSource for Recorded {
    fn descriptor(&self) -> DataSourceDescriptor {
        let mut descriptor = self.inner.descriptor();
        if self.from_recording {
            descriptor.capabilities = Capabilities {
                search: descriptor.capabilities.search,
                snapshot: descriptor.capabilities.snapshot,
                subscribe: descriptor.capabilities.subscribe,
                events: descriptor.capabilities.events,
                write: descriptor.capabilities.write,
                ..Capabilities::all_from_raw()
            };
        }
        descriptor
    }

    fn health(&self) -> Health {
        let mut health = self.inner.health();
        if let Some(error) = self.historian.stats().last_error {
            health.report(uplink_source::HealthIssue {
                message: format!("recording: {error}"),
                file: None,
                line: None,
            });
        }
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            health.report(uplink_source::HealthIssue {
                message: format!(
                    "recording fell behind the live values: {dropped} values were not recorded"
                ),
                file: None,
                line: None,
            });
        }
        health
    }

    /// The source's tags; each recorded one carries the property `recordedSince` (RFC 3339),
    /// so an app sees which tags have history and from when.
    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        let mut page = self.inner.search(search).await?;
        for tag in &mut page.tags {
            if let Some(first) = self.historian.first_recorded(&tag.name) {
                tag.properties.insert(
                    RECORDED_SINCE.into(),
                    from_micros(first).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                );
            }
        }
        Ok(page)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        self.inner.snapshot(tags).await
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        if self.from_recording {
            self.historian.raw(request).await
        } else {
            self.inner.raw(request).await
        }
    }

    async fn plot(&self, request: &PlotRequest) -> Result<Computed<Vec<Sample>>, SourceError> {
        if self.from_recording {
            plot_from_raw(self, request).await
        } else {
            self.inner.plot(request).await
        }
    }

    async fn at_times(
        &self,
        request: &AtTimesRequest,
    ) -> Result<Computed<Vec<Sample>>, SourceError> {
        if self.from_recording {
            at_times_from_raw(self, request).await
        } else {
            self.inner.at_times(request).await
        }
    }

    async fn processed(
        &self,
        request: &ProcessedRequest,
    ) -> Result<Computed<ProcessedSeriesList>, SourceError> {
        if self.from_recording {
            processed_from_raw(self, request).await
        } else {
            self.inner.processed(request).await
        }
    }

    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        self.inner.subscribe(tags).await
    }

    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        self.inner.changes().await
    }

    async fn events(
        &self,
        request: &uplink_model::EventsRequest,
    ) -> Result<uplink_model::EventPage, SourceError> {
        self.inner.events(request).await
    }

    async fn subscribe_events(&self) -> Result<uplink_source::EventStream, SourceError> {
        self.inner.subscribe_events().await
    }

    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        self.inner.write(tag, value).await
    }

    fn recording(&self) -> Option<RecordingStatus> {
        let stats = self.historian.stats();
        Some(RecordingStatus {
            tags: lock(&self.tags).clone(),
            since: stats.since_us.map(from_micros),
            oldest: stats.oldest_us.map(from_micros),
            disk_bytes: stats.disk_bytes,
            recorded: stats.recorded,
            last_error: stats.last_error,
        })
    }
}

/// The trait's default answers, computed over this source's (recorded) raw reads.
#[derive(Debug)]
struct FromRaw<'a>(&'a Recorded);

#[async_trait]
impl DataSource for FromRaw<'_> {
    fn descriptor(&self) -> DataSourceDescriptor {
        self.0.descriptor()
    }
    fn health(&self) -> Health {
        self.0.health()
    }
    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        self.0.search(search).await
    }
    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        self.0.snapshot(tags).await
    }
    /// A recorded text value has no number: the aggregations take it as a bad sample.
    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        let stream = self.0.historian.raw(request).await?;
        Ok(stream
            .map(|chunk| {
                chunk.map(|mut samples| {
                    for sample in &mut samples {
                        if sample.value.is_nan() {
                            sample.status = Status::Bad;
                        }
                    }
                    samples
                })
            })
            .boxed())
    }
}

async fn plot_from_raw(
    source: &Recorded,
    request: &PlotRequest,
) -> Result<Computed<Vec<Sample>>, SourceError> {
    FromRaw(source).plot(request).await
}

async fn at_times_from_raw(
    source: &Recorded,
    request: &AtTimesRequest,
) -> Result<Computed<Vec<Sample>>, SourceError> {
    FromRaw(source).at_times(request).await
}

async fn processed_from_raw(
    source: &Recorded,
    request: &ProcessedRequest,
) -> Result<Computed<ProcessedSeriesList>, SourceError> {
    FromRaw(source).processed(request).await
}
