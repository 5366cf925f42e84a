//! The CSV source: a file, or a folder of `.csv` files, of `tag,timestamp,value[,status]` rows,
//! indexed by tag on load (a raw read of one tag touches only that tag's values) and reloaded
//! when a file changes. A malformed row is skipped and reported with its file and line in the
//! source's health; it never stops the load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime};
use notify::{RecursiveMode, Watcher};
use serde::Deserialize;
use uplink_model::aggregate::window_indices;
use uplink_model::{
    Capabilities, DataSourceDescriptor, DataType, RawRequest, Sample, Status, Tag, TagPage,
    TagSearch, TagValue,
};

use crate::form::{FieldError, FieldSchema, FieldType, FormSchema};
use crate::source::{DataSource, Health, HealthIssue, HealthState, RawStream, stream_slice};
use crate::{SourceConfig, SourceError};

/// The kind's identifier.
pub const KIND: &str = "csv";

/// The form of a CSV source.
pub fn schema() -> FormSchema {
    FormSchema {
        kind: KIND.into(),
        title: "CSV files".into(),
        description: "A CSV file, or a folder of them, with one row per value: tag, time, value and optionally status.".into(),
        fields: vec![
            FieldSchema::new("path", "File or folder", FieldType::Path, true, "A .csv file, or a folder whose .csv files are all read."),
            FieldSchema::new("tagColumn", "Tag column", FieldType::Text, true, "Header of the column holding the tag name.").default_value("tag"),
            FieldSchema::new("timeColumn", "Time column", FieldType::Text, true, "Header of the column holding the sample time.").default_value("timestamp"),
            FieldSchema::new("valueColumn", "Value column", FieldType::Text, true, "Header of the column holding the numeric value.").default_value("value"),
            FieldSchema::new("statusColumn", "Status column", FieldType::Text, false, "Header of the column holding the status (good, uncertain, bad or a quality code); values are good when the file has no such column.").default_value("status"),
            FieldSchema::new("timeFormat", "Time format", FieldType::Text, true, "rfc3339, unixSeconds, unixMillis, or a strftime pattern such as %Y-%m-%d %H:%M:%S read as UTC.").default_value("rfc3339"),
            FieldSchema::new("delimiter", "Delimiter", FieldType::Text, true, "The character between fields.").default_value(","),
            FieldSchema::new("watch", "Reload on change", FieldType::Boolean, true, "Read the files again when they change.").default_value(true),
        ],
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    path: PathBuf,
    tag_column: String,
    time_column: String,
    value_column: String,
    #[serde(default)]
    status_column: Option<String>,
    time_format: String,
    delimiter: String,
    watch: bool,
}

/// How the time column is written.
#[derive(Debug, Clone)]
enum TimeFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
    Pattern(String),
}

impl TimeFormat {
    fn from_setting(text: &str) -> Self {
        match text {
            "rfc3339" => TimeFormat::Rfc3339,
            "unixSeconds" => TimeFormat::UnixSeconds,
            "unixMillis" => TimeFormat::UnixMillis,
            pattern => TimeFormat::Pattern(pattern.to_owned()),
        }
    }

    fn parse(&self, text: &str) -> Option<i64> {
        match self {
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_micros()),
            TimeFormat::UnixSeconds => {
                let seconds: f64 = text.parse().ok()?;
                let micros = (seconds * 1e6).round();
                (micros.abs() < 9e18).then_some(micros as i64)
            }
            TimeFormat::UnixMillis => text.parse::<i64>().ok()?.checked_mul(1_000),
            TimeFormat::Pattern(pattern) => NaiveDateTime::parse_from_str(text, pattern)
                .ok()
                .map(|t| t.and_utc().timestamp_micros()),
        }
    }
}

