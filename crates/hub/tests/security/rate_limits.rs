use std::num::NonZeroU32;

use reqwest::StatusCode;

use crate::harness::*;

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.sign_in_per_account = NonZeroU32::new(3).unwrap();
    })
    .await;
    for _ in 0..3 {
        let r = hub
            .client
            .post(hub.url("/account/login"))
            .headers(hub.same_origin(None))
            .form(&[("username", "ada"), ("password", "not the password at all")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is turned away until the budget refills: no session.
    let r = hub
        .client
        .post(hub.url("/account/login"))
        .headers(hub.same_origin(None))
        .form(&[("username", "ADA"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("set-cookie").is_none());
    let audit = hub.hub.store.audit_events(20).await.unwrap();
    assert_eq!(
        audit.iter().filter(|e| e.event == "sign_in_failed").count(),
        3
    );
}

#[tokio::test]
async fn token_requests_are_limited_per_address() {
    let hub = TestHub::start_with(|c| {
        c.rate_limits.token_per_address = NonZeroU32::new(5).unwrap();
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = hub
            .token_request(
                PUBLIC_APP,
                &[("grant_type", "refresh_token"), ("refresh_token", "guess")],
            )
            .await;
        statuses.push(r.status());
    }
    assert_eq!(&statuses[..5], &[StatusCode::BAD_REQUEST; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
}
