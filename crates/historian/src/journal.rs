//! The event journal: alarms and events of a source that keeps them only in memory (MQTT
//! topics mapped to events), written as they arrive to a SQLite file beside the source's
//! historian file, so time-range event reads survive a connector restart.
//!
//! Each batch of events is one transaction (WAL mode): a killed process loses at most the batch
//! being written, never what was committed. Retention keeps the newest
//! [`JournalOptions::max_events`] and about [`JournalOptions::max_bytes`] of them, deleting the
//! oldest in the same transaction. Reads are paged by a cursor `TIME_US.SEQ`, where SEQ is the
//! journal's own arrival number (never reused), so pages neither lose nor repeat an event
//! across a restart.
//!
//! An event is kept once per id: one whose id the journal already holds is left out, so a
//! source that gives a message sent again the same id (MQTT: a QoS 1 redelivery, a retained
//! message re-sent on subscribe) is journaled once, and catching up from the source's memory
//! after following its stream again repeats nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::db_error;
use async_trait::async_trait;
use futures::StreamExt;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection, SqliteConnection};
use uplink_model::time_expr::to_micros;
use uplink_model::{
    AtTimesRequest, Computed, DataSourceDescriptor, EventMessage, EventPage, EventsRequest,
    ModelError, PlotRequest, ProcessedRequest, RawRequest, Sample, TagPage, TagSearch, TagValue,
    TimeRange,
};
use uplink_source::recording::RecordingStatus;
use uplink_source::{
    ChangeStream, DataSource, EventStream, Health, HealthIssue, ProcessedSeriesList, RawStream,
    SnapshotStream, SourceError, WriteValue,
};

use crate::HistorianError;

/// The wait before following the source's events again after its stream ended.
const RESUBSCRIBE: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    id TEXT
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_us, seq);
";

/// Files written before events were kept once per id get the column, filled from the bodies
/// (where an id repeats, the first arrival stays), then the unique index every file has.
const ID_COLUMN: &str = "
ALTER TABLE events ADD COLUMN id TEXT;
UPDATE events SET id = nullif(json_extract(body, '$.id'), '');
DELETE FROM events WHERE id IS NOT NULL
    AND seq NOT IN (SELECT min(seq) FROM events WHERE id IS NOT NULL GROUP BY id);
";
const ID_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);";

/// The page size of a catch-up read from the source's own memory.
const CATCH_UP_PAGE: u32 = 1_000;

/// The journal file of the source named `source` under `folder`, named as
/// [`historian_file`](crate::historian_file) names its historian file, with `.events`.
pub fn events_file(folder: &Path, source: &str) -> PathBuf {
    crate::historian_file(folder, source).with_extension("events")
}

/// How much the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// The most events kept; the oldest go first.
    pub max_events: u64,
    /// About the most bytes of events kept (their JSON); the oldest go first.
    pub max_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            max_events: 10_000,
            max_bytes: 32 << 20,
        }
    }
}

/// An event journal file. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventJournal {
    path: PathBuf,
    /// None when opened read-only (by another process than the connector writing it).
    write: Option<Arc<tokio::sync::Mutex<SqliteConnection>>>,
    read: SqlitePool,
    options: JournalOptions,
}

/// `TIME_US.SEQ`.
fn parse_cursor(cursor: &str) -> Option<(i64, i64)> {
    let (time, seq) = cursor.split_once('.')?;
    Some((time.parse().ok()?, seq.parse().ok()?))
}

impl EventJournal {
    /// Opens (or creates) the journal at `path`.
    ///
    /// # Errors
    /// [`HistorianError::Database`] when the file cannot be opened or is not a journal.
    pub async fn open(
        path: impl Into<PathBuf>,
        options: JournalOptions,
    ) -> Result<Self, HistorianError> {
        let path = path.into();
        let (mut conn, read) = crate::store::open_file(&path, SCHEMA, 2).await?;
        let columns: Vec<(String,)> =
            sqlx::query_as("SELECT name FROM pragma_table_info('events')")
                .fetch_all(&mut conn)
                .await
                .map_err(db_error(&path))?;
        if !columns.iter().any(|(name,)| name == "id") {
            let mut tx = conn.begin().await.map_err(db_error(&path))?;
            sqlx::raw_sql(ID_COLUMN)
                .execute(&mut *tx)
                .await
                .map_err(db_error(&path))?;
            tx.commit().await.map_err(db_error(&path))?;
        }
        sqlx::raw_sql(ID_INDEX)
            .execute(&mut conn)
            .await
            .map_err(db_error(&path))?;
        Ok(Self {
            path,
            write: Some(Arc::new(tokio::sync::Mutex::new(conn))),
            read,
            options,
        })
    }

