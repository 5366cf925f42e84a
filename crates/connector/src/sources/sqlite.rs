//! The SQLite source: a table of `tag, time, value[, status]` rows in a database file the user
//! names. The connection is read-only; every value reaches SQL as a bound parameter, and the
//! only names in the SQL text are the table and column names as the database's own schema spells
//! them, after checking that they exist.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat};
use futures::StreamExt;
use serde::Deserialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr, TypeInfo, ValueRef};
use uplink_model::time_expr::from_micros;
use uplink_model::{
    Boundary, Capabilities, DataSourceDescriptor, DataType, RawRequest, Sample, Status, Tag,
    TagPage, TagSearch, TagValue,
};

use crate::form::{FieldError, FieldSchema, FieldType, FormSchema};
use crate::source::{CHUNK, DataSource, Health, HealthIssue, RawStream};
use crate::{SourceConfig, SourceError};

/// The kind's identifier.
pub const KIND: &str = "sqlite";

/// How the time column encodes instants.
const TIME_ENCODINGS: [&str; 4] = ["unixSeconds", "unixMillis", "unixMicros", "rfc3339"];

/// The form of a SQLite source.
pub fn schema() -> FormSchema {
    FormSchema {
        kind: KIND.into(),
        title: "SQLite database".into(),
        description: "A table in a SQLite database file with one row per value, read without ever writing.".into(),
        fields: vec![
            FieldSchema::new("path", "Database file", FieldType::Path, true, "The SQLite database file."),
            FieldSchema::new("table", "Table", FieldType::Text, true, "The table (or view) holding the values."),
            FieldSchema::new("tagColumn", "Tag column", FieldType::Text, true, "The column holding the tag name.").default_value("tag"),
            FieldSchema::new("timeColumn", "Time column", FieldType::Text, true, "The column holding the sample time.").default_value("time"),
            FieldSchema::new("valueColumn", "Value column", FieldType::Text, true, "The column holding the numeric value.").default_value("value"),
            FieldSchema::new("statusColumn", "Status column", FieldType::Text, false, "The column holding the status (a quality code or good, uncertain, bad); leave empty when there is none."),
            FieldSchema::new("timeEncoding", "Time encoding", FieldType::Select, true, "How the time column stores instants; rfc3339 text must be UTC written the same way throughout so that it sorts as text.")
                .options(&TIME_ENCODINGS)
                .default_value("unixMillis"),
        ],
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    path: PathBuf,
    table: String,
    tag_column: String,
    time_column: String,
    value_column: String,
    #[serde(default)]
    status_column: Option<String>,
    time_encoding: TimeEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
enum TimeEncoding {
    UnixSeconds,
    UnixMillis,
    UnixMicros,
    Rfc3339,
}

/// A bound time parameter in the column's own encoding.
enum TimeParam {
    Number(i64),
    Real(f64),
    Text(String),
}

impl TimeEncoding {
    /// The smallest stored value at or after `micros` (`round_up`) or at or before it.
    fn param(self, micros: i64, round_up: bool) -> TimeParam {
        let scaled = |per: i64| {
            if round_up {
                micros.div_euclid(per) + i64::from(micros.rem_euclid(per) != 0)
            } else {
                micros.div_euclid(per)
            }
        };
        match self {
            TimeEncoding::UnixSeconds => TimeParam::Real(micros as f64 / 1e6),
            TimeEncoding::UnixMillis => TimeParam::Number(scaled(1_000)),
            TimeEncoding::UnixMicros => TimeParam::Number(micros),
            // Text sorts as text, and `…:01Z` sorts after `…:01.5Z`: bound by the whole second
            // as a prefix (before all of it) or with DEL appended (after all of it), and let the
            // reader drop the rows of that second that are out of range.
            TimeEncoding::Rfc3339 => {
                let second = from_micros(micros).format("%Y-%m-%dT%H:%M:%S").to_string();
                TimeParam::Text(if round_up { second } else { second + "\u{7f}" })
            }
        }
    }
}

/// The SQL of one source, built once from checked names.
#[derive(Debug)]
struct Statements {
    raw: SqlStr,
    before: SqlStr,
    after: SqlStr,
    latest: SqlStr,
    tags: SqlStr,
    exists: SqlStr,
}

/// SQL text whose only names came from the database's own schema, quoted.
fn checked_sql(text: String) -> SqlStr {
    AssertSqlSafe(text).into_sql_str()
}

/// A SQLite data source.
#[derive(Debug, Clone)]
pub struct SqliteSource {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    description: String,
    pool: SqlitePool,
    encoding: TimeEncoding,
    has_status: bool,
    sql: Statements,
    health: Mutex<Health>,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

impl SqliteSource {
    /// Opens the database read-only and checks the table and columns against its schema.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] naming the field (`path`, `table`, a column) that does
    /// not fit the database.
    pub async fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        let field_error = |field: &str, message: String| {
            SourceError::InvalidSettings(vec![FieldError::new(field, message)])
        };
        if !settings.path.is_file() {
            return Err(field_error(
                "path",
                format!("{} is not a readable file", settings.path.display()),
            ));
        }
        let options = SqliteConnectOptions::new()
            .filename(&settings.path)
            .read_only(true)
            .create_if_missing(false);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|err| {
                field_error(
                    "path",
                    format!("cannot open the database: {}", sqlite_words(&err)),
                )
            })?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .map_err(|err| {
            field_error(
                "path",
                format!("is not a readable SQLite database: {}", sqlite_words(&err)),
            )
        })?;
        let Some(table) = tables
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&settings.table))
            .cloned()
        else {
            return Err(field_error(
                "table",
                format!(
                    "the database has no table '{}' (it has: {})",
                    settings.table,
                    if tables.is_empty() {
                        "none".to_owned()
                    } else {
                        tables.join(", ")
                    }
                ),
            ));
        };
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
            .bind(&table)
            .fetch_all(&pool)
            .await
            .map_err(|err| {
                field_error(
                    "table",
                    format!("cannot read the columns: {}", sqlite_words(&err)),
                )
            })?;
        let mut errors = Vec::new();
        let mut find = |field: &str, wanted: &str| {
            let found = columns
                .iter()
                .find(|c| c.eq_ignore_ascii_case(wanted))
                .cloned();
            if found.is_none() {
                errors.push(FieldError::new(
                    field,
                    format!(
                        "table '{table}' has no column '{wanted}' (it has: {})",
                        columns.join(", ")
                    ),
                ));
            }
            found
        };
        let tag = find("tagColumn", &settings.tag_column);
        let time = find("timeColumn", &settings.time_column);
        let value = find("valueColumn", &settings.value_column);
        let status = match settings.status_column.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => find("statusColumn", name),
            _ => None,
        };
        let (Some(tag), Some(time), Some(value)) = (tag, time, value) else {
            return Err(SourceError::InvalidSettings(errors));
        };
        if !errors.is_empty() {
            return Err(SourceError::InvalidSettings(errors));
        }
        let (t, tag, time) = (quote(&table), quote(&tag), quote(&time));
        let columns = match &status {
            Some(status) => format!("{time}, {}, {}", quote(&value), quote(status)),
            None => format!("{time}, {}", quote(&value)),
        };
        let sql = Statements {
            raw: checked_sql(format!(
                "SELECT {columns} FROM {t} WHERE {tag} = ?1 AND {time} >= ?2 AND {time} <= ?3 ORDER BY {time} LIMIT ?4"
            )),
            before: checked_sql(format!(
                "SELECT {columns} FROM {t} WHERE {tag} = ?1 AND {time} < ?2 ORDER BY {time} DESC LIMIT 1"
            )),
            after: checked_sql(format!(
                "SELECT {columns} FROM {t} WHERE {tag} = ?1 AND {time} > ?2 ORDER BY {time} LIMIT 1"
            )),
            latest: checked_sql(format!(
                "SELECT {columns} FROM {t} WHERE {tag} = ?1 ORDER BY {time} DESC LIMIT 1"
            )),
            tags: checked_sql(format!("SELECT DISTINCT {tag} FROM {t} ORDER BY {tag}")),
            exists: checked_sql(format!("SELECT 1 FROM {t} WHERE {tag} = ?1 LIMIT 1")),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                name: config.name.clone(),
                description: config.description.clone(),
                pool,
                encoding: settings.time_encoding,
                has_status: status.is_some(),
                sql,
                health: Mutex::new(Health::ok()),
            }),
        })
    }

    fn database_error(&self, err: sqlx::Error) -> SourceError {
        SourceError::Database {
            source_name: self.shared.name.clone(),
            message: sqlite_words(&err),
        }
    }

    async fn require_tag(&self, tag: &str) -> Result<(), SourceError> {
        let found: Option<i64> = sqlx::query_scalar(self.shared.sql.exists.clone())
            .bind(tag)
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        found.map(|_| ()).ok_or_else(|| SourceError::UnknownTag {
            source_name: self.shared.name.clone(),
            tag: tag.to_owned(),
        })
    }
}

fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    param: TimeParam,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match param {
        TimeParam::Number(n) => query.bind(n),
        TimeParam::Real(r) => query.bind(r),
        TimeParam::Text(s) => query.bind(s),
    }
}

impl Shared {
    /// One row as a sample; a value of the wrong type becomes a bad sample and a health issue.
    fn decode(&self, row: &SqliteRow) -> Sample {
        let time_us = match self.time(row) {
            Some(t) => t,
            None => {
                self.report("a row's time is empty or not in the configured encoding".into());
                return Sample::bad(0);
            }
        };
        let value = match number(row, 1) {
            Ok(value) => value,
            Err(kind) => {
                self.report(format!(
                    "the value at {} is {kind}, not a number",
                    from_micros(time_us).to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ));
                return Sample::bad(time_us);
            }
        };
        let status = if self.has_status {
            match row.try_get_raw(2) {
                Ok(raw) if raw.is_null() => Status::Good,
                Ok(raw) if raw.type_info().name() == "TEXT" => row
                    .try_get::<String, _>(2)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(Status::Bad),
                Ok(_) => row
                    .try_get_unchecked::<i64, _>(2)
                    .map(|code| Status::from_code(code.clamp(0, 255) as u8))
                    .unwrap_or(Status::Bad),
                Err(_) => Status::Bad,
            }
        } else {
            Status::Good
        };
        Sample {
            time_us,
            value,
            status,
            source_code: 0,
        }
    }

