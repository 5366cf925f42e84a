//! Answer serialization for the relay: a raw read of 1 M simulated values written as the
//! app's JSON body in 64 KiB chunks (what the connector does for every relayed raw query),
//! beside the same read serialized value by value with `serde_json` (each sample as a
//! `TagValue`), and beside the bare read with no serialization, in one run.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::json;
use uplink_connector::sources::simulated::SimulatedSource;
use uplink_connector::{DataSource, SourceConfig, answer};
use uplink_link::ResultFormat;
use uplink_measure::{Timing, compare, describe};
use uplink_model::{Query, RawRequest, TagValue, time_expr};

const VALUES: u64 = 1_000_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(raw_answer());
}

fn source() -> Arc<dyn DataSource> {
    let config = SourceConfig {
        name: "bench".into(),
        kind: "simulated".into(),
        description: String::new(),
        settings: json!({}).as_object().cloned().expect("object"),
    };
    Arc::new(SimulatedSource::open(&config).expect("simulated source"))
}

fn raw_query() -> Query {
    // One value a second: 1 M values end to end.
    serde_json::from_value(json!({
        "type": "raw", "tag": "sim.sinusoid.1",
        "start": "2024-01-01T00:00:00Z",
        "end": time_expr::from_micros(1_704_067_200_000_000 + (VALUES as i64 - 1) * 1_000_000),
    }))
    .expect("query")
}

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

/// The connector's answer body: bytes produced.
async fn chunked_body(source: &Arc<dyn DataSource>, format: ResultFormat) -> usize {
    let mut body = answer::answer(source.clone(), raw_query(), format);
    let mut bytes = 0;
    while let Some(chunk) = body.next().await {
        bytes += chunk.expect("chunk").len();
    }
    bytes
}

fn request() -> RawRequest {
    let Query::Raw(raw) = raw_query() else {
        unreachable!()
    };
    raw.resolve(chrono::Utc::now()).expect("request")
}

/// The same body through `serde_json`, one `TagValue` at a time, into one growing buffer.
async fn serde_body(source: &Arc<dyn DataSource>) -> usize {
    let mut stream = source.raw(&request()).await.expect("raw");
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"tag\":\"sim.sinusoid.1\",\"values\":[");
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        for sample in chunk.expect("chunk") {
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut out, &TagValue::from(sample)).expect("serialise");
        }
    }
    out.extend_from_slice(b"]}");
    out.len()
}

async fn bare_read(source: &Arc<dyn DataSource>) -> usize {
    let mut stream = source.raw(&request()).await.expect("raw");
    let mut count = 0;
    while let Some(chunk) = stream.next().await {
        count += chunk.expect("chunk").len();
    }
    count
}

#[allow(clippy::print_stdout)]
async fn raw_answer() {
    let source = source();
    let ours = chunked_body(&source, ResultFormat::Json).await;
    let theirs = serde_body(&source).await;
    assert_eq!(ours, theirs, "both write the same body");
    assert_eq!(bare_read(&source).await as u64, VALUES);

    let chunked = time_async((1, 7), || chunked_body(&source, ResultFormat::Json)).await;
    let serde = time_async((1, 7), || serde_body(&source)).await;
    let bare = time_async((1, 7), || bare_read(&source)).await;
    let ndjson = time_async((1, 7), || chunked_body(&source, ResultFormat::Ndjson)).await;
    println!(
        "{}",
        compare(
            "raw answer body, 1M values (json, 64 KiB chunks)",
            &chunked,
            "serde_json per TagValue",
            &serde
        )
    );
    println!(
        "{}",
        describe("raw answer body json", &chunked, Some(VALUES))
    );
    println!(
        "{}",
        describe("raw answer body ndjson", &ndjson, Some(VALUES))
    );
    println!(
        "{}",
        describe("raw read alone (no serialization)", &bare, Some(VALUES))
    );
    println!(
        "body size: {:.1} MB ({:.1} bytes per value)",
        ours as f64 / 1e6,
        ours as f64 / VALUES as f64
    );
}
