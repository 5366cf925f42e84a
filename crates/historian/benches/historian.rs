//! Edge historian speed and size: 1 000 000 slowly changing values (10 tags × 100 000, one a
//! second) recorded through `Historian::record` (deadband filter, block encoding, batched
//! commits), beside a baseline of bare SQLite inserts of the same rows (one row per value, in
//! transactions of 10 000, same WAL settings) in the same process; then a raw read of 1 000 000
//! values of one tag, beside a baseline SELECT of the same rows. Goals: ≥ 200 000 values/s
//! written, ≤ 0.25 s for the 1 M raw read. Prints medians, rates, ratios and bytes per value.
//!
//! `cargo bench -p uplink-historian --bench historian`

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use uplink_historian::{Historian, HistorianOptions};
use uplink_measure::{Timing, compare, describe, si};
use uplink_model::time_expr::from_micros;
use uplink_model::{Boundary, RawRequest, Sample, TimeRange};

const TAGS: usize = 10;
const PER_TAG: i64 = 100_000;
const READ: i64 = 1_000_000;
const RUNS: usize = 5;
const SECOND: i64 = 1_000_000;
const START: i64 = 1_700_000_000 * SECOND;

fn value(tag: usize, i: i64) -> f64 {
    let phase = i as f64 / 3_600.0 + tag as f64 * 0.1;
    ((50.0 + 10.0 * (std::f64::consts::TAU * phase).sin()) * 1_000.0).round() / 1_000.0
        + i as f64 * 1e-9
}

