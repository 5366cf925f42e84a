//! The control surface over a real connector runtime and the embedded local hub (real TLS on
//! loopback, a real SQLite store): what the UI's buttons do, end to end.

use std::time::Duration;

use serde_json::json;
use uplink_connector::SourceConfig;
use uplink_connector::runtime::LinkState;
use uplink_control::{Control, ControlStatus, DEMO_APP, HostKind};

async fn until(
    control: &Control,
    what: &str,
    ok: impl Fn(&ControlStatus) -> bool,
) -> ControlStatus {
    let mut status = control.watch();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            {
                let now = status.borrow_and_update();
                if ok(&now) {
                    return now.clone();
                }
            }
            status
                .changed()
                .await
                .expect("the control surface is alive");
        }
    })
    .await;
    match waited {
        Ok(status) => status,
        Err(_) => panic!(
            "timed out waiting for {what}; last status: {:#?}",
            control.status()
        ),
    }
}

fn demo_app_holds(status: &ControlStatus) -> bool {
    status
        .connector
        .sources
        .iter()
        .any(|s| s.apps.iter().any(|a| a.app_id == DEMO_APP))
}

fn simulated(name: &str, settings: serde_json::Value) -> SourceConfig {
    serde_json::from_value(json!({"name": name, "kind": "simulated", "settings": settings}))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_hub_gives_a_first_time_user_a_working_link_and_the_buttons_work() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Browser, dir.path().to_owned());
    let first = control.status();
    assert!(!first.configured);

    control.use_local_hub().await.unwrap();
    let linked = until(&control, "the demo app's grant", |s| {
        s.connector.link == LinkState::Connected && demo_app_holds(s)
    })
    .await;
    assert!(linked.configured);
    assert_eq!(linked.connector.transport.as_deref(), Some("WebSockets"));
    let local = linked.local_hub.clone().expect("the local hub is shown");
    assert!(local.url.starts_with("https://127.0.0.1:"));
    assert_eq!(
        linked.connector.hub_url.as_deref(),
        Some(local.url.as_str())
    );
    assert!(
        linked
            .link_history
            .iter()
            .any(|e| e.state == LinkState::Connected)
    );

    // A bad form names the field; nothing is saved.
    let bad = control
        .add_source(simulated("line-2", json!({"tagsPerShape": "many"})))
        .await
        .unwrap_err();
    assert_eq!(bad.code, "invalid_form");
    let fields = bad.fields.expect("field errors");
    assert!(
        fields.iter().any(|f| f.field == "tagsPerShape"),
        "{fields:?}"
    );

    // A test read shows values before anything is saved.
    let test = control
        .test_source(simulated("line-2", json!({})), None, None)
        .await
        .unwrap();
    assert!(test.tag_count > 0);
    assert!(!test.sample.is_empty());
    assert!(test.sample[0].value.is_number());
    assert!(
        control
            .status()
            .connector
            .sources
            .iter()
            .all(|s| s.name != "line-2")
    );

    control
        .add_source(simulated("line-2", json!({})))
        .await
        .unwrap();
    until(&control, "line-2 listed and registered", |s| {
        s.connector
            .sources
            .iter()
            .any(|src| src.name == "line-2" && src.hub_id.is_some())
    })
    .await;
    assert_eq!(control.source_settings("line-2").unwrap().kind, "simulated");
    let listed = control.status();
    let line2 = listed
        .connector
        .sources
        .iter()
        .find(|s| s.name == "line-2")
        .unwrap();
    assert_eq!(
        line2.tag_count,
        Some(test.tag_count),
        "the list counts what the test read saw"
    );

    // Revoke: the hub confirms by pushing grants without the app.
    control.revoke(DEMO_APP, None).await.unwrap();
    until(&control, "the demo app gone", |s| !demo_app_holds(s)).await;

    // Block on site is remembered in the policy the status shows.
    control.set_app_blocked(DEMO_APP, true).await.unwrap();
    until(&control, "the block shown", |s| {
        s.connector
            .policy
            .blocked_apps
            .iter()
            .any(|a| a == DEMO_APP)
    })
    .await;

    // Pause closes the link; resume opens it again.
    control.set_paused(true).await.unwrap();
    until(&control, "paused and offline", |s| {
        s.paused && s.connector.link == LinkState::Offline
    })
    .await;
    control.set_paused(false).await.unwrap();
    until(&control, "connected again", |s| {
        !s.paused && s.connector.link == LinkState::Connected
    })
    .await;

    // Long polling only, applied at once.
    control
        .set_transport_preference(uplink_control::TransportPreference::LongPolling)
        .await
        .unwrap();
    until(&control, "long polling", |s| {
        s.connector.link == LinkState::Connected
            && s.connector.transport.as_deref() == Some("LongPolling")
    })
    .await;
    control.shutdown().await;
    drop(control);

    // A restart brings the local hub and the link back by itself; the revoke stays.
    let again = Control::start(HostKind::Browser, dir.path().to_owned());
    let back = until(&again, "linked after restart", |s| {
        s.connector.link == LinkState::Connected && s.local_hub.is_some()
    })
    .await;
    assert_eq!(back.connector.transport.as_deref(), Some("LongPolling"));
    assert!(!demo_app_holds(&back));
    assert!(back.connector.sources.iter().any(|s| s.name == "line-2"));
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_json_name_bad_arguments_and_unknown_commands() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Browser, dir.path().to_owned());
    let err = control
        .dispatch("set_paused", json!({"paused": "yes"}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_arguments");
    assert!(err.message.contains("set_paused"), "{}", err.message);
    let err = control
        .dispatch("format_disk", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "unknown_command");
    let kinds = control.dispatch("source_kinds", json!({})).await.unwrap();
    assert!(
        kinds
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kind"] == "simulated")
    );
    // Not linked yet: revoking says what to do instead of failing vaguely.
    let err = control
        .dispatch("revoke", json!({"appId": "x", "source": null}))
        .await
        .unwrap_err();
    assert_eq!(err.code, "not_configured");
    for command in uplink_control::COMMANDS {
        let answer = control.dispatch(command, json!({})).await;
        if let Err(e) = answer {
            assert_ne!(
                e.code, "unknown_command",
                "{command} is listed but not dispatched"
            );
        }
    }
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_pass_against_the_local_hub_and_the_export_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Browser, dir.path().to_owned());
    let err = control.run_diagnostics(None).await.unwrap_err();
    assert_eq!(err.code, "not_configured");
    control.use_local_hub().await.unwrap();
    until(&control, "linked", |s| {
        s.connector.link == LinkState::Connected
    })
    .await;

    let report = control.run_diagnostics(None).await.unwrap();
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.outcome != uplink_connector::diagnostics::Outcome::Passed)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(report.checks.len(), 7);

    let export = control.export_diagnostics().await.unwrap();
    assert!(
        export.path.starts_with(
            &dir.path()
                .join(uplink_control::DIAGNOSTICS_DIR)
                .display()
                .to_string()
        )
    );
    let bytes = std::fs::read(&export.path).unwrap();
    let credentials = std::fs::read_to_string(dir.path().join("credentials.json")).unwrap();
    let secret: serde_json::Value = serde_json::from_str(&credentials).unwrap();
    let credential = secret["secret"]["credential"]
        .as_str()
        .expect("a client credential");
    assert!(credential.len() > 16);
    // Entries are deflated: look inside each one.
    let mut archive = zip_entries(&bytes);
    assert!(archive.iter().any(|(name, _)| name == "status.json"));
    assert!(archive.iter().all(|(name, _)| name != "credentials.json"));
    archive.retain(|(_, body)| {
        body.windows(credential.len())
            .any(|w| w == credential.as_bytes())
    });
    assert!(
        archive.is_empty(),
        "the credential leaked into {:?}",
        archive.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    control.shutdown().await;
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            (entry.name().unwrap().to_string(), body)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sign_in_shows_while_it_waits_and_can_be_cancelled() {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub_side = Control::start(HostKind::Browser, hub_dir.path().to_owned());
    hub_side.use_local_hub().await.unwrap();
    let hub_url = hub_side.status().local_hub.unwrap().url;
    let ca = std::fs::read_to_string(hub_dir.path().join("local-hub/tls/ca.pem")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Desktop, dir.path().to_owned());
    let bad = control.sign_in("ftp://hub", None).await.unwrap_err();
    assert_eq!(bad.code, "invalid_arguments", "{}", bad.message);

    let opened = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = opened.clone();
    control.set_browser_sign_in(
        uplink_connector::browser_sign_in::BrowserSignIn::new().with_opener(move |url| {
            seen.lock().unwrap().push(url.to_owned());
            Ok(())
        }),
    );
    let pending = control.sign_in(&hub_url, Some(ca)).await.unwrap();
    assert!(
        pending
            .authorize_url
            .starts_with(&format!("{hub_url}/oauth/authorize?"))
    );
    assert_eq!(*opened.lock().unwrap(), vec![pending.authorize_url.clone()]);
    let waiting = until(&control, "the wait shown", |s| s.sign_in.is_some()).await;
    assert_eq!(waiting.sign_in.unwrap().hub_url, hub_url);

    control.cancel_sign_in();
    let after = until(&control, "the wait gone", |s| s.sign_in.is_none()).await;
    assert_eq!(after.sign_in_error, None, "a cancel is not an error");
    assert!(!after.configured);
    control.shutdown().await;
    hub_side.shutdown().await;
}
