//! The edge historian on a real SQLite file: values read back exactly, in order, through raw
//! reads with both boundaries; plot, processed and values-at-times match the model's own
//! computation over the same values; open blocks survive a reopen; retention trims by age and
//! size; slowly changing values take at most 16 bytes each on disk; and a recording process
//! killed with SIGKILL 50 times loses at most the last second and never corrupts the file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use sqlx::Connection;
use uplink_historian::{Historian, HistorianOptions, Recorded, Retention};
use uplink_model::time_expr::{from_micros, to_micros};
use uplink_model::{
    AtTimesRequest, Boundary, Capabilities, DataSourceDescriptor, Function, PlotRequest,
    ProcessedRequest, RawRequest, Sample, Status, TagPage, TagSearch, TagValue, TimeRange,
    aggregate,
};
use uplink_source::recording::RecordingSettings;
use uplink_source::{DataSource, Health, RawStream, SnapshotStream, SourceError};

const SECOND: i64 = 1_000_000;

fn range(start: i64, end: i64) -> TimeRange {
    TimeRange::new(from_micros(start), from_micros(end)).unwrap()
}

async fn read(
    historian: &Historian,
    tag: &str,
    start: i64,
    end: i64,
    boundary: Boundary,
) -> Vec<Sample> {
    let request = RawRequest {
        tag: tag.into(),
        range: range(start, end),
        max_count: None,
        boundary,
    };
    let mut stream = historian.raw(&request).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= uplink_source::CHUNK);
        out.extend(chunk);
    }
    out
}

/// A slowly changing process value: a sinusoid over an hour.
fn process_value(tag: usize, time_us: i64) -> f64 {
    let phase = (time_us as f64 / (3_600.0 * SECOND as f64)) + tag as f64 * 0.1;
    50.0 + 10.0 * (std::f64::consts::TAU * phase).sin()
}

fn series(tag: usize, first: i64, count: i64, step: i64) -> Vec<Sample> {
    (0..count)
        .map(|i| {
            let t = first + i * step;
            let mut sample = Sample::good(t, process_value(tag, t));
            if i % 997 == 5 {
                sample = Sample::bad(t);
            } else if i % 1_009 == 7 {
                sample.status = Status::Uncertain;
            }
            sample
        })
        .collect()
}

async fn record_all(historian: &Historian, tags: &[(&str, Vec<Sample>)]) {
    let names: Vec<Arc<str>> = tags.iter().map(|(n, _)| Arc::from(*n)).collect();
    let longest = tags.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
    for from in (0..longest).step_by(5_000) {
        let mut batch = Vec::new();
        for i in from..(from + 5_000).min(longest) {
            for ((_, samples), name) in tags.iter().zip(&names) {
                if let Some(sample) = samples.get(i) {
                    batch.push((name.clone(), *sample));
                }
            }
        }
        historian.record(batch).await.unwrap();
    }
    historian.flush().await.unwrap();
}

fn same(a: &[Sample], b: &[Sample]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.time_us, y.time_us);
        assert_eq!(x.value.to_bits(), y.value.to_bits(), "at {}", x.time_us);
        assert_eq!(x.status, y.status);
    }
}

#[tokio::test]
async fn raw_reads_give_back_every_value_in_order_with_both_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistorianOptions {
        block_values: 500,
        ..HistorianOptions::default()
    };
    let historian = Historian::open(dir.path().join("h.historian"), options)
        .await
        .unwrap();
    let start = 1_700_000_000 * SECOND;
    let a = series(0, start, 20_000, SECOND);
    let b = series(1, start + 500_000, 7_777, 3 * SECOND);
    record_all(&historian, &[("TI100", a.clone()), ("FI200", b.clone())]).await;

    same(
        &read(
            &historian,
            "TI100",
            start,
            start + 30_000 * SECOND,
            Boundary::Inside,
        )
        .await,
        &a,
    );
    same(
        &read(
            &historian,
            "FI200",
            start,
            start + 30_000 * SECOND,
            Boundary::Inside,
        )
        .await,
        &b,
    );
    // A middle range, between samples: inside keeps the range, outside adds one each side.
    let (lo, hi) = (start + 1_234 * SECOND + 1, start + 5_678 * SECOND + 1);
    let inside = read(&historian, "TI100", lo, hi, Boundary::Inside).await;
    same(&inside, &a[1_235..=5_678]);
    let outside = read(&historian, "TI100", lo, hi, Boundary::Outside).await;
    same(&outside, &a[1_234..=5_679]);
    // A value exactly on each end: nothing is added past it.
    let on = read(
        &historian,
        "TI100",
        start + SECOND,
        start + 9 * SECOND,
        Boundary::Outside,
    )
    .await;
    same(&on, &a[1..=9]);
    // The count limit, and a tag never recorded.
    let request = RawRequest {
        tag: "TI100".into(),
        range: range(start, start + 30_000 * SECOND),
        max_count: Some(10_000),
        boundary: Boundary::Inside,
    };
    let mut stream = historian.raw(&request).await.unwrap();
    let mut limited = Vec::new();
    while let Some(chunk) = stream.next().await {
        limited.extend(chunk.unwrap());
    }
    same(&limited, &a[..10_000]);
    assert!(
        read(&historian, "nope", start, start + SECOND, Boundary::Outside)
            .await
            .is_empty()
    );
    assert_eq!(historian.tag_names().await.unwrap(), ["FI200", "TI100"]);
    let stats = historian.stats();
    assert_eq!(stats.tags, 2);
    assert_eq!(stats.recorded, (a.len() + b.len()) as u64);
}

