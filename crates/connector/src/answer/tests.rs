use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use uplink_link::{MAX_CHUNK_BYTES, ResultFormat, failure};
use uplink_model::{Query, Sample, TagValue};

use super::*;
use crate::config::ConnectorConfig;
use crate::kinds;

async fn simulated() -> Arc<dyn DataSource> {
    kinds::open(&ConnectorConfig::default().sources[0])
        .await
        .unwrap()
}

fn query(json: Value) -> Query {
    serde_json::from_value(json).unwrap()
}

/// The whole body, checking every chunk's size on the way.
async fn body(source: Arc<dyn DataSource>, q: Value, format: ResultFormat) -> String {
    let chunks: Vec<String> = answer(source, query(q), format)
        .map(|chunk| chunk.expect("the answer succeeds"))
        .collect()
        .await;
    for chunk in &chunks {
        assert!(!chunk.is_empty() && chunk.len() <= MAX_CHUNK_BYTES);
    }
    chunks.concat()
}

async fn failure_for(q: Value) -> QueryFailure {
    let mut stream = answer(simulated().await, query(q), ResultFormat::Json);
    let first = stream.next().await.expect("an item");
    assert!(stream.next().await.is_none(), "nothing follows a failure");
    first.expect_err("the query fails")
}

fn lines(body: &str) -> Vec<Value> {
    assert!(body.is_empty() || body.ends_with('\n'));
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

const START: &str = "2024-05-01T00:00:00Z";

/// Compares the body byte for byte with `serde_json`'s writing of the same values (parsing
/// floats back would not be exact), naming the first difference instead of printing it all.
fn same_text(got: &str, expected: &str) {
    if let Some(at) = got.bytes().zip(expected.bytes()).position(|(a, b)| a != b) {
        let from = at.saturating_sub(80);
        panic!(
            "bodies differ at byte {at}: got …{}… expected …{}…",
            &got[from..(at + 80).min(got.len())],
            &expected[from..(at + 80).min(expected.len())]
        );
    }
    assert_eq!(got.len(), expected.len());
}

/// `{"tag":…,"values":[…]}` as `serde_json` writes each value.
fn series_text(tag: &str, samples: &[Sample]) -> String {
    let values: Vec<String> = samples
        .iter()
        .map(|s| serde_json::to_string(&TagValue::from(*s)).unwrap())
        .collect();
    format!("{{\"tag\":\"{tag}\",\"values\":[{}]}}", values.join(","))
}

#[tokio::test]
async fn raw_json_is_the_tag_and_every_value_in_order() {
    let source = simulated().await;
    let q = json!({"type":"raw","tag":"sim.ramp.1","start":START,"end":"2024-05-01T01:00:00Z"});
    let body = body(source.clone(), q.clone(), ResultFormat::Json).await;
    let parsed: Value = serde_json::from_str(&body).unwrap();
    let Query::Raw(raw) = query(q) else {
        unreachable!()
    };
    let direct = source
        .collect_raw(
            "sim.ramp.1",
            raw.resolve(Utc::now()).unwrap().range,
            Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(direct.len(), 3601);
    assert_eq!(parsed["values"].as_array().unwrap().len(), 3601);
    same_text(&body, &series_text("sim.ramp.1", &direct));
    assert!(
        body.len() > MAX_CHUNK_BYTES,
        "the answer spans several chunks"
    );
}

#[tokio::test]
async fn raw_ndjson_is_one_value_per_line_and_honours_max_count() {
    let q = json!({"type":"raw","tag":"sim.ramp.1","start":START,"end":"2024-05-02T00:00:00Z","maxCount":20000});
    let values = lines(&body(simulated().await, q, ResultFormat::Ndjson).await);
    assert_eq!(values.len(), 20_000);
    assert_eq!(values[0]["time"], START);
    assert_eq!(values[1]["time"], "2024-05-01T00:00:01Z");
    assert_eq!(values[0]["status"], "good");
    assert!(values[0]["value"].is_f64());
}

#[tokio::test]
async fn an_empty_raw_range_is_an_empty_array_or_no_lines() {
    let q = json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-01T00:00:00.5Z","end":"2024-05-01T00:00:00.6Z"});
    let parsed: Value =
        serde_json::from_str(&body(simulated().await, q.clone(), ResultFormat::Json).await)
            .unwrap();
    assert_eq!(parsed, json!({"tag":"sim.ramp.1","values":[]}));
    assert_eq!(body(simulated().await, q, ResultFormat::Ndjson).await, "");
}

#[tokio::test]
async fn search_json_has_tags_and_next_offset() {
    let source = simulated().await;
    let page = body(
        source.clone(),
        json!({"type":"search","pattern":"sim.*","limit":1}),
        ResultFormat::Json,
    )
    .await;
    let parsed: Value = serde_json::from_str(&page).unwrap();
    let direct = source
        .search(&serde_json::from_value(json!({"pattern":"sim.*","limit":1})).unwrap())
        .await
        .unwrap();
    assert_eq!(
        parsed,
        json!({"tags": serde_json::to_value(&direct.tags).unwrap(), "nextOffset": direct.next_offset})
    );
    assert_eq!(parsed["nextOffset"], 1);
    let last: Value = serde_json::from_str(
        &body(
            source.clone(),
            json!({"type":"search","pattern":"nothing-matches"}),
            ResultFormat::Json,
        )
        .await,
    )
    .unwrap();
    assert_eq!(last, json!({"tags":[],"nextOffset":null}));
    let ndjson = lines(
        &body(
            source,
            json!({"type":"search","pattern":"sim.*"}),
            ResultFormat::Ndjson,
        )
        .await,
    );
    assert!(ndjson.len() > 1);
    assert!(
        ndjson
            .iter()
            .all(|tag| tag["name"].as_str().unwrap().starts_with("sim."))
    );
}

#[tokio::test]
async fn snapshot_names_each_tag_beside_its_value() {
    let source = simulated().await;
    let tags = ["sim.ramp.1", "sim.sinusoid.1"];
    let parsed: Value = serde_json::from_str(
        &body(
            source.clone(),
            json!({"type":"snapshot","tags":tags}),
            ResultFormat::Json,
        )
        .await,
    )
    .unwrap();
    let values = parsed["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    for (value, tag) in values.iter().zip(tags) {
        assert_eq!(value["tag"], tag);
        let as_value: TagValue = serde_json::from_value(value.clone()).unwrap();
        assert!(as_value.value.is_some());
        let mut expected = serde_json::to_value(&as_value).unwrap();
        expected
            .as_object_mut()
            .unwrap()
            .insert("tag".into(), tag.into());
        assert_eq!(value, &expected, "exactly the value's fields plus the tag");
    }
    let ndjson = lines(
        &body(
            source,
            json!({"type":"snapshot","tags":tags}),
            ResultFormat::Ndjson,
        )
        .await,
    );
    assert_eq!(ndjson.len(), 2);
    assert_eq!(ndjson[1]["tag"], "sim.sinusoid.1");
}

#[tokio::test]
async fn plot_and_at_times_are_the_sources_samples() {
    let source = simulated().await;
    let plot = json!({"type":"plot","tag":"sim.sinusoid.1","start":START,"end":"2024-05-01T01:00:00Z","intervals":10});
    let text = body(source.clone(), plot.clone(), ResultFormat::Json).await;
    let Query::Plot(plot_query) = query(plot) else {
        unreachable!()
    };
    let direct = source
        .plot(&plot_query.resolve(Utc::now()).unwrap())
        .await
        .unwrap()
        .values;
    assert!(direct.len() > 10);
    same_text(&text, &series_text("sim.sinusoid.1", &direct));

    let times = ["2024-05-01T00:00:00.250Z", "2024-05-01T00:10:00Z"];
    let at = json!({"type":"atTimes","tag":"sim.ramp.1","times":times});
    let ndjson = lines(&body(source, at, ResultFormat::Ndjson).await);
    assert_eq!(ndjson.len(), 2);
    assert_eq!(ndjson[0]["time"], times[0]);
    assert_eq!(ndjson[1]["time"], times[1]);
}

#[tokio::test]
async fn processed_groups_values_by_function() {
    let source = simulated().await;
    let q = json!({"type":"processed","tag":"sim.ramp.1","start":START,"end":"2024-05-01T03:00:00Z","interval":"1h","functions":["AVG","MAX"]});
    let text = body(source.clone(), q.clone(), ResultFormat::Json).await;
    let parsed: Value = serde_json::from_str(&text).unwrap();
    let Query::Processed(processed) = query(q.clone()) else {
        unreachable!()
    };
    let direct = source
        .processed(&processed.resolve(Utc::now()).unwrap())
        .await
        .unwrap()
        .values;
    let functions: Vec<String> = direct
        .iter()
        .map(|(function, samples)| {
            let values = series_text("", samples);
            let array = values
                .trim_start_matches("{\"tag\":\"\",\"values\":")
                .trim_end_matches('}');
            format!("\"{}\":{array}", function.name())
        })
        .collect();
    same_text(
        &text,
        &format!(
            "{{\"tag\":\"sim.ramp.1\",\"functions\":{{{}}}}}",
            functions.join(",")
        ),
    );
    assert_eq!(parsed["functions"]["AVG"].as_array().unwrap().len(), 3);

    let ndjson = lines(&body(source, q, ResultFormat::Ndjson).await);
    assert_eq!(ndjson.len(), 6);
    assert_eq!(ndjson[0]["function"], "AVG");
    assert_eq!(ndjson[3]["function"], "MAX");
    assert_eq!(ndjson[0]["time"], START);
}

#[tokio::test]
async fn failures_carry_the_protocols_codes() {
    let unknown = failure_for(json!({"type":"snapshot","tags":["no.such.tag"]})).await;
    assert_eq!(unknown.code, failure::UNKNOWN_TAG);
    assert!(
        unknown.message.contains("no.such.tag"),
        "{}",
        unknown.message
    );

    let reversed = failure_for(
        json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-02T00:00:00Z","end":START}),
    )
    .await;
    assert_eq!(reversed.code, failure::INVALID_QUERY);

    let empty = failure_for(json!({"type":"snapshot","tags":[]})).await;
    assert_eq!(empty.code, failure::INVALID_QUERY);

    let unknown_raw =
        failure_for(json!({"type":"raw","tag":"nope","start":START,"end":"2024-05-01T00:00:10Z"}))
            .await;
    assert_eq!(unknown_raw.code, failure::UNKNOWN_TAG);
}

#[tokio::test]
async fn the_stream_is_lazy_and_dropping_it_stops_the_read() {
    // A whole day at one value a second: taking only the first chunk must not serialize it all.
    let q = json!({"type":"raw","tag":"sim.ramp.1","start":START,"end":"2024-05-02T00:00:00Z"});
    let mut stream = answer(simulated().await, query(q), ResultFormat::Json);
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with("{\"tag\":\"sim.ramp.1\",\"values\":[{\"time\":"));
    drop(stream);
}

#[test]
fn source_errors_map_to_failure_codes() {
    let unsupported = SourceError::Unsupported {
        source_name: "s".into(),
        what: "plots",
    };
    assert_eq!(failure_of(&unsupported).code, failure::UNSUPPORTED);
    assert_eq!(
        failure_of(&SourceError::UnknownSource("x".into())).code,
        failure::UNKNOWN_SOURCE
    );
    let db = SourceError::Database {
        source_name: "s".into(),
        message: "locked".into(),
    };
    assert_eq!(failure_of(&db).code, failure::SOURCE_ERROR);
    let _ = Utc.timestamp_opt(0, 0);
}
