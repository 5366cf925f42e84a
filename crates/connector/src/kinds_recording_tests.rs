//! Recording through the registry: the simulated source's live values go to its edge historian
//! file, the status says what is recorded, and values recorded from the simulated source read
//! back exactly, with plot and processed answers equal to the source's own.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use uplink_historian::{Historian, HistorianOptions};
use uplink_model::time_expr::from_micros;
use uplink_model::{
    Boundary, Function, PlotRequest, ProcessedRequest, RawRequest, Sample, Span, TimeRange,
};

use super::*;
use crate::sources::simulated::SimulatedSource;

fn simulated(settings: serde_json::Value) -> SourceConfig {
    SourceConfig {
        name: "sim one".into(),
        kind: "simulated".into(),
        description: String::new(),
        settings: settings.as_object().cloned().unwrap(),
    }
}

#[tokio::test]
async fn a_recording_source_writes_its_live_values_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for kind in kinds()
        .iter()
        .filter(|k| k.kind == "simulated" || k.kind == "modbus")
    {
        assert!(
            kind.fields.iter().any(|f| f.name == "record"),
            "{}",
            kind.kind
        );
    }
    let config = simulated(serde_json::json!({
        "sampleInterval": "100ms", "record": "pattern", "recordTags": "sim.ramp.*"
    }));
    let source = open_in(&config, &SourceContext::in_dir(dir.path()))
        .await
        .unwrap();
    let file = dir.path().join("historian").join("sim%20one.historian");
    let mut status = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = source.recording().unwrap();
        if now.recorded >= 3 && now.since.is_some() {
            status = Some(now);
            break;
        }
    }
    let status = status.expect("recording within 10 s");
    assert_eq!(status.tags, ["sim.ramp.1"]);
    // Search marks the recorded tag, and only it, with when it was first recorded.
    let page = source
        .search(&uplink_model::TagSearch::new("*"))
        .await
        .unwrap();
    let marked: Vec<(&str, &str)> = page
        .tags
        .iter()
        .filter_map(|t| Some((t.name.as_str(), t.properties.get("recordedSince")?.as_str())))
        .collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!(marked[0].0, "sim.ramp.1");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(marked[0].1)
            .unwrap()
            .with_timezone(&chrono::Utc),
        status.since.unwrap()
    );
    assert!(file.exists());
    assert!(status.disk_bytes > 0);
    // Without recording the source is the kind's own, with no recording status.
    let plain = open_in(
        &simulated(serde_json::json!({})),
        &SourceContext::in_dir(dir.path()),
    )
    .await
    .unwrap();
    assert!(plain.recording().is_none());
    // A bad pattern is a field error.
    let bad = simulated(serde_json::json!({"record": "pattern", "recordTags": ""}));
    let err = open_in(&bad, &SourceContext::in_dir(dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "recordTags", "{err}");
}

/// Every sample of a tag sampled faster than a snapshot subscription ticks (10 ms against
/// 100 ms) is recorded, from the source's change stream: the recording equals the source's own
/// raw read over the recorded stretch.
#[tokio::test]
async fn the_simulated_sources_every_sample_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config = simulated(serde_json::json!({
        "sampleInterval": "10ms", "record": "pattern", "recordTags": "sim.ramp.1"
    }));
    let source = open_in(&config, &SourceContext::in_dir(dir.path()))
        .await
        .unwrap();
    let historian = Historian::open(
        dir.path().join("historian").join("sim%20one.historian"),
        HistorianOptions::default(),
    )
    .await
    .unwrap();
    let wide = TimeRange::new(
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Utc::now() + chrono::Duration::hours(1),
    )
    .unwrap();
    let read = |source: Arc<dyn DataSource>, historian: Option<Historian>, range: TimeRange| async move {
        let request = RawRequest {
            tag: "sim.ramp.1".into(),
            range,
            max_count: None,
            boundary: Boundary::Inside,
        };
        let mut stream = match historian {
            Some(historian) => historian.raw(&request).await.unwrap(),
            None => source.raw(&request).await.unwrap(),
        };
        let mut samples: Vec<Sample> = Vec::new();
        while let Some(chunk) = stream.next().await {
            samples.extend(chunk.unwrap());
        }
        samples
    };
    let mut recorded = Vec::new();
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        recorded = read(source.clone(), Some(historian.clone()), wide).await;
        if recorded.len() >= 100 {
            break;
        }
    }
    assert!(recorded.len() >= 100, "{} values recorded", recorded.len());
    let stretch = TimeRange::new(
        from_micros(recorded[0].time_us),
        from_micros(recorded[recorded.len() - 1].time_us),
    )
    .unwrap();
    let own = read(source.clone(), None, stretch).await;
    let recorded = read(source, Some(historian), stretch).await;
    assert_eq!(recorded.len(), own.len(), "every 10 ms sample is recorded");
    assert_eq!(recorded, own);
}

