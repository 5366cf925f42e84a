//! OPC UA alarms end to end: a real OPC UA server (Python asyncua serving
//! `tests/fixtures/opcua_server.py --alarms` on loopback), the real connector runtime with an
//! `opcua` source, the real hub over TLS, and an app whose token and grant hold `events.read`
//! for that source. The alarm raised before the app subscribed reaches its events stream (sent
//! again by ConditionRefresh, marked `refresh`) with the priority its severity gives; a later
//! acknowledgement arrives live; a time-range read pages through the server's event history.
//!
//! `cargo test -p uplink-cli --test connector_hub opcua_events -- --nocapture`

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState};
use uplink_connector::{SourceConfig, kinds};
use uplink_signalr::Transport;
use uplink_testkit::{APP, TestHub};

use crate::computed_by::python;
use crate::events::{Stream, urlencode};
use crate::{options, wait_for};

/// The fixture server with alarms: its process (killed when dropped), its endpoint, and a way
/// to have it raise or acknowledge its alarm.
struct AlarmServer {
    _child: tokio::process::Child,
    endpoint: String,
    stdin: tokio::process::ChildStdin,
    answers: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl AlarmServer {
    async fn start() -> Self {
        let fixture =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py");
        let mut child = tokio::process::Command::new(python())
            .arg(fixture)
            .args(["--alarms", "--event-history", "3"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the OPC UA fixture server");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("the fixture server did not start within 120 s")
            .unwrap()
            .expect("the fixture server exited before listening");
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the fixture: {line}"));
        let (answer, answers) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("EVENT ") {
                    let _ = answer.send(line);
                }
            }
        });
        Self {
            _child: child,
            endpoint: format!("opc.tcp://127.0.0.1:{port}/uplink/"),
            stdin,
            answers,
        }
    }

    /// `raise`, `ack`, `normal` or `event`; returns once the server sent it.
    async fn command(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), self.answers.recv())
            .await
            .unwrap_or_else(|_| panic!("the fixture did not answer '{command}' within 30 s"))
            .expect("the fixture server exited");
        assert_eq!(answer, format!("EVENT {command}"));
    }
}

const EVENTS: &[&str] = &["data.read", "events.read"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opcua_alarm_reaches_the_apps_events_stream_and_its_time_range_read() {
    let mut server = AlarmServer::start().await;
    // Active before anyone subscribes: ConditionRefresh brings it.
    server.command("raise").await;
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
    let runtime = ConnectorRuntime::start(options(data_dir.path(), &[Transport::WebSockets]))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    let settings = json!({"endpointUrl": server.endpoint, "browseRoot": "ns=2;s=Plant",
                          "publishingInterval": "100ms", "eventNotifier": "Server"});
    let settings = kinds::schema("opcua")
        .unwrap()
        .validate(settings.as_object().unwrap())
        .unwrap();
    runtime
        .add_source(SourceConfig {
            name: "boiler".into(),
            kind: "opcua".into(),
            description: "Boiler alarms".into(),
            settings,
        })
        .await
        .unwrap();
    let linked = wait_for(&mut status, "the OPC UA source registered", |s| {
        s.sources
            .iter()
            .any(|src| src.name == "boiler" && src.hub_id.is_some())
    })
    .await;
    let boiler = linked
        .sources
        .iter()
        .find(|s| s.name == "boiler")
        .and_then(|s| s.hub_id.clone())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kit
        .hub
        .store
        .source(&boiler)
        .await
        .unwrap()
        .unwrap()
        .capabilities
        .is_some_and(|c| c.events)
    {
        assert!(
            Instant::now() < deadline,
            "the hub learns that the source has events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = kit
        .mint_token(
            &kit.user.id,
            APP,
            std::slice::from_ref(&boiler),
            EVENTS,
            EVENTS,
            600,
        )
        .await;
    let get = |path_and_query: String| {
        let request = kit
            .client
            .get(kit.url(&format!("/api/v1/sources/{boiler}/{path_and_query}")))
            .bearer_auth(&token);
        async move { request.send().await.unwrap() }
    };

    let response = get("events/subscribe".into()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = Stream::new(response);
    let mut seen: Vec<Value> = Vec::new();
    let mut acknowledged = false;
    while !acknowledged {
        let event = stream.next().await.expect("events before any end");
        assert_eq!(event.name, "events", "{event:?}");
        for e in event.data["events"].as_array().unwrap() {
            assert_eq!(e["source"], "boiler");
            if e["type"] == "alarm" && seen.iter().all(|s| s["type"] != "alarm") {
                // The alarm is in; now a live change.
                server.command("ack").await;
            }
            acknowledged |= e["type"] == "acknowledged";
            seen.push(e.clone());
        }
    }
    let alarms: Vec<&Value> = seen.iter().filter(|e| e["type"] == "alarm").collect();
    assert_eq!(alarms.len(), 1, "the active alarm once: {seen:#?}");
    let alarm = alarms[0];
    assert_eq!(alarm["message"], "Boiler temperature high");
    assert_eq!(alarm["priority"], "high", "severity 700: {alarm}");
    assert_eq!(alarm["topic"], "Temperature");
    assert_eq!(alarm["category"], "ExclusiveLevelAlarmType");
    assert_eq!(alarm["properties"]["conditionName"], "TemperatureHigh");
    assert_eq!(
        alarm["properties"]["refresh"], "true",
        "active before the subscription: sent by ConditionRefresh"
    );
    let ack = seen.last().unwrap();
    assert_eq!(ack["priority"], "high");
    assert!(ack["properties"].get("refresh").is_none(), "{ack}");
    drop(stream);

    // The server's history holds 3 seeded alarms, the raise and the acknowledgement; pages of
    // two go through all of them once, oldest first.
    let read_all = |limit: u32| {
        let get = &get;
        async move {
            let mut events: Vec<Value> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let mut query = format!("events?start=*-10m&end=*&limit={limit}");
                if let Some(cursor) = &cursor {
                    query.push_str(&format!("&cursor={}", urlencode(cursor)));
                }
                let response = get(query).await;
                assert_eq!(response.status(), StatusCode::OK);
                let page: Value = response.json().await.unwrap();
                let got = page["events"].as_array().unwrap();
                assert!(got.len() <= limit as usize, "{page}");
                events.extend(got.iter().cloned());
                pages += 1;
                assert!(pages < 100, "the pages never end");
                match page["next"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return (events, pages),
                }
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let whole = loop {
        let (events, _) = read_all(1000).await;
        if events.iter().any(|e| e["type"] == "acknowledged") {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledgement reaches the server's history: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(whole.len(), 5, "{whole:#?}");
    let (paged, pages) = read_all(2).await;
    assert_eq!(pages, 3, "five events in pages of two");
    let ids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&whole), "none missing or repeated");
    assert_eq!(
        ids(&paged).iter().collect::<HashSet<_>>().len(),
        5,
        "no event twice"
    );
    let raised = paged
        .iter()
        .find(|e| e["type"] == "alarm" && e["message"] == "Boiler temperature high")
        .expect("the raised alarm in the history");
    assert_eq!(raised["priority"], "high");
    assert_eq!(raised["id"], alarm["id"], "the same event, live and stored");
    runtime.stop().await;
}
