//! Live values measured end to end, beside what they cannot beat: a value produced by the
//! simulated source (20 tags, a new value of each every 100 ms: 200 values/s) → the
//! connector's subscription → the link (WebSockets) → the hub → the app's event stream
//! (`GET …/subscribe?interval=0s` over HTTPS), against the same source's own in-process
//! subscription in the same run.
//!
//! Latency is the arrival time minus the value's time stamp, which the simulated source sets
//! to the millisecond it produced the value (sample interval 1 ms), so both figures carry the
//! same ≤ 1 ms rounding; their difference is what the link, the hub and the stream add.
//!
//! Run with `cargo bench -p uplink-cli --bench live` (optimised), or `cargo bench --profile dev
//! -p uplink-cli --bench live` on a debug build.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};
use uplink_connector::{SourceConfig, kinds};
use uplink_measure::{Timing, describe};
use uplink_signalr::Transport;
use uplink_testkit::{APP, TestHub};

/// Values measured per path.
const VALUES: usize = 4_000;
const TAGS: usize = 20;

fn config() -> SourceConfig {
    let mut settings = serde_json::Map::new();
    settings.insert("sampleInterval".into(), "1ms".into());
    settings.insert("tagsPerShape".into(), 4.into());
    SourceConfig {
        name: "simulated".into(),
        kind: "simulated".into(),
        description: "Bench".into(),
        settings: kinds::schema("simulated")
            .unwrap()
            .validate(&settings)
            .unwrap(),
    }
}

fn tags() -> Vec<String> {
    ["sinusoid", "ramp", "square", "randomWalk", "noise"]
        .iter()
        .flat_map(|shape| (1..=4).map(move |i| format!("sim.{shape}.{i}")))
        .collect()
}

fn latency(time: &str) -> Duration {
    let stamped = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    (Utc::now() - stamped.with_timezone(&Utc))
        .to_std()
        .unwrap_or_default()
}

async fn in_process() -> Timing {
    let source = kinds::open(&config()).await.unwrap();
    let mut stream = source.subscribe(&tags()).await.unwrap();
    let mut samples = Vec::with_capacity(VALUES);
    while samples.len() < VALUES {
        let values = stream.next().await.unwrap();
        for value in values {
            samples.push((Utc::now() - value.time).to_std().unwrap_or_default());
        }
    }
    Timing::from_samples(samples)
}

async fn through_the_hub() -> Timing {
    let kit = TestHub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    CredentialStore::new(data_dir.path())
        .save(&LinkCredentials {
            hub_url: kit.issuer.clone(),
            connector_id: kit.plant_id().to_owned(),
            ca_pem: Some(kit.ca_pem().to_owned()),
            secret: LinkSecret::ClientCredential {
                credential: kit.plant.credential.expose().to_owned(),
            },
        })
        .unwrap();
    let mut options = RuntimeOptions::new(data_dir.path());
    options.transports = vec![Transport::WebSockets];
    options.write_status_file = false;
    let runtime = ConnectorRuntime::start(options).await.unwrap();
    runtime.edit_source("simulated", config()).await.unwrap();
    let mut status = runtime.status();
    let source_id = loop {
        {
            let now = status.borrow_and_update();
            if now.link == LinkState::Connected
                && let Some(s) = now
                    .sources
                    .iter()
                    .find(|s| s.description == "Bench" && s.hub_id.is_some())
            {
                break s.hub_id.clone().unwrap();
            }
        }
        status.changed().await.unwrap();
    };
    let token = kit
        .mint_app_token(&kit.user.id, APP, std::slice::from_ref(&source_id), 3600)
        .await;
    let mut response = kit
        .client
        .get(kit.url(&format!(
            "/api/v1/sources/{source_id}/subscribe?tags={}&interval=0s",
            tags().join(",")
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut samples = Vec::with_capacity(VALUES);
    let mut buffer = String::new();
    let mut first = true;
    while samples.len() < VALUES {
        let chunk = response.chunk().await.unwrap().unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(at) = buffer.find("\n\n") {
            let block: String = buffer.drain(..at + 2).collect();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            // The snapshot's values were not produced just now.
            if std::mem::take(&mut first) {
                continue;
            }
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            for value in data["values"].as_array().unwrap() {
                samples.push(latency(value["time"].as_str().unwrap()));
            }
        }
    }
    drop(response);
    runtime.stop().await;
    Timing::from_samples(samples)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let baseline = in_process().await;
        let relayed = through_the_hub().await;
        println!(
            "live values, {TAGS} tags × 10 values/s, {VALUES} values each (latency from the value's time stamp):"
        );
        for (label, timing) in [
            ("in-process subscription (baseline)", &baseline),
            ("source → connector → hub → app stream", &relayed),
        ] {
            println!("  {}", describe(label, timing, None));
        }
    });
}
