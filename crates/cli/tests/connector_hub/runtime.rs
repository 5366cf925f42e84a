//! The connector runtime against the real hub (the test kit's: `uplink_hub` over real TLS on
//! loopback), signed in with the client credentials of the seeded connector: registration,
//! relayed answers in chunks over each transport, cancellation, the site's veto,
//! re-registration after a source is added, and relinking after the hub restarts.
//!
//! The test kit's hub runs on its own tokio runtime, so killing it drops every task and socket
//! at once, as a process that dies would; it restarts on the same data folder and port.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::policy::LocalPolicy;
use uplink_connector::runtime::{ConnectorRuntime, LinkState};
use uplink_connector::{SourceConfig, kinds};
use uplink_hub::relay::RelayError;
use uplink_link::{RelayedQuery, ResultFormat};
use uplink_signalr::Transport;
use uplink_testkit::{APP, TestHub};

use crate::{options, wait_for};

struct Setup {
    hub: TestHub,
    data_dir: tempfile::TempDir,
    connector_id: String,
    user_id: String,
}

/// The test kit's hub (Ada, the dashboard app, her connector "Plant A") and a connector data
/// folder holding Plant A's client credentials.
async fn setup() -> Setup {
    let hub = TestHub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    CredentialStore::new(data_dir.path())
        .save(&LinkCredentials {
            hub_url: hub.issuer.clone(),
            connector_id: hub.plant_id().to_owned(),
            ca_pem: Some(hub.ca_pem().to_owned()),
            secret: LinkSecret::ClientCredential {
                credential: hub.plant.credential.expose().to_owned(),
            },
        })
        .unwrap();
    Setup {
        connector_id: hub.plant_id().to_owned(),
        user_id: hub.user.id.clone(),
        hub,
        data_dir,
    }
}

fn query(
    setup: &Setup,
    source: &str,
    format: ResultFormat,
    body: serde_json::Value,
) -> RelayedQuery {
    RelayedQuery {
        query_id: "set-by-the-router".into(),
        app_id: APP.into(),
        user_id: setup.user_id.clone(),
        source: source.into(),
        format,
        query: serde_json::from_value(body).unwrap(),
    }
}

fn raw_hour() -> serde_json::Value {
    json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-01T00:00:00Z","end":"2024-05-01T01:00:00Z"})
}

#[tokio::test]
async fn registers_and_answers_relayed_queries_in_chunks_over_each_transport() {
    let setup = setup().await;
    for transport in Transport::ALL {
        let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &[transport]))
            .await
            .unwrap();
        let mut status = runtime.status();
        let linked = wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
        assert_eq!(linked.transport.as_deref(), Some(transport.as_str()));
        assert!(
            linked.sources[0]
                .hub_id
                .as_deref()
                .unwrap()
                .starts_with("src_")
        );
        let described = setup.hub.hub.relay().describe(&setup.connector_id).unwrap();
        assert_eq!(described.len(), 1);
        assert_eq!(described[0].name, "simulated");

        let body = setup
            .hub
            .relay(
                &setup.connector_id,
                query(&setup, "simulated", ResultFormat::Json, raw_hour()),
            )
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert!(
            body.len() > 3 * uplink_link::MAX_CHUNK_BYTES,
            "several chunks"
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["tag"], "sim.ramp.1");
        assert_eq!(parsed["values"].as_array().unwrap().len(), 3601);
        assert_eq!(parsed["values"][3600]["time"], "2024-05-01T01:00:00Z");

        let recorded = wait_for(&mut status, "activity recorded", |s| {
            s.recent_activity.first().is_some_and(|a| a.outcome == "ok")
        })
        .await;
        let activity = &recorded.recent_activity[0];
        assert_eq!(
            (activity.app_id.as_str(), activity.operation.as_str()),
            (APP, "raw")
        );
        assert_eq!(activity.bytes, body.len() as u64);
        let measured = wait_for(&mut status, "round trip measured", |s| {
            s.round_trip_ms.is_some()
        })
        .await;
        assert!(measured.round_trip_ms.unwrap() > 0.0);
        runtime.stop().await;
    }
}

