//! MQTT ingest speed: values a real broker (mosquitto on loopback, as the tests start it)
//! delivers into the source's snapshot per second, beside a bare rumqttc loop that only decodes
//! each message (the topic and number of a plain message; the protobuf of a Sparkplug B one), in
//! the same process.
//!
//! Each run first fills the broker's queue for a persistent session (the subscriber offline,
//! QoS 0 messages queued), then times the subscriber connecting and taking every queued
//! message: the broker has the messages ready, so the run measures the subscriber, not the
//! publisher. Subject and baseline alternate run by run. Two workloads of 200 000 values each:
//! plain numbers on 1 000 topics, and Sparkplug B DDATA of 10 metrics by alias (after the
//! node's and device's births). Goal: ≥ 100 000 values/s into the snapshot, and ≥ 0.7 of the
//! bare loop's rate. Prints medians, values/s and the ratio.
//!
//! `cargo bench -p uplink-source-mqtt --bench ingest` (needs mosquitto, as the tests do).

#[allow(dead_code)]
#[path = "../tests/broker/mosquitto.rs"]
mod mosquitto;

use std::time::{Duration, Instant};

use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use uplink_measure::{Timing, compare, describe};
use uplink_source::{DataSource, HealthState, SourceConfig};
use uplink_source_mqtt::MqttSource;
use uplink_source_mqtt::sparkplug::{Metric, MetricValue, Payload, code};

const VALUES: u64 = 200_000;
const TOPICS: u64 = 1_000;
const METRICS: u64 = 10;
const WARMUP: usize = 1;
const RUNS: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Workload {
    Plain,
    Sparkplug,
}

impl Workload {
    /// Messages the subscriber receives per run (Sparkplug: two births, then the data).
    fn messages(self) -> u64 {
        match self {
            Workload::Plain => VALUES,
            Workload::Sparkplug => 2 + VALUES / METRICS,
        }
    }

    fn filter(self) -> &'static str {
        match self {
            Workload::Plain => "bench/+",
            Workload::Sparkplug => "spBv1.0/bench/#",
        }
    }

    fn line(self) -> &'static str {
        match self {
            Workload::Plain => "bench/+ plain qos=0 name=t{2}",
            Workload::Sparkplug => "spBv1.0/bench/# sparkplug qos=0",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Plain => "plain",
            Workload::Sparkplug => "sparkplug",
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let broker = mosquitto::Mosquitto::start(mosquitto::Setup {
            bench_queues: true,
            ..Default::default()
        });
        for workload in [Workload::Plain, Workload::Sparkplug] {
            bench(broker.port, workload).await;
        }
    });
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    options
}

