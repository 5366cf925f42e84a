//! Alarms and events end to end: the real connector runtime's simulated source (sampling every
//! 100 ms with a two-second period, so its tags cross their limits every second) through the
//! real hub over TLS on loopback to an app. Time-range reads page with a cursor (no event twice,
//! none missing); an events subscription receives the simulated alarms; both are refused
//! without `events.read` in the token or in the grant of that very source (the consent page's
//! per-source tick); a revoke ends the stream with `event: revoked`.
//!
//! `cargo test -p uplink-cli --test connector_hub events -- --nocapture`

use std::collections::HashSet;
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

/// The generous bound on "from the revoke to the stream's final event".
const BOUND: Duration = Duration::from_secs(1);

struct Stage {
    kit: TestHub,
    source_id: String,
    runtime: ConnectorRuntime,
    _status: watch::Receiver<ConnectorStatus>,
    _data_dir: tempfile::TempDir,
}

impl Stage {
    async fn start() -> Self {
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
        options.backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        options.write_status_file = false;
        let runtime = ConnectorRuntime::start(options).await.unwrap();
        let mut settings = serde_json::Map::new();
        settings.insert("sampleInterval".into(), "100ms".into());
        settings.insert("period".into(), "2s".into());
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
                    description: "Alarming".into(),
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
                    .any(|s| s.hub_id.is_some() && s.description == "Alarming")
        })
        .await;
        let source_id = linked.sources[0].hub_id.clone().unwrap();
        // The hub learns the source's capabilities (events) from the registration.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let source = kit.hub.store.source(&source_id).await.unwrap().unwrap();
            if source.capabilities.as_ref().is_some_and(|c| c.events) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the source's capabilities say events"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            kit,
            source_id,
            runtime,
            _status: status,
            _data_dir: data_dir,
        }
    }

    /// A token whose grant on the source holds `grant` and which carries `token` scopes.
    async fn token(&self, grant: &[&str], token: &[&str]) -> String {
        self.kit
            .mint_token(
                &self.kit.user.id,
                APP,
                std::slice::from_ref(&self.source_id),
                grant,
                token,
                600,
            )
            .await
    }

    async fn get(&self, token: &str, path_and_query: &str) -> reqwest::Response {
        self.kit
            .client
            .get(self.kit.url(&format!(
                "/api/v1/sources/{}/{path_and_query}",
                self.source_id
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, token: &str, query: &str) -> serde_json::Value {
        let response = self.get(token, &format!("events?{query}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

const EVENTS: &[&str] = &["data.read", "events.read"];

/// One minute of early 2026: long past, so every event in it is final.
const RANGE: &str = "start=2026-01-01T00:00:00Z&end=2026-01-01T00:01:00Z";

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_range_reads_page_through_every_event_once() {
    let stage = Stage::start().await;
    let token = stage.token(EVENTS, EVENTS).await;
    let whole = stage.page(&token, &format!("{RANGE}&limit=10000")).await;
    assert!(whole.get("next").is_none_or(serde_json::Value::is_null));
    let all = ids(&whole);
    // Three periodic tags, each raising, acknowledging and clearing two alarms per 2 s.
    assert!(all.len() >= 300, "{} events in a minute", all.len());
    let first = &whole["events"][0];
    assert_eq!(first["source"], "simulated");
    assert!(
        ["low", "medium", "high", "critical"].contains(&first["priority"].as_str().unwrap()),
        "{first}"
    );
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = format!("{RANGE}&limit=37");
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={}", urlencode(cursor)));
        }
        let page = stage.page(&token, &query).await;
        let got = ids(&page);
        assert!(got.len() <= 37);
        paged.extend(got);
        pages += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages > 5, "{pages} pages");
    let unique: HashSet<&String> = paged.iter().collect();
    assert_eq!(unique.len(), paged.len(), "no event twice");
    assert_eq!(paged, all, "none missing, in the same order");
    // The same through `POST …/query`.
    let posted: serde_json::Value = stage
        .kit
        .client
        .post(
            stage
                .kit
                .url(&format!("/api/v1/sources/{}/query", stage.source_id)),
        )
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "type": "events",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:01:00Z",
            "limit": 10000,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&posted), all);
    // A cursor the source never handed out is the app's mistake, said so.
    let refused = stage
        .get(&token, &format!("events?{RANGE}&cursor=garbage"))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("cursor"),
        "{body}"
    );
    stage.runtime.stop().await;
}

pub(crate) fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_refused_without_events_read_in_the_token_or_the_sources_grant() {
    let stage = Stage::start().await;
    // The token lacks the scope.
    let values_only = stage.token(&["data.read"], &["data.read"]).await;
    // The token has it, but the owner did not tick this source's events box.
    let not_ticked = stage.token(&["data.read"], EVENTS).await;
    for token in [&values_only, &not_ticked] {
        for path in [format!("events?{RANGE}"), "events/subscribe".to_owned()] {
            let refused = stage.get(token, &path).await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
            let body: serde_json::Value = refused.json().await.unwrap();
            assert_eq!(body["code"], "insufficient_scope", "{path}: {body}");
            assert!(body["message"].as_str().unwrap().contains("events.read"));
        }
    }
    // Values stay readable with that grant: the events tick is apart from reading values.
    let values = stage.get(&not_ticked, "snapshot?tags=sim.ramp.1").await;
    assert_eq!(values.status(), StatusCode::OK);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_the_simulated_alarms_until_a_revoke_ends_it() {
    let stage = Stage::start().await;
    let token = stage.token(EVENTS, EVENTS).await;
    let response = stage.get(&token, "events/subscribe").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = Stream::new(response);
    let mut alarms = 0;
    let mut last_time = chrono::DateTime::<chrono::FixedOffset>::MIN_UTC.fixed_offset();
    while alarms < 3 {
        let event = stream.next().await.expect("events before any end");
        assert_eq!(event.name, "events", "{event:?}");
        assert!(event.id.is_some(), "every events event has an id");
        for e in event.data["events"].as_array().unwrap() {
            assert_eq!(e["source"], "simulated");
            assert!(e["topic"].as_str().unwrap().starts_with("sim."));
            let time = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
            assert!(time >= last_time, "oldest first: {time} after {last_time}");
            last_time = time;
            if e["type"] == "alarm" {
                alarms += 1;
                assert!(["high", "medium"].contains(&e["priority"].as_str().unwrap()));
            }
        }
    }
    let session = stage.kit.settings_session().await;
    let asked = Instant::now();
    stage
        .kit
        .revoke_on_settings_page(&session, APP, Some(&stage.source_id))
        .await;
    let last = loop {
        let event = stream.next().await.expect("a final event");
        if event.name != "events" {
            break event;
        }
    };
    let took = asked.elapsed();
    assert_eq!(last.name, "revoked", "{last:?}");
    assert!(
        stream.next().await.is_none(),
        "nothing after the final event"
    );
    eprintln!(
        "revoked: final event {:.1} ms after the revoke began",
        took.as_secs_f64() * 1000.0
    );
    assert!(took <= BOUND, "took {took:?}");
    stage.runtime.stop().await;
}

#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) name: String,
    pub(crate) id: Option<String>,
    pub(crate) data: serde_json::Value,
}

/// An app's `text/event-stream`, read event by event.
pub(crate) struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

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
}