/// Everything read from the files: per tag its samples sorted by time.
#[derive(Debug, Default)]
struct Index {
    tags: Vec<Tag>,
    series: HashMap<String, Arc<Vec<Sample>>>,
    health: Health,
    rows: u64,
    /// How many files were read.
    files: usize,
    /// A delimiter that would have found the configured columns in a header where the
    /// configured one did not.
    detected_delimiter: Option<u8>,
}

/// A CSV data source.
#[derive(Debug, Clone)]
pub struct CsvSource {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    description: String,
    settings: Settings,
    index: RwLock<Arc<Index>>,
    /// Kept alive for as long as the source; dropping it ends the reload thread.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl CsvSource {
    /// Reads and indexes the files, and starts watching them when the settings ask.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`], or [`SourceError::Io`] when the path cannot be read
    /// at all (malformed rows are not errors: they are in [`DataSource::health`]).
    pub async fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        if settings.delimiter.len() != 1 {
            return Err(SourceError::InvalidSettings(vec![FieldError::new(
                "delimiter",
                "must be one single-byte character",
            )]));
        }
        let loading = settings.clone();
        // Dropping this future (a test cancelled, a window closed) stops the load too: the
        // reading thread checks the flag between rows instead of reading a large file for no one.
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon_on_drop = AbandonOnDrop(abandoned.clone());
        let index = tokio::task::spawn_blocking(move || load(&loading, &abandoned))
            .await
            .map_err(|err| {
                SourceError::io("stopped loading", &config.name, std::io::Error::other(err))
            })??;
        tracing::info!(
            source = %config.name,
            path = %settings.path.display(),
            rows = index.rows,
            tags = index.tags.len(),
            "CSV data loaded"
        );
        let source = Self {
            shared: Arc::new(Shared {
                name: config.name.clone(),
                description: config.description.clone(),
                settings,
                index: RwLock::new(Arc::new(index)),
                watcher: Mutex::new(None),
            }),
        };
        if source.shared.settings.watch {
            source.watch()?;
        }
        Ok(source)
    }

    /// Opens a source being added or tested: as [`open`](Self::open), and refused when it would
    /// serve nothing — an empty folder, a file with no usable row, the wrong delimiter (the
    /// refusal names the one the header uses). A saved source reopening is not refused for
    /// that: its files may arrive later, and its health says what is wrong meanwhile.
    ///
    /// # Errors
    /// As [`open`](Self::open), or [`SourceError::InvalidSettings`] naming the field to change.
    pub async fn open_new(config: &SourceConfig) -> Result<Self, SourceError> {
        let source = Self::open(config).await.map_err(|err| match err {
            SourceError::Io { path, source, .. } => {
                SourceError::InvalidSettings(vec![FieldError::new(
                    "path",
                    format!(
                        "cannot be read ({}): {}",
                        path.display(),
                        uplink_source::io_words(&source)
                    ),
                )])
            }
            other => other,
        })?;
        match nothing_to_serve(&source.shared.settings, &source.index()) {
            Some(errors) => Err(SourceError::InvalidSettings(errors)),
            None => Ok(source),
        }
    }

    /// Reads the files again now, keeping the previous data if the path has become unreadable.
    pub fn reload(&self) {
        reload(&self.shared);
    }

    /// How many rows the last load indexed.
    pub fn rows(&self) -> u64 {
        self.index().rows
    }

    fn index(&self) -> Arc<Index> {
        self.shared.index.read().expect("index lock").clone()
    }

    fn watch(&self) -> Result<(), SourceError> {
        let path = &self.shared.settings.path;
        // Watch the folder (a file's parent): editors replace files by renaming over them.
        let folder = if path.is_dir() {
            path.clone()
        } else {
            path.parent().unwrap_or(Path::new(".")).to_owned()
        };
        let (changed, changes) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = changed.send(());
                }
            })
            .map_err(|err| SourceError::io("cannot watch", &folder, std::io::Error::other(err)))?;
        watcher
            .watch(&folder, RecursiveMode::NonRecursive)
            .map_err(|err| SourceError::io("cannot watch", &folder, std::io::Error::other(err)))?;
        *self.shared.watcher.lock().expect("watcher lock") = Some(watcher);
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        std::thread::Builder::new()
            .name(format!("csv-reload-{}", self.shared.name))
            .spawn(move || {
                while changes.recv().is_ok() {
                    // Let a burst of writes settle before reading.
                    while changes.recv_timeout(Duration::from_millis(150)).is_ok() {}
                    let Some(shared) = shared.upgrade() else {
                        break;
                    };
                    reload(&shared);
                }
            })
            .map_err(|err| SourceError::io("cannot start watching", &folder, err))?;
        Ok(())
    }

    fn series(&self, tag: &str) -> Result<Arc<Vec<Sample>>, SourceError> {
        self.index()
            .series
            .get(tag)
            .cloned()
            .ok_or_else(|| SourceError::UnknownTag {
                source_name: self.shared.name.clone(),
                tag: tag.to_owned(),
            })
    }
}

