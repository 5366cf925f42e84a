use std::fs;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::json;
use uplink_model::{Boundary, RawRequest, TimeRange};

use super::*;

fn config(path: &Path, extra: serde_json::Value) -> SourceConfig {
    let mut settings = json!({"path": path.to_string_lossy()});
    settings
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap());
    SourceConfig {
        name: "files".into(),
        kind: KIND.into(),
        description: String::new(),
        settings: settings.as_object().cloned().unwrap(),
    }
}

fn range(start_s: i64, end_s: i64) -> TimeRange {
    TimeRange::new(
        Utc.timestamp_opt(start_s, 0).unwrap(),
        Utc.timestamp_opt(end_s, 0).unwrap(),
    )
    .unwrap()
}

async fn read(source: &CsvSource, tag: &str, range: TimeRange, boundary: Boundary) -> Vec<Sample> {
    let request = RawRequest {
        tag: tag.into(),
        range,
        max_count: None,
        boundary,
    };
    let mut stream = source.raw(&request).await.unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        all.extend(chunk.unwrap());
    }
    all
}

const GOOD: &str = "tag,timestamp,value,status
B,1970-01-01T00:00:20Z,2.5,good
A,1970-01-01T00:00:10Z,1,192
A,1970-01-01T00:00:00Z,0,
A,1970-01-01T00:00:30Z,3,uncertain
";

#[tokio::test]
async fn rows_are_indexed_by_tag_and_sorted_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.csv");
    fs::write(&file, GOOD).unwrap();
    let source = CsvSource::open(&config(&file, json!({"watch": false})))
        .await
        .unwrap();
    assert_eq!(source.rows(), 4);
    assert_eq!(source.health(), Health::ok());
    let a = read(&source, "A", range(0, 100), Boundary::Inside).await;
    assert_eq!(
        a.iter().map(|s| s.value).collect::<Vec<_>>(),
        [0.0, 1.0, 3.0]
    );
    assert_eq!(a[2].status, Status::Uncertain);
    let around = read(&source, "A", range(5, 15), Boundary::Outside).await;
    assert_eq!(around.len(), 3);
    let page = source.search(&TagSearch::new("*")).await.unwrap();
    assert_eq!(
        page.tags
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    let now = source.snapshot(&["A".into()]).await.unwrap();
    assert_eq!(now[0].value, Some(3.0));
    let Err(err) = source
        .raw(&RawRequest {
            tag: "C".into(),
            range: range(0, 1),
            max_count: None,
            boundary: Boundary::Inside,
        })
        .await
    else {
        panic!("unknown tag read")
    };
    assert_eq!(err.code(), "unknown_tag");
}

#[tokio::test]
async fn malformed_rows_are_skipped_and_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.csv");
    fs::write(
        &file,
        "tag,timestamp,value,status
A,1970-01-01T00:00:00Z,1,good
A,yesterday,2,good
A,1970-01-01T00:00:02Z,lots,good
A,1970-01-01T00:00:03Z,4,superb
A,1970-01-01T00:00:04Z
,1970-01-01T00:00:05Z,6,good
A,1970-01-01T00:00:06Z,7,good
",
    )
    .unwrap();
    let source = CsvSource::open(&config(&file, json!({"watch": false})))
        .await
        .unwrap();
    assert_eq!(source.rows(), 2);
    let health = source.health();
    assert_eq!(health.state, HealthState::Degraded);
    assert_eq!(health.issue_count, 5);
    let lines: Vec<u64> = health.issues.iter().map(|i| i.line.unwrap()).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    let shown: Vec<String> = health.issues.iter().map(ToString::to_string).collect();
    assert!(
        shown[0].ends_with("bad.csv:3: 'yesterday' is not a time in the configured format"),
        "{}",
        shown[0]
    );
    assert!(shown[1].contains("'lots' is not a number"), "{}", shown[1]);
    assert!(
        shown[2].contains("'superb' is not a status"),
        "{}",
        shown[2]
    );
    assert!(shown[3].contains("no value"), "{}", shown[3]);
    assert!(shown[4].contains("the tag is empty"), "{}", shown[4]);
}

