//! Live values end to end: an app's `GET …/subscribe` event stream from the real connector
//! runtime's simulated source (sampling every 100 ms) through the real hub over TLS on
//! loopback. Values arrive in order per tag after a snapshot; a slow app gets coalesced values
//! and a `dropped` count while the hub holds one value per tag; a revoke, a site block, a
//! source removed on site and the token's expiry end the stream with a final event within a
//! generous bound (the goal is ≤ 100 ms on loopback; the figure is printed); a reconnect with
//! `Last-Event-ID` resumes; 120 streams on one tag share one subscription on the source.
//!
//! `cargo test -p uplink-cli --test connector_hub live_values -- --nocapture`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::watch;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, ConnectorStatus, LinkState, RuntimeOptions};
use uplink_connector::{SourceConfig, kinds};
use uplink_signalr::Transport;
use uplink_signalr::client::Backoff;
use uplink_testkit::{APP, TestHub};

use crate::wait_for;

/// The generous bound on "from the end of access to the stream's final event".
pub(crate) const BOUND: Duration = Duration::from_secs(1);

pub(crate) struct Stage {
    pub(crate) kit: TestHub,
    pub(crate) source_id: String,
    pub(crate) runtime: ConnectorRuntime,
    pub(crate) status: watch::Receiver<ConnectorStatus>,
    _data_dir: tempfile::TempDir,
}

impl Stage {
    /// The test kit's hub and Plant A's connector, its simulated source sampling every 100 ms.
    pub(crate) async fn start() -> Self {
        Self::start_with(&[], |_| {}, |_| {}).await
    }

    /// As [`Stage::start`], with more settings of the simulated source (`tagsPerShape`…), the
    /// hub's configuration and the connector runtime's options adjusted.
    pub(crate) async fn start_with(
        source_settings: &[(&str, serde_json::Value)],
        hub: impl FnOnce(&mut uplink_hub::HubConfig),
        connector: impl FnOnce(&mut RuntimeOptions),
    ) -> Self {
        let kit = TestHub::start_with(hub).await;
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
        options.backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        options.write_status_file = false;
        connector(&mut options);
        let runtime = ConnectorRuntime::start(options).await.unwrap();
        let mut settings = serde_json::Map::new();
        settings.insert("sampleInterval".into(), "100ms".into());
        for (name, value) in source_settings {
            settings.insert((*name).to_owned(), value.clone());
        }
        let settings = kinds::schema("simulated")
            .unwrap()
            .validate(&settings)
            .unwrap();
        runtime
            .edit_source(
                "simulated",
                SourceConfig {
                    name: "simulated".into(),
                    kind: "simulated".into(),
                    description: "Fast".into(),
                    settings,
                },
            )
            .await
            .unwrap();
        let mut status = runtime.status();
        let linked = wait_for(&mut status, "linked and registered", |s| {
            s.link == LinkState::Connected
                && s.sources
                    .iter()
                    .any(|s| s.hub_id.is_some() && s.description == "Fast")
        })
        .await;
        let source_id = linked.sources[0].hub_id.clone().unwrap();
        Self {
            kit,
            source_id,
            runtime,
            status,
            _data_dir: data_dir,
        }
    }

