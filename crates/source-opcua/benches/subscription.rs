//! OPC UA subscription latency: a value changed on the server (a Write of `Plant/Setpoint` made
//! by a plain async-opcua session) → the new value on Uplink's `opcua` source `subscribe`
//! stream, for a few publishing intervals; beside it, in the same run and for the same writes, a
//! subscription made directly with async-opcua (same publishing and sampling interval). Against
//! a real server (Python asyncua running `tests/fixtures/opcua_server.py` on loopback;
//! `UPLINK_ASYNCUA_PYTHON` or the venv `scripts/lib/setup.sh` installs). Goal: p50 ≤ the
//! publishing interval + 20 ms.
//!
//! Each write waits a pseudo-random part of an interval first, so that changes land anywhere in
//! the server's publishing cycle.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use opcua::client::{ClientBuilder, DataChangeCallback, MonitoredItem, Session};
use opcua::types::{
    AttributeId, DataValue, MessageSecurityMode, MonitoredItemCreateRequest, NodeId, NumericRange,
    TimestampsToReturn, UserTokenPolicy, Variant, WriteValue,
};
use serde_json::json;
use uplink_measure::{Timing, compare, human};
use uplink_model::TagSearch;
use uplink_source::{DataSource, SourceConfig, SourceContext};
use uplink_source_opcua::OpcUaSource;

/// Publishing intervals measured, in milliseconds.
const INTERVALS_MS: [u64; 2] = [100, 250];
/// Changes measured per interval (after one not counted).
const SAMPLES: usize = 40;
/// How long one change may take to arrive before the bench gives up.
const WAIT: Duration = Duration::from_secs(10);

fn python() -> PathBuf {
    std::env::var_os("UPLINK_ASYNCUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/uplink/asyncua-2.1.0/bin/python")
        })
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py");
    // The fixture's own changes (not to Setpoint) slowed down: they would only add load.
    let mut child = Command::new(python())
        .arg(fixture)
        .args(["--period", "5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the asyncua fixture (run scripts/test once to install it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the fixture's port");
    let _server = Server(child);
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .expect("PORT n");
    let url = format!("opc.tcp://127.0.0.1:{port}/uplink/");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let (session, handle) = baseline_session(&url, &dir.path().join("baseline-pki")).await;
        for interval_ms in INTERVALS_MS {
            let interval = Duration::from_millis(interval_ms);
            let (ours, direct) = measure(&url, dir.path(), &session, interval).await;
            report(&compare(
                &format!(
                    "opcua change → subscribe stream, publishing interval {interval_ms} ms (Uplink)"
                ),
                &ours,
                "direct async-opcua subscription",
                &direct,
            ));
            let goal = interval + Duration::from_millis(20);
            report(&format!(
                "  p50 {} (Uplink) / {} (direct), p90 {} / {}; goal p50 ≤ {}: {}",
                human(ours.median()),
                human(direct.median()),
                human(ours.percentile(90.0)),
                human(direct.percentile(90.0)),
                human(goal),
                if ours.median() <= goal {
                    "met"
                } else {
                    "NOT met"
                }
            ));
        }
        handle.abort();
    });
}

/// A plain async-opcua session: it writes the changes and holds the baseline subscription.
async fn baseline_session(
    url: &str,
    pki: &std::path::Path,
) -> (
    std::sync::Arc<Session>,
    tokio::task::JoinHandle<opcua::types::StatusCode>,
) {
    let mut client = ClientBuilder::new()
        .application_name("bench baseline")
        .application_uri("urn:uplink:bench")
        .create_sample_keypair(true)
        .pki_dir(pki)
        .trust_server_certs(false)
        .session_retry_limit(0)
        .client()
        .expect("client");
    let endpoint: opcua::types::EndpointDescription = (
        url,
        "None",
        MessageSecurityMode::None,
        UserTokenPolicy::anonymous(),
    )
        .into();
    let (session, event_loop) = client
        .connect_to_matching_endpoint(endpoint, opcua::client::IdentityToken::Anonymous)
        .await
        .expect("baseline session");
    let handle = event_loop.spawn();
    session.wait_for_connection().await;
    (session, handle)
}

