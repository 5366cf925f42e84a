//! PostgreSQL raw reads: 1 000 000 rows of one tag from a long table (indexed on tag, time) read
//! through `PostgresSource::raw` (one query read by a task as the reader takes chunks of 8 192, decoded to samples), beside a
//! baseline plain sqlx loop streaming the same rows with one `SELECT` on one connection, in the
//! same process against the same server (started by the bench, as the tests do). Goal (issue
//! 20): ratio ≥ 0.9.
//!
//! `cargo bench -p uplink-source-postgres --bench raw`

#![allow(clippy::print_stdout)]

#[allow(dead_code)]
#[path = "../tests/server/mod.rs"]
mod server;

use std::time::Instant;

use futures::StreamExt;
use serde_json::json;
use sqlx::Connection;
use uplink_measure::{Timing, compare, describe};
use uplink_model::time_expr::from_micros;
use uplink_model::{Boundary, RawRequest, Sample, Status, TimeRange};
use uplink_source::DataSource;
use uplink_source_postgres::PostgresSource;

const ROWS: i64 = 1_000_000;
const RUNS: usize = 5;
const SECOND: i64 = 1_000_000;
const START: i64 = 1_700_000_000 * SECOND;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let server = server::Server::start();
    let mut db = server.admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE vals (tag text NOT NULL, time timestamptz NOT NULL, value double precision, quality integer);
         INSERT INTO vals SELECT 'tag1', to_timestamp({}) + i * interval '1 second', i * 0.5, 192
           FROM generate_series(0, {}) i;
         CREATE INDEX ON vals (tag, time);
         ANALYZE;",
        START / SECOND,
        ROWS - 1
    )))
    .execute(&mut db)
    .await
    .expect("table");
    let source =
        PostgresSource::open(&server.config(json!({"table": "vals", "qualityColumn": "quality"})))
            .await
            .expect("source");
    let request = RawRequest {
        tag: "tag1".into(),
        range: TimeRange::new(from_micros(START), from_micros(START + ROWS * SECOND))
            .expect("range"),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let mut plain = sqlx::PgConnection::connect(&server.url())
        .await
        .expect("plain");
    sqlx::raw_sql("SET TIME ZONE 'UTC'")
        .execute(&mut plain)
        .await
        .expect("tz");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..=RUNS {
        let started = Instant::now();
        let mut stream = source.raw(&request).await.expect("raw");
        let mut count = 0;
        while let Some(chunk) = stream.next().await {
            count += chunk.expect("chunk").len();
        }
        let elapsed = started.elapsed();
        assert_eq!(count as i64, ROWS);

        let started = Instant::now();
        let mut rows = sqlx::query_as::<_, (i64, Option<f64>, i32)>(
            "SELECT (extract(epoch from time) * 1000000)::int8, value::float8, quality::int4 FROM vals \
             WHERE tag = $1 AND time >= ('epoch'::timestamptz + $2::int8 * interval '1 microsecond') \
             AND time <= ('epoch'::timestamptz + $3::int8 * interval '1 microsecond') ORDER BY time",
        )
        .bind("tag1")
        .bind(START)
        .bind(START + ROWS * SECOND)
        .fetch(&mut plain);
        let mut count = 0;
        while let Some(row) = rows.next().await {
            let (t, v, q) = row.expect("row");
            std::hint::black_box(Sample {
                time_us: t,
                value: v.unwrap_or(f64::NAN),
                status: Status::from_code(q as u8),
                source_code: 0,
            });
            count += 1;
        }
        drop(rows);
        let plain_elapsed = started.elapsed();
        assert_eq!(count, ROWS);
        if run > 0 {
            ours.push(elapsed);
            theirs.push(plain_elapsed);
        }
    }
    let (ours, theirs) = (Timing::from_samples(ours), Timing::from_samples(theirs));
    println!("raw read of {ROWS} rows of one tag");
    println!(
        "  {}",
        describe("PostgresSource::raw", &ours, Some(ROWS as u64))
    );
    println!(
        "  {}",
        describe("plain sqlx loop", &theirs, Some(ROWS as u64))
    );
    println!(
        "  {}",
        compare("PostgresSource::raw", &ours, "plain sqlx loop", &theirs)
    );
}