#[tokio::test]
async fn unchanged_values_and_the_deadband_keep_the_steps_and_drop_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let options = HistorianOptions {
        deadband: 0.5,
        ..HistorianOptions::default()
    };
    let historian = Historian::open(dir.path().join("d.historian"), options)
        .await
        .unwrap();
    let values = [1.0, 1.0, 1.2, 1.4, 3.0, 3.0, 3.1, 2.0, 2.0];
    let samples: Vec<Sample> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Sample::good(i as i64 * SECOND, *v))
        .collect();
    // Out of order and repeated times are dropped.
    let mut input = samples.clone();
    input.insert(3, Sample::good(0, 9.0));
    record_all(&historian, &[("x", input)]).await;
    let kept: Vec<f64> = read(&historian, "x", 0, 100 * SECOND, Boundary::Inside)
        .await
        .iter()
        .map(|s| s.value)
        .collect();
    // 1.0 recorded; 1.0, 1.2 and 1.4 are within 0.5; 3.0 moves, so 1.4 (the last held) and 3.0
    // go in; 3.0, 3.1 held; 2.0 moves: 3.1 and 2.0 go in; the final 2.0 is held.
    assert_eq!(kept, [1.0, 1.4, 3.0, 3.1, 2.0]);
}

#[tokio::test]
async fn plot_processed_and_at_times_match_the_models_computation() {
    let dir = tempfile::tempdir().unwrap();
    let historian = Historian::open(dir.path().join("p.historian"), HistorianOptions::default())
        .await
        .unwrap();
    let start = 1_700_000_000 * SECOND;
    let values = series(3, start, 50_000, SECOND);
    record_all(&historian, &[("sim.1", values.clone())]).await;
    let live = Arc::new(LiveOnly);
    let settings = RecordingSettings::from_settings(
        serde_json::json!({"record": "pattern", "recordTags": "none-match"})
            .as_object()
            .unwrap(),
    )
    .unwrap()
    .unwrap();
    let recorded = Recorded::start(live, historian.clone(), &settings);
    let caps = recorded.descriptor().capabilities;
    assert!(caps.raw && caps.plot && caps.at_times && caps.supports(Function::Avg));

    let plot = PlotRequest {
        tag: "sim.1".into(),
        range: range(start + 10 * SECOND + 1, start + 40_000 * SECOND),
        intervals: 137,
    };
    let inside: Vec<Sample> = values
        .iter()
        .copied()
        .filter(|s| s.time_us >= plot.range.start_us() && s.time_us <= plot.range.end_us())
        .collect();
    same(
        &recorded.plot(&plot).await.unwrap().values,
        &aggregate::plot(&inside, &plot.intervals()),
    );

    let processed = ProcessedRequest {
        tag: "sim.1".into(),
        range: range(start + 10 * SECOND + 1, start + 40_000 * SECOND),
        interval: uplink_model::Span::from_secs(600),
        functions: vec![Function::Avg, Function::Min, Function::Count],
    };
    let outside: Vec<Sample> = values[10..=40_000].to_vec();
    let answers = recorded.processed(&processed).await.unwrap();
    assert_eq!(
        answers.by,
        uplink_model::ComputedBy::Uplink,
        "from the recording"
    );
    let answers = answers.values;
    for (function, samples) in answers {
        let expected = aggregate::processed(&outside, &processed.intervals(), function);
        same(&samples, &expected);
    }

    let times: Vec<_> = [
        start + 1_500_000,
        start + 77 * SECOND + 250_000,
        start + 49_000 * SECOND,
    ]
    .into_iter()
    .map(from_micros)
    .collect();
    let at = AtTimesRequest {
        tag: "sim.1".into(),
        times: times.clone(),
    };
    let expected = aggregate::at_times(
        &values,
        &times.iter().map(|t| to_micros(*t)).collect::<Vec<_>>(),
    );
    same(&recorded.at_times(&at).await.unwrap().values, &expected);
    assert!(recorded.recording().unwrap().disk_bytes > 0);
}

