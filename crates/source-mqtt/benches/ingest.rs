//! MQTT ingest speed: messages a real broker (mosquitto on loopback, as the tests start it)
//! delivers into the source's snapshot per second, beside a bare rumqttc loop that only reads
//! each message's topic and parses its number, in the same process.
//!
//! Each run first fills the broker's queue for a persistent session (the subscriber offline,
//! QoS 0 messages queued), then times the subscriber connecting and taking every queued
//! message: the broker has the messages ready, so the run measures the subscriber, not the
//! publisher. Subject and baseline alternate run by run. Goal: ≥ 100 000 values/s into the
//! snapshot, and ≥ 0.7 of the bare loop's rate. Prints medians, values/s and the ratio.
//!
//! `cargo bench -p uplink-source-mqtt --bench ingest` (needs mosquitto, as the tests do).

#[allow(dead_code)]
#[path = "../tests/broker/mosquitto.rs"]
mod mosquitto;

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use uplink_measure::{Timing, compare, describe};
use uplink_source::{DataSource, HealthState, SourceConfig};
use uplink_source_mqtt::MqttSource;

const MESSAGES: u64 = 200_000;
const TOPICS: u64 = 1_000;
const WARMUP: usize = 1;
const RUNS: usize = 7;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

fn options(id: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    options
}

/// Publishes the run's messages at QoS 0, then one at QoS 1 on another topic: once that one is
/// acknowledged the broker has queued all the others (it handles one connection in order).
async fn fill(port: u16, run: usize) {
    let (client, mut eventloop) =
        AsyncClient::new(options(&format!("bench-pub-{run}"), port), 4096);
    let publisher = tokio::spawn(async move {
        for i in 0..MESSAGES {
            let value = (i as f64) * 0.5;
            client
                .publish(
                    format!("bench/{}", i % TOPICS),
                    QoS::AtMostOnce,
                    false,
                    value.to_string(),
                )
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
        match eventloop
            .poll()
            .await
            .expect("the publisher stays connected")
        {
            Event::Incoming(Packet::PubAck(_)) => break,
            _ => continue,
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

fn config(port: u16) -> SourceConfig {
    SourceConfig {
        name: "bench".into(),
        kind: "mqtt".into(),
        description: String::new(),
        settings: json!({
            "brokerUrl": format!("mqtt://127.0.0.1:{port}"),
            "clientId": "bench-source",
            "cleanSession": false,
            "subscriptions": "bench/+ plain qos=0 name=t{2}",
        })
        .as_object()
        .cloned()
        .expect("object"),
    }
}

/// The source: from opening to the last queued message in its snapshot.
async fn through_source(port: u16) -> Duration {
    let start = Instant::now();
    let source = MqttSource::open(&config(port))
        .await
        .expect("the source opens");
    while source.messages() < MESSAGES {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = start.elapsed();
    let health = source.health();
    assert_eq!(health.state, HealthState::Ok, "{health:?}");
    let last = source
        .snapshot(&[format!("t{}", (MESSAGES - 1) % TOPICS)])
        .await
        .expect("snapshot");
    assert_eq!(last[0].value, Some((MESSAGES - 1) as f64 * 0.5));
    took
}

/// The baseline: a bare rumqttc loop that reads each message's topic and number.
async fn bare(port: u16) -> Duration {
    let start = Instant::now();
    let (client, mut eventloop) = AsyncClient::new(options("bench-bare", port), 64);
    client
        .subscribe("bench/+", QoS::AtMostOnce)
        .await
        .expect("subscribe");
    let (mut count, mut sum) = (0u64, 0.0);
    while count < MESSAGES {
        if let Event::Incoming(Packet::Publish(publish)) =
            eventloop.poll().await.expect("connected")
        {
            let level = publish.topic.rsplit('/').next().unwrap_or_default();
            let number: f64 = std::str::from_utf8(&publish.payload)
                .expect("text")
                .parse()
                .expect("a number");
            sum += number + level.len() as f64;
            count += 1;
        }
    }
    let took = start.elapsed();
    std::hint::black_box(sum);
    took
}

async fn bench() {
    let broker = mosquitto::Mosquitto::start(mosquitto::Setup {
        bench_queues: true,
        ..Default::default()
    });
    // Both sessions exist before the first fill, so the broker queues for them.
    drop(
        MqttSource::open(&config(broker.port))
            .await
            .expect("the source opens"),
    );
    {
        let (client, mut eventloop) = AsyncClient::new(options("bench-bare", broker.port), 64);
        client
            .subscribe("bench/+", QoS::AtMostOnce)
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
        fill(broker.port, run).await;
        let took = through_source(broker.port).await;
        // On a worker thread, as the source's connection task runs.
        let plain = tokio::spawn(bare(broker.port))
            .await
            .expect("the bare loop");
        if run >= WARMUP {
            ours.push(took);
            baseline.push(plain);
        }
    }
    let ours = Timing::from_samples(ours);
    let baseline = Timing::from_samples(baseline);
    report(&compare(
        &format!("MQTT ingest of {MESSAGES} plain messages on {TOPICS} topics into the snapshot"),
        &ours,
        "a bare rumqttc loop that only decodes",
        &baseline,
    ));
    report(&describe("MQTT source", &ours, Some(MESSAGES)));
    report(&describe("bare rumqttc loop", &baseline, Some(MESSAGES)));
    let rate = ours.per_second(MESSAGES);
    let ratio = baseline.median().as_secs_f64() / ours.median().as_secs_f64();
    report(&format!(
        "values/s into the snapshot: {rate:.0}; ratio to the bare loop: {ratio:.2}; goal ≥ 100 000 values/s and ≥ 0.7: {}",
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