/// Sets its flag when dropped: the open future holding it was dropped or finished.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How many rows are read between two looks at the abandon flag.
const ROWS_BETWEEN_CHECKS: u64 = 4_096;

fn reload(shared: &Shared) {
    match load(&shared.settings, &AtomicBool::new(false)) {
        Ok(index) => {
            tracing::info!(source = %shared.name, rows = index.rows, tags = index.tags.len(), "CSV data reloaded");
            *shared.index.write().expect("index lock") = Arc::new(index);
        }
        Err(err) => {
            tracing::warn!(source = %shared.name, error = %err, "CSV reload failed; keeping the previous data");
            let mut guard = shared.index.write().expect("index lock");
            let previous = guard.clone();
            let mut health = previous.health.clone();
            health.fail(HealthIssue {
                message: format!("reload failed, serving the previous data: {err}"),
                file: None,
                line: None,
            });
            *guard = Arc::new(Index {
                tags: previous.tags.clone(),
                series: previous.series.clone(),
                health,
                rows: previous.rows,
                files: previous.files,
                detected_delimiter: previous.detected_delimiter,
            });
        }
    }
}

/// The files to read: the path itself, or the `.csv` files in it by name.
fn files(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::io("cannot read", path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| SourceError::io("cannot list", path, e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn load(settings: &Settings, abandoned: &AtomicBool) -> Result<Index, SourceError> {
    let mut index = Index {
        health: Health::ok(),
        ..Index::default()
    };
    let mut series: HashMap<String, Vec<Sample>> = HashMap::new();
    let format = TimeFormat::from_setting(&settings.time_format);
    for file in files(&settings.path)? {
        index.files += 1;
        load_file(settings, &format, &file, &mut series, &mut index, abandoned);
        if abandoned.load(Ordering::Relaxed) {
            tracing::info!(
                path = %settings.path.display(),
                rows = index.rows,
                "CSV load abandoned: nobody waits for it any more"
            );
            return Err(SourceError::io(
                "stopped loading",
                &settings.path,
                std::io::Error::new(std::io::ErrorKind::Interrupted, "the load was cancelled"),
            ));
        }
    }
    let mut names: Vec<&String> = series.keys().collect();
    names.sort();
    index.tags = names
        .into_iter()
        .map(|name| Tag::new(name.as_str(), DataType::Float))
        .collect();
    index.series = series
        .into_iter()
        .map(|(name, mut samples)| {
            if !samples.is_sorted_by_key(|s| s.time_us) {
                samples.sort_by_key(|s| s.time_us);
            }
            (name, Arc::new(samples))
        })
        .collect();
    Ok(index)
}

/// Reads one file's rows into `series`; every problem goes into the index's health.
fn load_file(
    settings: &Settings,
    format: &TimeFormat,
    file: &Path,
    series: &mut HashMap<String, Vec<Sample>>,
    index: &mut Index,
    abandoned: &AtomicBool,
) {
    let shown = file.display().to_string();
    let issue = |message: String, line: Option<u64>| HealthIssue {
        message,
        file: Some(shown.clone()),
        line,
    };
    let mut reader = match csv::ReaderBuilder::new()
        .delimiter(settings.delimiter.as_bytes()[0])
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_path(file)
    {
        Ok(reader) => reader,
        Err(err) => {
            return index
                .health
                .report(issue(format!("cannot read the file: {err}"), None));
        }
    };
    let headers = match reader.byte_headers() {
        Ok(headers) => headers.clone(),
        Err(err) => {
            return index
                .health
                .report(issue(format!("cannot read the header: {err}"), Some(1)));
        }
    };
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| String::from_utf8_lossy(h).trim().eq_ignore_ascii_case(name))
    };
    let (Some(tag_at), Some(time_at), Some(value_at)) = (
        column(&settings.tag_column),
        column(&settings.time_column),
        column(&settings.value_column),
    ) else {
        let missing: Vec<&str> = [
            &settings.tag_column,
            &settings.time_column,
            &settings.value_column,
        ]
        .into_iter()
        .filter(|name| column(name).is_none())
        .map(String::as_str)
        .collect();
        if index.detected_delimiter.is_none() {
            index.detected_delimiter = detect_delimiter(file, settings);
        }
        return index.health.report(issue(
            format!(
                "the header has no column {}; the file is skipped",
                missing.join(", ")
            ),
            Some(1),
        ));
    };
    let status_at = settings.status_column.as_deref().and_then(column);
    let mut record = csv::ByteRecord::new();
    let mut read: u64 = 0;
    loop {
        read += 1;
        if read.is_multiple_of(ROWS_BETWEEN_CHECKS) && abandoned.load(Ordering::Relaxed) {
            return;
        }
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                let line = err.position().map(|p| p.line());
                let fatal = matches!(err.kind(), csv::ErrorKind::Io(_));
                index
                    .health
                    .report(issue(format!("unreadable row: {err}"), line));
                if fatal {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line());
        match parse_row(&record, tag_at, time_at, value_at, status_at, format) {
            Ok((tag, sample)) => {
                index.rows += 1;
                match series.get_mut(tag) {
                    Some(samples) => samples.push(sample),
                    None => {
                        series.insert(tag.to_owned(), vec![sample]);
                    }
                }
            }
            Err(message) => index.health.report(issue(message, line)),
        }
    }
}

/// The delimiters tried when the configured one finds no columns.
const LIKELY_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Which of the likely delimiters splits `file`'s header into the configured tag, time and
/// value columns, when the configured one did not.
fn detect_delimiter(file: &Path, settings: &Settings) -> Option<u8> {
    LIKELY_DELIMITERS
        .into_iter()
        .filter(|&d| d != settings.delimiter.as_bytes()[0])
        .find(|&delimiter| {
            let Ok(mut reader) = csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .flexible(true)
                .from_path(file)
            else {
                return false;
            };
            let Ok(headers) = reader.headers() else {
                return false;
            };
            [
                &settings.tag_column,
                &settings.time_column,
                &settings.value_column,
            ]
            .into_iter()
            .all(|name| headers.iter().any(|h| h.trim().eq_ignore_ascii_case(name)))
        })
}

/// How a delimiter is written in a sentence (a tab is invisible).
fn delimiter_words(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "a tab".to_owned(),
        other => format!("`{}`", other as char),
    }
}