#[tokio::test]
async fn a_folder_reads_every_csv_file_and_reports_unreadable_ones() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("one.csv"), GOOD).unwrap();
    fs::write(
        dir.path().join("two.CSV"),
        "tag,timestamp,value\nC,1970-01-01T00:00:00Z,9\n",
    )
    .unwrap();
    fs::write(dir.path().join("notes.txt"), "not data").unwrap();
    fs::write(
        dir.path().join("headless.csv"),
        "name,when,reading\nX,1,2\n",
    )
    .unwrap();
    // A folder named like a file: reading it fails.
    fs::create_dir(dir.path().join("folder.csv")).unwrap();
    let source = CsvSource::open(&config(dir.path(), json!({"watch": false})))
        .await
        .unwrap();
    assert_eq!(source.rows(), 5);
    let health = source.health();
    assert_eq!(health.issue_count, 2, "{health:?}");
    let shown: Vec<String> = health.issues.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|s| s.contains("folder.csv") && s.contains("cannot read")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|s| s.contains("headless.csv:1: the header has no column tag, timestamp, value")),
        "{shown:?}"
    );
}

#[tokio::test]
async fn a_missing_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = CsvSource::open(&config(&dir.path().join("absent.csv"), json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io");
    assert!(err.to_string().contains("absent.csv"), "{err}");
}

#[tokio::test]
async fn column_names_and_time_formats_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plant.csv");
    fs::write(&file, "name;when;reading\nP1;1970-01-01 00:01:00;5.5\n").unwrap();
    let settings = json!({
        "watch": false, "tagColumn": "name", "timeColumn": "when", "valueColumn": "reading",
        "timeFormat": "%Y-%m-%d %H:%M:%S", "delimiter": ";"
    });
    let source = CsvSource::open(&config(&file, settings)).await.unwrap();
    let values = read(&source, "P1", range(0, 100), Boundary::Inside).await;
    assert_eq!(values, [Sample::good(60_000_000, 5.5)]);

    let file = dir.path().join("millis.csv");
    fs::write(&file, "tag,timestamp,value\nM,1500,1\n").unwrap();
    let source = CsvSource::open(&config(
        &file,
        json!({"watch": false, "timeFormat": "unixMillis"}),
    ))
    .await
    .unwrap();
    assert_eq!(
        read(&source, "M", range(0, 2), Boundary::Inside).await[0].time_us,
        1_500_000
    );

    let err = CsvSource::open(&config(&file, json!({"delimiter": ";;"})))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "delimiter");
}

