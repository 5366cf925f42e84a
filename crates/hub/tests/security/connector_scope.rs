//! The `connector` scope is never given to an app by default: an app holding it could link as
//! its user's site connector and answer other apps' queries with data of its choosing.

use reqwest::StatusCode;
use uplink_hub::NewApp;

use crate::harness::*;

fn params_with_scope(client_id: &str, redirect_uri: &str, scope: &str) -> Vec<(String, String)> {
    TestHub::authorize_params(client_id, redirect_uri)
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "scope" { scope.into() } else { value };
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn an_app_is_registered_without_connector_unless_the_operator_allows_it() {
    let hub = TestHub::start().await;
    let app = |scopes: &[&str]| NewApp {
        name: "Dashboard".into(),
        client_id: None,
        confidential: true,
        redirect_uris: vec!["https://dashboard.example/cb".into()],
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    let err = hub
        .hub
        .add_app(app(&["data.read", "connector"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("--allow-connector-scope"), "{err}");
    let allowed = hub
        .hub
        .add_app_allowing_connector_scope(app(&["connector"]))
        .await
        .unwrap();
    assert_eq!(allowed.app.scopes, vec!["connector"]);
}

#[tokio::test]
async fn connector_asked_beside_data_scopes_is_refused_with_invalid_scope() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    // Even an app the operator registered for `connector` cannot ask for it beside data
    // access: the consent page would offer both as one decision.
    for scope in ["data.read connector", "connector tags.read"] {
        let r = hub
            .authorize_raw(
                &cookie,
                &params_with_scope(PUBLIC_APP, PUBLIC_REDIRECT, scope),
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let loc = location(&r);
        assert!(loc.starts_with(PUBLIC_REDIRECT), "back to the app: {loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_scope"));
        assert!(
            query_param(&loc, "error_description").is_some_and(|d| d.contains("on its own")),
            "{loc}"
        );
    }
    let r = hub
        .client
        .post(hub.url("/oauth/device_authorization"))
        .form(&[("client_id", PUBLIC_APP), ("scope", "data.read connector")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert_eq!(hub.grant_count().await, 0);
}

#[tokio::test]
async fn an_ordinary_app_is_never_offered_connector() {
    let hub = TestHub::start().await;
    let cookie = hub.sign_in().await;
    // Asked for by an app not registered for it: a clear OAuth error, back at the app.
    let r = hub
        .authorize_raw(
            &cookie,
            &params_with_scope(CONF_APP, CONF_REDIRECT, "connector"),
        )
        .await;
    let loc = location(&r);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_scope"));
    assert!(
        query_param(&loc, "error_description")
            .is_some_and(|d| d.contains("only for a site connector's own client")),
        "{loc}"
    );
    // The consent page of an app's data request shows no connector permission, and one
    // smuggled into the form is refused.
    let request = hub
        .start_authorization(
            &cookie,
            &params_with_scope(PUBLIC_APP, PUBLIC_REDIRECT, "data.read tags.read"),
        )
        .await;
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
    assert!(!page.contains("value=\"connector\""), "{page}");
    assert!(!page.contains("Connect a site connector"));
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "approve"),
                ("scope", "data.read"),
                ("scope", "connector"),
                ("source", hub.historian.id.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(hub.grant_count().await, 0);
}
