//! `--config FILE` as an operator uses it: `uplink hub config check` names the key and line of
//! each problem, `uplink hub serve --config` takes its settings from the file, and a flag or an
//! environment variable overrides the file's key.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Running, free_port, run, text, uplink, wait_until};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/config")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_installed_example_files_are_valid() {
    let checked = run(&["hub", "config", "check", &example("hub.toml")]);
    assert!(checked.status.success(), "{}", text(&checked.stderr));
    assert!(text(&checked.stdout).ends_with(": ok\n"));
    // The connector's file holds only comments, which `run` accepts.
    let dir = tempfile::tempdir().unwrap();
    let runs = run(&[
        "connector",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--config",
        &example("connector.toml"),
    ]);
    assert!(
        text(&runs.stderr).contains("not signed in"),
        "the file was read and the connector got as far as its credentials: {}",
        text(&runs.stderr)
    );
}

#[test]
fn each_problem_is_named_by_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hub.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:8443\"\n\nlisten_port = 5\nmax-connectors = 0\nheader_timeout = \"soon\"\n",
    )
    .unwrap();
    let checked = run(&["hub", "config", "check", file.to_str().unwrap()]);
    assert!(!checked.status.success());
    let said = text(&checked.stderr);
    assert!(
        said.contains("line 3: listen_port: not a setting of `uplink hub serve`"),
        "{said}"
    );
    assert!(
        said.contains("line 4: max-connectors: invalid value '0'"),
        "{said}"
    );
    assert!(
        said.contains("line 5: header_timeout: invalid value 'soon'"),
        "{said}"
    );
    assert!(said.contains("3 problem(s)"), "{said}");

    std::fs::write(&file, "listen = \"127.0.0.1:8443\"\nissuer = \n").unwrap();
    let not_toml = run(&["hub", "config", "check", file.to_str().unwrap()]);
    assert!(
        text(&not_toml.stderr).contains("line 2: not TOML"),
        "{}",
        text(&not_toml.stderr)
    );

    // Serving with a bad file refuses to start, naming the same problems.
    std::fs::write(&file, "max-connectors = 0\n").unwrap();
    let serve = run(&[
        "hub",
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--data-dir",
        dir.path().join("hub").to_str().unwrap(),
    ]);
    assert!(!serve.status.success());
    assert!(
        text(&serve.stderr).contains("line 1: max-connectors: invalid value '0'"),
        "{}",
        text(&serve.stderr)
    );

    let elsewhere = run(&["query", "search", "--config", file.to_str().unwrap()]);
    assert!(
        text(&elsewhere.stderr).contains("--config applies to `uplink hub serve`"),
        "{}",
        text(&elsewhere.stderr)
    );
}

fn serve_with(file: &Path, extra: &[&str], env: Option<(&str, &str)>) -> Running {
    let mut command = uplink();
    command
        .args(["hub", "serve", "--config", file.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    Running(command.spawn().unwrap())
}

#[test]
fn flags_and_environment_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (from_file, from_flag) = (free_port(), free_port());
    let file_dir = dir.path().join("hub-file");
    let env_dir = dir.path().join("hub-env");
    let file = dir.path().join("hub.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:{from_file}\"\ndata_dir = \"{}\"\n",
            file_dir.display()
        ),
    )
    .unwrap();

    let _by_file = serve_with(&file, &[], None);
    wait_until(
        "the hub on the file's address",
        Duration::from_secs(60),
        // The listener is bound before the loopback certificates are made: wait for both.
        || {
            std::net::TcpStream::connect(("127.0.0.1", from_file)).is_ok()
                && file_dir.join("tls").join("ca.pem").exists()
        },
    );

    // The flag's address and the environment's data folder win over the file's.
    let flag = format!("127.0.0.1:{from_flag}");
    let _by_flag = serve_with(
        &file,
        &["--listen", &flag],
        Some(("UPLINK_HUB_DATA_DIR", env_dir.to_str().unwrap())),
    );
    wait_until(
        "the hub on the flag's address",
        Duration::from_secs(60),
        || {
            std::net::TcpStream::connect(&flag).is_ok()
                && env_dir.join("tls").join("ca.pem").exists()
        },
    );
}