/// Every `curl` example in docs/api.md's "Alarms and events" runs against the real hub and
/// connector and succeeds: the first page (its `next` becomes `$NEXT`), the next page, and the
/// stream, read to its first events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_events_curl_examples_run() {
    let stage = Stage::start().await;
    let token = stage.token(EVENTS, EVENTS).await;
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let start = guide
        .find("### Alarms and events")
        .expect("the events section");
    let section = &guide[start..];
    let section = &section[..section[4..].find("\n## ").map_or(section.len(), |i| i + 4)];
    let mut next = String::new();
    let mut ran = 0;
    for command in section.split("curl ").skip(1) {
        let mut text = String::new();
        for line in command.lines() {
            text.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                break;
            }
        }
        assert!(
            text.contains(r#"-H "Authorization: Bearer $TOKEN""#),
            "{text}"
        );
        let at = text.find("\"$HUB").expect("a quoted $HUB URL");
        let url = &text[at + 1..];
        let url = url[..url.find('"').unwrap()]
            .replace("$HUB", &stage.kit.issuer)
            .replace("$SRC", &stage.source_id)
            .replace("$NEXT", &urlencode(&next));
        let response = stage
            .kit
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "curl {text}");
        if url.ends_with("/events/subscribe") {
            let mut stream = Stream::new(response);
            let event = stream.next().await.expect("an event");
            assert_eq!(event.name, "events", "{event:?}");
            assert!(!event.data["events"].as_array().unwrap().is_empty());
        } else {
            let page: serde_json::Value = response.json().await.unwrap();
            assert!(page["events"].is_array(), "{page}");
            if next.is_empty() {
                next = page["next"]
                    .as_str()
                    .expect("an hour of this source's events is more than a page")
                    .to_owned();
            }
        }
        ran += 1;
    }
    assert_eq!(ran, 3, "the first page, the next page and the stream");
    stage.runtime.stop().await;
}
