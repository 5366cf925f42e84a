//! `uplink connector` as a person or a service manager uses it: one-line errors, the local
//! veto, and a connector registered by an administrator that links to a real `uplink hub`
//! process, reports its status, and stops cleanly on SIGINT.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn uplink() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uplink"));
    command
        .env_remove("UPLINK_DATA_DIR")
        .env("RUST_LOG", "warn");
    command
}

fn run(args: &[&str]) -> Output {
    uplink().args(args).output().expect("run uplink")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kills a child process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    run(&[
        "connector",
        "--data-dir",
        data,
        "policy",
        "block-source",
        "line-2",
    ]);
    let shown = run(&["connector", "--data-dir", data, "policy", "show"]);
    let policy: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(policy["blockedApps"], serde_json::json!(["app_x"]));
    assert_eq!(policy["blockedSources"], serde_json::json!(["line-2"]));
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn field<'a>(output: &'a str, name: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .unwrap_or_else(|| panic!("no '{name}' in {output}"))
        .trim()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not reached");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_json(data: &str) -> serde_json::Value {
    let output = run(&["connector", "--data-dir", data, "status", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn a_registered_connector_links_to_a_hub_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let con_dir = dir.path().join("connector");
    let (hub, data) = (hub_dir.to_str().unwrap(), con_dir.to_str().unwrap());

    let mut add_user = uplink()
        .args(["hub", "user", "add", "--data-dir", hub, "ada"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    writeln!(
        add_user.stdin.take().unwrap(),
        "correct horse battery staple"
    )
    .unwrap();
    assert!(add_user.wait().unwrap().success());
    let added = run(&[
        "hub",
        "connector",
        "add",
        "--data-dir",
        hub,
        "--owner",
        "ada",
        "--name",
        "Plant A",
    ]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let added = text(&added.stdout);
    let (id, credential) = (field(&added, "connector_id:"), field(&added, "credential:"));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _hub = Running(
        uplink()
            .args(["hub", "serve", "--data-dir", hub, "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ca = hub_dir.join("tls").join("ca.pem");
    wait_until("hub serving", || {
        ca.exists() && std::net::TcpStream::connect(&listen).is_ok()
    });

    let credential_file = dir.path().join("credential");
    std::fs::write(&credential_file, format!("{credential}\n")).unwrap();
    let url = format!("https://{listen}");
    let registered = run(&[
        "connector",
        "--data-dir",
        data,
        "register",
        "--hub",
        &url,
        "--id",
        id,
        "--credential-file",
        credential_file.to_str().unwrap(),
        "--ca-cert",
        ca.to_str().unwrap(),
    ]);
    assert!(registered.status.success(), "{}", text(&registered.stderr));
    let said = text(&registered.stdout);
    assert!(said.contains("owner-only file"), "{said}");
    assert!(
        !said.contains(credential),
        "the secret is never printed back"
    );
    let kept = std::fs::read_to_string(Path::new(data).join("credentials.json")).unwrap();
    assert!(kept.contains(id));

    let mut connector = Running(
        uplink()
            .args(["connector", "--data-dir", data])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("connector linked", || {
        status_json(data)["link"] == "connected"
    });
    let status = status_json(data);
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
