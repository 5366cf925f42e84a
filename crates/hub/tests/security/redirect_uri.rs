use reqwest::StatusCode;

use crate::harness::*;

async fn refused_without_redirect(hub: &TestHub, cookie: &str, client: &str, redirect: &str) {
    let r = hub
        .authorize_raw(cookie, &TestHub::authorize_params(client, redirect))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "{redirect} must be refused"
    );
    assert!(
        r.headers().get("location").is_none(),
        "{redirect} must not redirect"
    );
    let html = r.text().await.unwrap();
    assert!(
        html.contains("does not match"),
        "{redirect}: the page says why"
    );
}

#[tokio::test]
async fn redirect_uri_variants_are_refused_on_a_hub_page() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    for variant in [
        "https://app.example/cb?next=evil",
        "https://APP.example/cb",
        "https://app.example/CB",
        "https://app.example/cb/",
        "https://app.example/x/../cb",
        "https://app.example/cb/..",
        "https://good@evil.example/cb",
        "https://app.example@evil.example/cb",
        "https://app.example.evil.com/cb",
        "http://app.example/cb",
        "https://app.example/cb#fragment",
    ] {
        refused_without_redirect(&hub, &cookie, CONF_APP, variant).await;
    }
    for variant in [
        "http://127.0.0.1.evil.com/callback",
        "http://localhost/callback",
        "http://localhost:4000/callback",
        "http://[::1]:4000/callback",
        "http://127.0.0.1:4000/callback?x=1",
        "http://127.0.0.1:4000/callback/",
        "http://127.0.0.1:4000@evil.com/callback",
        "https://127.0.0.1/callback",
    ] {
        refused_without_redirect(&hub, &cookie, PUBLIC_APP, variant).await;
    }
    // A redirect URI registered to another app is not this app's.
    refused_without_redirect(&hub, &cookie, PUBLIC_APP, CONF_REDIRECT).await;
    assert_eq!(hub.grant_count().await, 0, "nothing was granted");
}

#[tokio::test]
async fn a_loopback_redirect_may_change_its_port_only() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub
        .start_authorization(
            &cookie,
            &TestHub::authorize_params(PUBLIC_APP, "http://127.0.0.1:49152/callback"),
        )
        .await;
    assert!(request.starts_with("req_"));
}

#[tokio::test]
async fn unknown_clients_get_an_error_page_not_a_redirect() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let r = hub
        .authorize_raw(
            &cookie,
            &TestHub::authorize_params("no-such-app", CONF_REDIRECT),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert_eq!(hub.grant_count().await, 0);
}
