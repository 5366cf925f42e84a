//! A data source's page: its tags found by name a page at a time, and watches of the tags on
//! screen whose current values the runtime pushes as they change.
//!
//! A watch reads the source's own subscription when it has one, else a snapshot the runtime
//! takes every second; the UI never polls. It is bounded: at most [`MAX_WATCHES`] at once, of
//! at most [`MAX_WATCHED_TAGS`] tags, and it ends when the page stops it or when nobody renewed
//! it for [`WATCH_LEASE`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use ts_rs::TS;
use uplink_connector::{DataSource, SourceError};
use uplink_model::{TagSearch, TagValue};

use crate::{Control, ControlError, ControlErrorCode};

/// How long a watch lives without renewal (the page renews well before).
pub const WATCH_LEASE: Duration = Duration::from_secs(60);
/// The most watches at once (a few windows, each with one page open).
pub const MAX_WATCHES: usize = 16;
/// The most tags one watch follows (a page of the tag browser).
pub const MAX_WATCHED_TAGS: usize = 200;
/// How often a source that does not push is read for a watch.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// One tag as the tag browser lists it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TagRow {
    /// The name people search for (and queries take).
    pub name: String,
    /// What it measures.
    pub description: String,
    /// Its engineering unit; empty when unitless.
    pub units: String,
    /// `float`, `integer`, `boolean`, `digital` or `text`.
    pub data_type: String,
}

/// A page of tags matching a pattern.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TagsPage {
    /// The matching tags in this page.
    pub tags: Vec<TagRow>,
    /// The offset of the next page; absent on the last.
    #[ts(type = "number | null")]
    pub next_offset: Option<u64>,
}

/// A current value as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct LiveValue {
    /// The tag.
    pub tag: String,
    /// A number, a text or digital state, or none.
    #[ts(type = "number | string | null")]
    pub value: Value,
    /// When it was sampled (RFC 3339).
    pub time: String,
    /// `good`, `uncertain` or `bad`.
    pub quality: String,
}

impl LiveValue {
    pub(crate) fn from_tag_value(tag: &str, value: &TagValue) -> Self {
        Self {
            tag: tag.to_owned(),
            value: match (&value.value, &value.text) {
                (Some(number), _) => serde_json::json!(number),
                (None, Some(text)) => Value::String(text.clone()),
                (None, None) => Value::Null,
            },
            time: value.time.to_rfc3339(),
            quality: value.status.to_string().to_lowercase(),
        }
    }
}

/// The latest values of one watch, replaced whole on every change.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WatchedValues {
    /// The watch.
    pub watch_id: String,
    /// Its data source.
    pub source: String,
    /// One value per watched tag that has one, in the order watched.
    pub values: Vec<LiveValue>,
    /// Why values stopped coming, when they did (the source failed).
    pub problem: Option<String>,
}

/// What a data source answers, for its page (which queries to offer) and its site settings.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SourceAbilities {
    /// Stored values in a range.
    pub raw: bool,
    /// Down-sampling for charts.
    pub plot: bool,
    /// Interpolated values at given times.
    pub at_times: bool,
    /// The processed functions offered, by name (`AVG`, `MAX`…).
    pub processed: Vec<String>,
    /// Pushes new values (else live values are read every second).
    pub subscribe: bool,
    /// The site lets apps write to some of its tags.
    pub write: bool,
    /// It has alarms and events.
    pub events: bool,
}

/// A watch started or renewed.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TagWatch {
    /// What to renew and stop it with.
    pub watch_id: String,
    /// Renew before this many seconds pass, or it ends.
    pub lease_seconds: u32,
}

struct Running {
    /// Which follow task this is: a task publishes only while its generation is the one
    /// registered, so one stopped or replaced cannot put values back after `stop_watch`.
    generation: u64,
    source: String,
    tags: Vec<String>,
    deadline: watch::Sender<Instant>,
    task: tokio::task::JoinHandle<()>,
}

/// The watches running, and their latest values for the UI's event stream.
#[derive(Debug)]
pub(crate) struct Watches {
    /// Held while a watch's values are published or removed, so that both see the same
    /// registration.
    running: Mutex<BTreeMap<String, Running>>,
    values: watch::Sender<BTreeMap<String, WatchedValues>>,
    generations: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("source", &self.source)
            .field("tags", &self.tags.len())
            .finish_non_exhaustive()
    }
}