    /// Adds another simulated source named `name` on the connector; its id on the hub.
    pub(crate) async fn add_simulated_source(&self, name: &str) -> String {
        let mut settings = serde_json::Map::new();
        settings.insert("sampleInterval".into(), "100ms".into());
        let settings = kinds::schema("simulated")
            .unwrap()
            .validate(&settings)
            .unwrap();
        self.runtime
            .add_source(SourceConfig {
                name: name.into(),
                kind: "simulated".into(),
                description: format!("Also {name}"),
                settings,
            })
            .await
            .unwrap();
        let registered = wait_for(&mut self.status.clone(), "the source registered", |s| {
            s.sources
                .iter()
                .any(|s| s.name == name && s.hub_id.is_some())
        })
        .await;
        registered
            .sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.hub_id.clone())
            .unwrap()
    }

    /// Ada consents to the app; an access token valid for `ttl` seconds.
    pub(crate) async fn token(&self, ttl: i64) -> String {
        self.kit
            .mint_app_token(
                &self.kit.user.id,
                APP,
                std::slice::from_ref(&self.source_id),
                ttl,
            )
            .await
    }

    pub(crate) async fn subscribe(
        &self,
        token: &str,
        query: &str,
        last: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .kit
            .client
            .get(self.kit.url(&format!(
                "/api/v1/sources/{}/subscribe?{query}",
                self.source_id
            )))
            .bearer_auth(token);
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        request.send().await.unwrap()
    }

    pub(crate) async fn events(&self, token: &str, query: &str, last: Option<&str>) -> Events {
        let response = self.subscribe(token, query, last).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            response,
            buffer: String::new(),
        }
    }

    /// How many times the connector called `DataSource::subscribe` on the simulated source.
    pub(crate) fn source_subscribes(&self) -> u64 {
        self.counter("uplink_connector_source_subscribes_total{")
    }

    /// How many subscriptions the hub asked the connector for.
    pub(crate) fn subscriptions(&self) -> u64 {
        self.counter("uplink_connector_subscriptions_total{")
    }

    fn counter(&self, prefix: &str) -> u64 {
        self.runtime
            .metrics_text()
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .map_or(0, |n| n.parse().unwrap())
    }
}

#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) id: Option<String>,
    pub(crate) data: serde_json::Value,
}

impl Event {
    /// (tag, time) of each value.
    pub(crate) fn values(&self) -> Vec<(String, String)> {
        self.data["values"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|v| {
                        (
                            v["tag"].as_str().unwrap().to_owned(),
                            v["time"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(crate) struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event (comments skipped); `None` when the stream ended.
    pub(crate) async fn next(&mut self) -> Option<Event> {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(at) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..at + 2).collect();
                    let mut event = Event {
                        name: "message".into(),
                        id: None,
                        data: serde_json::Value::Null,
                    };
                    let mut comment = true;
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event: ") {
                            event.name = name.to_owned();
                            comment = false;
                        } else if let Some(id) = line.strip_prefix("id: ") {
                            event.id = Some(id.to_owned());
                        } else if let Some(data) = line.strip_prefix("data: ") {
                            event.data = serde_json::from_str(data).unwrap();
                            comment = false;
                        }
                    }
                    if !comment {
                        return Some(event);
                    }
                    continue;
                }
                match self.response.chunk().await {
                    Ok(Some(bytes)) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                    Ok(None) | Err(_) => return None,
                }
            }
        })
        .await
        .expect("an event within 30 s")
    }

    /// Reads until the stream's final event; how long that took.
    pub(crate) async fn until_end(&mut self) -> (Event, Duration) {
        let from = Instant::now();
        loop {
            let event = self
                .next()
                .await
                .expect("a final event before the stream ends");
            if event.name != "values" {
                let took = from.elapsed();
                assert!(self.next().await.is_none(), "nothing after the final event");
                return (event, took);
            }
        }
    }
}

