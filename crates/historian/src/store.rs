//! The historian file: tags, blocks of encoded values, the writer task and streamed reads.
//!
//! One table of blocks holds two kinds of row. A *sealed* block is a tag's values up to
//! [`HistorianOptions::block_values`] (or [`HistorianOptions::block_span`] of time), encoded
//! with [`crate::codec`]. A *segment* is what one flush added to a tag's open block; when the
//! block fills, its segments are replaced by one sealed block in the same transaction. Reads
//! decode both alike, since segments and blocks never overlap in time. Every flush is one
//! transaction, so a killed process loses at most the values of the flush in progress.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use uplink_model::time_expr::{from_micros, to_micros};
use uplink_model::{Boundary, RawRequest, Sample, TagValue};
use uplink_source::{CHUNK, RawStream, SourceError};

use crate::HistorianError;
use crate::codec::{self, Encoder};

/// How long recorded values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Retention {
    /// Values older than this (by their block's newest value) are deleted.
    pub max_age: Option<Duration>,
    /// The oldest blocks are deleted while the file's used pages exceed this.
    pub max_bytes: Option<u64>,
}

/// How a historian writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistorianOptions {
    /// The longest values wait before they are committed (what a killed process can lose).
    pub flush_every: Duration,
    /// Values per sealed block.
    pub block_values: u32,
    /// The longest stretch of time one block covers (bounds what retention keeps too long).
    pub block_span: Duration,
    /// A value is recorded only when it moved more than this from the last recorded one; an
    /// unchanged value is never recorded again, but the last one before a change is.
    pub deadband: f64,
    /// What is kept.
    pub retention: Retention,
    /// How often retention runs.
    pub trim_every: Duration,
}

impl Default for HistorianOptions {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_millis(200),
            block_values: 2_048,
            block_span: Duration::from_secs(3_600),
            deadband: 0.0,
            retention: Retention::default(),
            trim_every: Duration::from_secs(10),
        }
    }
}

/// What a historian holds, for status displays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistorianStats {
    /// Tags with at least one recorded value.
    pub tags: u64,
    /// When the first value was recorded (µs since the epoch).
    pub since_us: Option<i64>,
    /// The oldest value kept (µs since the epoch).
    pub oldest_us: Option<i64>,
    /// The file and its write-ahead log, in bytes.
    pub disk_bytes: u64,
    /// Values accepted since the historian opened.
    pub recorded: u64,
    /// The last write problem, if any.
    pub last_error: Option<String>,
}

/// An edge historian file, cheap to clone. Opening starts its writer task (a tokio runtime
/// must be running); the writer flushes and stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Historian {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    tx: mpsc::Sender<Command>,
    read: SqlitePool,
    stats: Arc<Mutex<HistorianStats>>,
    /// Each recorded tag's first value time (µs).
    firsts: Arc<Mutex<HashMap<String, i64>>>,
}

/// A value to record: the tag, the sample, and its text if it has one.
type Value = (Arc<str>, Sample, Option<Arc<str>>);

/// A tag's value as the historian keeps it: a text-only value has a NaN number and keeps its
/// status; a value with neither number nor text is a bad sample.
fn value_of(value: &TagValue) -> (Sample, Option<Arc<str>>) {
    match &value.text {
        Some(text) => (
            Sample {
                time_us: to_micros(value.time),
                value: value.value.filter(|v| v.is_finite()).unwrap_or(f64::NAN),
                status: value.status,
                source_code: 0,
            },
            Some(Arc::from(text.as_str())),
        ),
        None => (value.to_sample(), None),
    }
}

#[derive(Debug)]
enum Command {
    Record(Vec<Value>),
    Flush(oneshot::Sender<Result<(), HistorianError>>),
    Trim(oneshot::Sender<Result<(), HistorianError>>),
    Close(oneshot::Sender<()>),
    Options(HistorianOptions),
}

/// Historian files open in this process: opening one again (a source edited while its old
/// version still records) shares the one writer, so two never write the same file.
static OPEN: Mutex<Vec<(PathBuf, std::sync::Weak<Shared>)>> = Mutex::new(Vec::new());