/// Latencies from each write to its value on Uplink's stream and on the direct subscription.
async fn measure(
    url: &str,
    dir: &std::path::Path,
    session: &Session,
    interval: Duration,
) -> (Timing, Timing) {
    let config = SourceConfig {
        name: "bench".into(),
        kind: "opcua".into(),
        description: String::new(),
        settings: json!({
            "endpointUrl": url,
            "browseRoot": "ns=2;s=Plant",
            "publishingInterval": format!("{}ms", interval.as_millis()),
        })
        .as_object()
        .cloned()
        .expect("object"),
    };
    let source = OpcUaSource::open(
        &config,
        &SourceContext::in_dir(dir.join(format!("uplink-{}", interval.as_millis()))),
    )
    .await
    .expect("open the source");
    let tag = "Setpoint".to_owned();
    let page = source.search(&TagSearch::new(&tag)).await.expect("search");
    let node: NodeId = page.tags[0].id.parse().expect("node id");

    // The baseline: the same monitored item, straight from async-opcua, stamped on arrival.
    let (sender, mut direct) = tokio::sync::mpsc::unbounded_channel::<(f64, Instant)>();
    let callback = DataChangeCallback::new(move |value: DataValue, _: &MonitoredItem| {
        if let Some(Variant::Double(v)) = value.value {
            let _ = sender.send((v, Instant::now()));
        }
    });
    let subscription = session
        .create_subscription(interval, 30, 10, 0, 0, true, callback)
        .await
        .expect("baseline subscription");
    let mut item = MonitoredItemCreateRequest::from(node.clone());
    item.requested_parameters.sampling_interval = interval.as_secs_f64() * 1_000.0;
    item.requested_parameters.queue_size = 1;
    session
        .create_monitored_items(subscription, TimestampsToReturn::Both, vec![item])
        .await
        .expect("baseline monitored item");

    let mut stream = source
        .subscribe(std::slice::from_ref(&tag))
        .await
        .expect("subscribe");
    let mut ours = Vec::with_capacity(SAMPLES);
    let mut theirs = Vec::with_capacity(SAMPLES);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for i in 0..=SAMPLES {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let share = (seed >> 33) as f64 / (1u64 << 31) as f64;
        tokio::time::sleep(interval.mul_f64(share)).await;
        let value = 1_000.0 + (interval.as_millis() as f64) * 1_000.0 + i as f64;
        let written = Instant::now();
        let codes = session
            .write(&[WriteValue {
                node_id: node.clone(),
                attribute_id: AttributeId::Value as u32,
                index_range: NumericRange::None,
                value: DataValue::value_only(Variant::Double(value)),
            }])
            .await
            .expect("write");
        assert!(codes[0].is_good(), "the write was refused: {}", codes[0]);
        let arrived = tokio::time::timeout(WAIT, async {
            loop {
                let values = stream.next().await.expect("the subscription ended");
                if values[0].value == Some(value) {
                    return Instant::now();
                }
            }
        })
        .await
        .expect("the change never reached the subscribe stream");
        let direct_arrived = tokio::time::timeout(WAIT, async {
            loop {
                let (v, at) = direct.recv().await.expect("the baseline ended");
                if v == value {
                    return at;
                }
            }
        })
        .await
        .expect("the change never reached the direct subscription");
        // The first change is not counted: the subscriptions are still settling.
        if i > 0 {
            ours.push(arrived - written);
            theirs.push(direct_arrived - written);
        }
    }
    drop(stream);
    let _ = session.delete_subscription(subscription).await;
    (Timing::from_samples(ours), Timing::from_samples(theirs))
}

/// A benchmark's result line, on standard output.
#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}
