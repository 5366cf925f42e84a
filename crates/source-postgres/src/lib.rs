//! The `postgres` kind: process values kept in a PostgreSQL table, either *long* (one row per
//! value: tag, time, value, optional quality) or *wide* (one row per time, one column per tag),
//! with an optional metadata table (name, description, units).
//!
//! Every table and column named in the form is checked against the database's catalog when the
//! source opens, and SQL is built from the catalog's own names, quoted: a user's text never
//! becomes SQL. A raw read is one query read only as fast as the reader takes chunks (the
//! connection's flow control holds the server back), so memory stays bounded whatever the range;
//! plot and processed's Min, Max, Count, Range, Delta, PercentGood and PercentBad are computed by
//! the server, equal to the model's, over intervals cut by TimescaleDB's `time_bucket` when the
//! function is there (detected when the source opens), else `date_bin`, for intervals of one
//! width, and `width_bucket` over the intervals' starts for uneven ones ([`Bucketing`]); the other
//! functions and values-at-times are the model's computation over raw reads.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
// Every SQL text below is built from the catalog's own names, quoted by `quote`; values are
// bound parameters. `AssertSqlSafe` marks that audit.
use sqlx::{AssertSqlSafe, Row};
use uplink_model::{
    Boundary, Capabilities, Computed, ComputedBy, DataSourceDescriptor, DataType, Function,
    PlotRequest, ProcessedRequest, RawRequest, Sample, Status, Tag, TagPage, TagSearch, TagValue,
    aggregate, time_expr::from_micros,
};
use uplink_source::form::{FieldError, FieldSchema, FieldType, FormSchema};
use uplink_source::{
    CHUNK, DataSource, Health, ProcessedSeriesList, RawStream, SourceConfig, SourceError,
};

/// The kind's identifier.
pub const KIND: &str = "postgres";

/// The most tags listed from a long table.
const MAX_TAGS: i64 = 100_000;

/// How the server cuts a plot's or processed query's range into intervals, detected when the
/// source opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucketing {
    /// TimescaleDB's `time_bucket(interval, timestamptz)` (the extension is installed), for
    /// intervals of one width; `width_bucket` for uneven ones.
    TimeBucket,
    /// PostgreSQL's own `date_bin` (14 and later), for intervals of one width; `width_bucket`
    /// for uneven ones.
    DateBin,
    /// `width_bucket` over the intervals' starts.
    WidthBucket,
}

/// The origin TimescaleDB's two-argument `time_bucket` aligns buckets to: Monday
/// 2000-01-03T00:00:00Z, in µs since the epoch.
const TIME_BUCKET_ORIGIN_US: i64 = 946_857_600 * 1_000_000;

/// The first start and the width of intervals that are all one width from the first start
/// (the last may be cut short), or `None`.
fn even_stride(starts: &[i64]) -> Option<(i64, i64)> {
    let (&first, &second) = (starts.first()?, starts.get(1)?);
    let stride = second - first;
    (stride > 0
        && starts.iter().enumerate().all(|(i, &s)| {
            Some(s)
                == (i as i64)
                    .checked_mul(stride)
                    .and_then(|o| o.checked_add(first))
        }))
    .then_some((first, stride))
}

