//! A consent that changes what an app already may do says so, and the owner sees every
//! grant's permissions in settings.

use reqwest::StatusCode;

use crate::harness::*;

async fn page(hub: &TestHub, cookie: &str, path: &str) -> String {
    hub.client
        .get(hub.url(path))
        .headers(TestHub::cookie_header(cookie))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_consent_that_changes_an_existing_grants_scopes_says_so() {
    let hub = TestHub::start().await;
    // First consent: data.read on the historian.
    hub.grant_public(&[&hub.historian.id]).await;
    let cookie = hub.sign_in().await;
    let mut params = TestHub::authorize_params(PUBLIC_APP, PUBLIC_REDIRECT);
    for (name, value) in &mut params {
        if name == "scope" {
            *value = "data.read tags.read".into();
        }
    }
    let request = hub.start_authorization(&cookie, &params).await;
    let consent = page(
        &hub,
        &cookie,
        &format!("/account/consent?request={request}"),
    )
    .await;
    assert!(
        consent.contains("This changes what Public App may do"),
        "{consent}"
    );
    assert!(consent.contains("already has your permission for"));
    assert!(consent.contains("historian"));
    let csrf = hub.consent_token(&cookie, &request).await;
    let r = hub
        .post_consent(
            hub.same_origin(Some(&cookie)),
            &[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("decision", "approve"),
                ("scope", "data.read"),
                ("scope", "tags.read"),
                ("source", hub.historian.id.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The owner sees the new permissions in settings.
    let settings = page(&hub, &cookie, "/account/settings").await;
    assert!(settings.contains("<code>tags.read</code>"), "{settings}");
    // The same scopes again: nothing changes, and the page does not claim it does.
    let request = hub.start_authorization(&cookie, &params).await;
    let consent = page(
        &hub,
        &cookie,
        &format!("/account/consent?request={request}"),
    )
    .await;
    assert!(consent.contains("already has your permission for"));
    assert!(!consent.contains("This changes what"), "{consent}");
}
