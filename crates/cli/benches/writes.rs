//! Writes measured end to end, beside what they cannot beat: an app's `PUT …/values` with one
//! value and an `Idempotency-Key` (over HTTPS) → the hub (grant check, key claimed, audit) →
//! the link (WebSockets, a client result) → the connector (site checks, the value before, the
//! simulated source's write, the activity trail) and back, against the connector's own
//! in-process write (`ConnectorRuntime::write`: the same checks, source and trail) in the same
//! run.
//!
//! Writes are started on a fixed schedule of 1 000 a second, at most 64 awaiting their answer
//! at once (an app's connection pool), and each one's latency is from its scheduled start to
//! its answer, so a write held back behind slow answers counts its wait. The hub's store
//! commits with `synchronous=FULL`: with a key, a write is two commits (the key claimed; the
//! audit rows with the answer kept), without one a single commit (the audit rows).
//!
//! What bounds writes/s: the same schedule run against the hub's store alone — each write's
//! two commits (`claim_write`, then `answer_write` with its audit row), nothing else — shows
//! what the store's commits cost at this rate, beside the whole path.
//!
//! Run with `cargo bench -p uplink-cli --bench writes` (optimised), or `cargo bench --profile
//! dev -p uplink-cli --bench writes` on a debug build.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};
use uplink_connector::{SourceConfig, kinds};
use uplink_link::{WriteItem, WriteRequest, WriteValue};
use uplink_measure::{Timing, compare, describe};
use uplink_signalr::Transport;
use uplink_testkit::{APP, TestHub};

/// Writes measured per path.
const WRITES: usize = 2_000;
/// Writes started per second.
const RATE: u64 = 1_000;

fn config() -> SourceConfig {
    let mut settings = serde_json::Map::new();
    settings.insert("writableTags".into(), "sim.ramp.*".into());
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

/// The most writes awaiting their answer at once: an app's connection pool, not one
/// connection per write when answers fall behind.
const IN_FLIGHT: usize = 64;

/// Starts `write(i)` for i in 0..WRITES on a schedule of RATE a second, at most IN_FLIGHT at
/// once; each one's latency runs from its scheduled start (a write held back by the cap counts
/// its wait), and how long starting them all took.
async fn paced<F, Fut>(write: F) -> (Timing, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let began = Instant::now();
    let step = Duration::from_micros(1_000_000 / RATE);
    let mut tasks = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let due = began + step * u32::try_from(i).unwrap();
        tokio::time::sleep_until(due.into()).await;
        let slot = slots.clone().acquire_owned().await.unwrap();
        let write = write(i);
        tasks.push(tokio::spawn(async move {
            write.await;
            drop(slot);
            due.elapsed()
        }));
    }
    let span = began.elapsed();
    let mut samples = Vec::with_capacity(WRITES);
    for task in tasks {
        samples.push(task.await.unwrap());
    }
    (Timing::from_samples(samples), span)
}

fn request(i: usize) -> WriteRequest {
    WriteRequest {
        write_id: format!("w{i}"),
        app_id: APP.into(),
        user_id: "usr_bench".into(),
        source: "simulated".into(),
        values: vec![WriteItem {
            tag: "sim.ramp.1".into(),
            value: WriteValue::Number(i as f64),
            time: None,
        }],
    }
}

