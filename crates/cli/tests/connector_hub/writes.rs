//! Writes end to end: an app's `PUT …/values` through the real hub over TLS on loopback to the
//! real connector runtime's simulated source. A write the site allows reaches the source and
//! shows in its snapshot, in the connector's activity trail and in the hub's audit trail with
//! the old and the new value; the site refuses when writing is off, when the tag is outside
//! its patterns and when its local veto blocks the app; a repeated `Idempotency-Key` applies
//! once; a revoke stops the next write. docs/api.md's write example runs here too.
//!
//! `cargo test -p uplink-cli --test connector_hub writes`

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::policy::LocalPolicy;
use uplink_connector::runtime::{ConnectorRuntime, ConnectorStatus, LinkState, RuntimeOptions};
use uplink_connector::{SourceConfig, kinds};
use uplink_signalr::Transport;
use uplink_signalr::client::Backoff;
use uplink_testkit::{APP, TestHub};

use crate::wait_for;

const WRITE: &[&str] = &["data.read", "data.write"];

struct Stage {
    kit: TestHub,
    source_id: String,
    runtime: ConnectorRuntime,
    status: watch::Receiver<ConnectorStatus>,
    _data_dir: tempfile::TempDir,
}

impl Stage {
    /// The test kit's hub and Plant A's connector with one simulated source whose site lets
    /// apps write the tags matching `writable` (one pattern per line; empty: writing off).
    async fn start(writable: &str) -> Self {
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
        settings.insert("writableTags".into(), writable.into());
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
                    description: "Writable".into(),
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
                    .any(|s| s.hub_id.is_some() && s.description == "Writable")
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

    /// A token of the dashboard app for Ada; each source's grant holds `grant`, the token
    /// carries `token`.
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

    async fn put(&self, token: &str, body: Value, key: Option<&str>) -> (StatusCode, Value, bool) {
        let mut request = self
            .kit
            .client
            .put(
                self.kit
                    .url(&format!("/api/v1/sources/{}/values", self.source_id)),
            )
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let replayed = response.headers().contains_key("idempotent-replayed");
        (status, response.json().await.unwrap(), replayed)
    }

    async fn snapshot(&self, token: &str, tag: &str) -> Value {
        let response = self
            .kit
            .client
            .get(self.kit.url(&format!(
                "/api/v1/sources/{}/snapshot?tags={tag}",
                self.source_id
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["values"][0]["value"].clone()
    }

    async fn audit_of(&self, event: &str) -> Vec<String> {
        self.kit
            .hub
            .store
            .audit_events(1_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == event)
            .map(|e| e.detail)
            .collect()
    }

    async fn capabilities(&self, token: &str) -> Value {
        let response = self
            .kit
            .client
            .get(self.kit.url(&format!("/api/v1/sources/{}", self.source_id)))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["capabilities"].clone()
    }
}

fn one(tag: &str, value: Value) -> Value {
    json!({"values": [{"tag": tag, "value": value}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_site_allows_reaches_the_source_and_both_audit_trails() {
    let mut stage = Stage::start("sim.ramp.*\nsim.square.?").await;
    let token = stage.token(WRITE, WRITE).await;
    assert_eq!(stage.capabilities(&token).await["write"], true);
    let (status, body, replayed) = stage
        .put(
            &token,
            json!({"values": [
                {"tag": "sim.ramp.1", "value": 42.5, "time": "2026-12-01T08:00:00Z"},
                {"tag": "sim.noise.1", "value": 1},
                {"tag": "sim.ramp.9", "value": 1},
            ]}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!replayed);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0], json!({"tag": "sim.ramp.1", "result": "ok"}));
    assert_eq!(results[1]["result"], "refused");
    assert_eq!(results[1]["code"], "tag_not_writable");
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .contains("sim.noise.1")
    );
    assert_eq!(results[2]["result"], "failed");
    assert_eq!(results[2]["code"], "unknown_tag");
    assert!(
        results[0].get("oldValue").is_none(),
        "old values stay in the audit trail"
    );
    assert_eq!(stage.snapshot(&token, "sim.ramp.1").await, 42.5);

    // The connector's activity trail, as its window shows it.
    let status = wait_for(&mut stage.status, "the write in the activity", |s| {
        s.recent_activity.iter().any(|a| a.operation == "write")
    })
    .await;
    let writes: Vec<_> = status
        .recent_activity
        .iter()
        .filter(|a| a.operation == "write")
        .collect();
    assert_eq!(writes.len(), 3);
    let ok = writes
        .iter()
        .find(|a| a.tag.as_deref() == Some("sim.ramp.1"))
        .unwrap();
    assert_eq!((ok.app_id.as_str(), ok.outcome.as_str()), (APP, "ok"));
    assert_eq!(ok.new_value.as_deref(), Some("42.5"));
    let old: f64 = ok.old_value.as_deref().unwrap().parse().unwrap();
    assert!(
        (40.0..=60.0).contains(&old),
        "the ramp's value before: {old}"
    );
    // The hub's audit trail: app, user, tag, old and new value, result.
    let audited = stage.audit_of("write").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert!(audited[0].contains("tag=\"sim.ramp.1\""), "{}", audited[0]);
    assert!(audited[0].contains(&format!("old={old}")), "{}", audited[0]);
    assert!(audited[0].contains("new=42.5 result=ok"), "{}", audited[0]);
    let events = stage.kit.hub.store.audit_events(100).await.unwrap();
    let event = events.iter().find(|e| e.event == "write").unwrap();
    assert_eq!(event.app_id.as_deref(), Some(APP));
    assert_eq!(event.user_id.as_deref(), Some(stage.kit.user.id.as_str()));
    assert_eq!(event.source_id.as_deref(), Some(stage.source_id.as_str()));
    assert_eq!(stage.audit_of("write_not_applied").await.len(), 2);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_applies_once_and_answers_the_same() {
    let stage = Stage::start("sim.*").await;
    let token = stage.token(WRITE, WRITE).await;
    let first = stage
        .put(&token, one("sim.ramp.1", json!(7)), Some("order-1"))
        .await;
    assert_eq!(first.0, StatusCode::OK);
    assert!(!first.2);
    // Another value set since: a retry of the first must not set 7 again.
    let (status, ..) = stage.put(&token, one("sim.ramp.1", json!(8)), None).await;
    assert_eq!(status, StatusCode::OK);
    let retry = stage
        .put(&token, one("sim.ramp.1", json!(7)), Some("order-1"))
        .await;
    assert_eq!((retry.0, &retry.1), (first.0, &first.1));
    assert!(retry.2, "the retry says it is the first answer");
    assert_eq!(stage.snapshot(&token, "sim.ramp.1").await, 8.0);
    assert_eq!(stage.audit_of("write").await.len(), 2, "applied once");
    // The same key for other values is refused, naming the problem.
    let (status, body, _) = stage
        .put(&token, one("sim.ramp.1", json!(9)), Some("order-1"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "idempotency_key_reused");
    assert_eq!(stage.snapshot(&token, "sim.ramp.1").await, 8.0);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_refuses_when_writing_is_off() {
    let stage = Stage::start("").await;
    let token = stage.token(WRITE, WRITE).await;
    assert_eq!(stage.capabilities(&token).await["write"], false);
    let before = stage.snapshot(&token, "sim.ramp.1").await;
    let (status, body, _) = stage.put(&token, one("sim.ramp.1", json!(1e6)), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"][0]["result"], "refused");
    assert_eq!(body["results"][0]["code"], "writing_off");
    assert_ne!(stage.snapshot(&token, "sim.ramp.1").await, 1e6);
    assert_ne!(before, 1e6);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_veto_blocks_writes_as_it_blocks_reads() {
    let stage = Stage::start("sim.*").await;
    let token = stage.token(WRITE, WRITE).await;
    let mut policy = LocalPolicy::default();
    policy.block_app(APP);
    stage.runtime.set_policy(&policy).unwrap();
    let (status, body, _) = stage
        .put(&token, one("sim.ramp.1", json!(1e6)), Some("k"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "vetoed");
    assert_eq!(stage.audit_of("write_refused").await.len(), 1);
    // The veto lifted, the same key applies the write: a refused write frees its key.
    stage.runtime.set_policy(&LocalPolicy::default()).unwrap();
    let (status, body, replayed) = stage
        .put(&token, one("sim.ramp.1", json!(1e6)), Some("k"))
        .await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{body}");
    assert_eq!(stage.snapshot(&token, "sim.ramp.1").await, 1e6);
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_needs_the_scope_and_the_sources_own_tick_and_a_revoke_stops_it() {
    let stage = Stage::start("sim.*").await;
    // Without the scope on the token.
    let reader = stage.token(&["data.read"], &["data.read"]).await;
    let (status, body, _) = stage.put(&reader, one("sim.ramp.1", json!(5)), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    // The scope on the token, but writing not ticked for this source.
    let unticked = stage.token(&["data.read"], WRITE).await;
    let (status, body, _) = stage
        .put(&unticked, one("sim.ramp.1", json!(5)), None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_scope"))
    );
    // Ticked: it writes; revoked: the very next write is refused.
    let writer = stage.token(WRITE, WRITE).await;
    let (status, ..) = stage.put(&writer, one("sim.ramp.1", json!(5)), None).await;
    assert_eq!(status, StatusCode::OK);
    stage
        .kit
        .hub
        .revoke(&stage.kit.user.id, APP, Some(&stage.source_id))
        .await
        .unwrap();
    let (status, body, _) = stage.put(&writer, one("sim.ramp.1", json!(6)), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_grant"))
    );
    assert_eq!(stage.audit_of("write").await.len(), 1);
    stage.runtime.stop().await;
}

/// docs/api.md's write example, run as written against the real hub and connector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_write_example_runs() {
    let stage = Stage::start("sim.ramp.*").await;
    let token = stage.token(WRITE, WRITE).await;
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    let start = guide
        .find("## Writes: `data.write`")
        .expect("the writes section");
    let section = &guide[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut ran = 0;
    for command in section.split("curl ").skip(1) {
        let mut text = String::new();
        for line in command.lines() {
            text.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                break;
            }
        }
        assert!(text.contains("-X PUT"), "curl {text}");
        let at = text.find("\"$HUB").expect("a quoted $HUB URL");
        let url = &text[at + "\"$HUB".len()..];
        let url = url[..url.find('"').unwrap()].replace("$SRC", &stage.source_id);
        let body = &text[text.find("-d '").expect("a body") + 4..];
        let body: Value = serde_json::from_str(&body[..body.find('\'').unwrap()]).unwrap();
        let mut request = stage
            .kit
            .client
            .put(stage.kit.url(&url))
            .bearer_auth(&token)
            .json(&body);
        if let Some(at) = text.find("Idempotency-Key: ") {
            let key = &text[at + "Idempotency-Key: ".len()..];
            request = request.header("Idempotency-Key", &key[..key.find(['"', '\'']).unwrap()]);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "curl {text}: {answer}");
        assert!(
            answer["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["result"] == "ok"),
            "curl {text}: {answer}"
        );
        ran += 1;
    }
    assert!(ran >= 1, "no write example found");
    stage.runtime.stop().await;
}
