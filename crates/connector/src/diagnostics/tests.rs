//! The connectivity test against a closed port and a TLS server whose certificate is not
//! trusted or names another host; and the export of a data dir holding real secrets. The
//! checks against a live hub are end-to-end tests beside the binary that ships both
//! (`crates/cli/tests/connector_hub/diagnostics.rs`): this crate does not depend on the hub.

use std::io::Read;
use std::sync::Arc;

use tokio::net::TcpListener;
use uplink_signalr::client::ProxySetting;
use url::Url;

use super::*;
use crate::credentials::{CredentialStore, LinkCredentials, LinkSecret};

/// A TLS server on loopback presenting `chain` (an HTTPS server with no routes): what the
/// TLS check meets, without a hub behind it.
async fn tls_server(chain: &str, key: &str) -> u16 {
    uplink_tls::install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = uplink_tls::server_config(chain, key).unwrap();
    tokio::spawn(async move {
        uplink_tls::serve(
            listener,
            config,
            axum::Router::new(),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    port
}

fn trusting(ca: &uplink_tls::LoopbackCa) -> Arc<rustls::ClientConfig> {
    uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned())).unwrap()
}

fn outcomes(report: &DiagnosticsReport) -> Vec<(CheckId, Outcome)> {
    report.checks.iter().map(|c| (c.id, c.outcome)).collect()
}

fn detail(report: &DiagnosticsReport, id: CheckId) -> &str {
    &report.check(id).unwrap().detail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_closed_port_fails_tcp_and_skips_the_rest() {
    uplink_tls::install_crypto_provider();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ca = uplink_tls::LoopbackCa::generate(&["127.0.0.1"]).unwrap();
    let url = Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();

    let report = check_connectivity(&url, trusting(&ca), ProxySetting::Direct, None).await;

    assert_eq!(
        outcomes(&report),
        [
            (CheckId::Dns, Outcome::Passed),
            (CheckId::Tcp, Outcome::Failed),
            (CheckId::Tls, Outcome::Skipped),
            (CheckId::Negotiate, Outcome::Skipped),
            (CheckId::WebSockets, Outcome::Skipped),
            (CheckId::ServerSentEvents, Outcome::Skipped),
            (CheckId::LongPolling, Outcome::Skipped),
        ]
    );
    let tcp = detail(&report, CheckId::Tcp);
    assert!(tcp.contains("refused the connection"), "{tcp}");
    assert!(tcp.contains(&format!("127.0.0.1:{port}")), "{tcp}");
    assert!(detail(&report, CheckId::LongPolling).contains("no TCP connection"));
}

/// A server presenting a self-signed certificate for `localhost`, which nothing trusts.
async fn server_with_self_signed_certificate() -> String {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let port = tls_server(&cert.pem(), &signing_key.serialize_pem()).await;
    format!("https://localhost:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_untrusted_certificate_fails_tls_in_plain_words() {
    let trusted = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let url = server_with_self_signed_certificate().await;
    let url = Url::parse(&url).unwrap();

    let report = check_connectivity(&url, trusting(&trusted), ProxySetting::Direct, None).await;

    let tls = report.check(CheckId::Tls).unwrap();
    assert_eq!(tls.outcome, Outcome::Failed, "{report:#?}");
    assert!(tls.detail.contains("is not trusted"), "{}", tls.detail);
    assert!(tls.detail.contains("does not trust"), "{}", tls.detail);
    // Who the refused certificate claims to be, read from a second look.
    assert!(
        tls.detail.contains(
            "presented a certificate for \"CN=rcgen self signed cert\" (names: localhost)"
        ),
        "{}",
        tls.detail
    );
    assert_eq!(
        outcomes(&report)[..2],
        [
            (CheckId::Dns, Outcome::Passed),
            (CheckId::Tcp, Outcome::Passed)
        ]
    );
    for id in &CheckId::ALL[3..] {
        let check = report.check(*id).unwrap();
        assert_eq!(check.outcome, Outcome::Skipped);
        assert!(check.detail.contains("TLS handshake failed"), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_regenerated_ca_of_the_same_name_is_not_trusted() {
    let old = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let regenerated = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let port = tls_server(&regenerated.cert_chain_pem(), regenerated.key_pem()).await;
    let url = Url::parse(&format!("https://localhost:{port}")).unwrap();

    let report = check_connectivity(&url, trusting(&old), ProxySetting::Direct, None).await;

    let tls = report.check(CheckId::Tls).unwrap();
    assert_eq!(tls.outcome, Outcome::Failed, "{report:#?}");
    assert!(tls.detail.contains("is not trusted"), "{}", tls.detail);
    assert!(
        tls.detail.contains("issued by \"CN=Uplink loopback CA\""),
        "{}",
        tls.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_certificate_for_another_name_is_a_name_mismatch() {
    let ca = uplink_tls::LoopbackCa::generate(&["hub.other.example"]).unwrap();
    let port = tls_server(&ca.cert_chain_pem(), ca.key_pem()).await;
    let url = Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();

    let report = check_connectivity(&url, trusting(&ca), ProxySetting::Direct, None).await;

    let tls = report.check(CheckId::Tls).unwrap();
    assert_eq!(tls.outcome, Outcome::Failed);
    assert!(
        tls.detail.contains("does not match the name"),
        "{}",
        tls.detail
    );
    assert!(tls.detail.contains("hub.other.example"), "{}", tls.detail);
}

#[test]
fn diagnostics_report_without_a_hub_skips_everything() {
    let report = DiagnosticsReport::not_configured();
    assert_eq!(report.hub_url, None);
    assert_eq!(report.checks.len(), 7);
    assert!(report.checks.iter().all(|c| c.outcome == Outcome::Skipped));
}

/// Every entry of a zip, unpacked.
fn unzip(path: &str) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            (entry.name().unwrap().into_owned(), bytes)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn diagnostics_export_holds_no_secret_anywhere() {
    use crate::config::{ConfigStore, ConnectorConfig};
    use crate::policy::{LocalPolicy, PolicyStore};

    const CLIENT_SECRET: &str = "cs_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    const SOURCE_SECRET: &str = "sqlite-secret-Zq81xPw";
    const UNKNOWN_KIND_SECRET: &str = "historian-pass-77Hq";
    const REFRESH_TOKEN: &str = "rt_0123456789abcdefSECRET";

    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    CredentialStore::new(dir)
        .save(&LinkCredentials {
            hub_url: "https://hub.example".into(),
            connector_id: "con_plant_a".into(),
            ca_pem: None,
            secret: LinkSecret::ClientCredential {
                credential: CLIENT_SECRET.into(),
            },
        })
        .unwrap();
    // The configuration as the store writes it (secret settings apart, in secrets.json)…
    let mut config = ConnectorConfig::default();
    config.settings.display_name = Some("Plant A".into());
    ConfigStore::new(dir).save(&config).unwrap();
    std::fs::write(
        dir.join(crate::config::SECRETS_FILE),
        serde_json::json!({"line-1": {"password": SOURCE_SECRET}}).to_string(),
    )
    .unwrap();
    // …and a hand-edited source of a kind this build does not know, holding a password, and a
    // schema-less secret setting on a known kind.
    let mut on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ConfigStore::new(dir).path()).unwrap()).unwrap();
    on_disk["sources"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "historian", "kind": "pi-historian", "description": "PI",
            "settings": {"server": "pi.plant", "pass": UNKNOWN_KIND_SECRET}
        }));
    on_disk["sources"][0]["settings"]["apiToken"] = REFRESH_TOKEN.into();
    std::fs::write(ConfigStore::new(dir).path(), on_disk.to_string()).unwrap();
    let mut policy = LocalPolicy::default();
    policy.block_app("app_nosy");
    PolicyStore::new(dir).save(&policy).unwrap();
    std::fs::write(
        dir.join(crate::activity::ACTIVITY_FILE),
        "{\"appId\":\"app_dashboard\",\"outcome\":\"ok\"}\n".repeat(3),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    // A log line that leaked the secret by mistake: the archive must still not carry it.
    std::fs::write(
        dir.join("logs/uplink.log"),
        format!("INFO linked\nDEBUG oops sent {CLIENT_SECRET} by mistake\n"),
    )
    .unwrap();

    let out = dir.join("diagnostics");
    let extra_status = format!("{{\"link\":\"connected\",\"leak\":\"{SOURCE_SECRET}\"}}");
    let export =
        export_diagnostics(dir, &out, &[("status.json", extra_status.into_bytes())]).unwrap();

    let path = std::path::Path::new(&export.path);
    assert_eq!(path.parent().unwrap(), out);
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        name.starts_with("uplink-diagnostics-") && name.ends_with("Z.zip"),
        "{name}"
    );
    assert_eq!(std::fs::metadata(path).unwrap().len(), export.bytes);
    let entries = unzip(&export.path);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "manifest.json",
        "status.json",
        "connector.json",
        "policy.json",
        "activity.jsonl",
        "logs/uplink.log",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"credentials.json") && !names.contains(&"secrets.json"));
    for (entry, bytes) in &entries {
        for secret in [
            CLIENT_SECRET,
            SOURCE_SECRET,
            UNKNOWN_KIND_SECRET,
            REFRESH_TOKEN,
        ] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{entry} holds a secret"
            );
        }
    }
    let entry = |name: &str| &entries.iter().find(|(n, _)| n == name).unwrap().1;
    let config: serde_json::Value = serde_json::from_slice(entry("connector.json")).unwrap();
    assert_eq!(config["settings"]["displayName"], "Plant A");
    assert_eq!(
        config["sources"][1]["settings"]["server"],
        serde_json::Value::Null
    );
    assert!(config["sources"][0]["settings"]["apiToken"].is_null());
    assert!(String::from_utf8_lossy(entry("policy.json")).contains("app_nosy"));
    assert!(String::from_utf8_lossy(entry("logs/uplink.log")).contains("sent *** by mistake"));
    let manifest: serde_json::Value = serde_json::from_slice(entry("manifest.json")).unwrap();
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["platform"]["os"], std::env::consts::OS);
    let redacted = manifest["redacted"].to_string();
    assert!(
        redacted.contains("credentials.json: not included"),
        "{redacted}"
    );
    assert!(
        redacted.contains("sources[historian].settings.pass removed"),
        "{redacted}"
    );
    assert!(
        redacted.contains("logs/uplink.log: 1 occurrence"),
        "{redacted}"
    );

    // A second export in the same second gets its own name.
    let again = export_diagnostics(dir, &out, &[]).unwrap();
    assert_ne!(again.path, export.path);
    // A host entry cannot climb out or replace the manifest.
    let odd =
        export_diagnostics(dir, &out, &[("../x", vec![1]), ("manifest.json", vec![2])]).unwrap();
    let odd_names: Vec<String> = unzip(&odd.path).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        odd_names.iter().filter(|n| *n == "manifest.json").count(),
        1
    );
    assert!(!odd_names.iter().any(|n| n.contains("..")));
}