fn rows() -> Vec<(usize, Sample)> {
    let mut rows = Vec::with_capacity(TAGS * PER_TAG as usize);
    for i in 0..PER_TAG {
        for tag in 0..TAGS {
            rows.push((tag, Sample::good(START + i * SECOND, value(tag, i))));
        }
    }
    rows
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn historian_write(rows: &[(usize, Sample)], dir: &std::path::Path) -> (Duration, u64) {
    let path = dir.join("bench.historian");
    let historian = Historian::open(&path, HistorianOptions::default())
        .await
        .expect("open");
    let names: Vec<Arc<str>> = (0..TAGS)
        .map(|t| Arc::from(format!("plant.TI{t:03}")))
        .collect();
    let started = Instant::now();
    for batch in rows.chunks(10_000) {
        let batch = batch.iter().map(|(t, s)| (names[*t].clone(), *s)).collect();
        historian.record(batch).await.expect("record");
    }
    historian.flush().await.expect("flush");
    let elapsed = started.elapsed();
    historian.close().await;
    (elapsed, std::fs::metadata(&path).expect("file").len())
}

fn options(path: &std::path::Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
}

async fn plain_write(rows: &[(usize, Sample)], dir: &std::path::Path) -> (Duration, u64) {
    let path = dir.join("plain.sqlite");
    let mut db = sqlx::SqliteConnection::connect_with(&options(&path))
        .await
        .expect("open");
    sqlx::raw_sql(
        "CREATE TABLE v (tag_id INTEGER NOT NULL, time_us INTEGER NOT NULL, value REAL, \
         status INTEGER NOT NULL, PRIMARY KEY (tag_id, time_us)) WITHOUT ROWID",
    )
    .execute(&mut db)
    .await
    .expect("schema");
    let started = Instant::now();
    for batch in rows.chunks(10_000) {
        let mut tx = db.begin().await.expect("begin");
        for (tag, sample) in batch {
            sqlx::query("INSERT INTO v VALUES (?, ?, ?, ?)")
                .bind(*tag as i64)
                .bind(sample.time_us)
                .bind(sample.value)
                .bind(i64::from(sample.status.code()))
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
    }
    let elapsed = started.elapsed();
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut db)
        .await
        .expect("checkpoint");
    db.close().await.expect("close");
    (elapsed, std::fs::metadata(&path).expect("file").len())
}

async fn bench() {
    let rows = rows();
    let values = rows.len() as u64;
    let (mut ours, mut plain, mut our_bytes, mut plain_bytes) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("temp dir");
        let (t, bytes) = historian_write(&rows, dir.path()).await;
        ours.push(t);
        our_bytes = bytes;
        let (t, bytes) = plain_write(&rows, dir.path()).await;
        plain.push(t);
        plain_bytes = bytes;
    }
    let (ours, plain) = (Timing::from_samples(ours), Timing::from_samples(plain));
    println!("write {values} values ({TAGS} tags, 1 value/s, slowly changing)");
    println!("  {}", describe("historian", &ours, Some(values)));
    println!(
        "  {}",
        describe("bare SQLite inserts", &plain, Some(values))
    );
    println!(
        "  {}",
        compare("historian", &ours, "bare SQLite inserts", &plain)
    );
    println!(
        "  on disk: historian {our_bytes} bytes = {:.2} bytes/value | bare SQLite {plain_bytes} bytes = {:.2} bytes/value",
        our_bytes as f64 / values as f64,
        plain_bytes as f64 / values as f64
    );
    println!(
        "  goal ≥ 200 000 values/s: {} ({} values/s)",
        if ours.per_second(values) >= 200_000.0 {
            "met"
        } else {
            "NOT met"
        },
        si(ours.per_second(values))
    );

    // Raw read of 1 M values of one tag.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("read.historian");
    let historian = Historian::open(&path, HistorianOptions::default())
        .await
        .expect("open");
    let plain_path = dir.path().join("read.sqlite");
    let mut db = sqlx::SqliteConnection::connect_with(&options(&plain_path))
        .await
        .expect("open");
    sqlx::raw_sql(
        "CREATE TABLE v (tag_id INTEGER NOT NULL, time_us INTEGER NOT NULL, value REAL, \
         status INTEGER NOT NULL, PRIMARY KEY (tag_id, time_us)) WITHOUT ROWID",
    )
    .execute(&mut db)
    .await
    .expect("schema");
    let name: Arc<str> = Arc::from("plant.FI100");
    for from in (0..READ).step_by(50_000) {
        let batch: Vec<(Arc<str>, Sample)> = (from..from + 50_000)
            .map(|i| (name.clone(), Sample::good(START + i * SECOND, value(0, i))))
            .collect();
        let mut tx = db.begin().await.expect("begin");
        for (_, s) in &batch {
            sqlx::query("INSERT INTO v VALUES (0, ?, ?, 192)")
                .bind(s.time_us)
                .bind(s.value)
                .execute(&mut *tx)
                .await
                .expect("insert");
        }
        tx.commit().await.expect("commit");
        historian.record(batch).await.expect("record");
    }
    historian.flush().await.expect("flush");
    let request = RawRequest {
        tag: name.to_string(),
        range: TimeRange::new(from_micros(START), from_micros(START + READ * SECOND))
            .expect("range"),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..RUNS + 1 {
        let started = Instant::now();
        let mut stream = historian.raw(&request).await.expect("raw");
        let mut count = 0;
        while let Some(chunk) = stream.next().await {
            count += chunk.expect("chunk").len();
        }
        ours.push(started.elapsed());
        assert_eq!(count as i64, READ);
        let started = Instant::now();
        let mut rows = sqlx::query_as::<_, (i64, f64, i64)>(
            "SELECT time_us, value, status FROM v WHERE tag_id = 0 AND time_us BETWEEN ? AND ? ORDER BY time_us",
        )
        .bind(START)
        .bind(START + READ * SECOND)
        .fetch(&mut db);
        let mut count = 0;
        while let Some(row) = rows.next().await {
            let (t, v, s) = row.expect("row");
            std::hint::black_box(Sample {
                time_us: t,
                value: v,
                status: uplink_model::Status::from_code(s as u8),
                source_code: 0,
            });
            count += 1;
        }
        drop(rows);
        plain.push(started.elapsed());
        assert_eq!(count, READ);
    }
    // The first run of each warms the page cache.
    ours.remove(0);
    plain.remove(0);
    let (ours, plain) = (Timing::from_samples(ours), Timing::from_samples(plain));
    println!("raw read of {READ} values of one tag");
    println!("  {}", describe("historian", &ours, Some(READ as u64)));
    println!(
        "  {}",
        compare("historian", &ours, "bare SQLite SELECT", &plain)
    );
    println!(
        "  goal ≤ 0.25 s: {}",
        if ours.median() <= Duration::from_millis(250) {
            "met"
        } else {
            "NOT met"
        }
    );
    historian.close().await;
}