    fn time(&self, row: &SqliteRow) -> Option<i64> {
        let factor = match self.encoding {
            TimeEncoding::Rfc3339 => {
                let text: String = row.try_get(0).ok()?;
                return DateTime::parse_from_rfc3339(&text)
                    .ok()
                    .map(|t| t.timestamp_micros());
            }
            TimeEncoding::UnixSeconds => 1e6,
            TimeEncoding::UnixMillis => 1e3,
            TimeEncoding::UnixMicros => 1.0,
        };
        let raw = row.try_get_raw(0).ok()?;
        if raw.type_info().name() == "INTEGER" {
            let n: i64 = row.try_get_unchecked(0).ok()?;
            return n.checked_mul(factor as i64);
        }
        number(row, 0).ok().map(|n| (n * factor).round() as i64)
    }

    fn report(&self, message: String) {
        self.health
            .lock()
            .expect("health lock")
            .report(HealthIssue {
                message,
                file: None,
                line: None,
            });
    }
}

/// A numeric column as f64; the error names what was there instead.
#[inline]
fn number(row: &SqliteRow, index: usize) -> Result<f64, &'static str> {
    let raw = row.try_get_raw(index).map_err(|_| "missing")?;
    match raw.type_info().name() {
        "INTEGER" | "REAL" => row
            .try_get_unchecked::<f64, _>(index)
            .map_err(|_| "unreadable"),
        "NULL" => Err("empty"),
        "TEXT" => Err("text"),
        _ => Err("binary data"),
    }
}

