//! `uplink query` on a source that records to the edge historian: a source with no history of
//! its own (MQTT) answers raw, plot and processed from its recording, read-only, as the
//! connector does; the recording file is not written to.

mod common;

use std::sync::Arc;

use common::{free_port, run_ok, text};
use uplink_historian::{Historian, HistorianOptions, historian_file};
use uplink_model::Sample;

const SECOND: i64 = 1_000_000;
/// 2023-11-14T22:13:20Z.
const START: i64 = 1_700_000_000 * SECOND;

#[test]
fn query_reads_a_recorded_mqtt_tag_from_its_recording() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    // A broker nobody runs: the source is saved anyway, with recording on.
    let port = free_port();
    run_ok(&[
        "sources",
        "add",
        "--data-dir",
        data_str,
        "--name",
        "broker",
        "--kind",
        "mqtt",
        "--set",
        &format!("brokerUrl=mqtt://127.0.0.1:{port}"),
        "--set",
        "subscriptions=line/+ plain",
        "--set",
        "record=all",
    ]);
    // What the connector recorded (written here through the historian itself).
    let file = historian_file(&data.join("historian"), "broker");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let historian = Historian::open(&file, HistorianOptions::default())
            .await
            .unwrap();
        let tag: Arc<str> = Arc::from("line/speed");
        historian
            .record(
                (0..10)
                    .map(|i| {
                        (
                            tag.clone(),
                            Sample::good(START + i * SECOND, i as f64 * 1.5),
                        )
                    })
                    .collect(),
            )
            .await
            .unwrap();
        historian.close().await;
    });
    let before = std::fs::read(&file).unwrap();

    let raw = run_ok(&[
        "query",
        "--data-dir",
        data_str,
        "--source",
        "broker",
        "--json",
        "raw",
        "line/speed",
        "--start",
        "2023-11-14T22:13:20Z",
        "--end",
        "2023-11-14T22:13:29Z",
    ]);
    let out = text(&raw.stdout);
    let answer: serde_json::Value = serde_json::from_str(&out).expect("a JSON answer");
    let values: Vec<f64> = answer
        .as_array()
        .expect("an array of values")
        .iter()
        .filter_map(|v| v["value"].as_f64())
        .collect();
    assert_eq!(
        values,
        (0..10).map(|i| i as f64 * 1.5).collect::<Vec<_>>(),
        "{out}"
    );

    let processed = run_ok(&[
        "query",
        "--data-dir",
        data_str,
        "--source",
        "broker",
        "--json",
        "processed",
        "line/speed",
        "--start",
        "2023-11-14T22:13:20Z",
        "--end",
        "2023-11-14T22:13:30Z",
        "--interval",
        "10s",
        "--function",
        "MAX,COUNT",
    ]);
    let answer = text(&processed.stdout);
    let compact: String = answer.split_whitespace().collect();
    assert!(
        compact.contains(r#""value":13.5"#) && compact.contains(r#""value":10.0"#),
        "the maximum and the count: {answer}"
    );
    // The query only read: the recording is as the connector left it.
    assert_eq!(std::fs::read(&file).unwrap(), before);
}