/// The field errors of settings that open but would serve no tag, or `None` when it has tags.
fn nothing_to_serve(settings: &Settings, index: &Index) -> Option<Vec<FieldError>> {
    if !index.tags.is_empty() {
        return None;
    }
    let path = settings.path.display();
    if index.files == 0 {
        return Some(vec![FieldError::new(
            "path",
            format!(
                "is a folder with no .csv files in it ({path}); choose the folder that holds them, or one file"
            ),
        )]);
    }
    if let Some(detected) = index.detected_delimiter {
        return Some(vec![FieldError::new(
            "delimiter",
            format!(
                "does not split the header into the tag, time and value columns, but {} does: enter {} here",
                delimiter_words(detected),
                if detected == b'\t' {
                    "a tab character".to_owned()
                } else {
                    delimiter_words(detected)
                },
            ),
        )]);
    }
    let first = index
        .health
        .issues
        .first()
        .map(|issue| format!(" The first problem: {}.", located(issue)))
        .unwrap_or_default();
    Some(vec![FieldError::new(
        "path",
        format!(
            "has no row Uplink could read, so the source would have no tag; check the column names, the time format and the delimiter.{first}"
        ),
    )])
}

/// An issue with its file's name and line, as a person reads it.
fn located(issue: &HealthIssue) -> String {
    let file = issue.file.as_deref().map(|f| {
        Path::new(f)
            .file_name()
            .map_or(f.to_owned(), |n| n.to_string_lossy().into_owned())
    });
    match (file, issue.line) {
        (Some(file), Some(line)) => format!("{file}, line {line}: {}", issue.message),
        (Some(file), None) => format!("{file}: {}", issue.message),
        _ => issue.message.clone(),
    }
}

