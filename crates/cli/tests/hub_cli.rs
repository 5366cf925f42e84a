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

#[test]
fn a_users_display_name_and_email_are_set_listed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub = hub.to_str().unwrap();
    common::add_user(hub, "ada", "correct horse battery staple");
    let set = run_ok(&[
        "hub",
        "user",
        "set",
        "ada",
        "--data-dir",
        hub,
        "--name",
        "Ada Lovelace",
        "--email",
        "ada@example.com",
    ]);
    assert!(
        text(&set.stdout).ends_with("\tada\tAda Lovelace\tada@example.com\n"),
        "{}",
        text(&set.stdout)
    );
    let list = text(&run_ok(&["hub", "user", "list", "--data-dir", hub]).stdout);
    assert!(
        list.contains("\tada\tAda Lovelace\tada@example.com"),
        "{list}"
    );
    // An empty value clears one field and leaves the other.
    run_ok(&[
        "hub",
        "user",
        "set",
        "ada",
        "--data-dir",
        hub,
        "--email",
        "",
    ]);
    let list = text(&run_ok(&["hub", "user", "list", "--data-dir", hub]).stdout);
    assert!(list.contains("\tada\tAda Lovelace\t\n"), "{list:?}");
    let bad = run(&[
        "hub",
        "user",
        "set",
        "ada",
        "--data-dir",
        hub,
        "--email",
        "not an address",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("is not an email address"),
        "{}",
        text(&bad.stderr)
    );
    let nobody = run(&[
        "hub",
        "user",
        "set",
        "bob",
        "--data-dir",
        hub,
        "--name",
        "Bob",
    ]);
    assert!(
        text(&nobody.stderr).contains("no user named 'bob'"),
        "{}",
        text(&nobody.stderr)
    );
}

#[test]
fn rotating_the_id_token_key_keeps_the_old_one_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub_arg = hub.to_str().unwrap();
    let first = text(&run_ok(&["hub", "key", "rotate-id-token", "--data-dir", hub_arg]).stdout);
    let second = text(&run_ok(&["hub", "key", "rotate-id-token", "--data-dir", hub_arg]).stdout);
    assert_ne!(first, second);
    let file = std::fs::read_to_string(hub.join("id-token-keys.json")).unwrap();
    let kid = second.trim().rsplit(' ').next().unwrap();
    assert!(file.contains(kid), "the current key is kept");
    assert_eq!(
        file.matches("\"kid\"").count(),
        3,
        "retired keys stay while their tokens live"
    );
    assert_eq!(
        std::fs::metadata(hub.join("id-token-keys.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn the_operator_credits_debits_and_shows_an_account_in_whole_minor_units() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub = hub.to_str().unwrap();
    common::add_user(hub, "ada", "correct horse battery staple");
    let credit = run_ok(&[
        "hub",
        "account",
        "credit",
        "ada",
        "1000",
        "--data-dir",
        hub,
        "--note",
        "top-up",
    ]);
    assert!(
        text(&credit.stdout).contains("balance: 1000"),
        "{}",
        text(&credit.stdout)
    );
    run_ok(&["hub", "account", "debit", "ada", "250", "--data-dir", hub]);
    let over = run(&["hub", "account", "debit", "ada", "751", "--data-dir", hub]);
    assert!(!over.status.success(), "never below zero");
    assert!(
        text(&over.stderr).contains("lower than 7.51"),
        "{}",
        text(&over.stderr)
    );
    let fraction = run(&["hub", "account", "credit", "ada", "2.5", "--data-dir", hub]);
    assert!(!fraction.status.success(), "amounts are whole minor units");
    let show = text(&run_ok(&["hub", "account", "show", "ada", "--data-dir", hub]).stdout);
    assert!(show.starts_with("balance: 750 (7.50 EUR)\n"), "{show}");
    assert!(show.contains("\tcredit\t1000\t-\ttop-up"), "{show}");
    assert!(
        show.contains("\tdebit\t250\t-\tdebit by the operator"),
        "{show}"
    );
}