impl Default for Watches {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
            values: watch::channel(BTreeMap::new()).0,
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Watches {
    fn drop(&mut self) {
        for running in lock(&self.running).values() {
            running.task.abort();
        }
    }
}

impl Control {
    async fn open_source(&self, name: &str) -> Result<Arc<dyn DataSource>, ControlError> {
        let runtime = self.runtime().await?;
        if let Some(source) = runtime.source(name) {
            return Ok(source);
        }
        let configured = runtime
            .status()
            .borrow()
            .sources
            .iter()
            .any(|s| s.name == name);
        Err(if configured {
            ControlError::new(
                ControlErrorCode::SourceUnavailable,
                format!("the data source '{name}' did not open; its health says why"),
            )
        } else {
            ControlError::new(
                ControlErrorCode::UnknownSource,
                format!("no data source named '{name}' is configured"),
            )
        })
    }

    /// The open data source `name`, for the page's local queries.
    pub(crate) async fn opened_source(
        &self,
        name: &str,
    ) -> Result<Arc<dyn DataSource>, ControlError> {
        self.open_source(name).await
    }

    /// What the data source `source` answers.
    pub async fn source_abilities(&self, source: &str) -> Result<SourceAbilities, ControlError> {
        let capabilities = self.open_source(source).await?.descriptor().capabilities;
        Ok(SourceAbilities {
            raw: capabilities.raw,
            plot: capabilities.plot,
            at_times: capabilities.at_times,
            processed: capabilities
                .processed
                .iter()
                .map(|f| f.name.name().to_owned())
                .collect(),
            subscribe: capabilities.subscribe,
            write: capabilities.write,
            events: capabilities.events,
        })
    }

