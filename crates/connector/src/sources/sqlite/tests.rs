use std::path::Path;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::json;
use sqlx::Connection;
use uplink_model::TimeRange;

use super::*;

/// A database with a `samples` table: tag A at 0, 10, 20, 30 s; B once; one text value.
async fn database(dir: &Path) -> PathBuf {
    let path = dir.join("plant.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE samples (tag TEXT, time INTEGER, value REAL, quality INTEGER)")
        .execute(&mut db)
        .await
        .unwrap();
    for (tag, ms, value, quality) in [
        ("A", 0, json!(0.0), 192),
        ("A", 10_000, json!(1), 192),
        ("A", 20_000, json!(2.5), 64),
        ("A", 30_000, json!(3.0), 0),
        ("B", 5_000, json!(7.0), 192),
        ("C", 1_000, json!("broken"), 192),
    ] {
        let query = sqlx::query("INSERT INTO samples VALUES (?1, ?2, ?3, ?4)")
            .bind(tag)
            .bind(ms as i64);
        let query = match value {
            serde_json::Value::String(s) => query.bind(s),
            other if other.is_i64() => query.bind(other.as_i64().unwrap()),
            other => query.bind(other.as_f64().unwrap()),
        };
        query.bind(quality).execute(&mut db).await.unwrap();
    }
    db.close().await.unwrap();
    path
}

fn config(path: &Path, extra: serde_json::Value) -> SourceConfig {
    let mut settings =
        json!({"path": path.to_string_lossy(), "table": "samples", "statusColumn": "quality"});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap());
    SourceConfig {
        name: "db".into(),
        kind: KIND.into(),
        description: String::new(),
        settings: settings.as_object().cloned().unwrap(),
    }
}

fn request(tag: &str, start_ms: i64, end_ms: i64, boundary: Boundary) -> RawRequest {
    RawRequest {
        tag: tag.into(),
        range: TimeRange::new(
            Utc.timestamp_millis_opt(start_ms).unwrap(),
            Utc.timestamp_millis_opt(end_ms).unwrap(),
        )
        .unwrap(),
        max_count: None,
        boundary,
    }
}

async fn read(source: &SqliteSource, request: &RawRequest) -> Vec<Sample> {
    let mut stream = source.raw(request).await.unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(chunk.unwrap());
    }
    all
}

#[tokio::test]
async fn raw_reads_decode_times_values_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteSource::open(&config(&database(dir.path()).await, json!({})))
        .await
        .unwrap();
    let all = read(&source, &request("A", 0, 30_000, Boundary::Inside)).await;
    assert_eq!(
        all.iter().map(|s| s.time_us).collect::<Vec<_>>(),
        [0, 10_000_000, 20_000_000, 30_000_000]
    );
    assert_eq!(all[1].value, 1.0, "an INTEGER value reads as a number");
    assert_eq!(
        all.iter().map(|s| s.status).collect::<Vec<_>>(),
        [Status::Good, Status::Good, Status::Uncertain, Status::Bad]
    );

    let inside = read(&source, &request("A", 5_000, 25_000, Boundary::Inside)).await;
    assert_eq!(inside.len(), 2);
    let outside = read(&source, &request("A", 5_000, 25_000, Boundary::Outside)).await;
    assert_eq!(
        outside
            .iter()
            .map(|s| s.time_us / 1_000)
            .collect::<Vec<_>>(),
        [0, 10_000, 20_000, 30_000]
    );
    let limited = read(
        &source,
        &RawRequest {
            max_count: Some(1),
            ..request("A", 0, 30_000, Boundary::Outside)
        },
    )
    .await;
    assert_eq!(limited.len(), 1);

    let now = source.snapshot(&["A".into(), "B".into()]).await.unwrap();
    assert_eq!(
        now.iter().map(|v| v.value).collect::<Vec<_>>(),
        [Some(3.0), Some(7.0)]
    );
    assert_eq!(now[0].status, Status::Bad, "A's last value has quality 0");
    let page = source.search(&TagSearch::new("?")).await.unwrap();
    assert_eq!(page.tags.len(), 3);
}

#[tokio::test]
async fn values_of_the_wrong_type_are_bad_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = SqliteSource::open(&config(&database(dir.path()).await, json!({})))
        .await
        .unwrap();
    let values = read(&source, &request("C", 0, 10_000, Boundary::Inside)).await;
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].status, Status::Bad);
    let health = source.health();
    assert_eq!(health.issue_count, 1);
    assert!(
        health.issues[0].message.contains("is text, not a number"),
        "{health:?}"
    );
}

