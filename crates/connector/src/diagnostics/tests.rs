//! The connectivity test against the real hub (its router over real TLS on loopback), against
//! a closed port, a server whose certificate is not trusted or names another host, and a hub
//! URL whose path answers 404; and the export of a data dir holding real secrets.

use std::io::Read;
use std::sync::Arc;

use tokio::net::TcpListener;
use uplink_hub::{Hub, HubConfig};
use uplink_signalr::client::ProxySetting;
use url::Url;

use super::*;
use crate::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use crate::oauth::OAuthClient;

/// A hub serving on loopback over TLS with `ca`'s certificate, and a connector's token.
struct LiveHub {
    url: String,
    port: u16,
    hub: Arc<Hub>,
    _dir: tempfile::TempDir,
}

async fn live_hub(ca: &uplink_tls::LoopbackCa) -> LiveHub {
    uplink_tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("https://localhost:{port}");
    let hub = Arc::new(
        Hub::open(&dir.path().join("hub"), HubConfig::new(url.clone()))
            .await
            .unwrap(),
    );
    serve(hub.clone(), listener, ca);
    LiveHub {
        url,
        port,
        hub,
        _dir: dir,
    }
}

fn serve(hub: Arc<Hub>, listener: TcpListener, ca: &uplink_tls::LoopbackCa) {
    let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
    tokio::spawn(async move {
        uplink_hub::serve(hub, listener, &chain, &key, std::future::pending())
            .await
            .unwrap();
    });
}

