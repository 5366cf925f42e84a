//! MQTT values recorded by the edge historian: every value of a burst, and topics first seen
//! after recording started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use serde_json::json;
use uplink_historian::Recorded;
use uplink_model::{Boundary, RawRequest, Sample, Status, TimeRange};
use uplink_source::DataSource;

use super::{Client, LIMIT, Mosquitto, Setup, config};

/// The MQTT source of `subscriptions` recording the tags matching `pattern` to a historian
/// file in `folder`.
async fn recording(
    url: &str,
    subscriptions: &str,
    pattern: &str,
    folder: &std::path::Path,
) -> Arc<dyn DataSource> {
    let config = config(
        url,
        subscriptions,
        &[("record", json!("pattern")), ("recordTags", json!(pattern))],
    );
    let source = uplink_source_mqtt::MqttSource::open(&config)
        .await
        .expect("the source opens");
    Recorded::wrap(
        Arc::new(source),
        &config.settings,
        folder.join("broker.historian"),
    )
    .await
    .expect("recording starts")
}

/// The recorded values of `tag` in the last hour.
async fn recorded(source: &dyn DataSource, tag: &str) -> Vec<Sample> {
    let now = Utc::now();
    let request = RawRequest {
        tag: tag.into(),
        range: TimeRange::new(
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
        )
        .unwrap(),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let mut stream = source.raw(&request).await.expect("a recorded raw read");
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next().await {
        samples.extend(chunk.unwrap());
    }
    samples
}

/// Waits until the recording of `tag` holds `count` values (or more), and returns them.
async fn wait_recorded(source: &dyn DataSource, tag: &str, count: usize) -> Vec<Sample> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let samples = recorded(source, tag).await;
        if samples.len() >= count || Instant::now() > deadline {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_value_of_a_burst_on_one_topic_is_recorded() {
    let broker = Mosquitto::start(Setup::default());
    let folder = tempfile::tempdir().unwrap();
    let source = recording(&broker.url(), "line/+ plain", "line/*", folder.path()).await;
    let mut publisher = Client::connect(broker.port, &[]).await;
    // A first value, recorded once the recording follows the source.
    publisher.publish("line/speed", "-1", false).await;
    let first = wait_recorded(source.as_ref(), "line/speed", 1).await;
    assert_eq!(first.len(), 1, "the first value was recorded: {first:?}");

    const N: usize = 500;
    publisher
        .burst("line/speed", (0..N).map(|i| format!("{}", i as f64 * 0.5)))
        .await;
    let samples = wait_recorded(source.as_ref(), "line/speed", N + 1).await;
    let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    let expected: Vec<f64> = std::iter::once(-1.0)
        .chain((0..N).map(|i| i as f64 * 0.5))
        .collect();
    assert_eq!(
        values.len(),
        expected.len(),
        "every value of the burst is recorded"
    );
    assert_eq!(values, expected);
    assert!(samples.iter().all(|s| s.status == Status::Good));
    assert!(samples.windows(2).all(|w| w[0].time_us < w[1].time_us));
    let status = source.recording().unwrap();
    assert_eq!(status.tags, ["line/speed"]);
    assert_eq!(status.recorded, N as u64 + 1);
}

#[tokio::test]
async fn a_topic_first_seen_after_recording_started_is_recorded_if_it_matches() {
    let broker = Mosquitto::start(Setup::default());
    let folder = tempfile::tempdir().unwrap();
    let source = recording(&broker.url(), "# plain", "plant/*", folder.path()).await;
    // Nothing has been published: recording starts with no tag.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(source.recording().unwrap().tags.is_empty());
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher.publish("office/light", "1", false).await;
    publisher.publish("plant/late", "7", false).await;
    publisher.publish("plant/late", "8", false).await;
    let samples = wait_recorded(source.as_ref(), "plant/late", 2).await;
    let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [7.0, 8.0], "the new topic's values are recorded");
    assert_eq!(source.recording().unwrap().tags, ["plant/late"]);
    // A topic the pattern leaves out is read but not recorded.
    assert_eq!(
        source.snapshot(&["office/light".into()]).await.unwrap()[0].value,
        Some(1.0)
    );
    assert!(recorded(source.as_ref(), "office/light").await.is_empty());
}