/// An answer of many windows over Server-Sent Events and long polling, where the connector
/// sends its chunks as POST batches with several in flight: it arrives whole and in order.
#[tokio::test]
async fn a_long_answer_arrives_complete_and_in_order_over_posts_in_flight() {
    let setup = setup().await;
    for transport in [Transport::ServerSentEvents, Transport::LongPolling] {
        let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &[transport]))
            .await
            .unwrap();
        let mut status = runtime.status();
        wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
        let six_hours = json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-01T00:00:00Z","end":"2024-05-01T06:00:00Z"});
        let body = setup
            .hub
            .relay(
                &setup.connector_id,
                query(&setup, "simulated", ResultFormat::Json, six_hours),
            )
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));
        assert!(
            body.len() > 4 * uplink_link::CHUNK_WINDOW * uplink_link::MAX_CHUNK_BYTES,
            "{transport}: many windows of chunks ({} bytes)",
            body.len()
        );
        let parsed: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{transport}: the body is not whole JSON: {e}"));
        let values = parsed["values"].as_array().unwrap();
        assert_eq!(values.len(), 6 * 3600 + 1, "{transport}");
        let times: Vec<&str> = values.iter().map(|v| v["time"].as_str().unwrap()).collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "{transport}: values out of order"
        );
        assert_eq!(times[0], "2024-05-01T00:00:00Z");
        assert_eq!(times[6 * 3600], "2024-05-01T06:00:00Z");
        runtime.stop().await;
    }
}

#[tokio::test]
async fn unknown_tags_and_the_local_veto_are_refused_on_site() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;

    let unknown = setup
        .hub
        .relay(
            &setup.connector_id,
            query(
                &setup,
                "simulated",
                ResultFormat::Json,
                json!({"type":"snapshot","tags":["nope"]}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, RelayError::Connector { code, .. } if code == "unknown_tag"),
        "{unknown:?}"
    );

    let mut policy = LocalPolicy::default();
    policy.block_app(APP);
    runtime.set_policy(&policy).unwrap();
    let vetoed = setup
        .hub
        .relay(
            &setup.connector_id,
            query(&setup, "simulated", ResultFormat::Json, raw_hour()),
        )
        .await
        .unwrap_err();
    match &vetoed {
        RelayError::Connector { code, message } => {
            assert_eq!(code, "vetoed");
            assert!(message.contains(APP), "{message}");
        }
        other => panic!("expected a veto, got {other:?}"),
    }
    assert_eq!(vetoed.http_status(), 403);
    let recorded = wait_for(&mut status, "veto recorded", |s| {
        s.recent_activity
            .first()
            .is_some_and(|a| a.outcome == "vetoed")
    })
    .await;
    assert!(recorded.policy.blocked_apps.contains(APP));

    runtime.set_policy(&LocalPolicy::default()).unwrap();
    setup
        .hub
        .relay(
            &setup.connector_id,
            query(&setup, "simulated", ResultFormat::Ndjson, raw_hour()),
        )
        .await
        .expect("served again once unblocked");
    runtime.stop().await;
}

#[tokio::test]
async fn a_blocked_source_stays_blocked_when_renamed() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    runtime.set_source_blocked("simulated", true).await.unwrap();
    let refused = |source: &'static str| {
        let setup = &setup;
        async move {
            setup
                .hub
                .relay(
                    &setup.connector_id,
                    query(setup, source, ResultFormat::Json, raw_hour()),
                )
                .await
                .unwrap_err()
        }
    };
    assert!(
        matches!(refused("simulated").await, RelayError::Connector { code, .. } if code == "vetoed")
    );

    let settings = kinds::schema("simulated")
        .unwrap()
        .validate(&serde_json::Map::new())
        .unwrap();
    runtime
        .edit_source(
            "simulated",
            SourceConfig {
                name: "plant-sim".into(),
                kind: "simulated".into(),
                description: "Renamed".into(),
                settings,
            },
        )
        .await
        .unwrap();
    let renamed = wait_for(&mut status, "renamed", |s| {
        s.sources.iter().any(|source| source.name == "plant-sim")
    })
    .await;
    assert!(renamed.sources[0].blocked_on_site, "shown as blocked");
    match refused("plant-sim").await {
        RelayError::Connector { code, message } => {
            assert_eq!(code, "vetoed");
            assert!(
                message.contains("data source 'plant-sim'"),
                "named by its current name: {message}"
            );
        }
        other => panic!("expected a veto after the rename, got {other:?}"),
    }
    // The block is kept on disk by key, so a restarted connector refuses it too.
    runtime.stop().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected again", |s| {
        s.link == LinkState::Connected
    })
    .await;
    assert!(
        matches!(refused("plant-sim").await, RelayError::Connector { code, .. } if code == "vetoed")
    );
    runtime
        .set_source_blocked("plant-sim", false)
        .await
        .unwrap();
    setup
        .hub
        .relay(
            &setup.connector_id,
            query(&setup, "plant-sim", ResultFormat::Ndjson, raw_hour()),
        )
        .await
        .expect("served once unblocked");
    runtime.stop().await;
}

