//! The browser sign-in against the real hub over real TLS on loopback. The "browser" is an
//! HTTP client that follows the authorize URL the way a person's browser would: it signs in on
//! the hub's page, approves the consent form and follows the redirect to the connector's
//! loopback listener. No test launches a real browser: the opener only hands the URL over.

use reqwest::StatusCode;
use tokio::sync::mpsc;
use uplink_connector::browser_sign_in::{BrowserSignIn, PendingSignIn, SignInError, SignInTask};
use uplink_connector::credentials::{CredentialStore, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, LinkState};
use uplink_signalr::Transport;
use uplink_testkit::{TestHub, query_param};

use crate::wait_for;

/// Starts a sign-in whose "browser" is a channel the test reads the URL from.
async fn start_sign_in(
    hub: &TestHub,
) -> (PendingSignIn, SignInTask, mpsc::UnboundedReceiver<String>) {
    let (opened, urls) = mpsc::unbounded_channel();
    let (pending, task) = BrowserSignIn::new()
        .with_opener(move |url| {
            opened.send(url.to_owned()).unwrap();
            Ok(())
        })
        .start(&hub.issuer, hub.trust())
        .await
        .unwrap();
    (pending, task, urls)
}

/// The loopback port the sign-in listens on, from the redirect URI in its authorize URL.
fn listener_port(pending: &PendingSignIn) -> u16 {
    let redirect = query_param(&pending.authorize_url, "redirect_uri").expect("a redirect URI");
    let url = url::Url::parse(&redirect).unwrap();
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    assert_eq!(url.path(), "/callback");
    url.port().expect("an explicit port")
}