#[tokio::test]
async fn missing_tables_and_columns_are_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path()).await;
    let err = SqliteSource::open(&config(&path, json!({"table": "readings"})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "table");
    assert_eq!(
        err.field_errors()[0].message,
        "the database has no table 'readings' (it has: samples)"
    );

    let err = SqliteSource::open(&config(
        &path,
        json!({"valueColumn": "reading", "timeColumn": "ts"}),
    ))
    .await
    .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["timeColumn", "valueColumn"]);
    assert!(
        err.field_errors()[1]
            .message
            .contains("has no column 'reading' (it has: tag, time, value, quality)")
    );

    let err = SqliteSource::open(&config(&path, json!({"statusColumn": "state"})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "statusColumn");

    let err = SqliteSource::open(&config(&dir.path().join("absent.db"), json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "path");

    let not_a_db = dir.path().join("text.db");
    std::fs::write(
        &not_a_db,
        "just text, not a database, long enough to have a header",
    )
    .unwrap();
    let err = SqliteSource::open(&config(&not_a_db, json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "path", "{err}");
}

#[tokio::test]
async fn names_and_values_cannot_inject_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = database(dir.path()).await;
    let err = SqliteSource::open(&config(
        &path,
        json!({"table": "samples; DROP TABLE samples"}),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "table");
    let source = SqliteSource::open(&config(&path, json!({}))).await.unwrap();
    let Err(err) = source
        .raw(&request("A' OR '1'='1", 0, 30_000, Boundary::Inside))
        .await
    else {
        panic!("a crafted tag matched rows")
    };
    assert_eq!(err.code(), "unknown_tag");
    // The connection cannot write at all.
    let write = sqlx::query("DELETE FROM samples")
        .execute(&source.shared.pool)
        .await;
    assert!(write.is_err(), "the connection wrote");
    assert_eq!(
        read(&source, &request("A", 0, 30_000, Boundary::Inside))
            .await
            .len(),
        4
    );
}

#[tokio::test]
async fn other_time_encodings_compare_in_their_own_units() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE v (name TEXT, at TEXT, reading REAL)")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO v VALUES ('T', '1970-01-01T00:00:01Z', 1.0), ('T', '1970-01-01T00:00:02Z', 2.0)")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let settings = json!({"table": "v", "tagColumn": "name", "timeColumn": "at", "valueColumn": "reading",
                          "statusColumn": "", "timeEncoding": "rfc3339"});
    let source = SqliteSource::open(&config(&path, settings)).await.unwrap();
    let values = read(&source, &request("T", 1_500, 5_000, Boundary::Inside)).await;
    assert_eq!(values, [Sample::good(2_000_000, 2.0)]);
    let values = read(&source, &request("T", 1_000, 1_999, Boundary::Inside)).await;
    assert_eq!(values, [Sample::good(1_000_000, 1.0)]);
    let values = read(
        &source,
        &RawRequest {
            max_count: Some(1),
            ..request("T", 0, 5_000, Boundary::Inside)
        },
    )
    .await;
    assert_eq!(values.len(), 1);
}

#[tokio::test]
async fn dropping_the_stream_stops_the_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE samples (tag TEXT, time INTEGER, value REAL)")
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 49999) INSERT INTO samples SELECT 'A', i, i FROM n")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let source = SqliteSource::open(&config(&path, json!({"statusColumn": null})))
        .await
        .unwrap();
    let mut stream = source
        .raw(&request("A", 0, 50_000, Boundary::Inside))
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.len(), CHUNK);
    drop(stream);
    // The reading task ends and hands its connection back (it would wait on the full channel
    // for ever otherwise).
    let pool = &source.shared.pool;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pool.num_idle() != pool.size() as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped read still holds its connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The pool is free again: a new read completes in full.
    assert_eq!(
        read(&source, &request("A", 0, 50_000, Boundary::Inside))
            .await
            .len(),
        50_000
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// A raw read returns exactly the rows of that tag within the range, in time order,
        /// whatever the rows and the range.
        #[test]
        fn raw_reads_return_exactly_the_rows_in_range(
            rows in proptest::collection::vec((0u8..3, 0i64..10_000, -100i32..100), 0..60),
            start in 0i64..10_000,
            length in 0i64..10_000,
            max_count in proptest::option::of(1u64..20),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.db");
            let got_and_expected = runtime.block_on(async {
                let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
                let mut db = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                sqlx::query("CREATE TABLE samples (tag TEXT, time INTEGER, value REAL)")
                    .execute(&mut db).await.unwrap();
                sqlx::query("BEGIN").execute(&mut db).await.unwrap();
                for (tag, ms, value) in &rows {
                    sqlx::query("INSERT INTO samples VALUES (?1, ?2, ?3)")
                        .bind(format!("T{tag}")).bind(*ms).bind(f64::from(*value))
                        .execute(&mut db).await.unwrap();
                }
                sqlx::query("COMMIT").execute(&mut db).await.unwrap();
                db.close().await.unwrap();
                let source = SqliteSource::open(&config(&path, json!({"statusColumn": null}))).await.unwrap();
                let mut expected: Vec<i64> = rows
                    .iter()
                    .filter(|(tag, ms, _)| *tag == 0 && *ms >= start && *ms <= start + length)
                    .map(|(_, ms, _)| *ms * 1_000)
                    .collect();
                expected.sort_unstable();
                if let Some(max) = max_count {
                    expected.truncate(max as usize);
                }
                if !rows.iter().any(|(tag, _, _)| *tag == 0) {
                    return (expected.clone(), expected);
                }
                let req = RawRequest { max_count, ..request("T0", start, start + length, Boundary::Inside) };
                let got: Vec<i64> = read(&source, &req).await.iter().map(|s| s.time_us).collect();
                (got, expected)
            });
            prop_assert_eq!(got_and_expected.0, got_and_expected.1);
        }
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named_in_words_not_by_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plant.csv");
    std::fs::write(
        &path,
        "tag,timestamp,value\nFIC-1,2026-12-06T08:00:00Z,1.5\n".repeat(200),
    )
    .unwrap();
    let err = SqliteSource::open(&config(&path, json!({})))
        .await
        .unwrap_err();
    let error = &err.field_errors()[0];
    assert_eq!(error.field, "path");
    assert!(
        error
            .message
            .contains("the file is not an SQLite database; choose the database file itself"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("(code:"), "{}", error.message);
}