fn sparkplug(seq: u64, metrics: Vec<Metric>) -> Vec<u8> {
    Payload {
        timestamp: Some(1_700_000_000_000),
        metrics,
        seq: Some(seq % 256),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The run's messages: (topic, payload).
fn messages(workload: Workload) -> Vec<(String, Vec<u8>)> {
    match workload {
        Workload::Plain => (0..VALUES)
            .map(|i| {
                let value = (i as f64) * 0.5;
                (
                    format!("bench/{}", i % TOPICS),
                    value.to_string().into_bytes(),
                )
            })
            .collect(),
        Workload::Sparkplug => {
            let birth = |alias: u64, value: f64| Metric {
                name: Some(format!("m{alias}")),
                alias: Some(alias),
                datatype: Some(code::DOUBLE),
                value: Some(MetricValue::DoubleValue(value)),
                ..Default::default()
            };
            let bd_seq = Metric {
                name: Some("bdSeq".into()),
                datatype: Some(code::UINT64),
                value: Some(MetricValue::LongValue(0)),
                ..Default::default()
            };
            let mut out = vec![
                (
                    "spBv1.0/bench/NBIRTH/edge".to_owned(),
                    sparkplug(0, vec![bd_seq]),
                ),
                (
                    "spBv1.0/bench/DBIRTH/edge/dev".to_owned(),
                    sparkplug(1, (0..METRICS).map(|a| birth(a, 0.0)).collect()),
                ),
            ];
            for n in 0..VALUES / METRICS {
                let metrics = (0..METRICS)
                    .map(|alias| Metric {
                        alias: Some(alias),
                        timestamp: Some(1_700_000_000_000 + n),
                        datatype: Some(code::DOUBLE),
                        value: Some(MetricValue::DoubleValue((n * METRICS + alias) as f64)),
                        ..Default::default()
                    })
                    .collect();
                out.push((
                    "spBv1.0/bench/DDATA/edge/dev".to_owned(),
                    sparkplug(2 + n, metrics),
                ));
            }
            out
        }
    }
}

/// Publishes the run's messages at QoS 0, then one at QoS 1 on another topic: once that one is
/// acknowledged the broker has queued all the others (it handles one connection in order).
async fn fill(port: u16, id: String, workload: Workload) {
    let (client, mut eventloop) = AsyncClient::new(options(&id, port), 4096);
    let publisher = tokio::spawn(async move {
        for (topic, payload) in messages(workload) {
            client
                .publish(topic, QoS::AtMostOnce, false, payload)
                .await
                .expect("publish queued");
        }
        client
            .publish("marker", QoS::AtLeastOnce, false, "done")
            .await
            .expect("marker queued");
        client
    });
    loop {
        if let Event::Incoming(Packet::PubAck(_)) = eventloop
            .poll()
            .await
            .expect("the publisher stays connected")
        {
            break;
        }
    }
    let client = publisher.await.expect("publisher");
    let _ = client.disconnect().await;
    for _ in 0..100 {
        if eventloop.poll().await.is_err() {
            break;
        }
    }
}

fn config(port: u16, workload: Workload) -> SourceConfig {
    SourceConfig {
        name: "bench".into(),
        kind: "mqtt".into(),
        description: String::new(),
        settings: json!({
            "brokerUrl": format!("mqtt://127.0.0.1:{port}"),
            "clientId": format!("bench-source-{}", workload.name()),
            "cleanSession": false,
            "subscriptions": workload.line(),
        })
        .as_object()
        .cloned()
        .expect("object"),
    }
}

/// The source: from opening to the last queued message in its snapshot.
async fn through_source(port: u16, workload: Workload) -> Duration {
    let start = Instant::now();
    let source = MqttSource::open(&config(port, workload))
        .await
        .expect("the source opens");
    while source.messages() < workload.messages() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = start.elapsed();
    let health = source.health();
    assert_eq!(health.state, HealthState::Ok, "{health:?}");
    let (tag, value) = match workload {
        Workload::Plain => (
            format!("t{}", (VALUES - 1) % TOPICS),
            (VALUES - 1) as f64 * 0.5,
        ),
        Workload::Sparkplug => (
            format!("bench/edge/dev/m{}", METRICS - 1),
            (VALUES - 1) as f64,
        ),
    };
    let last = source.snapshot(&[tag]).await.expect("snapshot");
    assert_eq!(last[0].value, Some(value));
    took
}

/// The baseline: a bare rumqttc loop that only decodes each message.
async fn bare(port: u16, workload: Workload) -> Duration {
    let start = Instant::now();
    let id = format!("bench-bare-{}", workload.name());
    let (client, mut eventloop) = AsyncClient::new(options(&id, port), 64);
    client
        .subscribe(workload.filter(), QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let (mut count, mut sum) = (0u64, 0.0);
    while count < workload.messages() {
        if let Event::Incoming(Packet::Publish(publish)) =
            eventloop.poll().await.expect("connected")
        {
            sum += match workload {
                Workload::Plain => {
                    let level = publish.topic.rsplit('/').next().unwrap_or_default();
                    let number: f64 = std::str::from_utf8(&publish.payload)
                        .expect("text")
                        .parse()
                        .expect("a number");
                    number + level.len() as f64
                }
                Workload::Sparkplug => Payload::decode(publish.payload.as_ref())
                    .expect("a Sparkplug payload")
                    .metrics
                    .iter()
                    .map(|m| match m.value {
                        Some(MetricValue::DoubleValue(v)) => v,
                        _ => 0.0,
                    })
                    .sum(),
            };
            count += 1;
        }
    }
    let took = start.elapsed();
    std::hint::black_box(sum);
    took
}

async fn bench(port: u16, workload: Workload) {
    // Both sessions exist before the first fill, so the broker queues for them.
    drop(
        MqttSource::open(&config(port, workload))
            .await
            .expect("the source opens"),
    );
    {
        let id = format!("bench-bare-{}", workload.name());
        let (client, mut eventloop) = AsyncClient::new(options(&id, port), 64);
        client
            .subscribe(workload.filter(), QoS::AtMostOnce)
            .await
            .expect("subscribe");
        while !matches!(
            eventloop.poll().await.expect("connected"),
            Event::Incoming(Packet::SubAck(_))
        ) {}
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (mut ours, mut baseline) = (Vec::new(), Vec::new());
    for run in 0..WARMUP + RUNS {
        fill(
            port,
            format!("bench-pub-{}-{run}", workload.name()),
            workload,
        )
        .await;
        let took = through_source(port, workload).await;
        // On a worker thread, as the source's connection task runs.
        let plain = tokio::spawn(bare(port, workload))
            .await
            .expect("the bare loop");
        if run >= WARMUP {
            ours.push(took);
            baseline.push(plain);
        }
    }
    let ours = Timing::from_samples(ours);
    let baseline = Timing::from_samples(baseline);
    let what = match workload {
        Workload::Plain => format!("{VALUES} plain messages on {TOPICS} topics"),
        Workload::Sparkplug => format!(
            "{} Sparkplug DDATA of {METRICS} metrics ({VALUES} values)",
            VALUES / METRICS
        ),
    };
    report(&compare(
        &format!("MQTT ingest of {what} into the snapshot"),
        &ours,
        "a bare rumqttc loop that only decodes",
        &baseline,
    ));
    report(&describe("MQTT source", &ours, Some(VALUES)));
    report(&describe("bare rumqttc loop", &baseline, Some(VALUES)));
    let rate = ours.per_second(VALUES);
    let ratio = baseline.median().as_secs_f64() / ours.median().as_secs_f64();
    report(&format!(
        "{}: values/s into the snapshot: {rate:.0}; ratio to the bare loop: {ratio:.2}; goal ≥ 100 000 values/s and ≥ 0.7: {}",
        workload.name(),
        if rate >= 100_000.0 && ratio >= 0.7 {
            "met"
        } else {
            "NOT met"
        }
    ));
}

#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}
