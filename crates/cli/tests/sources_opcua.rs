//! `uplink sources trust` with an OPC UA source, against a real OPC UA server (Python asyncua,
//! pinned and installed by `scripts/lib/setup.sh`, running `tests/fixtures/opcua_server.py` on
//! loopback with a SignAndEncrypt endpoint): a certificate seen for the first time is refused
//! with its thumbprints, a wrong thumbprint trusts nothing, the right one trusts it, and then
//! `uplink query … snapshot` reads over the encrypted session.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Running, run, run_ok, text};

const ASYNCUA_VERSION: &str = "2.1.0";

/// The venv's python: `UPLINK_ASYNCUA_PYTHON`, else where setup.sh installs it. Fails loudly.
fn python() -> PathBuf {
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

/// Starts the fixture server with a SignAndEncrypt endpoint whose certificate it makes in
/// `pki`; returns it (killed when dropped) and its endpoint URL.
fn start_server(pki: &Path) -> (Running, String) {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py");
    let mut child = Command::new(python())
        .arg(fixture)
        .arg("--encrypted")
        .arg(pki)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the OPC UA fixture server");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the fixture's first line");
    let port: u16 = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("the fixture server did not start: {line:?}"));
    (running, format!("opc.tcp://127.0.0.1:{port}/uplink/"))
}

/// The SHA-256 of a file, by the system's own `sha256sum`: a check independent of Uplink's.
fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success());
    text(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The 64-hex-digit word after `SHA-256 ` in a message.
fn sha256_in(message: &str) -> String {
    let at = message
        .find("SHA-256 ")
        .unwrap_or_else(|| panic!("no SHA-256 thumbprint in: {message}"));
    message[at + "SHA-256 ".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

fn trusted_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("opcua/pki/trusted"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn a_server_certificate_is_trusted_only_by_its_right_thumbprint_then_values_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("server-pki");
    let (_server, url) = start_server(&pki);
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    let endpoint = format!("endpointUrl={url}");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "sources",
            "add",
            "--data-dir",
            data_str,
            "--name",
            "plant",
            "--kind",
            "opcua",
            "--set",
            &endpoint,
            "--set",
            "securityPolicy=Basic256Sha256",
            "--set",
            "securityMode=SignAndEncrypt",
            "--set",
            "browseRoot=ns=2;s=Plant",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };

    // Checked when added: the certificate is new, so it is refused with its thumbprints and
    // nothing is saved.
    let refused = add(&[]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("not trusted yet"), "{message}");
    assert!(
        message.contains("uplink sources trust plant"),
        "the message says how to trust it: {message}"
    );
    let sha256 = sha256_in(&message);
    assert_eq!(
        sha256,
        sha256_of(&pki.join("server-cert.der")),
        "the thumbprint shown is the server certificate's"
    );
    let listed = run_ok(&["sources", "list", "--data-dir", data_str]);
    assert!(
        !text(&listed.stdout).contains("plant"),
        "{}",
        text(&listed.stdout)
    );

    // Saved without the check; reading is refused until the owner trusts the certificate.
    let saved = add(&["--no-check"]);
    assert!(saved.status.success(), "{}", text(&saved.stderr));
    assert_eq!(trusted_files(&data), 0);

    // A wrong thumbprint: refused, nothing trusted, reads still refused.
    let wrong = "ab".repeat(32);
    let refused = run(&[
        "sources",
        "trust",
        "--data-dir",
        data_str,
        "plant",
        "--thumbprint",
        &wrong,
    ]);
    assert!(!refused.status.success());
    let message = text(&refused.stderr);
    assert!(message.contains("nothing was trusted"), "{message}");
    assert!(message.contains(&sha256), "{message}");
    assert_eq!(trusted_files(&data), 0, "a wrong thumbprint trusted a file");
    let read = run(&[
        "query",
        "--data-dir",
        data_str,
        "--source",
        "plant",
        "snapshot",
        "Temperature",
    ]);
    assert!(!read.status.success(), "{}", text(&read.stdout));
    assert!(
        text(&read.stderr).contains("not trusted yet"),
        "{}",
        text(&read.stderr)
    );

    // The right one, in upper case as a server's screen may show it: trusted.
    let trusted = run_ok(&[
        "sources",
        "trust",
        "--data-dir",
        data_str,
        "plant",
        "--thumbprint",
        &sha256.to_ascii_uppercase(),
    ]);
    let said = text(&trusted.stdout);
    assert!(
        said.contains("trusted the server certificate of 'plant'") && said.contains(&sha256),
        "{said}"
    );
    assert_eq!(trusted_files(&data), 1);

    // Now the encrypted session opens and the snapshot reads the server's values.
    let read = run_ok(&[
        "query",
        "--json",
        "--data-dir",
        data_str,
        "--source",
        "plant",
        "snapshot",
        "Temperature",
        "Label",
    ]);
    let values: serde_json::Value = serde_json::from_slice(&read.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&read.stdout)));
    let values = values.as_array().expect("a JSON array of values");
    let by_tag = |tag: &str| {
        values
            .iter()
            .find(|v| v["tag"] == tag)
            .unwrap_or_else(|| panic!("no {tag} in {values:?}"))
    };
    let temperature = by_tag("Temperature")["value"].as_f64().unwrap();
    assert!(
        (15.0..=25.0).contains(&temperature),
        "the fixture's temperature is 20 ± 5: {temperature}"
    );
    assert_eq!(by_tag("Label")["text"], "Line one");
    assert_eq!(by_tag("Temperature")["status"], "good");
}