    /// Opens the journal at `path` for reading only: another process (the connector) may be
    /// writing to it, and nothing is written here, not even the file's format.
    ///
    /// # Errors
    /// [`HistorianError::Database`] when the file cannot be opened or is not a journal.
    pub async fn open_read_only(path: impl Into<PathBuf>) -> Result<Self, HistorianError> {
        let path = path.into();
        let read = crate::store::open_read_only(&path).await?;
        // A file that is not a journal says so now, not at the first read.
        sqlx::query("SELECT seq, time_us, body FROM events LIMIT 0")
            .execute(&read)
            .await
            .map_err(db_error(&path))?;
        Ok(Self {
            path,
            write: None,
            read,
            options: JournalOptions::default(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `events` in one transaction, but for those whose id the journal already holds,
    /// then deletes the oldest beyond the retention; returns how many were new.
    ///
    /// # Errors
    /// [`HistorianError::Database`] when the file cannot be written (or was opened read-only);
    /// nothing of the batch is.
    pub async fn append(&self, events: &[EventMessage]) -> Result<u64, HistorianError> {
        if events.is_empty() {
            return Ok(0);
        }
        let path = &self.path;
        let Some(write) = &self.write else {
            return Err(HistorianError::Database {
                path: path.display().to_string(),
                message: "opened read-only".into(),
            });
        };
        let mut conn = write.lock().await;
        let mut tx = conn.begin().await.map_err(db_error(path))?;
        let mut new = 0;
        for event in events {
            let body = serde_json::to_string(event).map_err(|err| HistorianError::Database {
                path: path.display().to_string(),
                message: format!("an event does not encode: {err}"),
            })?;
            // An event without an id cannot be recognised again: always kept.
            let id = Some(event.id.as_str()).filter(|id| !id.is_empty());
            new += sqlx::query(
                "INSERT INTO events (time_us, body, id) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(to_micros(event.time))
            .bind(body)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_error(path))?
            .rows_affected();
        }
        let max_events = i64::try_from(self.options.max_events).unwrap_or(i64::MAX);
        sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY time_us, seq \
             LIMIT max(0, (SELECT count(*) FROM events) - ?))",
        )
        .bind(max_events)
        .execute(&mut *tx)
        .await
        .map_err(db_error(path))?;
        let max_bytes = i64::try_from(self.options.max_bytes).unwrap_or(i64::MAX);
        // The newest events whose bytes, counted from the newest, fit; the newest always stays.
        sqlx::query(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM (SELECT seq, \
             row_number() OVER newest AS rank, sum(length(body)) OVER newest AS newer \
             FROM events WINDOW newest AS (ORDER BY time_us DESC, seq DESC)) \
             WHERE rank > 1 AND newer > ?)",
        )
        .bind(max_bytes)
        .execute(&mut *tx)
        .await
        .map_err(db_error(path))?;
        tx.commit().await.map_err(db_error(path))?;
        Ok(new)
    }

    /// The page `request` asks for, oldest first, none later than `now_us`.
    ///
    /// # Errors
    /// [`SourceError`] `bad_cursor` for a cursor that is not `TIME_US.SEQ`; a database error.
    pub async fn page(
        &self,
        request: &EventsRequest,
        now_us: i64,
    ) -> Result<EventPage, SourceError> {
        let after = match &request.cursor {
            None => (i64::MIN, i64::MIN),
            Some(cursor) => parse_cursor(cursor).ok_or_else(|| ModelError::BadCursor {
                cursor: cursor.clone(),
            })?,
        };
        let limit = i64::from(request.limit);
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT time_us, seq, body FROM events \
             WHERE time_us >= ? AND time_us <= ? AND (time_us, seq) > (?, ?) \
             ORDER BY time_us, seq LIMIT ?",
        )
        .bind(request.range.start_us())
        .bind(request.range.end_us().min(now_us))
        .bind(after.0)
        .bind(after.1)
        .bind(limit.saturating_add(1))
        .fetch_all(&self.read)
        .await
        .map_err(db_error(&self.path))?;
        let more = rows.len() as i64 > limit;
        let mut events = Vec::with_capacity(rows.len());
        let mut last = None;
        for (time_us, seq, body) in rows.into_iter().take(request.limit as usize) {
            let event: EventMessage =
                serde_json::from_str(&body).map_err(|err| HistorianError::Database {
                    path: self.path.display().to_string(),
                    message: format!("a stored event is damaged: {err}"),
                })?;
            events.push(event);
            last = Some(format!("{time_us}.{seq}"));
        }
        Ok(EventPage {
            events,
            next: last.filter(|_| more),
        })
    }

