use reqwest::StatusCode;

use crate::harness::*;

fn connector_params() -> Vec<(String, String)> {
    let mut params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    for (name, value) in &mut params {
        if name == "scope" {
            *value = "connector".into();
        }
    }
    params
}

#[tokio::test]
async fn connecting_a_connector_shares_no_data_source() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let request = hub.start_authorization(&cookie, &connector_params()).await;
    let page = hub
        .client
        .get(hub.url(&format!("/account/consent?request={request}")))
        .headers(TestHub::cookie_header(&cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Connect a site connector to your account"));
    assert!(!page.contains("name=\"source\""), "no data source to tick");
    let csrf = hub.consent_token(&cookie, &request).await;
    // Sources smuggled into a connector sign-in are refused, and nothing is granted.
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "approve"),
                ("scope", "connector"),
                ("source", hub.historian.id.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(hub.grant_count().await, 0);
    let r = hub
        .decide_consent(&cookie, &request, &csrf, "approve", "connector")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_param(&location(&r), "code").expect("a code");
    let tokens = TestHub::tokens(
        hub.exchange(
            PUBLIC_APP,
            &Code {
                code,
                redirect_uri: PUBLIC_REDIRECT.into(),
            },
        )
        .await,
    )
    .await;
    assert_eq!(
        hub.grant_count().await,
        0,
        "a connector sign-in grants no source"
    );
    // The token opens a connector link, and reads no data.
    let negotiate = hub
        .client
        .post(hub.url("/hubs/connector/negotiate?negotiateVersion=1"))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(negotiate.status(), StatusCode::OK);
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_app_not_registered_for_connector_cannot_ask_for_it() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    let mut params = TestHub::authorize_params(CONF_APP, CONF_REDIRECT);
    for (name, value) in &mut params {
        if name == "scope" {
            *value = "connector".into();
        }
    }
    let r = hub.authorize_raw(&cookie, &params).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = location(&r);
    assert!(loc.starts_with(CONF_REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_scope"));
    let r = hub
        .client
        .post(hub.url("/oauth/device_authorization"))
        .basic_auth(CONF_APP, Some(&hub.conf_secret))
        .form(&[("scope", "connector")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
