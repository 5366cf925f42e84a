//! `uplink connector` as a person or a service manager uses it: one-line errors, the local
//! veto, and a connector registered by an administrator that links to a real `uplink hub`
//! process, reports its status, and stops cleanly on SIGINT.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    add_connector, add_user, connector_status, free_port, hub_ca, register_connector, run,
    serve_hub, start_connector, text, wait_until,
};

#[test]
fn mistakes_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();

    let unsigned = run(&["connector", "--data-dir", data]);
    assert!(!unsigned.status.success());
    let stderr = text(&unsigned.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not signed in"), "{stderr}");

    let plain = run(&[
        "connector",
        "--data-dir",
        data,
        "register",
        "--hub",
        "http://hub.example",
        "--id",
        "con_abcdefghijklmnopqrstuv",
        "--credential-file",
        "/nonexistent",
    ]);
    assert!(!plain.status.success());
    assert!(
        text(&plain.stderr).contains("https://"),
        "{}",
        text(&plain.stderr)
    );

    let no_dir = run(&["connector", "status"]);
    assert!(text(&no_dir.stderr).contains("--data-dir"));

    let status = run(&["connector", "--data-dir", data, "status"]);
    assert!(status.status.success());
    assert!(text(&status.stdout).contains("No connector is running"));
}

#[test]
fn the_local_veto_is_edited_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let blocked = run(&[
        "connector",
        "--data-dir",
        data,
        "policy",
        "block-app",
        "app_x",
    ]);
    assert!(blocked.status.success(), "{}", text(&blocked.stderr));
    assert!(text(&blocked.stdout).contains("now refused"));
    let unknown = run(&[
        "connector",
        "--data-dir",
        data,
        "policy",
        "block-source",
        "line-2",
    ]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr)
            .contains("no data source named 'line-2' (its data sources: simulated)"),
        "{}",
        text(&unknown.stderr)
    );
    let source = run(&[
        "connector",
        "--data-dir",
        data,
        "policy",
        "block-source",
        "simulated",
    ]);
    assert!(source.status.success(), "{}", text(&source.stderr));
    let shown = run(&["connector", "--data-dir", data, "policy", "show"]);
    let policy: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(policy["blockedApps"], serde_json::json!(["app_x"]));
    // Kept by the source's stable key, shown by its name.
    assert_eq!(
        policy["blockedSources"],
        serde_json::json!(["name:simulated"])
    );
    assert_eq!(
        policy["blockedSourceNames"],
        serde_json::json!(["simulated"])
    );
    let unblocked = run(&[
        "connector",
        "--data-dir",
        data,
        "policy",
        "unblock-app",
        "app_x",
    ]);
    assert!(text(&unblocked.stdout).contains("no longer blocked"));
    let shown = run(&["connector", "--data-dir", data, "policy", "show"]);
    let policy: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(policy["blockedApps"], serde_json::json!([]));
}

#[test]
fn a_registered_connector_links_to_a_hub_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());

    add_user(hub, "ada", "correct horse battery staple");
    let (id, credential) = add_connector(hub, "ada", "Plant A");

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _hub = serve_hub(hub, &listen);

    let url = format!("https://{listen}");
    let registered = register_connector(
        data,
        &url,
        &id,
        &credential,
        &dir.path().join("credential"),
        &hub_ca(hub),
    );
    let said = text(&registered.stdout);
    assert!(said.contains("owner-only file"), "{said}");
    assert!(
        !said.contains(&credential),
        "the secret is never printed back"
    );
    let kept = std::fs::read_to_string(Path::new(data).join("credentials.json")).unwrap();
    assert!(kept.contains(&id));

    let mut connector = start_connector(data);
    wait_until("connector linked", Duration::from_secs(60), || {
        connector_status(data)["link"] == "connected"
    });
    let status = connector_status(data);
    assert_eq!(status["connectorId"], id);
    assert_eq!(status["sources"][0]["name"], "simulated");
    assert!(
        status["sources"][0]["hubId"]
            .as_str()
            .unwrap()
            .starts_with("src_")
    );
    let human = text(&run(&["connector", "--data-dir", data, "status"]).stdout);
    assert!(human.contains("link:        connected"), "{human}");

    let pid = connector.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exited = connector.0.wait().unwrap();
    assert!(
        exited.success(),
        "Ctrl-C stops the connector cleanly: {exited:?}"
    );
    let after = text(&run(&["connector", "--data-dir", data, "status"]).stdout);
    assert!(after.contains("No connector is running"), "{after}");
}

#[test]
fn uplink_query_says_who_computed_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let plot = common::run_ok(&[
        "query",
        "--data-dir",
        data,
        "plot",
        "sim.sinusoid.1",
        "--intervals",
        "4",
    ]);
    assert!(
        text(&plot.stderr).contains("computed by: uplink"),
        "{}",
        text(&plot.stderr)
    );
    assert!(
        !text(&plot.stdout).contains("computed by"),
        "stdout keeps the values only"
    );
    let processed = common::run_ok(&[
        "query",
        "--data-dir",
        data,
        "--json",
        "processed",
        "sim.ramp.1",
        "--function",
        "AVG",
    ]);
    assert!(text(&processed.stderr).contains("computed by: uplink"));
    let series: serde_json::Value = serde_json::from_slice(&processed.stdout).unwrap();
    assert_eq!(series[0]["function"], "AVG");
    let raw = common::run_ok(&["query", "--data-dir", data, "raw", "sim.ramp.1"]);
    assert!(
        !text(&raw.stderr).contains("computed by"),
        "a raw read computes nothing"
    );
}