#[test]
fn diagnostics_export_has_the_logs_and_no_secret_logged_through_the_layer() {
    const PASETO: &str = "v4.local.Rk2bJm0Zk9VgTz2rR8yQ1aW5uN7oP4sL6dF0hJ2kE9cV3xB_-Aa";
    const REFRESH: &str = "kP3x9Qw2LmZ7vB1nR8tY4uI6oA0sD5fG3hJ7kL9zXc";
    const PASSWORD: &str = "correct-horse-battery";
    const OLD_TOKEN: &str = "v4.local.OldOldOld0123456789abcdefABCDEF";

    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let file = uplink_logs::LogFiles::in_data_dir(dir, "uplink-connector")
        .open()
        .unwrap();
    tracing::subscriber::with_default(uplink_logs::subscriber("info", Some(file.clone())), || {
        tracing::info!(hub = "https://hub.example", "linked");
        tracing::info!(refresh_token = REFRESH, "token renewed");
        tracing::warn!(password = PASSWORD, source = "line-1", "the source refused");
        tracing::warn!("the hub refused Bearer {PASETO}");
        tracing::info!(uri = %format!("/hubs/connector?access_token={REFRESH}"), "negotiate");
    });
    // A log written before the layer (or by another program) with a token in it.
    std::fs::write(
        dir.join("logs/older.log"),
        format!("INFO sent Authorization: Bearer {OLD_TOKEN}\n"),
    )
    .unwrap();

    let logged = std::fs::read_to_string(file.path()).unwrap();
    for secret in [PASETO, REFRESH, PASSWORD] {
        assert!(
            !logged.contains(secret),
            "the log file holds {secret}: {logged}"
        );
    }
    for kept in [
        "linked hub=\"https://hub.example\"",
        "token renewed refresh_token=<redacted>",
        "the source refused password=<redacted> source=\"line-1\"",
        "the hub refused Bearer <redacted>",
        "negotiate uri=/hubs/connector?access_token=<redacted>",
    ] {
        assert!(logged.contains(kept), "{kept:?} missing from {logged}");
    }

    let export = export_diagnostics(dir, &dir.join("diagnostics"), &[]).unwrap();
    let entries = unzip(&export.path);
    for (entry, bytes) in &entries {
        for secret in [PASETO, REFRESH, PASSWORD, OLD_TOKEN] {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "{entry} holds {secret}"
            );
        }
    }
    let entry = |name: &str| {
        let found = entries.iter().find(|(n, _)| n == name);
        String::from_utf8_lossy(&found.unwrap_or_else(|| panic!("{name} missing")).1).into_owned()
    };
    assert!(entry("logs/uplink-connector.log").contains("token renewed refresh_token=<redacted>"));
    assert!(entry("logs/older.log").contains("Authorization: Bearer <redacted>"));
    let manifest = entry("manifest.json");
    assert!(
        manifest.contains("logs/older.log: token-shaped text replaced"),
        "{manifest}"
    );
    assert!(
        !manifest.contains("logs/uplink-connector.log: token-shaped"),
        "the layer's own log needed no scrubbing: {manifest}"
    );
}