/// Batches waiting for the writer; a producer waits when the writer falls behind.
const QUEUE: usize = 64;
/// Pending values that force a flush before the timer.
const FLUSH_VALUES: usize = 65_536;
/// Blocks read per query.
const READ_PAGE: i64 = 16;
/// Blocks deleted per step while the file is too large.
const TRIM_STEP: i64 = 64;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tags (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    first_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
    tag_id INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    count INTEGER NOT NULL,
    sealed INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tag_id, start_us)
);
CREATE INDEX IF NOT EXISTS blocks_start ON blocks (start_us);
";

pub(crate) fn db_error(path: &Path) -> impl Fn(sqlx::Error) -> HistorianError + '_ {
    move |err| HistorianError::Database {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

/// Opens (creating it and its folder if need be) one of the historian's SQLite files with
/// `schema` applied: its one writing connection (WAL, incremental vacuum) and a pool of
/// `readers` read-only connections beside it.
pub(crate) async fn open_file(
    path: &Path,
    schema: &'static str,
    readers: u32,
) -> Result<(SqliteConnection, SqlitePool), HistorianError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| HistorianError::Database {
            path: path.display().to_string(),
            message: format!("cannot create its folder: {err}"),
        })?;
    }
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&connect)
        .await
        .map_err(db_error(path))?;
    sqlx::raw_sql(schema)
        .execute(&mut conn)
        .await
        .map_err(db_error(path))?;
    let read = SqlitePoolOptions::new()
        .max_connections(readers)
        .min_connections(0)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .map_err(db_error(path))?;
    Ok((conn, read))
}