/// A source with live values and no history of its own, like a PLC: its history is the
/// recording's.
#[derive(Debug)]
struct LiveOnly;

#[async_trait]
impl DataSource for LiveOnly {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: "plc".into(),
            kind: "test".into(),
            description: String::new(),
            capabilities: Capabilities {
                search: true,
                snapshot: true,
                subscribe: true,
                ..Capabilities::default()
            },
        }
    }
    fn health(&self) -> Health {
        Health::ok()
    }
    async fn search(&self, _: &TagSearch) -> Result<TagPage, SourceError> {
        Ok(TagPage {
            tags: Vec::new(),
            next_offset: None,
        })
    }
    async fn snapshot(&self, _: &[String]) -> Result<Vec<TagValue>, SourceError> {
        Ok(Vec::new())
    }
    async fn raw(&self, _: &RawRequest) -> Result<RawStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: "plc".into(),
            what: "raw reads",
        })
    }
    async fn subscribe(&self, _: &[String]) -> Result<SnapshotStream, SourceError> {
        Ok(futures::stream::pending().boxed())
    }
}

#[tokio::test]
async fn open_blocks_survive_a_reopen_and_sealing_keeps_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.historian");
    let options = HistorianOptions {
        block_values: 100,
        ..HistorianOptions::default()
    };
    let all = series(0, 0, 1_000, SECOND);
    let historian = Historian::open(&path, options).await.unwrap();
    record_all(&historian, &[("t", all[..250].to_vec())]).await;
    historian.close().await;
    // Reopened: 50 values sit in segments of the open block; a value not after them is dropped.
    let historian = Historian::open(&path, options).await.unwrap();
    let mut rest = all[250..].to_vec();
    rest.insert(0, all[249]);
    record_all(&historian, &[("t", rest)]).await;
    same(
        &read(&historian, "t", 0, 2_000 * SECOND, Boundary::Inside).await,
        &all,
    );
    let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    let sealed: i64 = sqlx::query_scalar("SELECT count(*) FROM blocks WHERE sealed = 1")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(sealed, 9, "9 full blocks of 100, the 10th still open");
}

#[tokio::test]
async fn retention_trims_by_age_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let now = to_micros(Utc::now());
    let day = 86_400 * SECOND;
    let options = HistorianOptions {
        block_values: 1_000,
        block_span: Duration::from_secs(3_600),
        retention: Retention {
            max_age: Some(Duration::from_secs(30 * 86_400)),
            max_bytes: None,
        },
        ..HistorianOptions::default()
    };
    let historian = Historian::open(dir.path().join("age.historian"), options)
        .await
        .unwrap();
    // 40 days, one value a minute.
    let first = now - 40 * day;
    let values = series(0, first, 40 * 24 * 60, 60 * SECOND);
    record_all(&historian, &[("t", values.clone())]).await;
    assert_eq!(historian.stats().oldest_us, Some(first));
    historian.trim().await.unwrap();
    let kept = read(&historian, "t", first, now, Boundary::Inside).await;
    let cutoff = now - 30 * day;
    assert!(
        kept[0].time_us < cutoff + 3_600 * SECOND,
        "kept from {}",
        kept[0].time_us
    );
    assert!(
        kept[0].time_us >= cutoff - 3_600 * SECOND,
        "kept from {}",
        kept[0].time_us
    );
    same(&kept, &values[values.len() - kept.len()..]);
    assert!(historian.stats().oldest_us.unwrap() >= cutoff - 3_600 * SECOND);

    let path = dir.path().join("size.historian");
    let mut options = options;
    options.retention = Retention {
        max_age: None,
        max_bytes: Some(2 << 20),
    };
    let historian = Historian::open(&path, options).await.unwrap();
    let noisy: Vec<Sample> = (0..600_000i64)
        .map(|i| Sample::good(i * SECOND, (i as f64 * 0.7).sin()))
        .collect();
    record_all(&historian, &[("n", noisy.clone())]).await;
    let before = historian.stats().disk_bytes;
    assert!(before > 4 << 20, "{before} bytes before trimming");
    historian.trim().await.unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after <= (2 << 20) + (256 << 10),
        "{after} bytes after trimming"
    );
    let kept = read(&historian, "n", 0, 1_000_000 * SECOND, Boundary::Inside).await;
    assert!(
        kept.len() < noisy.len() / 2 && kept.len() > 10_000,
        "{}",
        kept.len()
    );
    same(&kept, &noisy[noisy.len() - kept.len()..]);
}

