//! `uplink hub` and `uplink connector` keep rolling log files in their data dir
//! (`logs/uplink-hub.log`, `logs/uplink-connector.log`), owner-only, with secrets kept out;
//! an admin command's few lines go to standard error only.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Running, free_port, run_ok, uplink, wait_until};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_serving_hub_and_connector_log_to_files_in_their_data_dirs_and_admin_commands_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let hub_arg = hub.to_str().unwrap();

    run_ok(&["hub", "app", "list", "--data-dir", hub_arg]);
    assert!(!hub.join("logs").exists(), "an admin command wrote a log");

    let listen = format!("127.0.0.1:{}", free_port());
    let log = hub.join("logs/uplink-hub.log");
    {
        let _hub = Running(
            uplink()
                .env("RUST_LOG", "info")
                .args(["hub", "serve", "--data-dir", hub_arg, "--listen", &listen])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_until(
            "the hub logs that it serves",
            Duration::from_secs(60),
            || std::fs::read_to_string(&log).is_ok_and(|text| text.contains("serving the hub")),
        );
    }
    assert_eq!(mode(&hub.join("logs")), 0o700);
    assert_eq!(mode(&log), 0o600);
    // The hub's own folder check still passes with the log folder in it.
    run_ok(&["hub", "app", "list", "--data-dir", hub_arg]);

    let connector = dir.path().join("connector");
    let ran = uplink()
        .env("RUST_LOG", "info")
        .args(["connector", "--data-dir", connector.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !ran.status.success(),
        "a connector with no sign-in does not run"
    );
    let logged = std::fs::read_to_string(connector.join("logs/uplink-connector.log")).unwrap();
    assert!(logged.contains("logging to a file"), "{logged}");
}
