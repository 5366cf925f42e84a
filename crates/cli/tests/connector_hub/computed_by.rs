//! Who computed an answer, end to end: the real connector runtime with a simulated source and
//! an OPC UA source (Python asyncua serving `tests/fixtures/opcua_server.py` on loopback), the
//! real hub over TLS, and an app with a token. A plot of the simulated source is computed by
//! Uplink (`Uplink-Computed-By: uplink`); a processed AVG on the OPC UA server is pushed down to
//! HistoryRead processed (`source`); COUNT, which the server lacks, is Uplink's; a raw read
//! computes nothing, so the header is absent (as for a connector that never says).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState};
use uplink_connector::{SourceConfig, kinds};
use uplink_signalr::Transport;
use uplink_testkit::{APP, TestHub};

use crate::{options, wait_for};

const ASYNCUA_VERSION: &str = "2.1.0";

/// The venv's python that runs the OPC UA fixture server.
pub(crate) fn python() -> PathBuf {
    let path = std::env::var_os("UPLINK_ASYNCUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache
                .join("uplink")
                .join(format!("asyncua-{ASYNCUA_VERSION}"))
                .join("bin")
                .join("python")
        });
    assert!(
        path.is_file(),
        "the OPC UA test server needs Python asyncua {ASYNCUA_VERSION} at {}: run \
         `source scripts/lib/setup.sh && ensure_asyncua` (./scripts/test does it), or point \
         UPLINK_ASYNCUA_PYTHON at a python that has it",
        path.display()
    );
    path
}

/// The fixture server on a free port (killed when dropped) and its endpoint URL.
async fn opcua_server() -> (tokio::process::Child, String) {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py");
    let mut child = tokio::process::Command::new(python())
        .arg(fixture)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the OPC UA fixture server");
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("opc.tcp://127.0.0.1:{port}/uplink/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_see_who_computed_an_answer_in_a_response_header() {
    let (_server, endpoint) = opcua_server().await;
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
    let settings = json!({"endpointUrl": endpoint, "browseRoot": "ns=2;s=Plant"});
    let settings = kinds::schema("opcua")
        .unwrap()
        .validate(settings.as_object().unwrap())
        .unwrap();
    runtime
        .add_source(SourceConfig {
            name: "boiler".into(),
            kind: "opcua".into(),
            description: "OPC UA".into(),
            settings,
        })
        .await
        .unwrap();
    let linked = wait_for(&mut status, "both sources registered", |s| {
        s.sources.len() == 2 && s.sources.iter().all(|src| src.hub_id.is_some())
    })
    .await;
    let id = |name: &str| {
        linked
            .sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.hub_id.clone())
            .unwrap()
    };
    let (simulated, boiler) = (id("simulated"), id("boiler"));
    let token = kit
        .mint_app_token(&kit.user.id, APP, &[simulated.clone(), boiler.clone()], 600)
        .await;
    let get = |source: String, rest: &'static str| {
        let request = kit
            .client
            .get(kit.url(&format!("/api/v1/sources/{source}/{rest}")))
            .bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let by = response
                .headers()
                .get("uplink-computed-by")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(status, StatusCode::OK, "{rest}: {body}");
            (by, body)
        }
    };

    let (by, body) = get(
        simulated.clone(),
        "plot?tag=sim.sinusoid.1&start=*-1h&end=*&intervals=10",
    )
    .await;
    assert_eq!(by.as_deref(), Some("uplink"), "{body}");
    assert!(!body["values"].as_array().unwrap().is_empty());

    let (by, body) = get(simulated.clone(), "raw?tag=sim.ramp.1&start=*-1m&end=*").await;
    assert_eq!(by, None, "a raw read computes nothing: {body}");

    let (by, body) = get(
        boiler.clone(),
        "processed?tag=Temperature&start=*-15m&end=*&interval=1m&functions=AVG",
    )
    .await;
    assert_eq!(
        by.as_deref(),
        Some("source"),
        "AVG pushed down to the server: {body}"
    );
    assert!(!body["functions"]["AVG"].as_array().unwrap().is_empty());

    let (by, body) = get(
        boiler,
        "processed?tag=Temperature&start=*-15m&end=*&interval=1m&functions=COUNT",
    )
    .await;
    assert_eq!(
        by.as_deref(),
        Some("uplink"),
        "the server has no COUNT like Uplink's: {body}"
    );
    runtime.stop().await;
}