    /// Closes the file (its write-ahead log checkpointed into it) once every clone is dropped
    /// or closed.
    pub async fn close(self) {
        if let Some(write) = self.write
            && let Ok(conn) = Arc::try_unwrap(write)
        {
            let _ = conn.into_inner().close().await;
        }
        self.read.close().await;
    }

    /// How many events the journal holds.
    ///
    /// # Errors
    /// [`HistorianError::Database`] when it cannot be read.
    pub async fn count(&self) -> Result<u64, HistorianError> {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
            .fetch_one(&self.read)
            .await
            .map_err(db_error(&self.path))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// A source whose events are journaled: its events stream is followed and written to an
/// [`EventJournal`], and time-range event reads are answered from the journal. Everything else
/// is the source's own.
#[derive(Debug)]
pub struct Journaled {
    inner: Arc<dyn DataSource>,
    journal: EventJournal,
    last_error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Journaled {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Journaled {
    /// Opens the journal at `file` and starts following `inner`'s events.
    ///
    /// # Errors
    /// A journal file that cannot be opened.
    pub async fn wrap(
        inner: Arc<dyn DataSource>,
        file: PathBuf,
        options: JournalOptions,
    ) -> Result<Arc<dyn DataSource>, SourceError> {
        let journal = EventJournal::open(file, options).await?;
        let last_error = Arc::new(Mutex::new(None));
        let task = tokio::spawn(follow(inner.clone(), journal.clone(), last_error.clone()));
        Ok(Arc::new(Self {
            inner,
            journal,
            last_error,
            task,
        }))
    }

    /// `inner` answering time-range event reads from the journal at `file`, opened read-only,
    /// for one-off reads by another process than the connector that writes it (`uplink
    /// query`). A source without events, or with no journal file yet, is returned as it is.
    ///
    /// # Errors
    /// A journal file that cannot be read.
    pub async fn read_only(
        inner: Arc<dyn DataSource>,
        file: PathBuf,
    ) -> Result<Arc<dyn DataSource>, SourceError> {
        if !inner.descriptor().capabilities.events || !file.exists() {
            return Ok(inner);
        }
        let journal = EventJournal::open_read_only(file).await?;
        Ok(Arc::new(Self {
            inner,
            journal,
            last_error: Arc::new(Mutex::new(None)),
            task: tokio::spawn(async {}),
        }))
    }
}

fn set(slot: &Mutex<Option<String>>, value: Option<String>) {
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

/// Writes each event of the source's events stream to the journal; follows it again after
/// [`RESUBSCRIBE`] when it ends. Each time it starts following, it first catches up from the
/// source's own memory.
async fn follow(
    source: Arc<dyn DataSource>,
    journal: EventJournal,
    last_error: Arc<Mutex<Option<String>>>,
) {
    let name = source.descriptor().name;
    loop {
        match source.subscribe_events().await {
            Ok(mut stream) => {
                // The stream gives what arrives from now on. What arrived before (the backlog a
                // persistent MQTT session delivers right after connecting, before this task
                // ran; anything during the wait before following again) is still in the
                // source's memory: journaled now, after subscribing, so nothing falls between
                // the two. What both give is kept once, by id.
                match catch_up(source.as_ref(), &journal).await {
                    Ok(0) => {}
                    Ok(caught) => {
                        tracing::info!(source = %name, events = caught, "journaled events that arrived before following")
                    }
                    Err(err) => {
                        tracing::warn!(source = %name, error = %err, "cannot catch up on events to journal them");
                        set(&last_error, Some(err.to_string()));
                    }
                }
                while let Some(events) = stream.next().await {
                    match journal.append(&events).await {
                        Ok(_) => set(&last_error, None),
                        Err(err) => {
                            tracing::warn!(source = %name, error = %err, "cannot journal events");
                            set(&last_error, Some(err.to_string()));
                        }
                    }
                }
            }
            Err(SourceError::Unsupported { .. }) => return,
            Err(err) => {
                tracing::warn!(source = %name, error = %err, "cannot follow events to journal them");
            }
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Journals every event the source holds in its memory; returns how many were new.
async fn catch_up(source: &dyn DataSource, journal: &EventJournal) -> Result<u64, SourceError> {
    // Everything: the source's memory is bounded, and its reads see nothing later than now.
    let range = TimeRange::new(
        chrono::DateTime::UNIX_EPOCH,
        chrono::Utc::now() + chrono::TimeDelta::days(1),
    )?;
    let mut request = EventsRequest {
        range,
        limit: CATCH_UP_PAGE,
        cursor: None,
    };
    let mut new = 0;
    loop {
        let page = source.events(&request).await?;
        new += journal.append(&page.events).await?;
        match page.next {
            Some(next) => request.cursor = Some(next),
            None => return Ok(new),
        }
    }
}

#[async_trait]
impl DataSource for Journaled {
    fn descriptor(&self) -> DataSourceDescriptor {
        self.inner.descriptor()
    }

    fn health(&self) -> Health {
        let mut health = self.inner.health();
        let error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(error) = error {
            health.report(HealthIssue {
                message: format!("journaling events: {error}"),
                file: None,
                line: None,
            });
        }
        health
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        self.inner.search(search).await
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        self.inner.snapshot(tags).await
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        self.inner.raw(request).await
    }

    async fn plot(&self, request: &PlotRequest) -> Result<Computed<Vec<Sample>>, SourceError> {
        self.inner.plot(request).await
    }

    async fn at_times(
        &self,
        request: &AtTimesRequest,
    ) -> Result<Computed<Vec<Sample>>, SourceError> {
        self.inner.at_times(request).await
    }

    async fn processed(
        &self,
        request: &ProcessedRequest,
    ) -> Result<Computed<ProcessedSeriesList>, SourceError> {
        self.inner.processed(request).await
    }

    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        self.inner.subscribe(tags).await
    }

    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        self.inner.changes().await
    }

    /// From the journal: every event since the journal began, within its retention, across
    /// restarts. A source without events says so.
    async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
        if !self.inner.descriptor().capabilities.events {
            return self.inner.events(request).await;
        }
        self.journal
            .page(request, to_micros(chrono::Utc::now()))
            .await
    }

    async fn subscribe_events(&self) -> Result<EventStream, SourceError> {
        self.inner.subscribe_events().await
    }

    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        self.inner.write(tag, value).await
    }

    fn recording(&self) -> Option<RecordingStatus> {
        self.inner.recording()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, TimeZone, Utc};
    use uplink_model::EventPriority;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, second).unwrap()
    }

    fn event(second: u32, id: &str) -> EventMessage {
        EventMessage {
            id: id.to_owned(),
            source: "line".into(),
            time: at(second),
            topic: "plant/alarms".into(),
            priority: EventPriority::High,
            category: "process".into(),
            event_type: "alarm".into(),
            message: format!("event {id}"),
            properties: BTreeMap::from([("tag".to_owned(), "TI100".to_owned())]),
        }
    }

    fn request(limit: u32, cursor: Option<String>) -> EventsRequest {
        EventsRequest {
            range: TimeRange::new(at(0), at(59)).unwrap(),
            limit,
            cursor,
        }
    }

    async fn read_all(journal: &EventJournal, limit: u32) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let page = journal
                .page(&request(limit, cursor.take()), i64::MAX)
                .await
                .unwrap();
            assert!(page.events.len() <= limit as usize);
            ids.extend(page.events.into_iter().map(|e| e.id));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return ids,
            }
        }
        panic!("the pages never end");
    }

    #[tokio::test]
    async fn events_survive_reopening_and_page_in_time_order_without_loss_or_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let file = events_file(dir.path(), "line 1");
        assert!(file.ends_with("line%201.events"));
        let journal = EventJournal::open(&file, JournalOptions::default())
            .await
            .unwrap();
        // Out of time order, and two sharing an instant.
        journal
            .append(&[event(3, "c"), event(1, "a"), event(3, "d")])
            .await
            .unwrap();
        journal.append(&[event(2, "b")]).await.unwrap();
        drop(journal);
        let journal = EventJournal::open(&file, JournalOptions::default())
            .await
            .unwrap();
        let stored = journal.page(&request(10, None), i64::MAX).await.unwrap();
        assert_eq!(stored.events[0], event(1, "a"), "kept whole");
        for limit in 1..=5 {
            assert_eq!(
                read_all(&journal, limit).await,
                ["a", "b", "c", "d"],
                "pages of {limit}"
            );
        }
        let until_two = journal
            .page(&request(10, None), to_micros(at(2)))
            .await
            .unwrap();
        assert_eq!(until_two.events.len(), 2, "none later than now");
        let bad = journal.page(&request(10, Some("x".into())), i64::MAX).await;
        assert_eq!(bad.unwrap_err().code(), "bad_cursor");
    }

    #[tokio::test]
    async fn retention_keeps_the_newest_by_count_and_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let journal = EventJournal::open(
            dir.path().join("a.events"),
            JournalOptions {
                max_events: 3,
                max_bytes: u64::MAX,
            },
        )
        .await
        .unwrap();
        for second in 0..5 {
            journal
                .append(&[event(second, &second.to_string())])
                .await
                .unwrap();
        }
        assert_eq!(read_all(&journal, 10).await, ["2", "3", "4"]);
        let size = serde_json::to_string(&event(0, "0")).unwrap().len() as u64;
        let small = EventJournal::open(
            dir.path().join("b.events"),
            JournalOptions {
                max_events: 100,
                max_bytes: size * 2,
            },
        )
        .await
        .unwrap();
        let batch: Vec<EventMessage> = (0..6).map(|s| event(s, &s.to_string())).collect();
        small.append(&batch).await.unwrap();
        assert_eq!(small.count().await.unwrap(), 2);
        assert_eq!(read_all(&small, 10).await, ["4", "5"]);
    }

    #[tokio::test]
    async fn an_event_whose_id_is_kept_is_not_kept_again() {
        let dir = tempfile::tempdir().unwrap();
        let journal = EventJournal::open(dir.path().join("a.events"), JournalOptions::default())
            .await
            .unwrap();
        assert_eq!(
            journal
                .append(&[event(1, "a"), event(2, "b")])
                .await
                .unwrap(),
            2
        );
        // Sent again (a redelivery, a catch-up overlapping the stream), with one new event.
        let mut again = event(1, "a");
        again.message = "a copy that differs".into();
        assert_eq!(
            journal
                .append(&[again, event(2, "b"), event(3, "c")])
                .await
                .unwrap(),
            1
        );
        // Events without an id cannot be recognised: each is kept.
        assert_eq!(
            journal.append(&[event(4, ""), event(4, "")]).await.unwrap(),
            2
        );
        assert_eq!(read_all(&journal, 10).await, ["a", "b", "c", "", ""]);
        let first = journal.page(&request(1, None), i64::MAX).await.unwrap();
        assert_eq!(
            first.events[0].message, "event a",
            "the first arrival stays"
        );
    }

    #[tokio::test]
    async fn a_journal_from_before_ids_were_kept_is_upgraded_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.events");
        {
            // The format before the id column: the same event id twice.
            let (mut conn, _read) = crate::store::open_file(
                &file,
                "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
                 time_us INTEGER NOT NULL, body TEXT NOT NULL); \
                 CREATE INDEX events_time ON events (time_us, seq);",
                1,
            )
            .await
            .unwrap();
            for e in [event(1, "a"), event(2, "b"), event(1, "a")] {
                sqlx::query("INSERT INTO events (time_us, body) VALUES (?, ?)")
                    .bind(to_micros(e.time))
                    .bind(serde_json::to_string(&e).unwrap())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            conn.close().await.unwrap();
        }
        let old = EventJournal::open_read_only(&file).await.unwrap();
        assert_eq!(read_all(&old, 10).await, ["a", "a", "b"], "read as it is");
        assert!(old.append(&[event(5, "e")]).await.is_err(), "never written");
        drop(old);
        let journal = EventJournal::open(&file, JournalOptions::default())
            .await
            .unwrap();
        assert_eq!(read_all(&journal, 10).await, ["a", "b"]);
        assert_eq!(
            journal
                .append(&[event(2, "b"), event(3, "c")])
                .await
                .unwrap(),
            1
        );
        assert_eq!(read_all(&journal, 10).await, ["a", "b", "c"]);
        let missing = EventJournal::open_read_only(dir.path().join("none.events")).await;
        assert!(missing.is_err(), "a read-only open creates nothing");
        assert!(!dir.path().join("none.events").exists());
    }
}