/// The 10 000 000 values recorded from the simulated source (fewer with
/// `UPLINK_HISTORIAN_VALUES`; about 20 s in a debug build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_recorded_from_the_simulated_source_read_back_exactly() {
    let total: i64 = std::env::var("UPLINK_HISTORIAN_VALUES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let source = SimulatedSource::open(&simulated(serde_json::json!({
        "sampleInterval": "1s", "tagsPerShape": 2
    })))
    .unwrap();
    // Square tags repeat values, which the historian does not store twice; the rest change.
    let tags: Vec<String> = ["sinusoid", "ramp", "randomWalk", "noise"]
        .iter()
        .flat_map(|shape| (1..=2).map(move |i| format!("sim.{shape}.{i}")))
        .collect();
    let per_tag = total / tags.len() as i64;
    let start = 1_700_000_000_000_000i64;
    let end = start + (per_tag - 1) * 1_000_000;
    let range = TimeRange::new(from_micros(start), from_micros(end)).unwrap();
    let historian = Historian::open(
        dir.path().join("sim.historian"),
        HistorianOptions::default(),
    )
    .await
    .unwrap();
    let mut streams = Vec::new();
    for tag in &tags {
        let request = RawRequest {
            tag: tag.clone(),
            range,
            max_count: None,
            boundary: Boundary::Inside,
        };
        streams.push((
            Arc::<str>::from(tag.as_str()),
            source.raw(&request).await.unwrap(),
        ));
    }
    // Interleaved as live values arrive: a chunk of each tag in turn.
    loop {
        let mut batch = Vec::new();
        for (name, stream) in &mut streams {
            if let Some(chunk) = stream.next().await {
                batch.extend(chunk.unwrap().into_iter().map(|s| (name.clone(), s)));
            }
        }
        if batch.is_empty() {
            break;
        }
        historian.record(batch).await.unwrap();
    }
    historian.flush().await.unwrap();
    let stats = historian.stats();
    assert_eq!(stats.recorded, (per_tag * tags.len() as i64) as u64);
    eprintln!(
        "{} values recorded in {} bytes: {:.2} bytes per value",
        stats.recorded,
        stats.disk_bytes,
        stats.disk_bytes as f64 / stats.recorded as f64
    );

    for tag in &tags {
        let request = RawRequest {
            tag: tag.clone(),
            range,
            max_count: None,
            boundary: Boundary::Inside,
        };
        let (mut ours, mut theirs) = (
            historian.raw(&request).await.unwrap(),
            source.raw(&request).await.unwrap(),
        );
        let mut count = 0;
        let (mut a, mut b): (Vec<Sample>, Vec<Sample>) = (Vec::new(), Vec::new());
        loop {
            if a.is_empty() {
                a = ours.next().await.map(Result::unwrap).unwrap_or_default();
            }
            if b.is_empty() {
                b = theirs.next().await.map(Result::unwrap).unwrap_or_default();
            }
            let n = a.len().min(b.len());
            if n == 0 {
                assert!(
                    a.is_empty() && b.is_empty(),
                    "{tag}: lengths differ after {count}"
                );
                break;
            }
            for (x, y) in a[..n].iter().zip(&b[..n]) {
                assert_eq!(
                    (x.time_us, x.value.to_bits()),
                    (y.time_us, y.value.to_bits()),
                    "{tag}"
                );
            }
            count += n;
            a.drain(..n);
            b.drain(..n);
        }
        assert_eq!(count as i64, per_tag, "{tag}");
    }

    // Plot and processed from the recording equal the simulated source's own answers.
    let recorded = uplink_historian::Recorded::start(
        Arc::new(LiveOnly(source.clone())),
        historian.clone(),
        &uplink_source::recording::RecordingSettings::from_settings(
            serde_json::json!({"record": "pattern", "recordTags": "no.such.tag"})
                .as_object()
                .unwrap(),
        )
        .unwrap()
        .unwrap(),
    );
    let inner = TimeRange::new(from_micros(start + 1), from_micros(end - 1)).unwrap();
    let plot = PlotRequest {
        tag: "sim.randomWalk.2".into(),
        range: inner,
        intervals: 300,
    };
    assert_eq!(
        recorded.plot(&plot).await.unwrap(),
        source.plot(&plot).await.unwrap()
    );
    let processed = ProcessedRequest {
        tag: "sim.sinusoid.1".into(),
        range: inner,
        interval: Span::from_secs(3_600),
        functions: vec![Function::Avg, Function::Max, Function::Interp],
    };
    assert_eq!(
        recorded.processed(&processed).await.unwrap(),
        source.processed(&processed).await.unwrap()
    );
}

/// The simulated source seen as a device with live values only, so the wrapper answers
/// history from the recording.
#[derive(Debug)]
struct LiveOnly(SimulatedSource);

#[async_trait::async_trait]
impl DataSource for LiveOnly {
    fn descriptor(&self) -> uplink_model::DataSourceDescriptor {
        let mut descriptor = self.0.descriptor();
        descriptor.capabilities.raw = false;
        descriptor
    }
    fn health(&self) -> crate::Health {
        self.0.health()
    }
    async fn search(
        &self,
        search: &uplink_model::TagSearch,
    ) -> Result<uplink_model::TagPage, SourceError> {
        self.0.search(search).await
    }
    async fn snapshot(&self, tags: &[String]) -> Result<Vec<uplink_model::TagValue>, SourceError> {
        self.0.snapshot(tags).await
    }
    async fn raw(&self, _: &RawRequest) -> Result<uplink_source::RawStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: "sim".into(),
            what: "raw reads",
        })
    }
}
