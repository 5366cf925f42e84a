//! `uplink hub` admin commands as an operator runs them: apps get no `connector` scope unless
//! asked for on purpose, and a hub folder others can read is refused with a clear line.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{run, run_ok, text};

fn app_add(hub: &str, client_id: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "hub",
        "app",
        "add",
        "--data-dir",
        hub,
        "--name",
        "Dashboard",
        "--client-id",
        client_id,
        "--redirect-uri",
        "https://dashboard.example/cb",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The scopes `uplink hub app list` shows for `client_id`.
fn listed_scopes(hub: &str, client_id: &str) -> String {
    let list = text(&run_ok(&["hub", "app", "list", "--data-dir", hub]).stdout);
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("{client_id}\t")))
        .unwrap_or_else(|| panic!("{client_id} not listed: {list}"));
    line.split('\t').nth(3).unwrap().to_owned()
}

#[test]
fn app_add_without_scopes_registers_tags_and_data_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub = hub.to_str().unwrap();
    assert!(app_add(hub, "dashboard", &[]).status.success());
    assert_eq!(listed_scopes(hub, "dashboard"), "tags.read data.read");

    // Asking for `connector` without the operator's flag is refused with the reason.
    let refused = app_add(
        hub,
        "sneaky",
        &["--scope", "data.read", "--scope", "connector"],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--allow-connector-scope"),
        "{}",
        text(&refused.stderr)
    );
    // With it, on purpose: a connector built on another client.
    let allowed = app_add(
        hub,
        "site-connector",
        &[
            "--scope",
            "connector",
            "--allow-connector-scope",
            "--public",
        ],
    );
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert_eq!(listed_scopes(hub, "site-connector"), "connector");
}

#[test]
fn a_hub_folder_others_can_read_is_refused_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub_arg = hub.to_str().unwrap();
    run_ok(&["hub", "app", "list", "--data-dir", hub_arg]);
    assert_eq!(
        std::fs::metadata(&hub).unwrap().permissions().mode() & 0o777,
        0o700,
        "created private"
    );
    std::fs::set_permissions(hub.join("hub.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = run(&["hub", "app", "list", "--data-dir", hub_arg]);
    assert!(!refused.status.success());
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("hub.db has mode 644"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