const TAGS: &str = "tags=sim.ramp.1,sim.noise.1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_values_arrive_in_order_after_a_snapshot_and_resume_after_the_last_event_id() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    let mut events = stage
        .events(&token, &format!("{TAGS}&interval=0s"), None)
        .await;
    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.name, "snapshot");
    let tags: Vec<String> = snapshot.values().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, ["sim.noise.1", "sim.ramp.1"]);
    let mut last: HashMap<String, String> = snapshot.values().into_iter().collect();
    let mut last_id = snapshot.id.clone().unwrap();
    let mut updates = 0;
    while updates < 10 {
        let event = events.next().await.unwrap();
        assert_eq!(event.name, "values", "{event:?}");
        for (tag, time) in event.values() {
            let before = last.insert(tag.clone(), time.clone()).unwrap();
            let (before, now) = (
                chrono::DateTime::parse_from_rfc3339(&before).unwrap(),
                chrono::DateTime::parse_from_rfc3339(&time).unwrap(),
            );
            assert!(now > before, "{tag}: {now} after {before}");
        }
        last_id = event.id.clone().unwrap();
        updates += 1;
    }
    drop(events);
    // The stream resumes where it left off: the changes since, no new snapshot.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut resumed = stage
        .events(&token, &format!("{TAGS}&interval=0s"), Some(&last_id))
        .await;
    let first = resumed.next().await.unwrap();
    assert_eq!(first.name, "values", "a resume, not a restart: {first:?}");
    for (tag, time) in first.values() {
        let before = chrono::DateTime::parse_from_rfc3339(&last[&tag]).unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(&time).unwrap() > before);
    }
    drop(resumed);
    // An id the hub does not hold: said so, then a new snapshot.
    let mut restarted = stage
        .events(&token, &format!("{TAGS}&interval=0s"), Some("g_gone-7"))
        .await;
    assert_eq!(restarted.next().await.unwrap().name, "restarted");
    assert_eq!(restarted.next().await.unwrap().name, "snapshot");
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_app_gets_coalesced_values_and_a_drop_count_while_the_hub_holds_one_per_tag() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    // Changes every 100 ms, sent at most every 700 ms: values are coalesced away.
    let mut events = stage
        .events(&token, &format!("{TAGS}&interval=700ms"), None)
        .await;
    assert_eq!(events.next().await.unwrap().name, "snapshot");
    let mut dropped = 0;
    for _ in 0..3 {
        let event = events.next().await.unwrap();
        assert_eq!(event.name, "values");
        assert!(event.values().len() <= 2, "one value per tag");
        dropped += event.data["dropped"].as_u64().unwrap_or(0);
    }
    assert!(dropped > 0, "the stream says values were coalesced away");
    // An app that stops reading for a while: the hub's memory holds one value per tag.
    let rss_before = rss_kib();
    let mut slow = stage
        .events(&token, &format!("{TAGS}&interval=0s"), None)
        .await;
    assert_eq!(slow.next().await.unwrap().name, "snapshot");
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (subscriptions, held) = stage.kit.hub.links.live_subscriptions();
        assert_eq!(subscriptions, 1, "both streams share one subscription");
        assert!(held <= 2, "the hub holds {held} values for 2 tags");
    }
    let grew = rss_kib().saturating_sub(rss_before);
    eprintln!("memory growth while an app did not read for 5 s: {grew} KiB");
    assert!(grew < 64 * 1024, "memory grew by {grew} KiB");
    let event = slow.next().await.unwrap();
    assert_eq!(event.name, "values");
    assert!(event.values().len() <= 2);
    stage.runtime.stop().await;
}

/// The simulated source's tags with `per_shape` of each shape, in the source's names.
pub(crate) fn simulated_tags(per_shape: usize) -> Vec<String> {
    ["sinusoid", "ramp", "square", "randomWalk", "noise"]
        .iter()
        .flat_map(|shape| (1..=per_shape).map(move |i| format!("sim.{shape}.{i}")))
        .collect()
}

/// Parses the complete events in `buffer` (leaving a partial one there), comments skipped.
fn drain_events(buffer: &mut String) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(at) = buffer.find("\n\n") {
        let block: String = buffer.drain(..at + 2).collect();
        let mut event = Event {
            name: String::new(),
            id: None,
            data: serde_json::Value::Null,
        };
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                event.name = name.to_owned();
            } else if let Some(id) = line.strip_prefix("id: ") {
                event.id = Some(id.to_owned());
            } else if let Some(data) = line.strip_prefix("data: ") {
                event.data = serde_json::from_str(data).unwrap();
            }
        }
        if !event.name.is_empty() {
            events.push(event);
        }
    }
    events
}

