//! One-time sign-in links (what the embedded local hub opens in its owner's browser): a link
//! signs in once and leads only where it was minted to lead; a second use, a made-up token or
//! no token signs nobody in; a link cannot be minted to lead off the hub.

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn a_sign_in_link_signs_in_once_and_leads_only_where_it_was_minted_to() {
    let hub = TestHub::start().await;
    let link = hub
        .hub
        .mint_sign_in_link(&hub.user.id, "/account/settings")
        .unwrap();
    assert!(
        link.starts_with(&format!("{}/account/login/link?token=", hub.issuer)),
        "{link}"
    );

    // A made-up token, or none, signs nobody in.
    for wrong in [
        hub.url("/account/login/link?token=made-up"),
        hub.url("/account/login/link"),
    ] {
        let r = hub.client.get(&wrong).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::GONE, "{wrong}");
        assert!(session_cookie(&r).is_none());
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("already used or has expired")
        );
    }

    let r = hub.client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/settings");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = session_cookie(&r).expect("signed in");
    let settings = hub
        .client
        .get(hub.url("/account/settings"))
        .headers(TestHub::cookie_header(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), StatusCode::OK, "the session works");

    // Spent: the same link again signs nobody in.
    let again = hub.client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(session_cookie(&again).is_none());
}

#[tokio::test]
async fn a_sign_in_link_never_leads_off_the_hub() {
    let hub = TestHub::start().await;
    for next in [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "account/settings",
    ] {
        let refused = hub.hub.mint_sign_in_link(&hub.user.id, next).unwrap_err();
        assert!(
            refused.to_string().contains("a path on this hub"),
            "{next}: {refused}"
        );
    }
}
