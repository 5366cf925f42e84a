//! Live values measured end to end, beside what they cannot beat, in one process:
//!
//! - **Latency at 10 000 values/s across 1 000 tags.** The simulated source with 1 000 tags
//!   (a new value of each every 100 ms) → the connector's subscription → the link (WebSockets)
//!   → the hub → the app: over the event stream (`GET …/subscribe?interval=0s`, HTTPS) and over
//!   the app hub (`CreateSnapshotTagValueChannel` on a SignalR WebSocket), against the same
//!   source's own in-process subscription in the same run (the baseline). Latency is the
//!   arrival time minus the value's time stamp, which the source sets to the millisecond it
//!   produced the value (sample interval 1 ms), so every path carries the same ≤ 1 ms rounding.
//! - **Fan-out.** 100 app streams of one app on the same tags (one subscription on the
//!   connector, fanned out by the hub) against one stream: values delivered per second per
//!   stream, and the ratio. Once on one tag (10 values/s: the simulated source's fastest) and
//!   once on all 1 000 tags (10 000 values/s per stream, 1 000 000 from the hub in all).
//! - **Fan-out across 100 apps.** 100 distinct apps — each its own registered OAuth client,
//!   grant and token — each with one event stream on one tag, against one app alone, beside 100
//!   streams of that one app, on a tag that changes [`FAST_RATE`] times a second so that the
//!   source is not what bounds the ratio: an MQTT source on a real mosquitto broker on loopback
//!   (`mosquitto_pub -l`, paced by the bench, one JSON document per value on one topic, QoS 0).
//!   Each app is a connector subscription of its own (subscriptions are shared per app, data
//!   source and tags), so every value crosses the link once per app.
//!
//! Run with `cargo bench -p uplink-cli --bench live` (optimised), or `cargo bench --profile dev
//! -p uplink-cli --bench live` on a debug build.
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt as _;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};
use uplink_connector::{SourceConfig, kinds};
use uplink_measure::{Timing, compare, si};
use uplink_signalr::Transport;
use uplink_signalr::client::HubConnection;
use uplink_testkit::{APP, TestHub};

/// 5 shapes × 200: 1 000 tags, each a new value every 100 ms.
const PER_SHAPE: usize = 200;
/// Values measured per path: five seconds of the source's 10 000 values/s.
const VALUES: usize = 50_000;
/// App streams in the fan-out.
const FAN_OUT: usize = 100;
/// How long the fan-out counts what arrives.
const WINDOW: Duration = Duration::from_secs(5);
/// Values a second of the fast tag (MQTT) in the fan-out across apps.
const FAST_RATE: u64 = 1_000;
/// The fast tag's name and the topic its values are published on.
const FAST_TAG: &str = "fast.1";
const FAST_TOPIC: &str = "bench/fast";

fn config() -> SourceConfig {
    let mut settings = serde_json::Map::new();
    settings.insert("sampleInterval".into(), "1ms".into());
    settings.insert("tagsPerShape".into(), PER_SHAPE.into());
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
        .flat_map(|shape| (1..=PER_SHAPE).map(move |i| format!("sim.{shape}.{i}")))
        .collect()
}