/// The form of a PostgreSQL source.
pub fn schema() -> FormSchema {
    let text = |name: &str, label: &str, help: &str| {
        FieldSchema::new(name, label, FieldType::Text, false, help)
    };
    FormSchema {
        kind: KIND.into(),
        title: "PostgreSQL historian".into(),
        description: "Process values in a PostgreSQL (or TimescaleDB) table: one row per value, or one column per tag.".into(),
        fields: vec![
            text("url", "Connection URL", "postgres://user:password@host:5432/database?sslmode=require; when given, the fields below up to TLS are not used.").secret(),
            text("host", "Host", "The server's host name or IP address.").default_value("127.0.0.1"),
            FieldSchema::new("port", "Port", FieldType::Integer, true, "The server's port.").default_value(5432).range(1.0, 65_535.0),
            text("database", "Database", "The database to read.").default_value("postgres"),
            text("user", "User", "A user that can read the tables (read-only is enough).").default_value("postgres"),
            text("password", "Password", "The user's password.").secret(),
            FieldSchema::new("tls", "TLS", FieldType::Select, true, "disable, prefer, require (encrypted, not verified), verify-ca or verify-full (the server's certificate and name checked).")
                .options(&["disable", "prefer", "require", "verify-ca", "verify-full"])
                .default_value("prefer"),
            FieldSchema::new("caFile", "CA certificate", FieldType::Path, false, "A PEM file with the CA that signed the server's certificate, for verify-ca and verify-full."),
            FieldSchema::new("layout", "Table layout", FieldType::Select, true, "long: one row per value (tag, time, value); wide: one row per time and one column per tag.")
                .options(&["long", "wide"])
                .default_value("long"),
            FieldSchema::new("table", "Table", FieldType::Text, true, "The table (or view) of values, as schema.table or table (schema public)."),
            text("timeColumn", "Time column", "A timestamp or timestamptz column.").default_value("time"),
            text("tagColumn", "Tag column", "Long tables: the text column naming the tag.").default_value("tag"),
            text("valueColumn", "Value column", "Long tables: the numeric column of values.").default_value("value"),
            text("qualityColumn", "Quality column", "Long tables, optional: an integer OPC quality (192 good, 64 uncertain, 0 bad)."),
            text("metadataTable", "Metadata table", "Optional: a table with one row per tag (name, description, units)."),
            text("metadataNameColumn", "Metadata name column", "The tag name column of the metadata table.").default_value("name"),
            text("metadataDescriptionColumn", "Metadata description column", "Optional: its description column.").default_value("description"),
            text("metadataUnitsColumn", "Metadata units column", "Optional: its units column.").default_value("units"),
        ],
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    #[serde(default)]
    url: String,
    host: String,
    port: u16,
    database: String,
    user: String,
    #[serde(default)]
    password: String,
    tls: String,
    #[serde(default)]
    ca_file: String,
    layout: String,
    table: String,
    time_column: String,
    tag_column: String,
    value_column: String,
    #[serde(default)]
    quality_column: String,
    #[serde(default)]
    metadata_table: String,
    metadata_name_column: String,
    metadata_description_column: String,
    metadata_units_column: String,
}

/// A PostgreSQL data source.
#[derive(Debug, Clone)]
pub struct PostgresSource {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    description: String,
    pool: PgPool,
    plan: Plan,
    tags: Vec<Tag>,
    bucketing: Bucketing,
}

/// The SQL of this source, built from catalog names only.
#[derive(Debug, Clone)]
struct Plan {
    /// The quoted table.
    table: String,
    time: String,
    /// Long tables: the quoted tag column; wide: `None`.
    tag: Option<String>,
    /// Long tables: the quoted value column.
    value: Option<String>,
    quality: Option<String>,
    /// Wide tables: each tag's quoted column, by tag name.
    columns: HashMap<String, String>,
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn nonempty(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

const NUMERIC: &[&str] = &[
    "smallint",
    "integer",
    "bigint",
    "real",
    "double precision",
    "numeric",
];
const TEXT: &[&str] = &["text", "character varying", "character", "name"];
const TIME: &[&str] = &["timestamp with time zone", "timestamp without time zone"];
const INTEGER: &[&str] = &["smallint", "integer", "bigint"];

/// A table's columns as the catalog names them, with their types.
struct Columns {
    quoted_table: String,
    columns: Vec<(String, String)>,
}

impl Columns {
    /// The catalog's name of `wanted`, when it exists with one of `types`.
    fn find(
        &self,
        field: &str,
        wanted: &str,
        types: &[&str],
        errors: &mut Vec<FieldError>,
    ) -> Option<String> {
        match self.columns.iter().find(|(name, _)| name == wanted) {
            Some((name, kind)) if types.contains(&kind.as_str()) => Some(quote(name)),
            Some((_, kind)) => {
                errors.push(FieldError::new(
                    field,
                    format!("column '{wanted}' is {kind}, not {}", types.join(" or ")),
                ));
                None
            }
            None => {
                errors.push(FieldError::new(
                    field,
                    format!("the table has no column '{wanted}'"),
                ));
                None
            }
        }
    }
}

impl PostgresSource {
    /// Connects, checks the table and columns against the catalog and lists the tags.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] naming each field whose table or column does not exist
    /// (or has the wrong type); [`SourceError::Database`] when the server cannot be reached or
    /// refuses the credentials (the message never holds the password).
    pub async fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        let database = |message: String| SourceError::Database {
            source_name: config.name.clone(),
            message,
        };
        let options = connect_options(&settings)?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|err| database(format!("cannot connect: {}", describe(&err))))?;
        let mut errors = Vec::new();
        let Some(values) = columns(&pool, &settings.table, "table", &mut errors)
            .await
            .map_err(|e| database(describe(&e)))?
        else {
            return Err(SourceError::InvalidSettings(errors));
        };
        let time = values.find("timeColumn", settings.time_column.trim(), TIME, &mut errors);
        let mut plan = Plan {
            table: values.quoted_table.clone(),
            time: time.clone().unwrap_or_default(),
            tag: None,
            value: None,
            quality: None,
            columns: HashMap::new(),
        };
        if settings.layout == "long" {
            plan.tag = values.find("tagColumn", settings.tag_column.trim(), TEXT, &mut errors);
            plan.value = values.find(
                "valueColumn",
                settings.value_column.trim(),
                NUMERIC,
                &mut errors,
            );
            if let Some(quality) = nonempty(&settings.quality_column) {
                plan.quality = values.find("qualityColumn", quality, INTEGER, &mut errors);
            }
        } else {
            for (name, kind) in &values.columns {
                if NUMERIC.contains(&kind.as_str()) && Some(quote(name)) != time {
                    plan.columns.insert(name.clone(), quote(name));
                }
            }
            if plan.columns.is_empty() && time.is_some() {
                errors.push(FieldError::new(
                    "table",
                    "a wide table needs numeric columns besides the time",
                ));
            }
        }
        let mut metadata: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
        if let Some(table) = nonempty(&settings.metadata_table)
            && let Some(meta) = columns(&pool, table, "metadataTable", &mut errors)
                .await
                .map_err(|e| database(describe(&e)))?
        {
            {
                let name = meta.find(
                    "metadataNameColumn",
                    settings.metadata_name_column.trim(),
                    TEXT,
                    &mut errors,
                );
                let optional = |field: &str, wanted: &str, errors: &mut Vec<FieldError>| {
                    nonempty(wanted).and_then(|w| meta.find(field, w, TEXT, errors))
                };
                let description = optional(
                    "metadataDescriptionColumn",
                    &settings.metadata_description_column,
                    &mut errors,
                );
                let units = optional(
                    "metadataUnitsColumn",
                    &settings.metadata_units_column,
                    &mut errors,
                );
                if let Some(name) = name
                    && errors.is_empty()
                {
                    let sql = format!(
                        "SELECT {name}::text, {}, {} FROM {}",
                        description
                            .as_deref()
                            .map_or("NULL::text".into(), |d| format!("{d}::text")),
                        units
                            .as_deref()
                            .map_or("NULL::text".into(), |u| format!("{u}::text")),
                        meta.quoted_table
                    );
                    let rows = sqlx::query(AssertSqlSafe(sql))
                        .fetch_all(&pool)
                        .await
                        .map_err(|e| database(describe(&e)))?;
                    for row in rows {
                        let name: Option<String> = row.get(0);
                        if let Some(name) = name {
                            metadata.insert(name, (row.get(1), row.get(2)));
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(SourceError::InvalidSettings(errors));
        }
        let mut names: Vec<String> = match &plan.tag {
            Some(tag) => sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT DISTINCT {tag}::text FROM {} WHERE {tag} IS NOT NULL ORDER BY 1 LIMIT {MAX_TAGS}",
                plan.table
            )))
            .fetch_all(&pool)
            .await
            .map_err(|e| database(describe(&e)))?,
            None => plan.columns.keys().cloned().collect(),
        };
        names.sort();
        let tags = names
            .into_iter()
            .map(|name| {
                let mut tag = Tag::new(name.clone(), DataType::Float);
                if let Some((description, units)) = metadata.get(&name) {
                    if let Some(description) = description {
                        tag = tag.with_description(description.clone());
                    }
                    if let Some(units) = units {
                        tag = tag.with_units(units.clone());
                    }
                }
                tag
            })
            .collect();
        // TimescaleDB's function when the extension is there, else PostgreSQL's own.
        let (time_bucket, date_bin): (bool, bool) = sqlx::query_as(
            "SELECT to_regprocedure('time_bucket(interval,timestamp with time zone)') IS NOT NULL, \
             to_regprocedure('date_bin(interval,timestamp with time zone,timestamp with time zone)') IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| database(describe(&e)))?;
        // The buckets are shifted onto time_bucket's origin: checked, not assumed (a 7-day
        // bucket of 2000-01-05 starts on the origin's Monday, 2000-01-03).
        let time_bucket = time_bucket
            && sqlx::query_scalar::<_, bool>(
                "SELECT time_bucket(interval '7 days', '2000-01-05T12:00:00Z'::timestamptz) \
                 = '2000-01-03T00:00:00Z'::timestamptz",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(false);
        let bucketing = if time_bucket {
            Bucketing::TimeBucket
        } else if date_bin {
            Bucketing::DateBin
        } else {
            Bucketing::WidthBucket
        };
        tracing::debug!(source = %config.name, ?bucketing, "postgres source opened");
        Ok(Self {
            shared: Arc::new(Shared {
                name: config.name.clone(),
                description: config.description.clone(),
                pool,
                plan,
                tags,
                bucketing,
            }),
        })
    }

    /// How plot and processed queries cut their intervals on this server.
    pub fn bucketing(&self) -> Bucketing {
        self.shared.bucketing
    }

    /// The SQL of each row's interval number (from 1; `t` is the row's time in µs), and the
    /// `int8[]` bound as `$3` for it: the detected bucket function when the intervals are all
    /// one width, else `width_bucket` over the intervals' starts (exact for any cut).
    fn bucket(&self, starts: Vec<i64>) -> (&'static str, Vec<i64>) {
        match (self.shared.bucketing, even_stride(&starts)) {
            (Bucketing::TimeBucket, Some((first, stride))) => (
                // Shifted so that the first start falls on time_bucket's origin.
                "((extract(epoch from time_bucket(($3::int8[])[1] * interval '1 microsecond', \
                   'epoch'::timestamptz + (t - ($3::int8[])[2]) * interval '1 microsecond')) \
                   * 1000000)::int8 - ($3::int8[])[3]) / ($3::int8[])[1] + 1",
                vec![stride, first - TIME_BUCKET_ORIGIN_US, TIME_BUCKET_ORIGIN_US],
            ),
            (Bucketing::DateBin, Some((first, stride))) => (
                "((extract(epoch from date_bin(($3::int8[])[1] * interval '1 microsecond', \
                   'epoch'::timestamptz + t * interval '1 microsecond', \
                   'epoch'::timestamptz + ($3::int8[])[2] * interval '1 microsecond')) \
                   * 1000000)::int8 - ($3::int8[])[2]) / ($3::int8[])[1] + 1",
                vec![stride, first],
            ),
            _ => ("width_bucket(t, $3::int8[])", starts),
        }
    }

    fn database(&self, err: &sqlx::Error) -> SourceError {
        SourceError::Database {
            source_name: self.shared.name.clone(),
            message: describe(err),
        }
    }

    fn check_tag(&self, tag: &str) -> Result<(), SourceError> {
        if self.shared.tags.iter().any(|t| t.name == tag) {
            Ok(())
        } else {
            Err(SourceError::UnknownTag {
                source_name: self.shared.name.clone(),
                tag: tag.to_owned(),
            })
        }
    }

    /// The value expression, the row filter (the tag bound as `$tag_param` on long tables) and
    /// the tag to bind, and the quality expression (clamped to a quality byte).
    fn parts(&self, tag: &str, tag_param: usize) -> (String, String, Option<String>, String) {
        let plan = &self.shared.plan;
        let (value, filter, bind) = match &plan.tag {
            Some(tag_column) => (
                plan.value.clone().unwrap_or_default(),
                format!("{tag_column} = ${tag_param}"),
                Some(tag.to_owned()),
            ),
            None => {
                let column = plan.columns.get(tag).cloned().unwrap_or_default();
                (column.clone(), format!("{column} IS NOT NULL"), None)
            }
        };
        let quality = plan.quality.as_deref().map_or("192".into(), |q| {
            format!("least(greatest(coalesce({q}, 0), 0), 255)")
        });
        (value, filter, bind, quality)
    }

    /// `SELECT µs, value, quality FROM table WHERE <tag> AND time <op> <bound>`, bound as $1/$2.
    fn select(
        &self,
        tag: &str,
        condition: &str,
        order: &str,
        limit: i64,
    ) -> (String, Option<String>) {
        let plan = &self.shared.plan;
        let (value, filter, bind, quality) = self.parts(tag, 2);
        let time = &plan.time;
        (
            format!(
                "SELECT (extract(epoch from {time}) * 1000000)::int8, {value}::float8, {quality}::int4 \
                 FROM {} WHERE {filter} AND {time} {condition} ('epoch'::timestamptz + $1::int8 * interval '1 microsecond') \
                 ORDER BY {time} {order} LIMIT {limit}",
                plan.table
            ),
            bind,
        )
    }

    /// Per interval (numbered from 1 by `width_bucket` over the intervals' starts): the rows,
    /// good and bad ones, the usable ones, their smallest and largest values and the first
    /// and last usable values by time — all a processed Min, Max, Count, Range, Delta,
    /// PercentGood or PercentBad needs, computed exactly as the model does.
    async fn summaries(
        &self,
        tag: &str,
        intervals: &uplink_model::aggregate::Intervals,
    ) -> Result<HashMap<i32, Summary>, SourceError> {
        let starts: Vec<i64> = intervals.iter().map(|(start, _)| start).collect();
        let (Some(&first), Some(end)) = (starts.first(), intervals.iter().last().map(|(_, e)| e))
        else {
            return Ok(HashMap::new());
        };
        let plan = &self.shared.plan;
        let (value, filter, bind, quality) = self.parts(tag, 4);
        let time = &plan.time;
        let (bucket, cuts) = self.bucket(starts);
        let sql = format!(
            "SELECT k, count(*)::int8, count(*) FILTER (WHERE good)::int8, \
               count(*) FILTER (WHERE NOT usable)::int8, count(*) FILTER (WHERE usable)::int8, \
               min(v) FILTER (WHERE usable), max(v) FILTER (WHERE usable), \
               (array_agg(v ORDER BY t) FILTER (WHERE usable))[1], \
               (array_agg(v ORDER BY t DESC) FILTER (WHERE usable))[1] \
             FROM ( \
               SELECT t, v, ({bucket})::int4 AS k, \
                 coalesce(finite AND (q >> 6) IN (1, 3), false) AS usable, \
                 coalesce(finite AND (q >> 6) = 3, false) AS good \
               FROM ( \
                 SELECT t, v, q, (v <> 'NaN'::float8 AND v <> 'Infinity'::float8 \
                   AND v <> '-Infinity'::float8) AS finite \
                 FROM ( \
                   SELECT (extract(epoch from {time}) * 1000000)::int8 AS t, {value}::float8 AS v, {quality}::int4 AS q \
                   FROM {} WHERE {filter} \
                     AND {time} >= ('epoch'::timestamptz + $1::int8 * interval '1 microsecond') \
                     AND {time} < ('epoch'::timestamptz + $2::int8 * interval '1 microsecond') \
                 ) r \
               ) s \
             ) b GROUP BY k",
            plan.table
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(first)
            .bind(end)
            .bind(cuts);
        if let Some(tag) = bind {
            query = query.bind(tag);
        }
        let rows = query
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| self.database(&e))?;
        Ok(rows
            .iter()
            .map(|row| {
                (
                    row.get::<i32, _>(0),
                    Summary {
                        rows: row.get(1),
                        good: row.get(2),
                        bad: row.get(3),
                        usable: row.get(4),
                        min: row.get(5),
                        max: row.get(6),
                        first: row.get(7),
                        last: row.get(8),
                    },
                )
            })
            .collect())
    }

    /// The plot computed by the server: per interval (`width_bucket` over the intervals'
    /// starts, so the same cuts as the model's) the first and last rows and the earliest
    /// smallest and largest usable values — what [`uplink_model::aggregate::plot`] picks, in
    /// time order, without moving every row to the connector.
    async fn plot_in_database(&self, request: &PlotRequest) -> Result<Vec<Sample>, SourceError> {
        let intervals = request.intervals();
        let starts: Vec<i64> = intervals.iter().map(|(start, _)| start).collect();
        let Some(end) = intervals.iter().last().map(|(_, end)| end) else {
            return Ok(Vec::new());
        };
        let plan = &self.shared.plan;
        let (value, filter, bind, quality) = self.parts(&request.tag, 4);
        let time = &plan.time;
        let (bucket, cuts) = self.bucket(starts);
        let sql = format!(
            "SELECT t, v, q FROM ( \
               SELECT t, v, q, usable, \
                 row_number() OVER (PARTITION BY k ORDER BY t) AS rf, \
                 row_number() OVER (PARTITION BY k ORDER BY t DESC) AS rl, \
                 row_number() OVER (PARTITION BY k, usable ORDER BY v, t) AS rmin, \
                 row_number() OVER (PARTITION BY k, usable ORDER BY v DESC, t) AS rmax \
               FROM ( \
                 SELECT t, v, q, {bucket} AS k, \
                   coalesce(v <> 'NaN'::float8 AND v <> 'Infinity'::float8 AND v <> '-Infinity'::float8 \
                     AND (q >> 6) IN (1, 3), false) AS usable \
                 FROM ( \
                   SELECT (extract(epoch from {time}) * 1000000)::int8 AS t, {value}::float8 AS v, {quality}::int4 AS q \
                   FROM {} WHERE {filter} \
                     AND {time} >= ('epoch'::timestamptz + $1::int8 * interval '1 microsecond') \
                     AND {time} < ('epoch'::timestamptz + $2::int8 * interval '1 microsecond') \
                 ) s \
               ) b \
             ) x WHERE rf = 1 OR rl = 1 OR (usable AND (rmin = 1 OR rmax = 1)) ORDER BY t",
            plan.table
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(request.range.start_us())
            .bind(end)
            .bind(cuts);
        if let Some(tag) = bind {
            query = query.bind(tag);
        }
        let rows = query
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| self.database(&e))?;
        Ok(rows.iter().map(sample).collect())
    }

    async fn fetch(
        &self,
        sql: &str,
        bind: &Option<String>,
        at: i64,
    ) -> Result<Vec<Sample>, SourceError> {
        let mut query = sqlx::query(AssertSqlSafe(sql.to_owned())).bind(at);
        if let Some(tag) = bind {
            query = query.bind(tag);
        }
        let rows = query
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| self.database(&e))?;
        Ok(rows.iter().map(sample).collect())
    }
}

/// What the server counted in one interval.
#[derive(Debug, Default)]
struct Summary {
    rows: i64,
    good: i64,
    bad: i64,
    usable: i64,
    min: Option<f64>,
    max: Option<f64>,
    first: Option<f64>,
    last: Option<f64>,
}

impl Summary {
    /// The processed value as [`aggregate::processed`] computes it from the same rows.
    fn sample(&self, start: i64, function: Function) -> Sample {
        let share = |matching: i64| {
            if self.rows == 0 {
                Sample::bad(start)
            } else {
                Sample::good(start, 100.0 * matching as f64 / self.rows as f64)
            }
        };
        match function {
            Function::Count => return Sample::good(start, self.rows as f64),
            Function::PercentGood => return share(self.good),
            Function::PercentBad => return share(self.bad),
            _ => {}
        }
        let (Some(min), Some(max), Some(first), Some(last)) =
            (self.min, self.max, self.first, self.last)
        else {
            return Sample::bad(start);
        };
        if self.usable == 0 {
            return Sample::bad(start);
        }
        let value = match function {
            Function::Min => min,
            Function::Max => max,
            Function::Range => max - min,
            _ => last - first,
        };
        Sample {
            time_us: start,
            value,
            status: if self.good == self.rows {
                Status::Good
            } else {
                Status::Uncertain
            },
            source_code: 0,
        }
    }
}

/// A row of (µs, value, quality) as a sample: no value, or a value that is not a finite
/// number, is a bad sample.
fn sample(row: &sqlx::postgres::PgRow) -> Sample {
    let time: i64 = row.get(0);
    let value: Option<f64> = row.get(1);
    let quality: i32 = row.get(2);
    match value {
        Some(v) if v.is_finite() => Sample {
            time_us: time,
            value: v,
            status: Status::from_code(quality.clamp(0, 255) as u8),
            source_code: 0,
        },
        _ => Sample::bad(time),
    }
}

fn connect_options(settings: &Settings) -> Result<PgConnectOptions, SourceError> {
    let mut options = match nonempty(&settings.url) {
        Some(url) => url.parse::<PgConnectOptions>().map_err(|_| {
            SourceError::InvalidSettings(vec![FieldError::new("url", "is not a postgres:// URL")])
        })?,
        None => {
            let mode = match settings.tls.as_str() {
                "disable" => PgSslMode::Disable,
                "require" => PgSslMode::Require,
                "verify-ca" => PgSslMode::VerifyCa,
                "verify-full" => PgSslMode::VerifyFull,
                _ => PgSslMode::Prefer,
            };
            let mut options = PgConnectOptions::new_without_pgpass()
                .host(settings.host.trim())
                .port(settings.port)
                .database(settings.database.trim())
                .username(settings.user.trim())
                .ssl_mode(mode);
            if !settings.password.is_empty() {
                options = options.password(&settings.password);
            }
            if let Some(ca) = nonempty(&settings.ca_file) {
                options = options.ssl_root_cert(ca);
            }
            options
        }
    };
    options = options
        .options([("TimeZone", "UTC")])
        .application_name("uplink-connector");
    Ok(options)
}

/// What went wrong, in words that never hold the connection's password.
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => format!("network: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::PoolTimedOut => "the server did not answer in time".into(),
        other => other.to_string(),
    }
}

/// The columns of `table` (`schema.table` or `table` in `public`) from the catalog, or a field
/// error when there is no such table.
async fn columns(
    pool: &PgPool,
    table: &str,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Option<Columns>, sqlx::Error> {
    let table = table.trim();
    let (schema, name) = table.split_once('.').unwrap_or(("public", table));
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
         ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(pool)
    .await?;
    let Some((schema, name, _, _)) = rows.first().cloned() else {
        errors.push(FieldError::new(
            field,
            format!("the database has no table '{table}' (schema '{schema}')"),
        ));
        return Ok(None);
    };
    Ok(Some(Columns {
        quoted_table: format!("{}.{}", quote(&schema), quote(&name)),
        columns: rows.into_iter().map(|(_, _, c, t)| (c, t)).collect(),
    }))
}

#[async_trait]
impl DataSource for PostgresSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.shared.name.clone(),
            kind: KIND.into(),
            description: self.shared.description.clone(),
            capabilities: Capabilities::all_from_raw(),
        }
    }

    fn health(&self) -> Health {
        Health::ok()
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        Ok(search.page(&self.shared.tags)?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let mut values = Vec::with_capacity(tags.len());
        for tag in tags {
            self.check_tag(tag)?;
            let (sql, bind) = self.select(tag, "<=", "DESC", 1);
            let latest = self.fetch(&sql, &bind, i64::MAX / 2).await?;
            values.push(match latest.first() {
                Some(sample) => TagValue::from(*sample),
                None => TagValue::event(from_micros(0), Status::Bad),
            });
        }
        Ok(values)
    }

    async fn processed(
        &self,
        request: &ProcessedRequest,
    ) -> Result<Computed<ProcessedSeriesList>, SourceError> {
        self.check_tag(&request.tag)?;
        let intervals = request.intervals();
        let in_database = |f: &Function| {
            matches!(
                f,
                Function::Min
                    | Function::Max
                    | Function::Count
                    | Function::Range
                    | Function::Delta
                    | Function::PercentGood
                    | Function::PercentBad
            )
        };
        let summaries = if request.functions.iter().any(in_database) {
            Some(self.summaries(&request.tag, &intervals).await?)
        } else {
            None
        };
        let raw = if request.functions.iter().any(|f| !in_database(f)) {
            Some(
                self.collect_raw(&request.tag, request.range, Boundary::Outside)
                    .await?,
            )
        } else {
            None
        };
        // Every function summed up by the database: its answer; any computed from rows: Uplink's.
        let by = if raw.is_none() {
            ComputedBy::Source
        } else {
            ComputedBy::Uplink
        };
        let series = request
            .functions
            .iter()
            .map(|&function| {
                let values = match (&summaries, &raw) {
                    (Some(summaries), _) if in_database(&function) => intervals
                        .iter()
                        .enumerate()
                        .map(|(i, (start, _))| {
                            summaries.get(&(i as i32 + 1)).map_or_else(
                                || Summary::default().sample(start, function),
                                |summary| summary.sample(start, function),
                            )
                        })
                        .collect(),
                    (_, Some(raw)) => aggregate::processed(raw, &intervals, function),
                    _ => Vec::new(),
                };
                (function, values)
            })
            .collect();
        Ok(Computed { values: series, by })
    }

    async fn plot(&self, request: &PlotRequest) -> Result<Computed<Vec<Sample>>, SourceError> {
        self.check_tag(&request.tag)?;
        Ok(Computed::by_source(self.plot_in_database(request).await?))
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        self.check_tag(&request.tag)?;
        let (lo, hi) = (request.range.start_us(), request.range.end_us());
        let outside = request.boundary == Boundary::Outside;
        let mut first = Vec::new();
        if outside {
            let (sql, bind) = self.select(&request.tag, "<=", "DESC", 1);
            first = self.fetch(&sql, &bind, lo).await?;
            first.retain(|s| s.time_us < lo);
        }
        // One query, read as the consumer reads: a task owns the connection and hands chunks
        // through a channel of two; when it is full the task stops reading rows, TCP holds the
        // server back, and memory stays at a few chunks. Dropping the stream ends the task.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let source = self.clone();
        let tag = request.tag.clone();
        let limit = request.max_count.unwrap_or(u64::MAX);
        tokio::spawn(async move {
            let result = source
                .stream_range(&tag, lo, hi, outside, limit, first, &tx)
                .await;
            if let Err(err) = result {
                let _ = tx.send(Err(err)).await;
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        })
        .boxed())
    }
}

impl PostgresSource {
    /// Reads `lo..=hi` of `tag` with one query on a connection of its own, sending chunks of
    /// at most [`CHUNK`] samples (after `first`, the value before the range when asked);
    /// with outside boundaries, the first value after the range follows when none sits on
    /// its end.
    #[allow(clippy::too_many_arguments)]
    async fn stream_range(
        &self,
        tag: &str,
        lo: i64,
        hi: i64,
        outside: bool,
        limit: u64,
        first: Vec<Sample>,
        tx: &tokio::sync::mpsc::Sender<Result<Vec<Sample>, SourceError>>,
    ) -> Result<(), SourceError> {
        let plan = &self.shared.plan;
        let (value, filter, bind, quality) = self.parts(tag, 3);
        let time = &plan.time;
        let sql = format!(
            "SELECT (extract(epoch from {time}) * 1000000)::int8, {value}::float8, {quality}::int4 \
             FROM {} WHERE {filter} \
               AND {time} >= ('epoch'::timestamptz + $1::int8 * interval '1 microsecond') \
               AND {time} <= ('epoch'::timestamptz + $2::int8 * interval '1 microsecond') \
             ORDER BY {time}",
            plan.table
        );
        let mut remaining = limit;
        let mut chunk = first;
        chunk.truncate(usize::try_from(remaining).unwrap_or(usize::MAX));
        remaining -= chunk.len() as u64;
        let mut at_end = false;
        let mut conn = self
            .shared
            .pool
            .acquire()
            .await
            .map_err(|e| self.database(&e))?;
        {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(lo).bind(hi);
            if let Some(tag) = &bind {
                query = query.bind(tag.clone());
            }
            let mut rows = query.fetch(&mut *conn);
            while remaining > 0 {
                let Some(row) = rows.next().await else {
                    break;
                };
                let sample = sample(&row.map_err(|e| self.database(&e))?);
                at_end |= sample.time_us == hi;
                chunk.push(sample);
                remaining -= 1;
                if chunk.len() == CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                    if tx.send(Ok(full)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        drop(conn);
        if outside && !at_end && remaining > 0 {
            let (sql, bind) = self.select(tag, ">", "ASC", 1);
            chunk.extend(self.fetch(&sql, &bind, hi).await?);
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
        Ok(())
    }
}