#[tokio::test]
async fn slowly_changing_values_take_at_most_16_bytes_each_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("size.historian");
    let historian = Historian::open(&path, HistorianOptions::default())
        .await
        .unwrap();
    // Read to three decimals, as a transmitter reports them.
    let tags: Vec<(String, Vec<Sample>)> = (0..20)
        .map(|t| {
            let mut samples = series(t, 0, 50_000, SECOND);
            for s in &mut samples {
                s.value = (s.value * 1_000.0).round() / 1_000.0;
            }
            (format!("plant.area.TI{t:03}"), samples)
        })
        .collect();
    let refs: Vec<(&str, Vec<Sample>)> =
        tags.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    record_all(&historian, &refs).await;
    let mut stored = 0;
    for (name, _) in &tags {
        stored += read(&historian, name, 0, 100_000 * SECOND, Boundary::Inside)
            .await
            .len();
    }
    historian.close().await;
    let bytes = std::fs::metadata(&path).unwrap().len();
    let per_value = bytes as f64 / stored as f64;
    eprintln!(
        "{bytes} bytes for {stored} stored values (1 000 000 offered): {per_value:.2} bytes per value"
    );
    assert!(stored > 900_000, "{stored} values stored");
    assert!(per_value <= 16.0, "{per_value} bytes per value");
}

const CHILD: &str = "UPLINK_HISTORIAN_CRASH_CHILD";

/// The value the crash child records for tag `tag` at `time_us`: checkable after the kill.
fn crash_value(tag: usize, time_us: i64) -> f64 {
    (time_us % 100_003) as f64 * 0.5 + tag as f64
}

/// Run by `killed_50_times_while_recording_…` as a child process: records ten tags at the wall
/// clock's time until killed, after saying so on its standard output.
#[test]
#[allow(clippy::print_stdout)]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let historian = Historian::open(&path, HistorianOptions::default())
            .await
            .unwrap();
        let names: Vec<Arc<str>> = (0..10).map(|t| Arc::from(format!("tag{t}"))).collect();
        let mut said = false;
        loop {
            let now = to_micros(Utc::now());
            let batch = names
                .iter()
                .enumerate()
                .map(|(t, name)| (name.clone(), Sample::good(now, crash_value(t, now))))
                .collect();
            historian.record(batch).await.unwrap();
            if !said {
                historian.flush().await.unwrap();
                println!("recording");
                said = true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_50_times_while_recording_it_loses_at_most_a_second_and_never_corrupts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.historian");
    let exe = std::env::current_exe().unwrap();
    let mut total = 0;
    for round in 0..50u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::task::spawn_blocking(move || {
            lines.any(|line| line.is_ok_and(|l| l.contains("recording")))
        })
        .await
        .unwrap();
        assert!(ready, "round {round}: the child never started recording");
        // Kill after more than a second of recording (longer than any flush may wait), at a
        // different moment of the flush cycle each round.
        tokio::time::sleep(Duration::from_millis(1_100 + (round * 137) % 900)).await;
        let killed_at = to_micros(Utc::now());
        child.kill().unwrap();
        child.wait().unwrap();

        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        db.close().await.unwrap();

        let started = Instant::now();
        let historian = Historian::open(&path, HistorianOptions::default())
            .await
            .unwrap();
        for t in 0..10 {
            let values = read(
                &historian,
                &format!("tag{t}"),
                0,
                killed_at + SECOND,
                Boundary::Inside,
            )
            .await;
            let last = values
                .last()
                .unwrap_or_else(|| panic!("round {round}: tag{t} is empty"));
            let lost = killed_at - last.time_us;
            assert!(
                lost <= SECOND,
                "round {round}: tag{t} lost {lost} µs before the kill"
            );
            for pair in values.windows(2) {
                assert!(
                    pair[0].time_us < pair[1].time_us,
                    "round {round}: out of order"
                );
            }
            for value in &values {
                assert_eq!(
                    value.value,
                    crash_value(t, value.time_us),
                    "round {round}: corrupt value"
                );
            }
            if t == 0 {
                total = values.len();
            }
        }
        historian.close().await;
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    eprintln!("{total} values per tag recorded across 50 killed runs");
}

/// A tag's recorded values with their texts: (time, number, text, status).
async fn read_values(
    historian: &Historian,
    tag: &str,
    start: i64,
    end: i64,
    boundary: Boundary,
) -> Vec<(i64, Option<f64>, Option<String>, Status)> {
    let request = RawRequest {
        tag: tag.into(),
        range: range(start, end),
        max_count: None,
        boundary,
    };
    let mut stream = historian.raw_values(&request).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        for value in chunk.unwrap() {
            out.push((to_micros(value.time), value.value, value.text, value.status));
        }
    }
    out
}