async fn linked_runtime(kit: &TestHub, data_dir: &std::path::Path) -> (ConnectorRuntime, String) {
    CredentialStore::new(data_dir)
        .save(&LinkCredentials {
            hub_url: kit.issuer.clone(),
            connector_id: kit.plant_id().to_owned(),
            ca_pem: Some(kit.ca_pem().to_owned()),
            secret: LinkSecret::ClientCredential {
                credential: kit.plant.credential.expose().to_owned(),
            },
        })
        .unwrap();
    let mut options = RuntimeOptions::new(data_dir);
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
    (runtime, source_id)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let kit = TestHub::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let (connector, source_id) = linked_runtime(&kit, data_dir.path()).await;
        let connector = Arc::new(connector);

        let (baseline, baseline_span) = paced(|i| {
            let connector = connector.clone();
            async move {
                let answer = connector.write(&request(i)).await;
                assert_eq!(answer.results[0].result, uplink_link::WriteResult::Ok);
            }
        })
        .await;

        let token = kit
            .mint_token(
                &kit.user.id,
                APP,
                std::slice::from_ref(&source_id),
                &["data.read", "data.write"],
                &["data.read", "data.write"],
                3600,
            )
            .await;
        let url = kit.url(&format!("/api/v1/sources/{source_id}/values"));
        // Connections opened before measuring, as many as writes in flight, as an app's pool
        // holds them: otherwise the first path measured pays the TLS handshakes.
        let warm: Vec<_> = (0..IN_FLIGHT)
            .map(|_| kit.client.get(kit.url("/healthz")).send())
            .collect();
        futures::future::join_all(warm).await;
        let (client, url, token) = (&kit.client, &url, &token);
        // `keyed`: the Idempotency-Key prefix, new per pass so that no pass replays another's.
        let through_hub = |keyed: Option<&'static str>| {
            paced(move |i| {
                let mut request = client
                    .put(url)
                    .bearer_auth(token)
                    .json(&serde_json::json!({"values": [{"tag": "sim.ramp.1", "value": i}]}));
                if let Some(prefix) = keyed {
                    request = request.header("Idempotency-Key", format!("{prefix}-{i}"));
                }
                async move {
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.unwrap();
                    assert!(status.is_success(), "{status}: {body}");
                    assert_eq!(body["results"][0]["result"], "ok", "{body}");
                }
            })
        };
        // One unmeasured pass first: the hub's store, the link and the pool reach their steady
        // state before either path is timed, so neither pays it for the other.
        through_hub(Some("warm-up")).await;
        let (relayed, relayed_span) = through_hub(Some("bench")).await;
        let (unkeyed, unkeyed_span) = through_hub(None).await;
        let store = kit.hub.store.clone();
        let (store_alone, store_span) = paced(|i| {
            let store = store.clone();
            async move {
                use uplink_hub::store::{AuditEvent, WriteClaim, WriteKey};
                let key = WriteKey {
                    app_id: APP.into(),
                    user_id: "usr_bench".into(),
                    key: format!("store-{i}"),
                };
                let now = uplink_testkit::unix_now();
                let claim = store.claim_write(&key, "digest", now, now - 86_400).await.unwrap();
                assert_eq!(claim, WriteClaim::Claimed);
                let audit = AuditEvent {
                    at: now,
                    event: "write".into(),
                    user_id: Some("usr_bench".into()),
                    app_id: Some(APP.into()),
                    source_id: Some("src_bench".into()),
                    detail: "tag=sim.ramp.1 result=ok".into(),
                };
                store
                    .answer_write(&key, 200, r#"{"results":[]}"#, &[audit])
                    .await
                    .unwrap();
            }
        })
        .await;

        println!(
            "writes, one value each, started at {RATE}/s ({WRITES} per path; latency from start to answer):"
        );
        for (label, timing, span) in [
            ("in-process connector write (baseline)", &baseline, baseline_span),
            ("app → hub → connector → source → app, with Idempotency-Key", &relayed, relayed_span),
            ("the same without Idempotency-Key", &unkeyed, unkeyed_span),
            ("the hub's store alone: key claimed, answer and audit kept (two commits)", &store_alone, store_span),
        ] {
            println!(
                "  {} | p50 {} | started at {:.0}/s",
                describe(label, timing, None),
                uplink_measure::human(timing.percentile(50.0)),
                WRITES as f64 / span.as_secs_f64()
            );
        }
        println!(
            "  {}",
            compare("through the hub", &relayed, "in process", &baseline)
        );
        println!(
            "  {}",
            compare("through the hub, no key", &unkeyed, "in process", &baseline)
        );
        Arc::try_unwrap(connector)
            .unwrap_or_else(|_| panic!("the connector is still shared"))
            .stop()
            .await;
    });
}