#[tokio::test]
async fn a_new_site_name_reaches_the_hub() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;

    let long = "x".repeat(65);
    for bad in ["", "   ", long.as_str(), "two\nlines"] {
        let refused = runtime.set_site_name(bad).await.unwrap_err();
        assert_eq!(refused.code(), "invalid_settings", "{bad:?}: {refused}");
    }
    runtime.set_site_name("  Press shop 7  ").await.unwrap();
    let shown = wait_for(&mut status, "renamed", |s| s.site_name == "Press shop 7").await;
    assert_eq!(shown.site_name, "Press shop 7", "trimmed");
    let saved = uplink_connector::ConfigStore::new(setup.data_dir.path())
        .load()
        .unwrap();
    assert_eq!(saved.settings.display_name.as_deref(), Some("Press shop 7"));

    // The hub's settings page shows the site by its new name once the connector registered
    // again (the name travels in `Register`).
    let cookie = setup.hub.sign_in().await;
    let page = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let html = setup
                .hub
                .client
                .get(setup.hub.url("/account/settings"))
                .headers(uplink_testkit::cookie_header(&cookie))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if html.contains("Press shop 7") {
                return html;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the hub's settings page shows the new site name");
    assert!(!page.contains("Plant A"), "the old name is gone");
    runtime.stop().await;
}

#[tokio::test]
async fn an_app_that_goes_away_cancels_the_query_on_the_connector() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &[Transport::WebSockets]))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    // A month at one value a second: far more than anyone reads here.
    let month = json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-01T00:00:00Z","end":"2024-06-01T00:00:00Z"});
    let relay = setup.hub.hub.relay();
    let connector_id = setup.connector_id.clone();
    let relayed = query(&setup, "simulated", ResultFormat::Json, month);
    let first = setup
        .hub
        .run(async move {
            let mut stream = relay.relay(&connector_id, relayed).await.unwrap();
            let first = stream.next().await.unwrap().unwrap();
            drop(stream); // the app disconnects
            first.len()
        })
        .await;
    assert!(first > 0);
    let recorded = wait_for(&mut status, "cancel recorded", |s| {
        s.recent_activity
            .first()
            .is_some_and(|a| a.outcome == "cancelled")
            && s.active_queries == 0
    })
    .await;
    // 2.7 M values are ~190 MB of JSON; a cancelled query stopped long before.
    assert!(
        recorded.recent_activity[0].bytes < 20 * 1024 * 1024,
        "{}",
        recorded.recent_activity[0].bytes
    );
    runtime.stop().await;
}

#[tokio::test]
async fn a_source_added_at_run_time_is_announced() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    let defaults = kinds::schema("simulated")
        .unwrap()
        .validate(&serde_json::Map::new())
        .unwrap();
    runtime
        .add_source(SourceConfig {
            name: "line-2".into(),
            kind: "simulated".into(),
            description: "Second line".into(),
            settings: defaults,
        })
        .await
        .unwrap();
    wait_for(&mut status, "line-2 registered", |s| {
        s.sources
            .iter()
            .any(|src| src.name == "line-2" && src.hub_id.is_some())
    })
    .await;
    let described = setup.hub.hub.relay().describe(&setup.connector_id).unwrap();
    let names: Vec<&str> = described.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["simulated", "line-2"]);
    setup
        .hub
        .relay(
            &setup.connector_id,
            query(&setup, "line-2", ResultFormat::Json, raw_hour()),
        )
        .await
        .expect("the new source answers");

    assert_eq!(runtime.status().borrow().sources[1].name, "line-2");
    let settings = uplink_connector::ConfigStore::new(setup.data_dir.path())
        .load()
        .unwrap()
        .sources[1]
        .settings
        .clone();
    let line_2_id = runtime.status().borrow().sources[1].hub_id.clone();
    runtime
        .edit_source(
            "line-2",
            SourceConfig {
                name: "line-3".into(),
                kind: "simulated".into(),
                description: "Renamed".into(),
                settings,
            },
        )
        .await
        .unwrap();
    wait_for(&mut status, "line-3 registered", |s| {
        s.sources
            .iter()
            .map(|src| src.name.as_str())
            .collect::<Vec<_>>()
            == ["simulated", "line-3"]
            && s.sources[1].hub_id.is_some()
    })
    .await;
    let described = setup.hub.hub.relay().describe(&setup.connector_id).unwrap();
    let names: Vec<&str> = described.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["simulated", "line-3"]);
    assert_eq!(described[1].description, "Renamed");
    assert_eq!(
        runtime.status().borrow().sources[1].hub_id,
        line_2_id,
        "a renamed source keeps its hub id (and so its grants)"
    );

    runtime.remove_source("simulated").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = setup.hub.hub.relay().describe(&setup.connector_id).unwrap();
            if now.len() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the removal is announced");
    runtime.stop().await;
}