/// A pool of read-only connections to the SQLite file at `path`, which must exist; nothing is
/// written to it, so another process may be its writer.
pub(crate) async fn open_read_only(path: &Path) -> Result<SqlitePool, HistorianError> {
    SqlitePoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .map_err(db_error(path))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now_us() -> i64 {
    uplink_model::time_expr::to_micros(chrono::Utc::now())
}

impl Historian {
    /// Opens (or creates) the historian file at `path` and starts its writer; values left in
    /// open blocks by a previous run are picked up where they were.
    ///
    /// # Errors
    /// [`HistorianError::Database`] when the file cannot be opened or is not a historian.
    pub async fn open(
        path: impl Into<PathBuf>,
        options: HistorianOptions,
    ) -> Result<Self, HistorianError> {
        let path = path.into();
        let existing = {
            let mut open = lock(&OPEN);
            open.retain(|(_, shared)| shared.strong_count() > 0);
            open.iter()
                .find(|(p, _)| *p == path)
                .and_then(|(_, shared)| shared.upgrade())
        };
        if let Some(shared) = existing
            && !shared.tx.is_closed()
        {
            let historian = Self { shared };
            historian.send(Command::Options(options)).await?;
            return Ok(historian);
        }
        let (conn, read) = open_file(&path, SCHEMA, 4).await?;
        let stats = Arc::new(Mutex::new(HistorianStats::default()));
        let firsts = Arc::new(Mutex::new(HashMap::new()));
        let mut writer = Writer {
            firsts: firsts.clone(),
            conn,
            path: path.clone(),
            options,
            tags: HashMap::new(),
            pending: 0,
            stats: stats.clone(),
        };
        writer.recover().await?;
        writer.update_stats().await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer.run(rx));
        let shared = Arc::new(Shared {
            path: path.clone(),
            tx,
            read,
            stats,
            firsts,
        });
        lock(&OPEN).push((path, Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// Opens an existing historian file to read only, with no writer: for another process
    /// (`uplink query`) reading what the connector records, which must never write to it.
    /// Recording to it fails with [`HistorianError::Stopped`].
    ///
    /// # Errors
    /// [`HistorianError::Database`] when the file does not exist or is not a historian.
    pub async fn open_read_only(path: impl Into<PathBuf>) -> Result<Self, HistorianError> {
        let path = path.into();
        let read = open_read_only(&path).await?;
        let tags: Vec<(String, i64)> = sqlx::query_as("SELECT name, first_us FROM tags")
            .fetch_all(&read)
            .await
            .map_err(db_error(&path))?;
        let (since, oldest): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT min(first_us) FROM tags), (SELECT min(start_us) FROM blocks)",
        )
        .fetch_one(&read)
        .await
        .map_err(db_error(&path))?;
        let stats = HistorianStats {
            tags: tags.len() as u64,
            since_us: since,
            oldest_us: oldest,
            disk_bytes: disk_bytes(&path),
            ..HistorianStats::default()
        };
        // A sender whose receiver is gone: every write is refused as stopped.
        let (tx, _) = mpsc::channel(1);
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                tx,
                read,
                stats: Arc::new(Mutex::new(stats)),
                firsts: Arc::new(Mutex::new(tags.into_iter().collect())),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Queues values for recording: each is a tag's name and a sample. Values of a tag must
    /// come in time order; one not after the last recorded is dropped. Waits only when the
    /// writer is behind by many batches.
    ///
    /// # Errors
    /// [`HistorianError::Stopped`] after [`close`](Self::close).
    pub async fn record(&self, values: Vec<(Arc<str>, Sample)>) -> Result<(), HistorianError> {
        if values.is_empty() {
            return Ok(());
        }
        self.send(Command::Record(
            values.into_iter().map(|(tag, s)| (tag, s, None)).collect(),
        ))
        .await
    }

    /// Queues values as sources give them: a text (a text tag's value, a digital state's name
    /// beside its number) is kept with the value and read back by [`raw_values`](Self::raw_values);
    /// a text-only value keeps its status, with no number. Otherwise as [`record`](Self::record).
    ///
    /// # Errors
    /// [`HistorianError::Stopped`] after [`close`](Self::close).
    pub async fn record_values(
        &self,
        values: Vec<(Arc<str>, TagValue)>,
    ) -> Result<(), HistorianError> {
        if values.is_empty() {
            return Ok(());
        }
        self.send(Command::Record(
            values
                .into_iter()
                .map(|(tag, value)| {
                    let (sample, text) = value_of(&value);
                    (tag, sample, text)
                })
                .collect(),
        ))
        .await
    }

    async fn send(&self, command: Command) -> Result<(), HistorianError> {
        self.shared
            .tx
            .send(command)
            .await
            .map_err(|_| self.stopped())
    }

    fn stopped(&self) -> HistorianError {
        HistorianError::Stopped {
            path: self.shared.path.display().to_string(),
        }
    }

    /// Commits everything queued so far.
    ///
    /// # Errors
    /// What the write found.
    pub async fn flush(&self) -> Result<(), HistorianError> {
        let (ack, done) = oneshot::channel();
        self.send(Command::Flush(ack)).await?;
        done.await.map_err(|_| self.stopped())?
    }

    /// Commits everything queued, then applies retention now.
    ///
    /// # Errors
    /// What the write found.
    pub async fn trim(&self) -> Result<(), HistorianError> {
        let (ack, done) = oneshot::channel();
        self.send(Command::Trim(ack)).await?;
        done.await.map_err(|_| self.stopped())?
    }

    /// Commits everything queued and stops the writer; later records fail.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Command::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Tags, times and disk use, as of the last flush.
    pub fn stats(&self) -> HistorianStats {
        lock(&self.shared.stats).clone()
    }

    /// When `tag` was first recorded (µs since the epoch), if it was.
    pub fn first_recorded(&self, tag: &str) -> Option<i64> {
        lock(&self.shared.firsts).get(tag).copied()
    }

    /// The names of the recorded tags.
    ///
    /// # Errors
    /// [`HistorianError::Database`].
    pub async fn tag_names(&self) -> Result<Vec<String>, HistorianError> {
        sqlx::query_scalar("SELECT name FROM tags ORDER BY name")
            .fetch_all(&self.shared.read)
            .await
            .map_err(db_error(&self.shared.path))
    }

    /// Recorded values of one tag, oldest first, streamed in chunks of at most [`CHUNK`]
    /// (a few blocks are read at a time, so memory stays bounded). A tag never recorded has
    /// no values.
    ///
    /// # Errors
    /// [`SourceError::Database`] when the file cannot be read.
    pub async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        let Some(reader) = self.reader(request, false).await? else {
            return Ok(futures::stream::empty().boxed());
        };
        Ok(
            futures::stream::try_unfold(reader, |mut reader| async move {
                let chunk = reader.next_chunk().await?;
                Ok::<_, SourceError>(chunk.map(|chunk| (chunk, reader)))
            })
            .boxed(),
        )
    }

    /// Recorded values of one tag with their texts, as [`raw`](Self::raw) streams samples: a
    /// text tag's values and digital state names as they were recorded.
    ///
    /// # Errors
    /// [`SourceError::Database`] when the file cannot be read.
    pub async fn raw_values(
        &self,
        request: &RawRequest,
    ) -> Result<futures::stream::BoxStream<'static, Result<Vec<TagValue>, SourceError>>, SourceError>
    {
        let Some(reader) = self.reader(request, true).await? else {
            return Ok(futures::stream::empty().boxed());
        };
        Ok(
            futures::stream::try_unfold(reader, |mut reader| async move {
                let Some(chunk) = reader.next_chunk().await? else {
                    return Ok::<_, SourceError>(None);
                };
                let values = chunk
                    .into_iter()
                    .map(|sample| {
                        let text = match reader.texts.front() {
                            Some((time, _)) if *time == sample.time_us => {
                                reader.texts.pop_front().map(|(_, text)| text)
                            }
                            _ => None,
                        };
                        match text {
                            Some(text) => TagValue {
                                time: from_micros(sample.time_us),
                                value: sample.value.is_finite().then_some(sample.value),
                                text: Some(text),
                                status: sample.status,
                                units: None,
                                source_status_code: None,
                            },
                            None => TagValue::from(sample),
                        }
                    })
                    .collect();
                Ok(Some((values, reader)))
            })
            .boxed(),
        )
    }

    async fn reader(
        &self,
        request: &RawRequest,
        with_text: bool,
    ) -> Result<Option<Reader>, SourceError> {
        let path = self.shared.path.clone();
        let pool = self.shared.read.clone();
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE name = ?")
            .bind(&request.tag)
            .fetch_optional(&pool)
            .await
            .map_err(db_error(&path))?;
        let Some(id) = id else {
            return Ok(None);
        };
        let (lo, hi) = (request.range.start_us(), request.range.end_us());
        let outside = request.boundary == Boundary::Outside;
        // The block holding the last value at or before the start: reading begins there, and
        // with outside boundaries its last value before the start leads the answer.
        let first = sqlx::query(
            "SELECT start_us, data FROM blocks WHERE tag_id = ? AND start_us <= ? \
             ORDER BY start_us DESC LIMIT 1",
        )
        .bind(id)
        .bind(lo)
        .fetch_optional(&pool)
        .await
        .map_err(db_error(&path))?;
        let mut reader = Reader {
            pool,
            path,
            id,
            cursor: i64::MIN,
            lo,
            hi,
            outside,
            at_end: false,
            remaining: request.max_count.unwrap_or(u64::MAX),
            ready: Vec::new(),
            with_text,
            texts: std::collections::VecDeque::new(),
            done: false,
        };
        if let Some(row) = first {
            let start: i64 = row.get(0);
            reader.cursor = start;
            if outside {
                let mut samples = Vec::new();
                let mut texts = Vec::new();
                reader.decode(start, row.get(1), &mut samples, &mut texts)?;
                if let Some(before) = samples.iter().rev().find(|s| s.time_us <= lo)
                    && before.time_us < lo
                {
                    reader.ready.push(*before);
                    if let Some(text) = texts.into_iter().find(|(t, _)| *t == before.time_us) {
                        reader.texts.push_back(text);
                    }
                }
            }
        }
        Ok(Some(reader))
    }
}

/// A raw read in progress.
struct Reader {
    pool: SqlitePool,
    path: PathBuf,
    id: i64,
    /// The next block to read starts at or after this.
    cursor: i64,
    lo: i64,
    hi: i64,
    outside: bool,
    /// A value sits exactly on the end.
    at_end: bool,
    remaining: u64,
    ready: Vec<Sample>,
    /// Whether texts are read too.
    with_text: bool,
    /// The texts of samples in `ready` (or already handed out in a chunk), by time.
    texts: std::collections::VecDeque<(i64, String)>,
    done: bool,
}

impl Reader {
    fn decode(
        &self,
        start: i64,
        data: &[u8],
        out: &mut Vec<Sample>,
        texts: &mut Vec<(i64, String)>,
    ) -> Result<(), SourceError> {
        let with_text = self.with_text;
        codec::decode_with(start, data, |sample, text| {
            if with_text && let Some(text) = text {
                texts.push((sample.time_us, text.to_owned()));
            }
            out.push(sample);
        })
        .map_err(|codec::Damaged| {
            HistorianError::Damaged {
                path: self.path.display().to_string(),
                tag_id: self.id,
                start_us: start,
            }
            .into()
        })
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<Sample>>, SourceError> {
        let mut samples = Vec::new();
        let mut texts = Vec::new();
        while self.ready.len() < CHUNK && !self.done {
            let upper = if self.outside { i64::MAX } else { self.hi };
            let rows = sqlx::query(
                "SELECT start_us, data FROM blocks WHERE tag_id = ? AND start_us >= ? \
                 AND start_us <= ? ORDER BY start_us LIMIT ?",
            )
            .bind(self.id)
            .bind(self.cursor)
            .bind(upper)
            .bind(READ_PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error(&self.path))?;
            if (rows.len() as i64) < READ_PAGE {
                self.done = true;
            }
            'rows: for row in &rows {
                let start: i64 = row.get(0);
                self.cursor = start.saturating_add(1);
                samples.clear();
                texts.clear();
                self.decode(start, row.get(1), &mut samples, &mut texts)?;
                let mut texts = texts.drain(..).peekable();
                for sample in &samples {
                    let text = texts.next_if(|(t, _)| *t == sample.time_us);
                    if sample.time_us < self.lo {
                        continue;
                    }
                    if sample.time_us <= self.hi {
                        self.at_end |= sample.time_us == self.hi;
                        self.ready.push(*sample);
                        self.texts.extend(text);
                        continue;
                    }
                    if self.outside && !self.at_end {
                        self.ready.push(*sample);
                        self.texts.extend(text);
                    }
                    self.done = true;
                    break 'rows;
                }
            }
        }
        if self.ready.is_empty() || self.remaining == 0 {
            return Ok(None);
        }
        let take = self
            .ready
            .len()
            .min(CHUNK)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.remaining -= take as u64;
        let rest = self.ready.split_off(take);
        Ok(Some(std::mem::replace(&mut self.ready, rest)))
    }
}

/// One tag's writing state.
#[derive(Debug)]
struct TagState {
    id: i64,
    /// Every value of the open block, committed or not.
    open: Encoder,
    /// Values accepted since the last flush, with their texts.
    pending: Vec<(Sample, Option<Arc<str>>)>,
    /// The last value accepted.
    last: Option<Sample>,
    /// The last accepted value's text.
    last_text: Option<Arc<str>>,
    /// The last value held back by the deadband, recorded when the value next moves.
    held: Option<(Sample, Option<Arc<str>>)>,
}

struct Writer {
    conn: SqliteConnection,
    path: PathBuf,
    options: HistorianOptions,
    tags: HashMap<Arc<str>, TagState>,
    pending: usize,
    stats: Arc<Mutex<HistorianStats>>,
    firsts: Arc<Mutex<HashMap<String, i64>>>,
}

impl Writer {
    fn error(&self) -> impl Fn(sqlx::Error) -> HistorianError + '_ {
        db_error(&self.path)
    }

    fn damaged(&self, tag_id: i64, start_us: i64) -> HistorianError {
        HistorianError::Damaged {
            path: self.path.display().to_string(),
            tag_id,
            start_us,
        }
    }

    /// Rebuilds each tag's open block from its segments, and its last value.
    async fn recover(&mut self) -> Result<(), HistorianError> {
        let tags: Vec<(i64, String, i64)> = sqlx::query_as("SELECT id, name, first_us FROM tags")
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.error())?;
        for (id, name, first_us) in tags {
            lock(&self.firsts).insert(name.clone(), first_us);
            let segments: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT start_us, data FROM blocks WHERE tag_id = ? AND sealed = 0 \
                 ORDER BY start_us",
            )
            .bind(id)
            .fetch_all(&mut self.conn)
            .await
            .map_err(self.error())?;
            let mut open = Encoder::new();
            let mut last = None;
            let mut last_text = None;
            for (start, data) in &segments {
                codec::decode_with(*start, data, |sample, text| {
                    open.push_text(&sample, text);
                    last = Some(sample);
                    last_text = text.map(Arc::from);
                })
                .map_err(|_| self.damaged(id, *start))?;
            }
            if last.is_none() {
                let block: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT start_us, data FROM blocks WHERE tag_id = ? \
                     ORDER BY start_us DESC LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&mut self.conn)
                .await
                .map_err(self.error())?;
                if let Some((start, data)) = block {
                    codec::decode_with(start, &data, |sample, text| {
                        last = Some(sample);
                        last_text = text.map(Arc::from);
                    })
                    .map_err(|_| self.damaged(id, start))?;
                }
            }
            self.tags.insert(
                name.into(),
                TagState {
                    id,
                    open,
                    pending: Vec::new(),
                    last,
                    last_text,
                    held: None,
                },
            );
        }
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(self.options.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trimmed = Instant::now();
        loop {
            tokio::select! {
                command = rx.recv() => match command {
                    Some(Command::Record(values)) => {
                        let result = self.accept(values).await;
                        let result = match result {
                            Ok(()) if self.pending >= FLUSH_VALUES => self.flush().await,
                            other => other,
                        };
                        self.note(result);
                    }
                    Some(Command::Flush(ack)) => {
                        let _ = ack.send(self.flush().await);
                    }
                    Some(Command::Trim(ack)) => {
                        let result = match self.flush().await {
                            Ok(()) => self.trim().await,
                            err => err,
                        };
                        trimmed = Instant::now();
                        let _ = ack.send(result);
                    }
                    Some(Command::Options(options)) => {
                        if options.flush_every != self.options.flush_every {
                            tick = tokio::time::interval(options.flush_every);
                        }
                        self.options = options;
                    }
                    Some(Command::Close(ack)) => {
                        let result = self.flush().await;
                        self.note(result);
                        let _ = self.conn.close().await;
                        let _ = ack.send(());
                        return;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let result = self.flush().await;
                    self.note(result);
                    if trimmed.elapsed() >= self.options.trim_every {
                        trimmed = Instant::now();
                        let result = self.trim().await;
                        self.note(result);
                    }
                }
            }
        }
        let result = self.flush().await;
        self.note(result);
        let _ = self.conn.close().await;
    }

    fn note(&self, result: Result<(), HistorianError>) {
        if let Err(err) = result {
            tracing::warn!(path = %self.path.display(), error = %err, "edge historian write failed");
            lock(&self.stats).last_error = Some(err.to_string());
        }
    }

    async fn accept(&mut self, values: Vec<Value>) -> Result<(), HistorianError> {
        let deadband = self.options.deadband;
        let mut accepted = 0u64;
        for (name, sample, text) in values {
            if !self.tags.contains_key(&name) {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tags (name, first_us) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
                )
                .bind(&*name)
                .bind(sample.time_us)
                .fetch_one(&mut self.conn)
                .await
                .map_err(self.error())?;
                lock(&self.firsts).insert(name.to_string(), sample.time_us);
                self.tags.insert(
                    name.clone(),
                    TagState {
                        id,
                        open: Encoder::new(),
                        pending: Vec::new(),
                        last: None,
                        last_text: None,
                        held: None,
                    },
                );
            }
            let Some(state) = self.tags.get_mut(&name) else {
                continue;
            };
            let reference = state.held.as_ref().map(|(s, _)| *s).or(state.last);
            if reference.is_some_and(|r| sample.time_us <= r.time_us) {
                continue;
            }
            if let Some(last) = state.last {
                let same_status = last.status == sample.status && state.last_text == text;
                let unchanged = last.value.to_bits() == sample.value.to_bits()
                    || (last.value.is_finite()
                        && sample.value.is_finite()
                        && (sample.value - last.value).abs() <= deadband
                        && deadband > 0.0);
                if same_status && unchanged {
                    state.held = Some((sample, text));
                    continue;
                }
            }
            if let Some(held) = state.held.take() {
                state.pending.push(held);
                accepted += 1;
            }
            state.last = Some(sample);
            state.last_text = text.clone();
            state.pending.push((sample, text));
            accepted += 1;
        }
        self.pending += accepted as usize;
        lock(&self.stats).recorded += accepted;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), HistorianError> {
        if self.pending == 0 {
            return Ok(());
        }
        let path = self.path.clone();
        let error = db_error(&path);
        let block_values = self.options.block_values.max(1);
        let span = i64::try_from(self.options.block_span.as_micros()).unwrap_or(i64::MAX);
        let mut tx = self.conn.begin().await.map_err(&error)?;
        for state in self.tags.values_mut() {
            if state.pending.is_empty() {
                continue;
            }
            let mut segment_from = 0;
            for (i, (sample, text)) in state.pending.iter().enumerate() {
                let open = &state.open;
                if open.count() > 0
                    && (open.count() >= block_values
                        || sample.time_us.saturating_sub(open.first_us()) >= span)
                {
                    sqlx::query("DELETE FROM blocks WHERE tag_id = ? AND sealed = 0")
                        .bind(state.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(&error)?;
                    insert_block(&mut tx, state.id, open, true)
                        .await
                        .map_err(&error)?;
                    state.open.clear();
                    segment_from = i;
                }
                state.open.push_text(sample, text.as_deref());
            }
            let mut segment = Encoder::new();
            state.pending[segment_from..]
                .iter()
                .for_each(|(s, t)| segment.push_text(s, t.as_deref()));
            insert_block(&mut tx, state.id, &segment, false)
                .await
                .map_err(&error)?;
            state.pending.clear();
        }
        tx.commit().await.map_err(&error)?;
        self.pending = 0;
        self.update_stats().await
    }

    /// Deletes sealed blocks past the retention age, then the oldest ones while the file is
    /// too large, and gives the freed pages back to the file system.
    async fn trim(&mut self) -> Result<(), HistorianError> {
        let path = self.path.clone();
        let error = db_error(&path);
        let retention = self.options.retention;
        if let Some(age) = retention.max_age {
            let cutoff =
                now_us().saturating_sub(i64::try_from(age.as_micros()).unwrap_or(i64::MAX));
            let deleted = sqlx::query(
                "DELETE FROM blocks WHERE sealed = 1 AND start_us < ?1 AND end_us < ?1",
            )
            .bind(cutoff)
            .execute(&mut self.conn)
            .await
            .map_err(&error)?
            .rows_affected();
            if deleted > 0 {
                tracing::debug!(path = %path.display(), deleted, "edge historian trimmed by age");
            }
        }
        if let Some(max) = retention.max_bytes {
            loop {
                let (pages, free, size): (i64, i64, i64) = sqlx::query_as(
                    "SELECT (SELECT page_count FROM pragma_page_count()), \
                     (SELECT freelist_count FROM pragma_freelist_count()), \
                     (SELECT page_size FROM pragma_page_size())",
                )
                .fetch_one(&mut self.conn)
                .await
                .map_err(&error)?;
                if ((pages - free) * size) as u64 <= max {
                    break;
                }
                let deleted = sqlx::query(
                    "DELETE FROM blocks WHERE rowid IN \
                     (SELECT rowid FROM blocks WHERE sealed = 1 ORDER BY start_us LIMIT ?)",
                )
                .bind(TRIM_STEP)
                .execute(&mut self.conn)
                .await
                .map_err(&error)?
                .rows_affected();
                if deleted == 0 {
                    break;
                }
            }
        }
        sqlx::raw_sql("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
            .execute(&mut self.conn)
            .await
            .map_err(&error)?;
        self.update_stats().await
    }

    async fn update_stats(&mut self) -> Result<(), HistorianError> {
        let (since, oldest): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT min(first_us) FROM tags), (SELECT min(start_us) FROM blocks)",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(self.error())?;
        let disk = disk_bytes(&self.path);
        let mut stats = lock(&self.stats);
        stats.tags = self.tags.len() as u64;
        stats.since_us = since;
        stats.oldest_us = oldest;
        stats.disk_bytes = disk;
        Ok(())
    }
}

async fn insert_block(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    id: i64,
    block: &Encoder,
    sealed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO blocks (tag_id, start_us, end_us, count, sealed, data) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(block.first_us())
    .bind(block.last_us())
    .bind(i64::from(block.count()))
    .bind(sealed)
    .bind(block.bytes())
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

/// The file and its write-ahead log.
fn disk_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}