#[tokio::test]
async fn texts_and_digital_state_names_are_recorded_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("texts.historian");
    // Small blocks: texts cross sealed blocks and open segments alike.
    let options = HistorianOptions {
        block_values: 3,
        ..HistorianOptions::default()
    };
    let start = 1_700_000_000 * SECOND;
    let at = |i: i64| from_micros(start + i * SECOND);
    let state = |i: i64, value: f64, name: &str, status: Status| TagValue {
        time: at(i),
        value: Some(value),
        text: Some(name.into()),
        status,
        units: None,
        source_status_code: None,
    };
    let mut uncertain = TagValue::text(at(4), "auto");
    uncertain.status = Status::Uncertain;
    let (mode, valve): (Arc<str>, Arc<str>) = (Arc::from("mode"), Arc::from("valve"));
    let historian = Historian::open(&path, options).await.unwrap();
    historian
        .record_values(vec![
            (mode.clone(), TagValue::text(at(0), "auto")),
            (valve.clone(), state(0, 1.0, "Open", Status::Good)),
            (mode.clone(), TagValue::text(at(1), "manual")),
            (valve.clone(), state(1, 0.0, "Closed", Status::Good)),
            // Unchanged: held back, and kept as the last value before the change.
            (mode.clone(), TagValue::text(at(2), "manual")),
            (mode.clone(), TagValue::text(at(3), "auto")),
            (mode.clone(), uncertain),
            // The same number with another state name is a change.
            (valve.clone(), state(2, 0.0, "Shut", Status::Good)),
        ])
        .await
        .unwrap();
    historian.close().await;
    // Reopened: the open block's texts are picked up, and recording goes on after them.
    let historian = Historian::open(&path, options).await.unwrap();
    historian
        .record_values(vec![(mode.clone(), TagValue::text(at(5), "stop"))])
        .await
        .unwrap();
    historian.flush().await.unwrap();

    let end = start + 10 * SECOND;
    let text = |s: &str| Some(s.to_owned());
    let t = |i: i64| start + i * SECOND;
    assert_eq!(
        read_values(&historian, "mode", start, end, Boundary::Inside).await,
        [
            (t(0), None, text("auto"), Status::Good),
            (t(1), None, text("manual"), Status::Good),
            (t(2), None, text("manual"), Status::Good),
            (t(3), None, text("auto"), Status::Good),
            (t(4), None, text("auto"), Status::Uncertain),
            (t(5), None, text("stop"), Status::Good),
        ]
    );
    assert_eq!(
        read_values(&historian, "valve", start, end, Boundary::Inside).await,
        [
            (t(0), Some(1.0), text("Open"), Status::Good),
            (t(1), Some(0.0), text("Closed"), Status::Good),
            (t(2), Some(0.0), text("Shut"), Status::Good),
        ]
    );
    // With outside boundaries the value before the start leads, with its text.
    assert_eq!(
        read_values(
            &historian,
            "mode",
            t(1) + SECOND / 2,
            t(3) + SECOND / 2,
            Boundary::Outside
        )
        .await,
        [
            (t(1), None, text("manual"), Status::Good),
            (t(2), None, text("manual"), Status::Good),
            (t(3), None, text("auto"), Status::Good),
            (t(4), None, text("auto"), Status::Uncertain),
        ]
    );
    // Raw samples keep the text values' statuses (no number: NaN), not bad.
    let samples = read(&historian, "mode", start, end, Boundary::Inside).await;
    assert_eq!(samples.len(), 6);
    assert!(samples.iter().all(|s| s.value.is_nan()));
    assert_eq!(samples[4].status, Status::Uncertain);
    assert!(
        samples
            .iter()
            .enumerate()
            .all(|(i, s)| i == 4 || s.status == Status::Good)
    );
}
