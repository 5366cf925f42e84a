//! The sign-out button is a guarded form like the others: only the hub's own page, with the
//! session's token, ends the session; a browser already signed out is sent to the sign-in page.

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use crate::harness::*;

/// Whether `cookie` still signs the browser in (the settings page shows rather than
/// redirecting to the sign-in page).
async fn signed_in(hub: &TestHub, cookie: &str) -> bool {
    let r = hub
        .client
        .get(hub.url("/account/settings"))
        .headers(TestHub::cookie_header(cookie))
        .send()
        .await
        .unwrap();
    r.status() == StatusCode::OK
}

#[tokio::test]
async fn sign_out_needs_the_hubs_own_page_and_the_sessions_token() {
    let hub = TestHub::start().await;

    // Already signed out: sent to the sign-in page, even from another site.
    let mut evil = reqwest::header::HeaderMap::new();
    evil.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = hub
        .client
        .post(hub.url("/account/logout"))
        .headers(evil)
        .form(&[("csrf", "anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/login");

    let cookie = hub.sign_in().await;
    assert!(signed_in(&hub, &cookie).await);
    let csrf = hub.page_csrf(&cookie, "/account/settings").await;

    // From another site, even with the right token: refused, still signed in.
    let mut evil = TestHub::cookie_header(&cookie);
    evil.insert("origin", HeaderValue::from_static("https://evil.example"));
    let r = hub
        .client
        .post(hub.url("/account/logout"))
        .headers(evil)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(signed_in(&hub, &cookie).await);

    // From the hub's page with a wrong or missing token: refused, still signed in.
    for form in [vec![("csrf", "not-the-token")], vec![]] {
        let r = hub
            .client
            .post(hub.url("/account/logout"))
            .headers(hub.same_origin(Some(&cookie)))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(signed_in(&hub, &cookie).await);
    }

    // The real button: signed out, cookie cleared, the old cookie no longer signs in.
    let r = hub
        .client
        .post(hub.url("/account/logout"))
        .headers(hub.same_origin(Some(&cookie)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/login");
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("__Host-uplink-session="), "{cleared}");
    assert!(
        !cleared.contains(&cookie),
        "the cookie is cleared: {cleared}"
    );
    assert!(!signed_in(&hub, &cookie).await);
}
