//! The built-in `uplink-connector` client in the browser sign-in (RFC 8252): the
//! authorization-code flow with PKCE and a loopback redirect on any port, scope `connector`
//! only, and nothing else.

use reqwest::StatusCode;
use uplink_link::CONNECTOR_CLIENT_ID;

use crate::harness::*;

/// A connector's loopback listener, on an ephemeral port.
const LOOPBACK: &str = "http://127.0.0.1:51873/callback";

fn connector_params(redirect_uri: &str) -> Vec<(String, String)> {
    TestHub::authorize_params(CONNECTOR_CLIENT_ID, redirect_uri)
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "scope" {
                "connector".into()
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

fn without(params: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    params.into_iter().filter(|(k, _)| k != name).collect()
}

/// Asserts the authorization request is refused back to the loopback listener with `error`.
async fn refused_to_loopback(
    hub: &TestHub,
    cookie: &str,
    params: &[(String, String)],
    error: &str,
) {
    let r = hub.authorize_raw(cookie, params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(LOOPBACK), "back to the connector: {loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert_eq!(query_param(&loc, "code"), None, "no code");
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(hub.issuer.as_str())
    );
}

#[tokio::test]
async fn oauth_connector_client_signs_in_with_pkce_on_a_loopback_port() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub
        .start_authorization(&cookie, &connector_params(LOOPBACK))
        .await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .decide_consent(&cookie, &request, &csrf, "approve", "connector")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(LOOPBACK), "redirected to {loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(hub.issuer.as_str()),
        "the issuer is named (RFC 9207)"
    );
    let code = Code {
        code: query_param(&loc, "code").expect("a code"),
        redirect_uri: LOOPBACK.into(),
    };
    // A public client: client id in the body, no secret, the verifier proves the rest.
    let response = hub.exchange(CONNECTOR_CLIENT_ID, &code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "connector");
    let refresh = body["refresh_token"].as_str().expect("a refresh token");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        hub.grant_count().await,
        0,
        "a connector sign-in shares no source"
    );
    let negotiate = hub
        .client
        .post(hub.url("/hubs/connector/negotiate?negotiateVersion=1"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(negotiate.status(), StatusCode::OK, "the token opens a link");
    // The refresh token rotates, as the connector's runtime expects.
    let refreshed = hub
        .token_request(
            CONNECTOR_CLIENT_ID,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let body: serde_json::Value = refreshed.json().await.unwrap();
    assert_ne!(body["refresh_token"].as_str().unwrap(), refresh);
}

#[tokio::test]
async fn oauth_connector_client_without_pkce_is_refused() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let good = connector_params(LOOPBACK);
    refused_to_loopback(
        &hub,
        &cookie,
        &without(good.clone(), "code_challenge"),
        "invalid_request",
    )
    .await;
    let mut plain = without(good.clone(), "code_challenge_method");
    plain.push(("code_challenge_method".into(), "plain".into()));
    refused_to_loopback(&hub, &cookie, &plain, "invalid_request").await;
    // Scope `connector` only: the connector's client reads no data.
    let mut data = without(good, "scope");
    data.push(("scope".into(), "data.read".into()));
    refused_to_loopback(&hub, &cookie, &data, "invalid_scope").await;

    // A code redeemed without its verifier is refused too.
    let request = hub
        .start_authorization(&cookie, &connector_params(LOOPBACK))
        .await;
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .decide_consent(&cookie, &request, &csrf, "approve", "connector")
        .await;
    let code = query_param(&location(&r), "code").expect("a code");
    let r = hub
        .token_request(
            CONNECTOR_CLIENT_ID,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", LOOPBACK),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn oauth_connector_client_refuses_a_redirect_that_is_not_its_loopback_listener() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    for redirect in [
        "https://evil.example/callback",
        "http://evil.example/callback",
        "http://localhost:51873/callback",
        "http://[::1]:51873/callback",
        "http://127.0.0.1.evil.example:51873/callback",
        "http://127.0.0.1:51873/elsewhere",
        "http://127.0.0.1:51873/callback?next=https://evil.example",
        "https://127.0.0.1:51873/callback",
    ] {
        let r = hub
            .authorize_raw(&cookie, &connector_params(redirect))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{redirect}");
        assert!(
            r.headers().get("location").is_none(),
            "{redirect} must not redirect"
        );
        assert!(r.text().await.unwrap().contains("does not match"));
    }
}
