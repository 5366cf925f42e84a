//! Data source read speed, each beside a plain baseline over the same data in the same run:
//! simulated raw read of 10 M values (goal ≥ 50 M values/s), CSV load and index (goal ≥ 1 M
//! rows/s, against the `csv` crate reading the same file), a raw read of one tag out of
//! 100 tags × 100 k rows (against scanning every row), and a SQLite raw read of 1 M rows
//! (goal ratio ≥ 0.8 against a plain sqlx loop over the same query). Data is generated into a
//! temporary folder at run time.

use std::io::Write;
use std::path::Path;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::json;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uplink_connector::sources::csv::CsvSource;
use uplink_connector::sources::simulated::SimulatedSource;
use uplink_connector::sources::sqlite::SqliteSource;
use uplink_connector::{DataSource, SourceConfig};
use uplink_measure::{Runs, Timing, compare, describe};
use uplink_model::{Boundary, RawRequest, Sample, TimeRange};

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(simulated());
    runtime.block_on(csv_load(dir.path()));
    runtime.block_on(csv_one_tag(dir.path()));
    runtime.block_on(sqlite(dir.path()));
}

fn config(kind: &str, settings: serde_json::Value) -> SourceConfig {
    SourceConfig {
        name: "bench".into(),
        kind: kind.into(),
        description: String::new(),
        settings: settings.as_object().cloned().expect("object"),
    }
}

fn request(tag: &str, start_us: i64, end_us: i64) -> RawRequest {
    RawRequest {
        tag: tag.into(),
        range: TimeRange::new(
            Utc.timestamp_micros(start_us).unwrap(),
            Utc.timestamp_micros(end_us).unwrap(),
        )
        .expect("range"),
        max_count: None,
        boundary: Boundary::Inside,
    }
}

/// Reads a whole raw stream, returning how many values came.
async fn drain(source: &dyn DataSource, request: &RawRequest) -> usize {
    let mut stream = source.raw(request).await.expect("raw read");
    let mut count = 0;
    while let Some(chunk) = stream.next().await {
        count += chunk.expect("chunk").len();
    }
    count
}

/// Times async work on the current runtime, run by run.
async fn time_async<F, Fut, R>(runs: (usize, usize), mut work: F) -> Timing
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = R>,
{
    for _ in 0..runs.0 {
        std::hint::black_box(work().await);
    }
    let mut samples = Vec::new();
    for _ in 0..runs.1 {
        let start = std::time::Instant::now();
        std::hint::black_box(work().await);
        samples.push(start.elapsed());
    }
    Timing::from_samples(samples)
}

async fn simulated() {
    const VALUES: usize = 10_000_000;
    // The embedded default: one sample a second, a one-hour period.
    let source = SimulatedSource::open(&config("simulated", json!({}))).expect("simulated source");
    let req = request("sim.sinusoid.1", 0, (VALUES as i64 - 1) * 1_000_000);
    assert_eq!(drain(&source, &req).await, VALUES);
    let ours = time_async((1, 7), || drain(&source, &req)).await;
    // Baseline: the same sinusoid straight into one vector, no stream, no chunks.
    let baseline = Runs::new(1, 7).time(|| {
        (0..VALUES as i64)
            .map(|i| {
                let t = i * 1_000_000;
                let phase = t.rem_euclid(3_600_000_000) as f64 / 3_600_000_000.0;
                Sample::good(t, 50.0 + 10.0 * (std::f64::consts::TAU * phase).sin())
            })
            .collect::<Vec<_>>()
    });
    report(&compare(
        "simulated raw read, 10M values",
        &ours,
        "baseline plain loop into a Vec",
        &baseline,
    ));
    report(&describe("simulated raw read", &ours, Some(VALUES as u64)));
    goal(
        "simulated raw read",
        ours.per_second(VALUES as u64) >= 50e6,
        "≥ 50 M values/s",
    );
}

/// `tags` × `rows` rows, one a second per tag, interleaved as a historian export would be.
fn write_csv(path: &Path, tags: usize, rows: usize) {
    let file = std::fs::File::create(path).expect("create csv");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "tag,timestamp,value,status").unwrap();
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    for row in 0..rows {
        let time = (base + chrono::TimeDelta::seconds(row as i64))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for tag in 0..tags {
            writeln!(
                out,
                "TAG{tag:03},{time},{:.4},good",
                (row * 7 + tag) as f64 * 0.001
            )
            .unwrap();
        }
    }
    out.flush().unwrap();
}

fn csv_plain_read(path: &Path) -> usize {
    let mut reader = csv::Reader::from_path(path).expect("csv reader");
    let mut record = csv::ByteRecord::new();
    let mut rows = 0;
    while reader.read_byte_record(&mut record).expect("row") {
        rows += 1;
    }
    rows
}