#[tokio::test]
async fn a_changed_file_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.csv");
    fs::write(&file, GOOD).unwrap();
    let source = CsvSource::open(&config(&file, json!({}))).await.unwrap();
    assert_eq!(source.rows(), 4);
    fs::write(&file, format!("{GOOD}NEW,1970-01-01T00:00:40Z,4,good\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while source.rows() != 5 {
        assert!(Instant::now() < deadline, "the change was never picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = source.search(&TagSearch::new("NEW")).await.unwrap();
    assert_eq!(page.tags.len(), 1);

    // The file vanishes: the old data stays served and the health says why.
    fs::remove_file(&file).unwrap();
    source.reload();
    assert_eq!(source.rows(), 5);
    assert_eq!(source.health().state, HealthState::Failed);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever the order of rows, each tag reads back as exactly its rows, oldest first,
        /// and rows that are not data are reported, never read.
        #[test]
        fn each_tag_reads_back_exactly_its_rows(
            rows in proptest::collection::vec((0u8..4, 0i64..1_000, -1_000i32..1_000, any::<bool>()), 0..80),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("p.csv");
            let mut text = String::from("tag,timestamp,value\n");
            let mut bad = 0;
            for (tag, second, value, broken) in &rows {
                if *broken && value % 7 == 0 {
                    text.push_str(&format!("T{tag},{second},oops\n"));
                    bad += 1;
                } else {
                    text.push_str(&format!("T{tag},{second},{value}\n"));
                }
            }
            fs::write(&file, text).unwrap();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let source = runtime
                .block_on(CsvSource::open(&config(&file, json!({"watch": false, "timeFormat": "unixSeconds"}))))
                .unwrap();
            prop_assert_eq!(source.health().issue_count, bad);
            for tag in 0u8..4 {
                let mut expected: Vec<(i64, f64)> = rows
                    .iter()
                    .filter(|(t, _, value, broken)| *t == tag && !(*broken && value % 7 == 0))
                    .map(|(_, second, value, _)| (second * 1_000_000, f64::from(*value)))
                    .collect();
                expected.sort_by_key(|(time, _)| *time);
                let name = format!("T{tag}");
                let read_back = if expected.is_empty() {
                    Vec::new()
                } else {
                    runtime.block_on(read(&source, &name, range(0, 1_000), Boundary::Inside))
                };
                let got: Vec<(i64, f64)> = read_back.iter().map(|s| (s.time_us, s.value)).collect();
                prop_assert_eq!(got, expected);
            }
        }
    }
}

/// The one field error of a refused `open_new`.
async fn refusal(path: &Path, extra: serde_json::Value) -> FieldError {
    match CsvSource::open_new(&config(path, extra)).await {
        Err(SourceError::InvalidSettings(errors)) => {
            assert_eq!(errors.len(), 1, "{errors:?}");
            errors.into_iter().next().unwrap()
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_new_source_that_would_serve_nothing_is_refused_with_the_field_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"watch": false});

    // An empty folder.
    let error = refusal(dir.path(), extra.clone()).await;
    assert_eq!(error.field, "path");
    assert!(error.message.contains("no .csv files"), "{}", error.message);

    // A file written with semicolons, read with the default comma: the refusal names `;`.
    let file = dir.path().join("plant.csv");
    fs::write(&file, "tag;timestamp;value\nA;1970-01-01T00:00:00Z;1.5\n").unwrap();
    let error = refusal(&file, extra.clone()).await;
    assert_eq!(error.field, "delimiter");
    assert!(
        error.message.contains("enter `;` here"),
        "{}",
        error.message
    );
    // With that delimiter it opens, and the same file with a tab is named too.
    let fixed = json!({"watch": false, "delimiter": ";"});
    assert_eq!(
        CsvSource::open_new(&config(&file, fixed))
            .await
            .unwrap()
            .rows(),
        1
    );
    fs::write(
        &file,
        "tag\ttimestamp\tvalue\nA\t1970-01-01T00:00:00Z\t1.5\n",
    )
    .unwrap();
    let error = refusal(&file, extra.clone()).await;
    assert!(
        error.message.contains("enter a tab character here"),
        "{}",
        error.message
    );

    // A file with no usable row: the first problem with its file and line.
    fs::write(&file, "tag,timestamp,value\nA,yesterday,1.5\n").unwrap();
    let error = refusal(&file, extra.clone()).await;
    assert_eq!(error.field, "path");
    assert!(
        error.message.contains("plant.csv, line 2:"),
        "{}",
        error.message
    );

    // A path that is not there: words, never a bare OS error number.
    let error = refusal(&dir.path().join("missing.csv"), extra.clone()).await;
    assert_eq!(error.field, "path");
    assert!(
        error.message.contains("no such file or folder"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("os error"), "{}", error.message);

    // Reopening a saved source is not refused: its files may arrive later.
    fs::remove_file(&file).unwrap();
    let saved = CsvSource::open(&config(dir.path(), extra)).await.unwrap();
    assert_eq!(saved.rows(), 0);
}