/// A connector registered on `hub`, signed in with client credentials: its credential and a
/// fresh access token, as the link gets one.
async fn connector_token(
    hub: &LiveHub,
    tls: &Arc<rustls::ClientConfig>,
) -> (String, String, String) {
    hub.hub
        .add_user("ada", "correct horse battery staple".into())
        .await
        .unwrap();
    let connector = hub.hub.add_connector("ada", "Plant A").await.unwrap();
    let credential = connector.credential.expose().to_owned();
    let token = OAuthClient::new(&hub.url, tls.clone())
        .unwrap()
        .client_credentials(&connector.connector.id, &credential)
        .await
        .unwrap()
        .access_token;
    (connector.connector.id, credential, token)
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
async fn diagnostics_pass_every_check_against_a_live_hub() {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"]).unwrap();
    let hub = live_hub(&ca).await;
    let tls = trusting(&ca);
    let (_, credential, token) = connector_token(&hub, &tls).await;
    let url = Url::parse(&hub.url).unwrap();

    let report =
        check_connectivity(&url, tls.clone(), ProxySetting::Direct, Some(token.clone())).await;

    assert!(report.all_passed(), "{report:#?}");
    assert_eq!(
        report.checks.iter().map(|c| c.id).collect::<Vec<_>>(),
        CheckId::ALL
    );
    assert!(report.checks.iter().all(|c| c.duration_ms.is_some()));
    assert!(
        detail(&report, CheckId::Dns).contains("127.0.0.1"),
        "{report:#?}"
    );
    assert!(detail(&report, CheckId::Tcp).contains(&format!(":{}", hub.port)));
    let tls_detail = detail(&report, CheckId::Tls);
    assert!(tls_detail.contains("TLS 1."), "{tls_detail}");
    assert!(
        tls_detail.contains("Uplink hub on loopback"),
        "{tls_detail}"
    );
    assert!(
        tls_detail.contains("issued by \"CN=Uplink loopback CA\""),
        "{tls_detail}"
    );
    assert!(
        detail(&report, CheckId::Negotiate).contains("WebSockets, ServerSentEvents, LongPolling"),
        "{report:#?}"
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(&token) && !json.contains(&credential));

    // Without a token the hub is still reachable; the transports wait for a sign-in.
    let anonymous = check_connectivity(&url, tls, ProxySetting::Direct, None).await;
    assert_eq!(
        outcomes(&anonymous)[..4],
        [
            (CheckId::Dns, Outcome::Passed),
            (CheckId::Tcp, Outcome::Passed),
            (CheckId::Tls, Outcome::Passed),
            (CheckId::Negotiate, Outcome::Passed),
        ]
    );
    assert!(
        detail(&anonymous, CheckId::Negotiate).contains("HTTP 401"),
        "{anonymous:#?}"
    );
    for id in [
        CheckId::WebSockets,
        CheckId::ServerSentEvents,
        CheckId::LongPolling,
    ] {
        let check = anonymous.check(id).unwrap();
        assert_eq!(check.outcome, Outcome::Skipped);
        assert!(check.detail.contains("sign in"), "{check:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_leave_the_running_link_alone() {
    use crate::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};

    let ca = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let hub = live_hub(&ca).await;
    let tls = trusting(&ca);
    let (connector_id, credential, token) = connector_token(&hub, &tls).await;
    let data = tempfile::tempdir().unwrap();
    let credentials = LinkCredentials {
        hub_url: hub.url.clone(),
        connector_id: connector_id.clone(),
        ca_pem: Some(ca.ca_pem().to_owned()),
        secret: LinkSecret::ClientCredential { credential },
    };
    CredentialStore::new(data.path())
        .save(&credentials)
        .unwrap();
    let runtime = ConnectorRuntime::start(RuntimeOptions::new(data.path()))
        .await
        .unwrap();
    let mut status = runtime.status();
    let connected = |status: &mut tokio::sync::watch::Receiver<crate::ConnectorStatus>| {
        let mut status = status.clone();
        async move {
            tokio::time::timeout(std::time::Duration::from_secs(30), async {
                loop {
                    if status.borrow_and_update().link == LinkState::Connected {
                        return;
                    }
                    status.changed().await.unwrap();
                }
            })
            .await
            .expect("the link connects")
        }
    };
    connected(&mut status).await;
    let since = status.borrow().connected_since;

    // The same TLS setup the link builds from its credentials.
    let tls = link_tls(&credentials).unwrap();
    let report = check_connectivity(
        &Url::parse(&hub.url).unwrap(),
        tls,
        ProxySetting::Direct,
        Some(token),
    )
    .await;
    assert!(report.all_passed(), "{report:#?}");

    // Three diagnostic connections came and went; the registered link is the one it was.
    assert!(hub.hub.relay().is_online(&connector_id));
    let now = status.borrow().clone();
    assert_eq!(now.link, LinkState::Connected);
    assert_eq!((now.reconnects, now.connected_since), (0, since));
    runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_refused_token_fails_negotiate_in_words() {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let hub = live_hub(&ca).await;
    let url = Url::parse(&hub.url).unwrap();
    let report = check_connectivity(
        &url,
        trusting(&ca),
        ProxySetting::Direct,
        Some("v4.local.not-a-real-token".into()),
    )
    .await;
    let negotiate = report.check(CheckId::Negotiate).unwrap();
    assert_eq!(negotiate.outcome, Outcome::Failed);
    assert!(
        negotiate
            .detail
            .contains("refused the access token (HTTP 401)"),
        "{negotiate:?}"
    );
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains("not-a-real-token")
    );
    assert_eq!(
        report.check(CheckId::WebSockets).unwrap().outcome,
        Outcome::Skipped
    );
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

/// A hub serving a self-signed certificate for `localhost`, which nothing trusts.
async fn hub_with_self_signed_certificate() -> (LiveHub, String) {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let hub = live_hub(&ca).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (chain, key) = (cert.pem(), signing_key.serialize_pem());
    let serving = hub.hub.clone();
    tokio::spawn(async move {
        uplink_hub::serve(serving, listener, &chain, &key, std::future::pending())
            .await
            .unwrap();
    });
    (hub, format!("https://localhost:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_untrusted_certificate_fails_tls_in_plain_words() {
    let trusted = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let (_hub, url) = hub_with_self_signed_certificate().await;
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
    let hub = live_hub(&regenerated).await;
    let url = Url::parse(&hub.url).unwrap();

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
    let hub = live_hub(&ca).await;
    let url = Url::parse(&format!("https://127.0.0.1:{}", hub.port)).unwrap();

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_hub_path_answering_404_fails_negotiate() {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let hub = live_hub(&ca).await;
    let tls = trusting(&ca);
    let (_, _, token) = connector_token(&hub, &tls).await;
    let url = Url::parse(&format!("{}/not-the-hub/", hub.url)).unwrap();

    let report = check_connectivity(&url, tls, ProxySetting::Direct, Some(token)).await;

    assert_eq!(
        outcomes(&report)[..4],
        [
            (CheckId::Dns, Outcome::Passed),
            (CheckId::Tcp, Outcome::Passed),
            (CheckId::Tls, Outcome::Passed),
            (CheckId::Negotiate, Outcome::Failed),
        ]
    );
    let negotiate = detail(&report, CheckId::Negotiate);
    assert!(negotiate.contains("HTTP 404"), "{negotiate}");
    assert!(
        negotiate.contains("/not-the-hub/hubs/connector/negotiate"),
        "{negotiate}"
    );
    for id in [
        CheckId::WebSockets,
        CheckId::ServerSentEvents,
        CheckId::LongPolling,
    ] {
        assert_eq!(report.check(id).unwrap().outcome, Outcome::Skipped);
    }
}

/// A small HTTP CONNECT proxy on loopback that asks for `user:secret-pw` and tunnels to
/// whatever it is asked for; it counts the tunnels it opened.
async fn connect_proxy() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = tunnels.clone();
    let expected = format!(
        "proxy-authorization: basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:secret-pw")
    )
    .to_ascii_lowercase();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let (counted, expected) = (counted.clone(), expected.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !head.contains(&expected) {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let authority = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let Ok(mut upstream) = tokio::net::TcpStream::connect(authority).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (port, tunnels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_go_through_the_proxy_the_link_uses() {
    let ca = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let hub = live_hub(&ca).await;
    let tls = trusting(&ca);
    let (_, _, token) = connector_token(&hub, &tls).await;
    let url = Url::parse(&hub.url).unwrap();
    let (proxy_port, tunnels) = connect_proxy().await;
    let proxy = |password: &str| ProxySetting::Url {
        url: format!("http://user:{password}@127.0.0.1:{proxy_port}"),
        no_proxy: String::new(),
    };

    let report =
        check_connectivity(&url, tls.clone(), proxy("secret-pw"), Some(token.clone())).await;

    assert!(report.all_passed(), "{report:#?}");
    assert!(
        detail(&report, CheckId::Dns).contains("the proxy 127.0.0.1"),
        "{report:#?}"
    );
    let tcp = detail(&report, CheckId::Tcp);
    assert!(
        tcp.contains(&format!("proxy at 127.0.0.1:{proxy_port}"))
            && tcp.contains(&format!("tunnel to localhost:{}", hub.port)),
        "{tcp}"
    );
    // TCP, negotiate and one per transport at least: everything went through the proxy.
    assert!(tunnels.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains("secret-pw")
    );

    let refused = check_connectivity(&url, tls, proxy("wrong"), Some(token)).await;
    let tcp = refused.check(CheckId::Tcp).unwrap();
    assert_eq!(tcp.outcome, Outcome::Failed);
    assert!(
        tcp.detail.contains("asks for a login (HTTP 407)"),
        "{tcp:?}"
    );
    assert!(!tcp.detail.contains("wrong"), "{tcp:?}");
    assert_eq!(
        refused.check(CheckId::Tls).unwrap().outcome,
        Outcome::Skipped
    );
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