    /// Tags of `source` whose names match `pattern` (`*` any run, `?` one character).
    pub async fn search_tags(
        &self,
        source: &str,
        pattern: &str,
        offset: u64,
        limit: u32,
    ) -> Result<TagsPage, ControlError> {
        let opened = self.open_source(source).await?;
        let pattern = if pattern.trim().is_empty() {
            "*"
        } else {
            pattern.trim()
        };
        let page = opened
            .search(&TagSearch {
                pattern: pattern.to_owned(),
                offset,
                limit: limit.clamp(1, 1_000),
            })
            .await?;
        Ok(TagsPage {
            tags: page
                .tags
                .into_iter()
                .map(|tag| TagRow {
                    data_type: serde_json::to_value(tag.data_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    name: tag.name,
                    description: tag.description,
                    units: tag.units,
                })
                .collect(),
            next_offset: page.next_offset,
        })
    }

    /// Starts a watch of `tags` on `source`, or renews `watch_id` (changing its tags when
    /// they differ). Values arrive as [`WatchedValues`] on [`Control::watched_values`].
    pub async fn watch_tags(
        &self,
        source: &str,
        tags: Vec<String>,
        watch_id: Option<String>,
    ) -> Result<TagWatch, ControlError> {
        if tags.len() > MAX_WATCHED_TAGS {
            return Err(ControlError::new(
                ControlErrorCode::CountOutOfRange,
                format!(
                    "a watch follows at most {MAX_WATCHED_TAGS} tags; {} were asked",
                    tags.len()
                ),
            ));
        }
        let watches = &self.inner.watches;
        let deadline = Instant::now() + WATCH_LEASE;
        if let Some(id) = &watch_id {
            let running = lock(&watches.running);
            if let Some(current) = running.get(id)
                && current.source == source
                && current.tags == tags
                && !current.task.is_finished()
            {
                current.deadline.send_replace(deadline);
                return Ok(lease(id));
            }
        }
        let opened = self.open_source(source).await?;
        let id = watch_id.unwrap_or_else(new_watch_id);
        let (deadline_tx, deadline_rx) = watch::channel(deadline);
        let generation = watches
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Registered before the task can publish: it publishes under this lock.
        let mut running = lock(&watches.running);
        running.retain(|_, r| !r.task.is_finished());
        if !running.contains_key(&id) && running.len() >= MAX_WATCHES {
            return Err(ControlError::new(
                ControlErrorCode::CountOutOfRange,
                format!(
                    "{MAX_WATCHES} pages are already showing live values; close one and try again"
                ),
            ));
        }
        let task = tokio::spawn(follow(
            Arc::downgrade(&self.inner),
            id.clone(),
            generation,
            source.to_owned(),
            opened,
            tags.clone(),
            deadline_rx,
        ));
        let replaced = running.insert(
            id.clone(),
            Running {
                generation,
                source: source.to_owned(),
                tags,
                deadline: deadline_tx,
                task,
            },
        );
        if let Some(old) = replaced {
            old.task.abort();
        }
        Ok(lease(&id))
    }

    /// Ends a watch (the page closed). Ending one that already ended is not an error.
    pub fn stop_watch(&self, watch_id: &str) {
        let mut running = lock(&self.inner.watches.running);
        if let Some(removed) = running.remove(watch_id) {
            removed.task.abort();
        }
        // Under the lock: the task, if it is publishing on another thread right now, finds
        // itself unregistered and publishes nothing more.
        self.inner
            .watches
            .values
            .send_if_modified(|values| values.remove(watch_id).is_some());
    }

    /// The latest values of every running watch: `borrow()` for now, `changed()` to follow.
    pub fn watched_values(&self) -> watch::Receiver<BTreeMap<String, WatchedValues>> {
        self.inner.watches.values.subscribe()
    }
}

fn lease(id: &str) -> TagWatch {
    TagWatch {
        watch_id: id.to_owned(),
        lease_seconds: WATCH_LEASE.as_secs() as u32,
    }
}

fn new_watch_id() -> String {
    let bytes: [u8; 8] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("watch_{hex}")
}

/// Reads the watched tags until the lease runs out or the watch is stopped, publishing each
/// change; then removes the watch's values.
async fn follow(
    inner: std::sync::Weak<crate::Inner>,
    id: String,
    generation: u64,
    source_name: String,
    source: Arc<dyn DataSource>,
    tags: Vec<String>,
    mut deadline: watch::Receiver<Instant>,
) {
    let publish = |values: Vec<LiveValue>, problem: Option<String>| -> bool {
        let Some(inner) = inner.upgrade() else {
            return false;
        };
        let next = WatchedValues {
            watch_id: id.clone(),
            source: source_name.clone(),
            values,
            problem,
        };
        let running = lock(&inner.watches.running);
        if running.get(&id).map(|r| r.generation) != Some(generation) {
            return false; // stopped or replaced
        }
        inner.watches.values.send_if_modified(|all| {
            if all.get(&id) == Some(&next) {
                false
            } else {
                all.insert(id.clone(), next);
                true
            }
        });
        true
    };
    let shown = |values: &[TagValue]| -> Vec<LiveValue> {
        tags.iter()
            .zip(values)
            .map(|(tag, value)| LiveValue::from_tag_value(tag, value))
            .collect()
    };
    if tags.is_empty() {
        publish(Vec::new(), None);
    } else {
        match source.snapshot(&tags).await {
            Ok(values) => {
                publish(shown(&values), None);
            }
            Err(error) => {
                publish(Vec::new(), Some(error.to_string()));
            }
        }
    }
    let mut updates = if tags.is_empty() {
        futures::stream::pending().boxed()
    } else {
        match source.subscribe(&tags).await {
            Ok(pushed) => pushed,
            Err(SourceError::Unsupported { .. }) => polled(source.clone(), tags.clone()),
            Err(error) => {
                publish(Vec::new(), Some(error.to_string()));
                futures::stream::pending().boxed()
            }
        }
    };
    loop {
        let until = *deadline.borrow_and_update();
        tokio::select! {
            update = updates.next() => match update {
                Some(values) => {
                    if !publish(shown(&values), None) {
                        return;
                    }
                }
                None => {
                    publish(Vec::new(), Some("the data source stopped sending values".into()));
                    updates = futures::stream::pending().boxed();
                }
            },
            changed = deadline.changed() => {
                if changed.is_err() {
                    // Stopped or replaced: whoever dropped the lease cleaned up.
                    return;
                }
            }
            () = tokio::time::sleep_until(until) => {
                if *deadline.borrow() <= Instant::now() {
                    tracing::debug!(watch = %id, "a tag watch ended: not renewed");
                    break;
                }
            }
        }
    }
    if let Some(inner) = inner.upgrade() {
        let mut running = lock(&inner.watches.running);
        if running.get(&id).map(|r| r.generation) == Some(generation) {
            running.remove(&id);
            inner
                .watches
                .values
                .send_if_modified(|all| all.remove(&id).is_some());
        }
    }
}

/// Current values every [`POLL_EVERY`], for a source that does not push.
fn polled(
    source: Arc<dyn DataSource>,
    tags: Vec<String>,
) -> futures::stream::BoxStream<'static, Vec<TagValue>> {
    futures::stream::unfold((source, tags), |(source, tags)| async move {
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            match source.snapshot(&tags).await {
                Ok(values) => return Some((values, (source, tags))),
                Err(error) => {
                    tracing::debug!(%error, "a watched snapshot failed; trying again");
                }
            }
        }
    })
    .boxed()
}
