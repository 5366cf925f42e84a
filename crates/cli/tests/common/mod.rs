//! The `uplink` binary as the CLI tests drive it: its commands, processes that end with the
//! test, and the administrator's steps that set up a hub and link a connector to it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `uplink`, with no data directory or log level inherited from the environment.
pub fn uplink() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uplink"));
    command
        .env_remove("UPLINK_DATA_DIR")
        .env_remove("UPLINK_HUB_DATA_DIR")
        .env("RUST_LOG", "warn");
    command
}

/// `uplink args…`, run to its end, whatever its outcome.
pub fn run(args: &[&str]) -> Output {
    uplink().args(args).output().expect("run uplink")
}

/// `uplink args…`, which must succeed.
pub fn run_ok(args: &[&str]) -> Output {
    let output = run(args);
    assert!(
        output.status.success(),
        "uplink {args:?}: {}",
        text(&output.stderr)
    );
    output
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The value of the `name` line (`name value`) in a command's output.
pub fn field(output: &Output, name: &str) -> String {
    let text = text(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .unwrap_or_else(|| panic!("no '{name}' in {text}"))
        .trim()
        .to_owned()
}

/// Kills a child process when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `done`, failing the test after `within`; returns how long it took.
pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

/// `uplink hub user add`, with the password typed in as a person would.
pub fn add_user(hub: &str, name: &str, password: &str) {
    let mut add_user = uplink()
        .args(["hub", "user", "add", "--data-dir", hub, name])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(add_user.stdin.take().unwrap(), "{password}").unwrap();
    assert!(add_user.wait().unwrap().success());
}

/// `uplink hub connector add`: the new connector's id and credential.
pub fn add_connector(hub: &str, owner: &str, name: &str) -> (String, String) {
    let added = run_ok(&[
        "hub",
        "connector",
        "add",
        "--data-dir",
        hub,
        "--owner",
        owner,
        "--name",
        name,
    ]);
    (field(&added, "connector_id:"), field(&added, "credential:"))
}

/// `uplink hub serve` on `listen`, once it accepts connections and its CA is written.
pub fn serve_hub(hub: &str, listen: &str) -> Running {
    let running = Running(
        uplink()
            .args(["hub", "serve", "--data-dir", hub, "--listen", listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ca = hub_ca(hub);
    wait_until("the hub serving", Duration::from_secs(60), || {
        ca.exists() && std::net::TcpStream::connect(listen).is_ok()
    });
    running
}

/// The certificate authority a hub's own TLS certificate chains to.
pub fn hub_ca(hub: &str) -> std::path::PathBuf {
    Path::new(hub).join("tls").join("ca.pem")
}

/// `uplink connector register` with the credential an administrator handed over, written to
/// `credential_file` first; the command must succeed.
pub fn register_connector(
    data: &str,
    hub_url: &str,
    id: &str,
    credential: &str,
    credential_file: &Path,
    ca: &Path,
) -> Output {
    std::fs::write(credential_file, format!("{credential}\n")).unwrap();
    run_ok(&[
        "connector",
        "--data-dir",
        data,
        "register",
        "--hub",
        hub_url,
        "--id",
        id,
        "--credential-file",
        credential_file.to_str().unwrap(),
        "--ca-cert",
        ca.to_str().unwrap(),
    ])
}

/// `uplink connector`, running until the test ends.
pub fn start_connector(data: &str) -> Running {
    Running(
        uplink()
            .args(["connector", "--data-dir", data])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `uplink connector status --json`; null while there is none to read.
pub fn connector_status(data: &str) -> serde_json::Value {
    let output = run(&["connector", "--data-dir", data, "status", "--json"]);
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}