/// An app that reads far slower than values come (a fifth of the rate it measured while reading
/// at full speed) for at least 30 s: every event it reads has the latest value of each tag that
/// changed, per tag always newer, and a `dropped` count once the pipe filled; all the while the
/// hub holds at most one value per tag for the stream's subscription, whatever the app leaves
/// unread. The slow rate follows the measured one because a slower machine also makes values
/// slower: a fixed rate can outpace it, and then nothing is coalesced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_reading_slowly_for_30_s_gets_coalesced_values_in_order_and_the_hub_holds_one_per_tag()
 {
    const PER_SHAPE: usize = 200;
    // The app first reads at full speed to learn how fast values come, then at a fifth of
    // that: the pipe's buffers (some MB) fill, and the hub coalesces what the app leaves.
    const MEASURE_FOR: Duration = Duration::from_secs(3);
    const SLOW_FRACTION: f64 = 0.2;
    const SLOW_AT_LEAST: Duration = Duration::from_secs(30);
    const GIVE_UP_AFTER: Duration = Duration::from_secs(150);
    let stage = Stage::start_with(
        &[("tagsPerShape", PER_SHAPE.into())],
        // 1 000 tag names do not fit the default 16 KiB request head.
        |hub| hub.serving.max_header_bytes = 64 * 1024,
        |_| {},
    )
    .await;
    let tags = simulated_tags(PER_SHAPE);
    let token = stage.token(600).await;
    let mut response = stage
        .subscribe(
            &token,
            &format!("tags={}&interval=0s", tags.join(",")),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut buffer = String::new();
    let mut last: HashMap<String, chrono::DateTime<chrono::FixedOffset>> = HashMap::new();
    let (mut events, mut dropped, mut most_held, mut bytes) = (0u64, 0u64, 0usize, 0usize);
    let started = Instant::now();
    // Bytes of changes (after the snapshot) read while measuring; then the slow reading rate.
    let mut measured_bytes = 0usize;
    let mut read_bytes_per_second: Option<f64> = None;
    loop {
        let elapsed = started.elapsed();
        if read_bytes_per_second.is_none() && elapsed >= MEASURE_FOR {
            let rate = measured_bytes as f64 / elapsed.as_secs_f64();
            read_bytes_per_second = Some((rate * SLOW_FRACTION).max(5_000.0));
        }
        if (elapsed >= MEASURE_FOR + SLOW_AT_LEAST && dropped > 0) || elapsed >= GIVE_UP_AFTER {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), response.chunk())
            .await
            .expect("the stream goes on")
            .unwrap()
            .expect("the stream is open");
        bytes += chunk.len();
        if read_bytes_per_second.is_none() && events > 0 {
            measured_bytes += chunk.len();
        }
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        for event in drain_events(&mut buffer) {
            assert!(
                ["snapshot", "values"].contains(&event.name.as_str()),
                "{event:?}"
            );
            let values = event.values();
            assert!(values.len() <= tags.len(), "one value per tag at most");
            for (tag, time) in values {
                let time = chrono::DateTime::parse_from_rfc3339(&time).unwrap();
                if let Some(before) = last.insert(tag.clone(), time) {
                    assert!(time > before, "{tag}: {time} came after {before}");
                }
            }
            dropped += event.data["dropped"].as_u64().unwrap_or(0);
            events += 1;
        }
        let (subscriptions, held) = stage.kit.hub.links.live_subscriptions();
        assert_eq!(subscriptions, 1);
        assert!(
            held <= tags.len(),
            "the hub holds {held} values for {} tags",
            tags.len()
        );
        most_held = most_held.max(held);
        assert_eq!(
            stage
                .kit
                .hub
                .live_streams
                .of_connector(stage.kit.plant_id()),
            1
        );
        // The slow app: it takes its time over what it read.
        if let Some(rate) = read_bytes_per_second {
            tokio::time::sleep(Duration::from_secs_f64(chunk.len() as f64 / rate)).await;
        }
    }
    eprintln!(
        "slow app: {events} events, {bytes} bytes read in {:.0} s (slowly at {:.0} B/s), {dropped} values coalesced away, the hub held at most {most_held} values for {} tags",
        started.elapsed().as_secs_f64(),
        read_bytes_per_second.unwrap_or(0.0),
        tags.len()
    );
    assert!(events > 1);
    assert!(
        dropped > 0,
        "the stream says values were coalesced away for the slow app"
    );
    stage.runtime.stop().await;
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_app_streams_on_one_tag_share_one_subscription_on_the_source() {
    // 120 streams of one sign-in: above the default cap on a sign-in's streams.
    let stage = Stage::start_with(&[], |hub| hub.max_live_streams_per_sign_in = 200, |_| {}).await;
    let token = stage.token(600).await;
    let before = (stage.source_subscribes(), stage.subscriptions());
    let mut streams = Vec::new();
    for _ in 0..120 {
        streams.push(stage.subscribe(&token, "tags=sim.ramp.1&interval=0s", None));
    }
    let streams: Vec<reqwest::Response> = futures::future::join_all(streams).await;
    let mut all = Vec::new();
    for response in streams {
        assert_eq!(response.status(), StatusCode::OK);
        all.push(Events {
            response,
            buffer: String::new(),
        });
    }
    for events in &mut all {
        assert_eq!(events.next().await.unwrap().name, "snapshot");
        assert_eq!(events.next().await.unwrap().name, "values");
    }
    assert_eq!(
        stage.subscriptions() - before.1,
        1,
        "one Subscribe to the connector for 120 streams"
    );
    assert_eq!(
        stage.source_subscribes() - before.0,
        1,
        "one DataSource::subscribe for 120 streams"
    );
    assert_eq!(stage.kit.hub.links.live_subscriptions().0, 1);
    stage.runtime.stop().await;
}

/// Opens a stream, ends its access with `end`, and checks the final event and the time.
async fn cut(
    stage: &Stage,
    token: &str,
    expected: &str,
    end: impl std::future::Future<Output = ()>,
) {
    let mut events = stage
        .events(token, "tags=sim.ramp.1&interval=0s", None)
        .await;
    assert_eq!(events.next().await.unwrap().name, "snapshot");
    let asked = Instant::now();
    end.await;
    let done = asked.elapsed();
    let (last, after) = events.until_end().await;
    let took = asked.elapsed();
    assert_eq!(last.name, expected, "{last:?}");
    assert!(last.data["message"].is_string());
    eprintln!(
        "{expected}: final event {:.1} ms after the action began ({:.1} ms after it returned; the action itself {:.1} ms)",
        took.as_secs_f64() * 1000.0,
        after.as_secs_f64() * 1000.0,
        done.as_secs_f64() * 1000.0
    );
    assert!(took <= BOUND, "{expected}: took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_ends_the_stream_with_a_revoked_event() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    let session = stage.kit.settings_session().await;
    cut(&stage, &token, "revoked", async {
        stage
            .kit
            .revoke_on_settings_page(&session, APP, Some(&stage.source_id))
            .await;
    })
    .await;
    // The connector's subscription ended too (the grant left its list).
    wait_for(&mut stage.status.clone(), "grant gone on site", |s| {
        s.sources.iter().all(|s| s.apps.is_empty())
    })
    .await;
    // Consent given again: a new subscription, with values flowing (not the ended one's).
    let token = stage.token(600).await;
    let mut events = stage
        .events(&token, "tags=sim.ramp.1&interval=0s", None)
        .await;
    assert_eq!(events.next().await.unwrap().name, "snapshot");
    assert_eq!(events.next().await.unwrap().name, "values");
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_block_ends_the_stream_with_a_blocked_event() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    cut(&stage, &token, "blocked", async {
        let mut policy = stage.runtime.policy().unwrap();
        policy.block_app(APP);
        stage.runtime.set_policy(&policy).unwrap();
    })
    .await;
    // A new subscription is refused with the site's reason.
    let refused = stage.subscribe(&token, "tags=sim.ramp.1", None).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "vetoed");
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_removed_on_site_ends_the_stream_with_a_removed_event() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    cut(&stage, &token, "removed", async {
        stage.runtime.remove_source("simulated").await.unwrap();
    })
    .await;
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tokens_expiry_ends_the_stream_with_an_expired_event() {
    let stage = Stage::start().await;
    // Expiry is kept in whole seconds: this token lives two to three seconds.
    let token = stage.token(3).await;
    let expires = uplink_testkit::unix_now() + 3;
    let mut events = stage
        .events(&token, "tags=sim.ramp.1&interval=0s", None)
        .await;
    assert_eq!(events.next().await.unwrap().name, "snapshot");
    let (last, _) = events.until_end().await;
    assert_eq!(last.name, "expired", "{last:?}");
    let late = uplink_testkit::unix_now() - expires;
    eprintln!("expired: the stream ended {late} s after the token's expiry second");
    assert!(late <= 1, "ended {late} s after expiry");
    stage.runtime.stop().await;
}