fn parse_row<'r>(
    record: &'r csv::ByteRecord,
    tag_at: usize,
    time_at: usize,
    value_at: usize,
    status_at: Option<usize>,
    format: &TimeFormat,
) -> Result<(&'r str, Sample), String> {
    let field = |at: usize, what: &str| -> Result<&'r str, String> {
        let bytes = record
            .get(at)
            .ok_or_else(|| format!("the row has {} fields, no {what}", record.len()))?;
        std::str::from_utf8(bytes)
            .map(str::trim)
            .map_err(|_| format!("the {what} is not UTF-8 text"))
    };
    let tag = field(tag_at, "tag")?;
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    let time_text = field(time_at, "time")?;
    let time_us = format.parse(time_text).ok_or_else(|| {
        format!(
            "'{}' is not a time in the configured format",
            clip(time_text)
        )
    })?;
    let value_text = field(value_at, "value")?;
    let value: f64 = value_text
        .parse()
        .map_err(|_| format!("'{}' is not a number", clip(value_text)))?;
    let status = match status_at.map(|at| field(at, "status")).transpose()? {
        None | Some("") => Status::Good,
        Some(text) => text.parse().map_err(|_| {
            format!(
                "'{}' is not a status (good, uncertain, bad or a quality code)",
                clip(text)
            )
        })?,
    };
    Ok((
        tag,
        Sample {
            time_us,
            value,
            status,
            source_code: 0,
        },
    ))
}

fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

#[async_trait]
impl DataSource for CsvSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.shared.name.clone(),
            kind: KIND.into(),
            description: self.shared.description.clone(),
            capabilities: Capabilities::all_from_raw(),
        }
    }

    fn health(&self) -> Health {
        let health = self.index().health.clone();
        debug_assert!(health.state != HealthState::Ok || health.issues.is_empty());
        health
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        Ok(search.page(&self.index().tags)?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        tags.iter()
            .map(|tag| {
                let series = self.series(tag)?;
                Ok(series
                    .last()
                    .copied()
                    .map(TagValue::from)
                    .unwrap_or_else(|| TagValue::event(chrono::Utc::now(), Status::Bad)))
            })
            .collect()
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        let series = self.series(&request.tag)?;
        let (lo, mut hi) = window_indices(
            &series,
            request.range.start_us(),
            request.range.end_us(),
            request.boundary,
        );
        if let Some(max) = request.max_count {
            hi = hi.min(lo.saturating_add(usize::try_from(max).unwrap_or(usize::MAX)));
        }
        Ok(stream_slice(series, lo, hi))
    }
}

#[cfg(test)]
mod tests;
