//! A hub serving its own certificate (`--tls-cert`/`--tls-key`) takes a renewed one on SIGHUP:
//! the next handshake presents it with no restart; a pair that cannot be used is refused with
//! the reason in the log, and the certificate in service stays. Limits changed in the
//! configuration file apply to the next request, with no restart either.

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Running, free_port, uplink, wait_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use uplink_tls::LoopbackCa;

/// The leaf certificate (DER) the hub at `listen` presents in a fresh handshake.
fn presented(listen: &str, trusted: &[&LoopbackCa]) -> Option<Vec<u8>> {
    uplink_tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in trusted {
        roots
            .add(CertificateDer::from_pem_slice(ca.ca_pem().as_bytes()).unwrap())
            .unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(listen).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    tls.flush().ok()?;
    let leaf = tls.conn.peer_certificates()?.first()?.to_vec();
    Some(leaf)
}

/// The status line and body the hub at `listen` answers to a POST of `body` bytes to `path`.
fn post(listen: &str, trusted: &LoopbackCa, path: &str, body: usize) -> String {
    use std::io::Read as _;
    uplink_tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(trusted.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(listen).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&vec![b' '; body]).unwrap();
    tls.flush().unwrap();
    let mut answer = Vec::new();
    // The hub may close without TLS close_notify once it has refused the body.
    let _ = tls.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn leaf_of(ca: &LoopbackCa) -> Vec<u8> {
    CertificateDer::pem_slice_iter(ca.cert_chain_pem().as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn install(ca: &LoopbackCa, cert: &Path, key: &Path) {
    std::fs::write(cert, ca.cert_chain_pem()).unwrap();
    std::fs::write(key, ca.key_pem()).unwrap();
}

fn hang_up(pid: u32) {
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sighup_swaps_the_certificate_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, log) = (
        dir.path().join("hub.crt"),
        dir.path().join("hub.key"),
        dir.path().join("stderr.log"),
    );
    let first = LoopbackCa::generate(&["localhost"]).unwrap();
    let renewed = LoopbackCa::generate(&["localhost"]).unwrap();
    install(&first, &cert, &key);

    let listen = format!("127.0.0.1:{}", free_port());
    let hub = Running(
        uplink()
            .env("RUST_LOG", "info")
            .args(["hub", "serve", "--listen", &listen, "--data-dir"])
            .arg(dir.path().join("hub"))
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let both = [&first, &renewed];
    wait_until("the hub serving", Duration::from_secs(60), || {
        presented(&listen, &both).is_some()
    });
    assert_eq!(presented(&listen, &both), Some(leaf_of(&first)));

    install(&renewed, &cert, &key);
    hang_up(hub.0.id());
    wait_until(
        "the renewed certificate in use",
        Duration::from_secs(30),
        || presented(&listen, &both) == Some(leaf_of(&renewed)),
    );

    // A key that is not the certificate's: refused, said why, and the renewed one stays.
    std::fs::write(&key, first.key_pem()).unwrap();
    hang_up(hub.0.id());
    wait_until("the refusal logged", Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("kept the TLS certificate in service")
    });
    assert_eq!(presented(&listen, &both), Some(leaf_of(&renewed)));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("reloaded the TLS certificate"), "{logged}");
    assert!(
        !logged.contains("PRIVATE KEY"),
        "no key material in the log: {logged}"
    );
}

#[test]
fn a_changed_configuration_file_is_applied_without_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let first = LoopbackCa::generate(&["localhost"]).unwrap();
    let renewed = LoopbackCa::generate(&["localhost"]).unwrap();
    let (cert_a, key_a) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    let (cert_b, key_b) = (dir.path().join("b.crt"), dir.path().join("b.key"));
    install(&first, &cert_a, &key_a);
    install(&renewed, &cert_b, &key_b);
    let listen = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("hub.toml");
    let settings = |cert: &Path, key: &Path, extra: &str| {
        format!(
            "listen = \"{listen}\"\ntls-cert = \"{}\"\ntls-key = \"{}\"\nmetrics-listen = \"off\"\n{extra}",
            cert.display(),
            key.display()
        )
    };
    std::fs::write(&config, settings(&cert_a, &key_a, "")).unwrap();
    let log = dir.path().join("stderr.log");
    let _hub = Running(
        uplink()
            .env_remove("RUST_LOG")
            .args(["hub", "serve", "--data-dir"])
            .arg(dir.path().join("hub"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let both = [&first, &renewed];
    wait_until("the hub serving", Duration::from_secs(60), || {
        presented(&listen, &both) == Some(leaf_of(&first))
    });
    let logged = || std::fs::read_to_string(&log).unwrap();
    wait_until("the file watched", Duration::from_secs(30), || {
        logged().contains("watching the configuration file")
    });

    // Under the default limit a 2 KiB query body is read (and refused for want of a token).
    let query = "/api/v1/sources/src_any/query";
    let answer = post(&listen, &first, query, 2048);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Pointing the file at the renewed pair, with a debug log level, a lower body limit and a
    // setting that needs a restart: the certificate, the level and the limit apply at once,
    // the other setting is named.
    std::fs::write(
        &config,
        settings(
            &cert_b,
            &key_b,
            "log-level = \"debug\"\nmax-api-body = 1024\nissuer = \"https://elsewhere.test\"\n",
        ),
    )
    .unwrap();
    let started = std::time::Instant::now();
    while presented(&listen, &both) != Some(leaf_of(&renewed)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the renewed certificate is not in use; the hub said:\n{}",
            logged()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until("the reload logged", Duration::from_secs(30), || {
        logged().contains("these settings changed and take effect at the next restart")
    });
    let said = logged();
    assert!(said.contains("logging at this level now"), "{said}");
    assert!(said.contains("changed=issuer"), "{said}");
    assert!(said.contains("reloaded limits"), "{said}");
    assert!(said.contains("changed=max-api-body"), "{said}");
    let answer = post(&listen, &renewed, query, 2048);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"body_too_large\""), "{answer}");
    assert!(answer.contains("limit of 1024 bytes"), "{answer}");

    // A broken file is refused whole: the renewed certificate stays.
    std::fs::write(&config, "listen = \n").unwrap();
    wait_until("the refusal logged", Duration::from_secs(30), || {
        logged().contains("reload refused: the settings in service stay")
    });
    assert!(logged().contains("not TOML"), "{}", logged());
    assert_eq!(presented(&listen, &both), Some(leaf_of(&renewed)));
}