fn latency_of(time: &str) -> Duration {
    let stamped = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    (Utc::now() - stamped.with_timezone(&Utc))
        .to_std()
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The hops of a live update, in order: the connector's and the hub's trace events
/// ([`uplink_link::LATENCY_TARGET`]), then the app's own marks.
const HOPS: [&str; 6] = ["source", "sent", "applied", "written", "arrived", "parsed"];

/// What each hop of the path takes, from the trace events the connector and the hub emit at
/// each hop (keyed by the update's first value's time stamp) and the app's own marks: when
/// the last byte of an update arrived, and when it was parsed.
#[derive(Default)]
struct Hops {
    recording: AtomicBool,
    /// (hop, stamp, wall-clock microseconds when the hop was reached)
    marks: Mutex<Vec<(&'static str, i64, i64)>>,
}

impl Hops {
    fn mark(&self, hop: &'static str, stamp: i64) {
        self.mark_at(hop, stamp, Utc::now().timestamp_micros());
    }

    fn mark_at(&self, hop: &'static str, stamp: i64, at: i64) {
        if self.recording.load(Ordering::Relaxed) {
            self.marks.lock().unwrap().push((hop, stamp, at));
        }
    }

    fn start(&self) {
        self.marks.lock().unwrap().clear();
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Stops recording; each hop's share as the median over the updates seen at every hop:
    /// (hop, median time from the previous hop, or from the value's time stamp for the first).
    fn stop(&self) -> Vec<(&'static str, Duration)> {
        self.recording.store(false, Ordering::Relaxed);
        let marks = std::mem::take(&mut *self.marks.lock().unwrap());
        // The first time each update reached each hop.
        let mut reached: HashMap<i64, [Option<i64>; HOPS.len()]> = HashMap::new();
        for (hop, stamp, at) in marks {
            let Some(i) = HOPS.iter().position(|h| *h == hop) else {
                continue;
            };
            let slot = &mut reached.entry(stamp).or_default()[i];
            slot.get_or_insert(at);
        }
        // The hops this path has (the app hub's client hands items over parsed: no arrival).
        let present: Vec<usize> = (0..HOPS.len())
            .filter(|&i| reached.values().any(|times| times[i].is_some()))
            .collect();
        let mut shares: Vec<Vec<Duration>> = vec![Vec::new(); HOPS.len()];
        for (stamp, times) in reached {
            let Some(times) = present
                .iter()
                .map(|&i| times[i].map(|at| (i, at)))
                .collect::<Option<Vec<(usize, i64)>>>()
            else {
                continue;
            };
            let mut before = stamp;
            for (i, at) in times {
                shares[i].push(Duration::from_micros(
                    u64::try_from(at - before).unwrap_or(0),
                ));
                before = at;
            }
        }
        HOPS.iter()
            .zip(shares)
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(hop, samples)| (*hop, Timing::from_samples(samples).median()))
            .collect()
    }
}

/// The `tracing` layer that hands the trace events of [`uplink_link::LATENCY_TARGET`] to [`Hops`].
struct HopLayer(Arc<Hops>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HopLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            hop: Option<&'static str>,
            stamp: Option<i64>,
        }
        impl tracing::field::Visit for Fields {
            fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                if field.name() == "stamp" {
                    self.stamp = Some(value);
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "hop" {
                    self.hop = HOPS.iter().copied().find(|h| *h == value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (Some(hop), Some(stamp)) = (fields.hop, fields.stamp) {
            self.0.mark(hop, stamp);
        }
    }
}

/// Installs the hop recorder as the process's only `tracing` subscriber, listening to the
/// latency trace events alone (every other event stays disabled, so it costs nothing).
fn record_hops() -> Arc<Hops> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    let hops = Arc::new(Hops::default());
    let only_hops = tracing_subscriber::filter::Targets::new()
        .with_target(uplink_link::LATENCY_TARGET, tracing::Level::TRACE);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(HopLayer(hops.clone()).with_filter(only_hops)),
    )
    .unwrap();
    hops
}

fn stamp_of(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .unwrap()
        .timestamp_micros()
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

/// The test kit's hub, Plant A's connector with the bench's source, and a token.
struct Stage {
    kit: TestHub,
    runtime: ConnectorRuntime,
    source_id: String,
    token: String,
    _data_dir: tempfile::TempDir,
}

impl Stage {
    async fn start() -> Self {
        let kit = TestHub::start_on(2, |hub| {
            // 1 000 tag names in a URL do not fit the default 16 KiB request head.
            hub.serving.max_header_bytes = 64 * 1024;
            hub.max_live_streams_per_sign_in = 1_000;
        })
        .await;
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
        Self {
            kit,
            runtime,
            source_id,
            token,
            _data_dir: data_dir,
        }
    }

    async fn event_stream(&self, tags: &[String]) -> reqwest::Response {
        self.event_stream_of(&self.token, &self.source_id, tags)
            .await
            .unwrap()
    }

    /// An event stream on `source_id`'s `tags` with `token`, or the refusal's status and body.
    async fn event_stream_of(
        &self,
        token: &str,
        source_id: &str,
        tags: &[String],
    ) -> Result<reqwest::Response, String> {
        let response = self
            .kit
            .client
            .get(self.kit.url(&format!(
                "/api/v1/sources/{source_id}/subscribe?tags={}&interval=0s",
                tags.join(",")
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(format!(
                "{}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ))
        }
    }

    /// Adds `config` on the connector; its id on the hub once registered.
    async fn add_source(&self, config: SourceConfig) -> String {
        let name = config.name.clone();
        self.runtime.add_source(config).await.unwrap();
        let mut status = self.runtime.status();
        loop {
            {
                let now = status.borrow_and_update();
                if let Some(s) = now
                    .sources
                    .iter()
                    .find(|s| s.name == name && s.hub_id.is_some())
                {
                    return s.hub_id.clone().unwrap();
                }
            }
            status.changed().await.unwrap();
        }
    }
}

/// Reads an event stream, calling `each` with every value's time of the data events after the
/// snapshot, until `each` says stop; marks each update's arrival and parse in `hops`.
async fn read_events(
    mut response: reqwest::Response,
    hops: &Hops,
    mut each: impl FnMut(&str) -> bool,
) {
    let mut buffer = String::new();
    let mut first = true;
    loop {
        let Some(chunk) = response.chunk().await.unwrap() else {
            return;
        };
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
            let arrived = Utc::now().timestamp_micros();
            let data: serde_json::Value = serde_json::from_str(data).unwrap();
            let values = data["values"].as_array().unwrap();
            if let Some(first) = values.first() {
                let stamp = stamp_of(first["time"].as_str().unwrap());
                hops.mark_at("arrived", stamp, arrived);
                hops.mark("parsed", stamp);
            }
            for value in values {
                if !each(value["time"].as_str().unwrap()) {
                    return;
                }
            }
        }
    }
}

async fn through_the_event_stream(stage: &Stage, hops: &Hops) -> Timing {
    let mut samples = Vec::with_capacity(VALUES);
    read_events(stage.event_stream(&tags()).await, hops, |time| {
        samples.push(latency_of(time));
        samples.len() < VALUES
    })
    .await;
    Timing::from_samples(samples)
}

async fn through_the_app_hub(stage: &Stage, hops: &Hops) -> Timing {
    let token = stage.token.clone();
    let connection = HubConnection::builder(stage.kit.url("/hubs/app"))
        .tls(stage.kit.tls.clone())
        .force_transport(Transport::WebSockets)
        .access_token(move || {
            let token = token.clone();
            async move { Ok::<_, String>(token) }
        })
        .start()
        .unwrap();
    connection.wait_connected().await;
    let mut items = connection
        .stream::<serde_json::Value>(
            "CreateSnapshotTagValueChannel",
            (stage.source_id.as_str(), tags(), "0s"),
        )
        .await
        .unwrap();
    let snapshot = items.next().await.unwrap().unwrap();
    assert_eq!(snapshot["event"], "snapshot");
    let mut samples = Vec::with_capacity(VALUES);
    while samples.len() < VALUES {
        let item = items.next().await.unwrap().unwrap();
        if let Some(first) = item["values"].as_array().unwrap().first() {
            // The SignalR client hands the item over parsed.
            hops.mark("parsed", stamp_of(first["time"].as_str().unwrap()));
        }
        for value in item["values"].as_array().unwrap() {
            samples.push(latency_of(value["time"].as_str().unwrap()));
        }
    }
    drop(items);
    connection.stop().await;
    Timing::from_samples(samples)
}

/// Counts the values arriving on an event stream (each value's `"tag":`, without parsing: the
/// reader must not be what limits the fan-out) while `counting` says so, until `until`.
async fn count_values(
    mut response: reqwest::Response,
    count: Arc<AtomicU64>,
    from: Instant,
    until: Instant,
) {
    const MARK: &[u8] = b"\"tag\":";
    let mut carry: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let now = Instant::now();
        if now >= until {
            return;
        }
        carry.extend_from_slice(&chunk);
        let found = carry.windows(MARK.len()).filter(|w| *w == MARK).count();
        if now >= from {
            count.fetch_add(found as u64, Ordering::Relaxed);
        }
        // A mark split between two chunks is counted with the next.
        let keep = carry.len().min(MARK.len() - 1);
        carry.drain(..carry.len() - keep);
    }
}

/// `streams` event streams on `tags` read at once for [`WINDOW`]: values per second each got,
/// as (mean, least).
async fn fan_out(stage: &Stage, streams: usize, tags: &[String]) -> (f64, f64) {
    let mut responses = Vec::with_capacity(streams);
    for _ in 0..streams {
        responses.push(stage.event_stream(tags).await);
    }
    rates_of(responses).await
}

/// The event streams `responses` read at once for [`WINDOW`]: values per second each got, as
/// (mean, least).
async fn rates_of(responses: Vec<reqwest::Response>) -> (f64, f64) {
    let streams = responses.len();
    let counts: Vec<Arc<AtomicU64>> = (0..streams).map(|_| Arc::default()).collect();
    // Half a second for every snapshot to be out of the way.
    let from = Instant::now() + Duration::from_millis(500);
    let until = from + WINDOW;
    let readers: Vec<_> = responses
        .into_iter()
        .zip(&counts)
        .map(|(response, count)| tokio::spawn(count_values(response, count.clone(), from, until)))
        .collect();
    tokio::time::sleep_until((until + Duration::from_millis(100)).into()).await;
    for reader in readers {
        reader.abort();
    }
    let rates: Vec<f64> = counts
        .iter()
        .map(|c| c.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64())
        .collect();
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    let least = rates.iter().copied().fold(f64::INFINITY, f64::min);
    (mean, least)
}

/// A mosquitto broker of the bench's own on a loopback port; killed when dropped.
struct Broker {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Self {
        let binary = ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed, and the fan-out across apps needs a real broker: install it (apt-get install mosquitto mosquitto-clients)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "per_listener_settings false\nallow_anonymous true\npersistence false\nuser root\nlistener {port} 127.0.0.1\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new(binary)
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_pub -l` publishing one JSON value to [`FAST_TOPIC`] [`FAST_RATE`] times a second,
/// paced by a thread of its own (`{"v": n, "t": microseconds since the epoch}`); stopped when
/// dropped.
struct Publisher {
    child: std::process::Child,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pacer: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn start(port: u16) -> Self {
        use std::io::Write as _;
        let mut child = std::process::Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "0",
                "-t",
                FAST_TOPIC,
                "-l",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto_pub (Debian's mosquitto-clients) publishes the fast tag's values");
        let mut stdin = child.stdin.take().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let pacer = std::thread::spawn(move || {
            let step = Duration::from_micros(1_000_000 / FAST_RATE);
            let began = Instant::now();
            let mut n: u64 = 0;
            while !stopping.load(Ordering::Relaxed) {
                let due = began + step * u32::try_from(n).unwrap_or(u32::MAX);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let line = format!("{{\"v\":{n},\"t\":{}}}\n", Utc::now().timestamp_micros());
                if stdin
                    .write_all(line.as_bytes())
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    return;
                }
                n += 1;
            }
        });
        Self {
            child,
            stop,
            pacer: Some(pacer),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(pacer) = self.pacer.take() {
            let _ = pacer.join();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mqtt_config(port: u16) -> SourceConfig {
    let mut settings = serde_json::Map::new();
    settings.insert(
        "brokerUrl".into(),
        format!("mqtt://127.0.0.1:{port}").into(),
    );
    settings.insert(
        "subscriptions".into(),
        format!("{FAST_TOPIC} json value=$.v time=$.t unit=us name={FAST_TAG} qos=0").into(),
    );
    SourceConfig {
        name: "fast".into(),
        kind: "mqtt".into(),
        description: "Bench, fast".into(),
        settings: kinds::schema("mqtt").unwrap().validate(&settings).unwrap(),
    }
}

/// An app of its own (client, grant and token) on `source_id`, for the fan-out across apps.
async fn separate_app(stage: &Stage, n: usize, source_id: &str) -> String {
    let client_id = format!("bench-app-{n}");
    stage
        .kit
        .hub
        .add_app(uplink_hub::NewApp {
            name: format!("Bench app {n}"),
            client_id: Some(client_id.clone()),
            confidential: false,
            redirect_uris: vec!["https://bench.example/callback".into()],
            scopes: vec!["data.read".into()],
        })
        .await
        .unwrap();
    stage
        .kit
        .mint_app_token(
            &stage.kit.user.id,
            &client_id,
            &[source_id.to_owned()],
            3600,
        )
        .await
}

/// One app alone, 100 streams of that app, and 100 apps with one stream each, on the fast
/// tag: (values/s of the app alone, (mean, least) of the 100 streams, (mean, least) of the 100
/// apps).
async fn fan_out_across_apps(stage: &Stage) -> (f64, (f64, f64), (f64, f64)) {
    // The earlier cases' subscriptions stay 30 s after their last stream left (so that a
    // reconnect can resume), still fed by the source: they are let go first.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let broker = Broker::start();
    let publisher = Publisher::start(broker.port);
    let source_id = stage.add_source(mqtt_config(broker.port)).await;
    let mut tokens = Vec::with_capacity(FAN_OUT);
    for n in 0..FAN_OUT {
        tokens.push(separate_app(stage, n, &source_id).await);
    }
    let tags = vec![FAST_TAG.to_owned()];
    // The tag exists once its first value arrived.
    let deadline = Instant::now() + Duration::from_secs(30);
    let alone = loop {
        match stage.event_stream_of(&tokens[0], &source_id, &tags).await {
            Ok(response) => break response,
            Err(refused) => {
                assert!(
                    Instant::now() < deadline,
                    "the fast tag never came: {refused}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let (single, _) = rates_of(vec![alone]).await;
    let mut streams = Vec::with_capacity(FAN_OUT);
    for _ in 0..FAN_OUT {
        streams.push(
            stage
                .event_stream_of(&tokens[0], &source_id, &tags)
                .await
                .unwrap(),
        );
    }
    let one_app = rates_of(streams).await;
    let mut apps = Vec::with_capacity(FAN_OUT);
    for token in &tokens {
        apps.push(
            stage
                .event_stream_of(token, &source_id, &tags)
                .await
                .unwrap(),
        );
    }
    let separate = rates_of(apps).await;
    drop(publisher);
    drop(broker);
    (single, one_app, separate)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hops = record_hops();
    runtime.block_on(async {
        println!("load average before: {}", load_average());
        let baseline = in_process().await;
        let stage = Stage::start().await;
        hops.start();
        let event_stream = through_the_event_stream(&stage, &hops).await;
        let event_stream_hops = hops.stop();
        hops.start();
        let app_hub = through_the_app_hub(&stage, &hops).await;
        let app_hub_hops = hops.stop();
        println!(
            "live values, 1 000 tags × 10 values/s = 10 000 values/s, {VALUES} values per path (latency from the value's time stamp):"
        );
        println!(
            "  in-process subscription (baseline): median {} (p99 {})",
            uplink_measure::human(baseline.median()),
            uplink_measure::human(baseline.percentile(99.0))
        );
        for (label, timing) in [
            ("event stream (GET …/subscribe)", &event_stream),
            ("app hub (CreateSnapshotTagValueChannel)", &app_hub),
        ] {
            println!(
                "  {}",
                compare(label, timing, "in-process subscription", &baseline)
            );
        }
        println!(
            "where the time goes, median per hop (each from the one before; the first from the value's time stamp):"
        );
        for (label, shares) in [
            ("event stream", &event_stream_hops),
            ("app hub", &app_hub_hops),
        ] {
            let line: Vec<String> = shares
                .iter()
                .map(|(hop, median)| format!("{hop} {}", uplink_measure::human(*median)))
                .collect();
            println!("  {label}: {}", line.join(" → "));
        }
        let all = tags();
        let one = vec!["sim.ramp.1".to_owned()];
        for (label, tags) in [("one tag", &one), ("1 000 tags", &all)] {
            let (single, _) = fan_out(&stage, 1, tags).await;
            let (mean, least) = fan_out(&stage, FAN_OUT, tags).await;
            println!(
                "fan-out on {label}: 1 stream {} values/s | {FAN_OUT} streams {} values/s each (least {}) | ratio {:.2}",
                si(single),
                si(mean),
                si(least),
                mean / single.max(f64::MIN_POSITIVE)
            );
        }
        let (single, one_app, separate) = fan_out_across_apps(&stage).await;
        println!(
            "fan-out across apps on one MQTT tag at {FAST_RATE} values/s: 1 app {} values/s | 100 streams of 1 app {} values/s each (least {}) ratio {:.2} | {FAN_OUT} apps {} values/s each (least {}) | ratio per app {:.2}",
            si(single),
            si(one_app.0),
            si(one_app.1),
            one_app.0 / single.max(f64::MIN_POSITIVE),
            si(separate.0),
            si(separate.1),
            separate.0 / single.max(f64::MIN_POSITIVE)
        );
        println!("load average after: {}", load_average());
        stage.runtime.stop().await;
    });
}