#[tokio::test]
async fn the_connector_relinks_by_itself_after_the_hub_restarts() {
    let mut setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    setup.hub.kill();
    wait_for(&mut status, "link lost", |s| {
        s.link == LinkState::Reconnecting
    })
    .await;

    // The same data folder and port, as a hub process restarted by its service manager.
    setup.hub.restart().await;
    let back = wait_for(&mut status, "relinked", |s| {
        s.link == LinkState::Connected && s.reconnects >= 1
    })
    .await;
    assert!(back.last_error.is_none());
    let body = setup
        .hub
        .relay(
            &setup.connector_id,
            query(
                &setup,
                "simulated",
                ResultFormat::Json,
                json!({"type":"snapshot","tags":["sim.ramp.1"]}),
            ),
        )
        .await
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["values"][0]["tag"], "sim.ramp.1");
    runtime.stop().await;
}

#[tokio::test]
async fn a_device_flow_sign_in_links_and_keeps_each_rotated_refresh_token() {
    let setup = setup().await;
    let first_refresh = device_sign_in(&setup).await;

    let data_dir = tempfile::tempdir().unwrap();
    let store = CredentialStore::new(data_dir.path());
    let connector_id = uplink_connector::credentials::generate_connector_id();
    store
        .save(&LinkCredentials {
            hub_url: setup.hub.issuer.clone(),
            connector_id: connector_id.clone(),
            ca_pem: Some(setup.hub.ca_pem().to_owned()),
            secret: LinkSecret::RefreshToken {
                refresh_token: first_refresh.clone(),
            },
        })
        .unwrap();
    let refresh_token = |store: &CredentialStore| match store.load().unwrap().unwrap().secret {
        LinkSecret::RefreshToken { refresh_token } => refresh_token,
        other => panic!("expected a refresh token, got {other:?}"),
    };

    let runtime = ConnectorRuntime::start(options(data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    let linked = wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    assert_eq!(linked.connector_id.as_deref(), Some(connector_id.as_str()));
    let described = setup.hub.hub.relay().describe(&connector_id).unwrap();
    assert_eq!(
        described[0].name, "simulated",
        "the hub created the connector for its owner"
    );
    let second_refresh = refresh_token(&store);
    assert_ne!(
        second_refresh, first_refresh,
        "the rotated refresh token was kept"
    );
    runtime.stop().await;

    // The kept token works (the spent one would sign the connector out for good).
    let runtime = ConnectorRuntime::start(options(data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected again", |s| {
        s.link == LinkState::Connected
    })
    .await;
    assert_ne!(refresh_token(&store), second_refresh);
    runtime.stop().await;
}

/// A device-flow sign-in approved by Ada: its refresh token.
async fn device_sign_in(setup: &Setup) -> String {
    let oauth = uplink_connector::oauth::OAuthClient::new(&setup.hub.issuer, setup.hub.tls.clone())
        .unwrap();
    let authorization = oauth.device_authorization().await.unwrap();
    assert!(authorization.verification_uri.ends_with("/account/device"));
    // The owner approves the code on the hub's device page.
    let page = setup
        .hub
        .decide_device(&authorization.user_code, "approve")
        .await;
    assert!(page.contains("Device connected"), "{page}");
    oauth
        .poll_device(&authorization)
        .await
        .unwrap()
        .refresh_token
        .expect("a refresh token")
}

/// The hub lets a sign-in register only the connectors it created while it is valid: signing
/// the same connector in again ends the old sign-in at the hub, so the new one links.
#[tokio::test]
async fn signing_in_again_ends_the_old_sign_in_and_keeps_the_connector() {
    let setup = setup().await;
    let data_dir = tempfile::tempdir().unwrap();
    let runtime = ConnectorRuntime::start(options(data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let connector_id = uplink_connector::credentials::generate_connector_id();
    let credentials = |refresh_token: String| LinkCredentials {
        hub_url: setup.hub.issuer.clone(),
        connector_id: connector_id.clone(),
        ca_pem: Some(setup.hub.ca_pem().to_owned()),
        secret: LinkSecret::RefreshToken { refresh_token },
    };
    let first = device_sign_in(&setup).await;
    runtime.sign_in(credentials(first)).await.unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    let (admin, user) = (setup.hub.hub.clone(), setup.user_id.clone());
    // The account's sign-ins, each with the connector it holds, as the settings page lists them.
    let sign_ins = move || {
        let (admin, user) = (admin.clone(), user.clone());
        async move {
            admin
                .store
                .sign_ins_of(&user, uplink_testkit::unix_now())
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.family_id, s.connector_name.is_some()))
                .collect::<Vec<_>>()
        }
    };
    let before = setup.hub.run(sign_ins()).await;
    assert_eq!(before.len(), 1);
    assert!(before[0].1, "the first sign-in holds the connector");

    let second = device_sign_in(&setup).await;
    runtime.sign_in(credentials(second)).await.unwrap();
    let held = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = setup.hub.run(sign_ins()).await;
            if now.len() == 1 && now[0].1 && now[0].0 != before[0].0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        held.is_ok(),
        "the old sign-in is ended and the new one holds the connector: {:?}",
        setup.hub.run(sign_ins()).await
    );
    let mut status = runtime.status();
    let linked = wait_for(&mut status, "connected with the new sign-in", |s| {
        s.link == LinkState::Connected
    })
    .await;
    assert_eq!(linked.connector_id.as_deref(), Some(connector_id.as_str()));
    runtime.stop().await;
}

#[tokio::test]
async fn without_credentials_the_runtime_says_signed_out_and_still_manages_sources() {
    let data_dir = tempfile::tempdir().unwrap();
    let runtime = ConnectorRuntime::start(options(data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let status = runtime.status().borrow().clone();
    assert_eq!(status.link, LinkState::SignedOut);
    assert_eq!(status.sources[0].name, "simulated");
    let refused = runtime.revoke(APP, None).await.unwrap_err();
    assert_eq!(refused.code(), "signed_out");
    runtime.remove_source("simulated").await.unwrap();
    assert!(runtime.status().borrow().sources.is_empty());
    runtime.stop().await;
    assert!(
        uplink_connector::runtime::read_status_file(data_dir.path())
            .unwrap()
            .is_none(),
        "a stopped connector reads as not running"
    );
}

#[tokio::test]
async fn consents_show_per_source_and_revoke_on_site_reaches_the_hub() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    let linked = wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    let source_id = linked.sources[0].hub_id.clone().unwrap();
    let (admin, user) = (setup.hub.hub.clone(), setup.user_id.clone());
    setup
        .hub
        .run(async move {
            admin
                .grant(&user, APP, &[source_id], &["data.read".into()])
                .await
                .unwrap()
        })
        .await;
    let granted = wait_for(&mut status, "grant pushed", |s| {
        !s.sources[0].apps.is_empty()
    })
    .await;
    let app = &granted.sources[0].apps[0];
    assert_eq!(
        (app.app_id.as_str(), app.app_name.as_str()),
        (APP, "Energy dashboard")
    );
    assert_eq!(app.user_id, setup.user_id);
    // People are shown by name: Ada has no display name, so her sign-in name.
    assert_eq!(app.user_name.as_deref(), Some(uplink_testkit::USER));
    assert_eq!(app.last_used_at, None);

    // Serving the app's request moves its "last used" on site, as the hub records it.
    setup
        .hub
        .relay(
            &setup.connector_id,
            query(&setup, "simulated", ResultFormat::Json, raw_hour()),
        )
        .await
        .unwrap();
    let used = wait_for(&mut status, "use noted", |s| {
        s.sources[0]
            .apps
            .first()
            .is_some_and(|a| a.last_used_at.is_some())
    })
    .await;
    let served_at = used.sources[0].apps[0].last_used_at.unwrap();
    assert!((chrono::Utc::now() - served_at).num_seconds().abs() < 60);

    runtime.revoke(APP, Some("simulated")).await.unwrap();
    // The app holds no grant here any more, and stays listed as revoked.
    let revoked = wait_for(&mut status, "revoke pushed back", |s| {
        s.sources[0].apps.is_empty() && !s.revoked_apps.is_empty()
    })
    .await;
    assert_eq!(
        (
            revoked.revoked_apps[0].app_id.as_str(),
            revoked.revoked_apps[0].app_name.as_str()
        ),
        (APP, "Energy dashboard")
    );
    assert!(!revoked.revoked_apps[0].blocked_on_site);
    runtime.stop().await;
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire_on_long_polling() {
    let mut setup = setup().await;
    // The hub again on the same store, now with six-second access tokens: renewals come every
    // few seconds, with room for a loaded machine's delays before the hub would close the link.
    setup
        .hub
        .restart_with(|config| config.access_token_ttl = 6)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let short = &setup.hub;
    let mut credentials = CredentialStore::new(setup.data_dir.path())
        .load()
        .unwrap()
        .unwrap();
    credentials.hub_url = short.issuer.clone();
    CredentialStore::new(dir.path()).save(&credentials).unwrap();
    let runtime = ConnectorRuntime::start(options(dir.path(), &[Transport::LongPolling]))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    // Over two token lifetimes: without renewal the hub would have closed the link.
    tokio::time::sleep(Duration::from_secs(14)).await;
    let now = runtime.status().borrow().clone();
    assert_eq!(now.link, LinkState::Connected, "{now:#?}");
    assert_eq!(
        now.reconnects, 0,
        "the link never dropped: {:?}",
        now.last_error
    );
    let body = short
        .relay(
            &setup.connector_id,
            query(
                &setup,
                "simulated",
                ResultFormat::Json,
                json!({"type":"snapshot","tags":["sim.ramp.1"]}),
            ),
        )
        .await
        .unwrap();
    assert!(body.contains("sim.ramp.1"));
    runtime.stop().await;
}

#[tokio::test]
async fn sources_added_by_another_process_are_announced() {
    let setup = setup().await;
    let runtime = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    // `uplink sources add` in another process: it edits the configuration file only.
    let store = uplink_connector::ConfigStore::new(setup.data_dir.path());
    let mut config = store.load().unwrap();
    let defaults = kinds::schema("simulated")
        .unwrap()
        .validate(&serde_json::Map::new())
        .unwrap();
    config
        .add_source(SourceConfig {
            name: "from-cli".into(),
            kind: "simulated".into(),
            description: String::new(),
            settings: defaults,
        })
        .unwrap();
    store.save(&config).unwrap();
    wait_for(&mut status, "from-cli registered", |s| {
        s.sources
            .iter()
            .any(|src| src.name == "from-cli" && src.hub_id.is_some())
    })
    .await;
    let described = setup.hub.hub.relay().describe(&setup.connector_id).unwrap();
    assert_eq!(described.len(), 2);
    runtime.stop().await;
}

#[tokio::test]
async fn queries_beyond_the_limit_are_answered_busy() {
    let setup = setup().await;
    let mut one_at_a_time = options(setup.data_dir.path(), &[Transport::WebSockets]);
    one_at_a_time.max_concurrent_queries = 1;
    let runtime = ConnectorRuntime::start(one_at_a_time).await.unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    // A month of values, its answer left unread: it holds the only slot.
    let month = json!({"type":"raw","tag":"sim.ramp.1","start":"2024-05-01T00:00:00Z","end":"2024-06-01T00:00:00Z"});
    let relay = setup.hub.hub.relay();
    let (connector_id, held) = (
        setup.connector_id.clone(),
        query(&setup, "simulated", ResultFormat::Json, month),
    );
    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    setup.hub.spawn(async move {
        let stream = relay.relay(&connector_id, held).await.unwrap();
        let _ = opened_tx.send(());
        let _ = release_rx.await;
        drop(stream);
    });
    opened_rx.await.unwrap();
    wait_for(&mut status, "one query running", |s| s.active_queries == 1).await;

    let busy = setup
        .hub
        .relay(
            &setup.connector_id,
            query(
                &setup,
                "simulated",
                ResultFormat::Json,
                json!({"type":"snapshot","tags":["sim.ramp.1"]}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&busy, RelayError::Connector { code, .. } if code == "busy"),
        "{busy:?}"
    );
    assert_eq!(busy.http_status(), 503);

    release_tx.send(()).unwrap();
    wait_for(&mut status, "slot free again", |s| s.active_queries == 0).await;
    setup
        .hub
        .relay(
            &setup.connector_id,
            query(
                &setup,
                "simulated",
                ResultFormat::Json,
                json!({"type":"snapshot","tags":["sim.ramp.1"]}),
            ),
        )
        .await
        .expect("served once the slot is free");
    runtime.stop().await;
}

#[tokio::test]
async fn unreadable_credentials_leave_the_runtime_signed_out_saying_why() {
    let data_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        data_dir.path().join("credentials.json"),
        b"refresh-token-garbage",
    )
    .unwrap();
    let runtime = ConnectorRuntime::start(options(data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let status = runtime.status().borrow().clone();
    assert_eq!(status.link, LinkState::SignedOut);
    let error = status.last_error.unwrap();
    assert!(error.contains("sign in again"), "{error}");
    assert!(
        !error.contains("garbage"),
        "the file's content is never quoted"
    );
    runtime.stop().await;
}

#[tokio::test]
async fn a_transport_the_owner_forced_is_not_remembered_as_what_works() {
    let setup = setup().await;
    let forced = ConnectorRuntime::start(options(setup.data_dir.path(), &[Transport::LongPolling]))
        .await
        .unwrap();
    let mut status = forced.status();
    let linked = wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    assert_eq!(linked.transport.as_deref(), Some("LongPolling"));
    forced.stop().await;
    // The link remembers what worked per hub, proxy and allowed transports: with all of them
    // allowed again it starts on WebSockets, not on the long polling the owner had forced.
    let free = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut status = free.status();
    let linked = wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    assert_eq!(linked.transport.as_deref(), Some("WebSockets"));
    assert!(
        setup
            .data_dir
            .path()
            .join(uplink_connector::runtime::TRANSPORT_MEMORY_FILE)
            .exists(),
        "the memory is kept in the data dir"
    );
    free.stop().await;
}

#[tokio::test]
async fn a_link_replaced_by_a_newer_one_stops_instead_of_taking_the_connector_back() {
    let setup = setup().await;
    let first = ConnectorRuntime::start(options(setup.data_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut first_status = first.status();
    wait_for(&mut first_status, "first linked", |s| {
        s.link == LinkState::Connected
    })
    .await;

    // A second copy of the same connector (same id and credential) links and registers.
    let second_dir = tempfile::tempdir().unwrap();
    let credentials = CredentialStore::new(setup.data_dir.path())
        .load()
        .unwrap()
        .unwrap();
    CredentialStore::new(second_dir.path())
        .save(&credentials)
        .unwrap();
    let second = ConnectorRuntime::start(options(second_dir.path(), &Transport::ALL))
        .await
        .unwrap();
    let mut second_status = second.status();
    wait_for(&mut second_status, "second linked", |s| {
        s.link == LinkState::Connected
    })
    .await;

    let ended = wait_for(&mut first_status, "first told it was replaced", |s| {
        s.link == LinkState::Offline
    })
    .await;
    let why = ended.last_error.clone().unwrap_or_default();
    assert!(
        why.contains(uplink_link::close_reason::REPLACED),
        "the owner is told why: {why}"
    );
    // With a 100–500 ms backoff, a connector that fought back would have relinked many times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(first.status().borrow().link, LinkState::Offline);
    assert_eq!(
        second.status().borrow().link,
        LinkState::Connected,
        "the newer link keeps the connector"
    );

    // The owner's Reconnect takes it back on purpose; then the other copy stops in turn.
    first.reconnect().await.unwrap();
    wait_for(&mut first_status, "first linked again", |s| {
        s.link == LinkState::Connected
    })
    .await;
    wait_for(&mut second_status, "second replaced", |s| {
        s.link == LinkState::Offline
    })
    .await;
    first.stop().await;
    second.stop().await;
}
