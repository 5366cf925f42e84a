//! The connectivity test (`uplink_connector::diagnostics`) against a live hub: the test kit's
//! hub, reached by the name `localhost` (its certificate names it) — every check passing, the
//! running link left alone, a refused token, a hub path answering 404, and the way through
//! the CONNECT proxy the link uses. The checks that need no hub stay in the connector's own
//! tests (`crates/connector/src/diagnostics/tests.rs`).

use std::sync::Arc;

use tokio::net::TcpListener;
use uplink_connector::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use uplink_connector::diagnostics::{
    CheckId, DiagnosticsReport, Outcome, check_connectivity, link_tls,
};
use uplink_connector::oauth::OAuthClient;
use uplink_hub::Hub;
use uplink_signalr::client::ProxySetting;
use uplink_testkit::TestHub;
use url::Url;

/// The test kit's hub and the URL a connector reaches it by.
struct LiveHub {
    kit: TestHub,
    url: String,
    port: u16,
    hub: Arc<Hub>,
}

async fn live_hub() -> LiveHub {
    let kit = TestHub::start().await;
    let port = kit.port;
    LiveHub {
        url: format!("https://localhost:{port}"),
        port,
        hub: kit.hub.clone(),
        kit,
    }
}

/// The seeded connector, signed in with client credentials: its id, its credential and a
/// fresh access token, as the link gets one.
async fn connector_token(
    hub: &LiveHub,
    tls: &Arc<rustls::ClientConfig>,
) -> (String, String, String) {
    let connector = &hub.kit.plant;
    let credential = connector.credential.expose().to_owned();
    let token = OAuthClient::new(&hub.url, tls.clone())
        .unwrap()
        .client_credentials(&connector.connector.id, &credential)
        .await
        .unwrap()
        .access_token;
    (connector.connector.id.clone(), credential, token)
}

fn outcomes(report: &DiagnosticsReport) -> Vec<(CheckId, Outcome)> {
    report.checks.iter().map(|c| (c.id, c.outcome)).collect()
}

fn detail(report: &DiagnosticsReport, id: CheckId) -> &str {
    &report.check(id).unwrap().detail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_pass_every_check_against_a_live_hub() {
    let hub = live_hub().await;
    let tls = hub.kit.tls.clone();
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
    use uplink_connector::runtime::{ConnectorRuntime, LinkState, RuntimeOptions};

    let hub = live_hub().await;
    let tls = hub.kit.tls.clone();
    let (connector_id, credential, token) = connector_token(&hub, &tls).await;
    let data = tempfile::tempdir().unwrap();
    let credentials = LinkCredentials {
        hub_url: hub.url.clone(),
        connector_id: connector_id.clone(),
        ca_pem: Some(hub.kit.ca_pem().to_owned()),
        secret: LinkSecret::ClientCredential { credential },
    };
    CredentialStore::new(data.path())
        .save(&credentials)
        .unwrap();
    let runtime = ConnectorRuntime::start(RuntimeOptions::new(data.path()))
        .await
        .unwrap();
    let mut status = runtime.status();
    let connected =
        |status: &mut tokio::sync::watch::Receiver<uplink_connector::ConnectorStatus>| {
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
    let hub = live_hub().await;
    let url = Url::parse(&hub.url).unwrap();
    let report = check_connectivity(
        &url,
        hub.kit.tls.clone(),
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
async fn diagnostics_hub_path_answering_404_fails_negotiate() {
    let hub = live_hub().await;
    let tls = hub.kit.tls.clone();
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
    let hub = live_hub().await;
    let tls = hub.kit.tls.clone();
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