async fn csv_load(dir: &Path) {
    const TAGS: usize = 100;
    const ROWS: usize = 10_000;
    let path = dir.join("load.csv");
    write_csv(&path, TAGS, ROWS);
    let settings = json!({"path": path.to_string_lossy(), "watch": false});
    let ours = time_async((1, 5), || async {
        CsvSource::open(&config("csv", settings.clone()))
            .await
            .expect("csv source")
            .rows()
    })
    .await;
    let baseline = Runs::new(1, 5).time(|| csv_plain_read(&path));
    let rows = (TAGS * ROWS) as u64;
    report(&compare(
        "CSV load + index, 1M rows",
        &ours,
        "baseline csv crate plain read",
        &baseline,
    ));
    report(&describe("CSV load + index", &ours, Some(rows)));
    goal(
        "CSV load + index",
        ours.per_second(rows) >= 1e6,
        "≥ 1 M rows/s",
    );
}

async fn csv_one_tag(dir: &Path) {
    const TAGS: usize = 100;
    const ROWS: usize = 100_000;
    let path = dir.join("wide.csv");
    write_csv(&path, TAGS, ROWS);
    let started = std::time::Instant::now();
    let source = CsvSource::open(&config(
        "csv",
        json!({"path": path.to_string_lossy(), "watch": false}),
    ))
    .await
    .expect("csv source");
    let loaded = Timing::from_samples(vec![started.elapsed()]);
    report(&describe(
        "CSV load + index, 100 tags x 100k rows",
        &loaded,
        Some((TAGS * ROWS) as u64),
    ));
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp_micros();
    let req = request("TAG042", base, base + ROWS as i64 * 1_000_000);
    assert_eq!(drain(&source, &req).await, ROWS);
    let ours = time_async((2, 11), || drain(&source, &req)).await;
    // Baseline: every row in one table, filtered by tag, as a read without the index would.
    let all: Vec<(u16, Sample)> = (0..ROWS)
        .flat_map(|row| {
            (0..TAGS).map(move |tag| {
                (
                    tag as u16,
                    Sample::good(base + row as i64 * 1_000_000, row as f64),
                )
            })
        })
        .collect();
    let baseline = Runs::new(2, 11).time(|| {
        all.iter()
            .filter(|(tag, _)| *tag == 42)
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .len()
    });
    report(&compare(
        "CSV raw read of 1 tag of 100 (100k values)",
        &ours,
        "baseline scan of all 10M rows",
        &baseline,
    ));
}

async fn sqlite(dir: &Path) {
    const ROWS: i64 = 1_000_000;
    let path = dir.join("bench.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("create db");
    for sql in [
        "CREATE TABLE samples (tag TEXT NOT NULL, time INTEGER NOT NULL, value REAL, status INTEGER)",
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999) \
         INSERT INTO samples SELECT 'FIC101', i * 1000, i * 0.5, 192 FROM n",
        "CREATE INDEX samples_tag_time ON samples (tag, time)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("fill db");
    }
    pool.close().await;
    let source = SqliteSource::open(&config(
        "sqlite",
        json!({"path": path.to_string_lossy(), "table": "samples", "statusColumn": "status"}),
    ))
    .await
    .expect("sqlite source");
    let req = request("FIC101", 0, ROWS * 1_000_000);
    assert_eq!(drain(&source, &req).await, ROWS as usize);
    let ours = time_async((1, 5), || drain(&source, &req)).await;

    let plain = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&path).read_only(true))
        .await
        .expect("plain pool");
    let baseline = time_async((1, 5), || async {
        let mut rows = sqlx::query(
            "SELECT time, value, status FROM samples WHERE tag = ?1 AND time >= ?2 AND time <= ?3 ORDER BY time LIMIT ?4",
        )
        .bind("FIC101")
        .bind(0i64)
        .bind(ROWS * 1_000)
        .bind(-1i64)
        .fetch(&plain);
        let mut samples = Vec::new();
        while let Some(row) = rows.next().await {
            let row = row.expect("row");
            let time: i64 = row.get(0);
            let value: f64 = row.get(1);
            let status: i64 = row.get(2);
            samples.push((time, value, status));
        }
        samples.len()
    })
    .await;
    report(&compare(
        "SQLite raw read, 1M rows",
        &ours,
        "baseline plain sqlx loop",
        &baseline,
    ));
    report(&describe("SQLite raw read", &ours, Some(ROWS as u64)));
    let ratio = baseline.median().as_secs_f64() / ours.median().as_secs_f64();
    goal("SQLite raw read", ratio >= 0.8, "ratio ≥ 0.8");
}

fn goal(label: &str, met: bool, goal: &str) {
    report(&format!(
        "{label}: goal {goal}: {}",
        if met { "met" } else { "MISSED" }
    ));
}

#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}