#[async_trait]
impl DataSource for SqliteSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.shared.name.clone(),
            kind: KIND.into(),
            description: self.shared.description.clone(),
            capabilities: Capabilities::all_from_raw(),
        }
    }

    fn health(&self) -> Health {
        self.shared.health.lock().expect("health lock").clone()
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        search.validate()?;
        let names: Vec<String> = sqlx::query_scalar(self.shared.sql.tags.clone())
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| self.database_error(e))?;
        let tags: Vec<Tag> = names
            .into_iter()
            .map(|name| Tag::new(name, DataType::Float))
            .collect();
        Ok(search.page(&tags)?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let mut values = Vec::with_capacity(tags.len());
        for tag in tags {
            let row = sqlx::query(self.shared.sql.latest.clone())
                .bind(tag)
                .fetch_optional(&self.shared.pool)
                .await
                .map_err(|e| self.database_error(e))?
                .ok_or_else(|| SourceError::UnknownTag {
                    source_name: self.shared.name.clone(),
                    tag: tag.clone(),
                })?;
            values.push(TagValue::from(self.shared.decode(&row)));
        }
        Ok(values)
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        self.require_tag(&request.tag).await?;
        let shared = self.shared.clone();
        let request = request.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            if let Err(err) = read_raw(&shared, &request, &sender).await {
                let _ = sender
                    .send(Err(SourceError::Database {
                        source_name: shared.name.clone(),
                        message: err.to_string(),
                    }))
                    .await;
            }
        });
        Ok(
            futures::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            })
            .boxed(),
        )
    }
}

type ChunkSender = tokio::sync::mpsc::Sender<Result<Vec<Sample>, SourceError>>;

/// Streams the rows to `sender` in chunks; returns early (ending the query) when the reader
/// has gone.
async fn read_raw(
    shared: &Shared,
    request: &RawRequest,
    sender: &ChunkSender,
) -> Result<(), sqlx::Error> {
    let (start, end) = (request.range.start_us(), request.range.end_us());
    let encoding = shared.encoding;
    let wanted = request
        .max_count
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    // Text times are bounded to whole seconds, so rows are filtered and counted here.
    let exact = encoding != TimeEncoding::Rfc3339;
    let limit = if exact { wanted } else { -1 };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut sent = 0i64;
    if request.boundary == Boundary::Outside {
        let query = sqlx::query(shared.sql.before.clone()).bind(&request.tag);
        if let Some(row) = bind(query, encoding.param(start, true))
            .fetch_optional(&shared.pool)
            .await?
        {
            chunk.push(shared.decode(&row));
        }
    }
    let query = sqlx::query(shared.sql.raw.clone()).bind(&request.tag);
    let query = bind(query, encoding.param(start, true));
    let query = bind(query, encoding.param(end, false)).bind(limit);
    let mut rows = query.fetch(&shared.pool);
    let mut last_time = None;
    while let Some(row) = rows.next().await {
        let sample = shared.decode(&row?);
        if !exact {
            if sample.time_us < start || sample.time_us > end {
                continue;
            }
            if wanted >= 0 && sent >= wanted {
                break;
            }
        }
        last_time = Some(sample.time_us);
        chunk.push(sample);
        sent += 1;
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if sender.send(Ok(full)).await.is_err() {
                return Ok(());
            }
        }
    }
    drop(rows);
    let limited = wanted >= 0 && sent >= wanted;
    if request.boundary == Boundary::Outside && !limited && last_time != Some(end) {
        let query = sqlx::query(shared.sql.after.clone()).bind(&request.tag);
        if let Some(row) = bind(query, encoding.param(end, false))
            .fetch_optional(&shared.pool)
            .await?
        {
            chunk.push(shared.decode(&row));
        }
    }
    if !chunk.is_empty() {
        let _ = sender.send(Ok(chunk)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// An SQLite error in words a person can act on: the engine's own sentence with its bare
/// "(code: 26)" replaced by what that code means and what to do.
fn sqlite_words(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let meaning = match db.code().as_deref() {
                Some("26") => Some(
                    "the file is not an SQLite database; choose the database file itself, not a CSV export or a backup",
                ),
                Some("14") => Some(
                    "SQLite cannot open the file; check that it exists and that Uplink may read it",
                ),
                Some("5" | "6") => Some(
                    "the database is locked by another program; try again once it has finished writing",
                ),
                Some("11") => Some("the database file is damaged; restore it from a backup"),
                _ => None,
            };
            match meaning {
                Some(meaning) => format!("{meaning} ({})", db.message()),
                None => db.message().to_owned(),
            }
        }
        sqlx::Error::Io(io) => uplink_source::io_words(io),
        other => {
            let text = other.to_string();
            match text.find("(code: ") {
                Some(at) => text[..at].trim_end().to_owned(),
                None => text,
            }
        }
    }
}