async fn nothing_listens_on(port: u16) -> bool {
    matches!(
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

fn options(data_dir: &std::path::Path) -> uplink_connector::runtime::RuntimeOptions {
    crate::options(data_dir, &[Transport::WebSockets])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_completes_with_a_refresh_token_the_runtime_links_with() {
    let hub = TestHub::start().await;
    let (pending, task, mut opened) = start_sign_in(&hub).await;
    assert_eq!(pending.hub_url, hub.issuer);
    assert!(pending.browser_opened);
    let url = opened.recv().await.expect("the browser was opened");
    assert_eq!(url, pending.authorize_url);
    assert!(url.starts_with(&format!("{}/oauth/authorize?", hub.issuer)));
    assert_eq!(
        query_param(&url, "client_id").as_deref(),
        Some("uplink-connector")
    );
    assert_eq!(query_param(&url, "scope").as_deref(), Some("connector"));
    assert_eq!(query_param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&url, "state").is_some_and(|s| s.len() >= 16));
    let port = listener_port(&pending);

    let signing_in = tokio::spawn(task);
    let browser = hub.client.clone();
    let back = hub
        .sign_in_and_decide(&browser, &url, "approve", "connector")
        .await;
    assert!(
        back.starts_with(&format!("http://127.0.0.1:{port}/callback?")),
        "{back}"
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(hub.issuer.as_str())
    );
    let page = browser.get(&back).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"),
        "the page loads nothing"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Signed in — you can close this tab"),
        "{html}"
    );
    assert!(!html.contains("http"), "no remote content: {html}");

    let signed_in = signing_in.await.unwrap().expect("signed in");
    assert_eq!(signed_in.hub_url, hub.issuer);
    assert_eq!(signed_in.scopes, vec!["connector"]);
    assert!(!signed_in.refresh_token().is_empty());
    assert!(
        !format!("{signed_in:?}").contains(signed_in.refresh_token()),
        "Debug never shows the token"
    );
    assert!(nothing_listens_on(port).await, "the listener closed");

    // The same end state as `uplink connector login`, and the runtime links with it.
    let data_dir = tempfile::tempdir().unwrap();
    let runtime = ConnectorRuntime::start(options(data_dir.path()))
        .await
        .unwrap();
    let mut status = runtime.status();
    wait_for(&mut status, "signed out", |s| {
        s.link == LinkState::SignedOut
    })
    .await;
    let credentials = signed_in.credentials(None);
    assert!(credentials.connector_id.starts_with("con_"));
    assert_eq!(credentials.ca_pem.as_deref(), Some(hub.ca.ca_pem()));
    runtime.sign_in(credentials.clone()).await.unwrap();
    wait_for(&mut status, "connected", |s| s.link == LinkState::Connected).await;
    assert_eq!(
        status.borrow().connector_id.as_deref(),
        Some(credentials.connector_id.as_str())
    );
    let described = hub.hub.relay().describe(&credentials.connector_id).unwrap();
    assert_eq!(
        described[0].name, "simulated",
        "the hub sees the connector's sources"
    );
    let kept = CredentialStore::new(data_dir.path())
        .load()
        .unwrap()
        .unwrap();
    match kept.secret {
        LinkSecret::RefreshToken { refresh_token } => assert_ne!(
            refresh_token,
            signed_in.refresh_token(),
            "the runtime rotated and kept the refresh token"
        ),
        other => panic!("expected a refresh token, got {other:?}"),
    }
    runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_in_ignores_a_callback_with_a_wrong_state_and_still_completes() {
    let hub = TestHub::start().await;
    let (pending, task, _opened) = start_sign_in(&hub).await;
    let port = listener_port(&pending);
    let signing_in = tokio::spawn(task);
    // Another page (or process) sends the listener a code of its choosing, then a request
    // with no state at all: neither is taken, and neither ends the sign-in.
    let browser = hub.client.clone();
    for stray in [
        format!(
            "http://127.0.0.1:{port}/callback?code=attacker-code&state=forged-state&iss={}",
            hub.issuer
        ),
        format!("http://127.0.0.1:{port}/callback?error=access_denied"),
    ] {
        let page = browser.get(&stray).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        let html = page.text().await.unwrap();
        assert!(html.contains("Not this sign-in"), "{html}");
        assert!(!html.contains("attacker-code"), "{html}");
    }
    assert!(
        !signing_in.is_finished(),
        "a stray callback cannot end the sign-in"
    );
    assert!(!nothing_listens_on(port).await, "still listening");
    // The owner's own browser then comes back with the real answer: signed in.
    let back = hub
        .sign_in_and_decide(&browser, &pending.authorize_url, "approve", "connector")
        .await;
    let page = browser.get(&back).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let signed_in = signing_in
        .await
        .unwrap()
        .expect("signed in despite the stray callbacks");
    assert_eq!(signed_in.hub_url, hub.issuer);
    assert!(
        nothing_listens_on(port).await,
        "a finished sign-in closes its listener"
    );
}

#[tokio::test]
async fn browser_sign_in_refuses_another_issuer_or_none() {
    let hub = TestHub::start().await;
    for (iss, expected) in [
        (Some("https://evil.example"), "IssuerMismatch"),
        (None, "IssuerMissing"),
    ] {
        let (pending, task, _opened) = start_sign_in(&hub).await;
        let port = listener_port(&pending);
        let state = query_param(&pending.authorize_url, "state").unwrap();
        let signing_in = tokio::spawn(task);
        let mut callback = format!("http://127.0.0.1:{port}/callback?code=some-code&state={state}");
        if let Some(iss) = iss {
            callback.push_str(&format!("&iss={iss}"));
        }
        let page = hub.client.clone().get(&callback).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        let error = signing_in.await.unwrap().unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{error:?}");
        assert!(!error.to_string().contains("some-code"));
    }
}

#[tokio::test]
async fn browser_sign_in_reports_the_owner_denying() {
    let hub = TestHub::start().await;
    let (pending, task, _opened) = start_sign_in(&hub).await;
    let signing_in = tokio::spawn(task);
    let browser = hub.client.clone();
    let back = hub
        .sign_in_and_decide(&browser, &pending.authorize_url, "deny", "connector")
        .await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    let page = browser.get(&back).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    match signing_in.await.unwrap().unwrap_err() {
        SignInError::Refused { code, .. } => assert_eq!(code, "access_denied"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn browser_sign_in_cancelled_or_dropped_leaves_no_listener() {
    let hub = TestHub::start().await;
    let (pending, task, _opened) = start_sign_in(&hub).await;
    let port = listener_port(&pending);
    assert!(!nothing_listens_on(port).await, "listening while pending");
    task.canceller().cancel();
    let error = task.await.unwrap_err();
    assert!(matches!(error, SignInError::Cancelled), "{error:?}");
    assert_eq!(error.code(), "sign_in_cancelled");
    assert!(
        nothing_listens_on(port).await,
        "cancelled: the listener closed"
    );

    // Dropping the task (an aborted host task) closes it too, and a browser that comes back
    // later finds nothing.
    let (pending, task, _opened) = start_sign_in(&hub).await;
    let port = listener_port(&pending);
    drop(task);
    assert!(
        nothing_listens_on(port).await,
        "dropped: the listener closed"
    );
}

#[tokio::test]
async fn browser_sign_in_goes_on_when_no_browser_opens_and_times_out() {
    let hub = TestHub::start().await;
    let (pending, task) = BrowserSignIn::new()
        .with_opener(|_| Err(std::io::Error::other("no display")))
        .start(&hub.issuer, hub.trust())
        .await
        .unwrap();
    assert!(!pending.browser_opened, "the UI must offer the link");
    let port = listener_port(&pending);
    // Nobody comes back: the clock runs on to the ten-minute limit.
    tokio::time::pause();
    let error = task.await.unwrap_err();
    assert!(matches!(error, SignInError::TimedOut(_)), "{error:?}");
    assert!(error.to_string().contains("10 minutes"), "{error}");
    assert!(nothing_listens_on(port).await);
}

#[tokio::test]
async fn browser_sign_in_names_an_unreachable_or_plain_http_hub() {
    uplink_tls::install_crypto_provider();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let sign_in = BrowserSignIn::new().with_opener(|_| panic!("no browser before the hub answers"));
    let error = sign_in
        .start(
            &format!("https://127.0.0.1:{port}"),
            uplink_tls::Trust::Platform,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), "hub_unreachable", "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    let error = sign_in
        .start("http://hub.example", uplink_tls::Trust::Platform)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_arguments");
}
