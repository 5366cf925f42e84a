use reqwest::StatusCode;
use uplink_hub::token::{Keyring, TokenSubject};

use crate::harness::*;

#[tokio::test]
async fn tampered_foreign_expired_and_future_tokens_are_refused() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let source = hub.historian.id.clone();
    assert_eq!(hub.access(&tokens.access, &source).await, StatusCode::OK);

    // One byte changed, anywhere in the body.
    let bytes = tokens.access.as_bytes();
    for i in [12, bytes.len() / 2, bytes.len() - 3] {
        let mut t = bytes.to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(t).unwrap();
        assert_eq!(
            hub.access(&tampered, &source).await,
            StatusCode::UNAUTHORIZED,
            "byte {i}"
        );
    }

    let claims = hub.hub.keys.verify(&tokens.access).unwrap();
    let subject = TokenSubject {
        user_id: claims.user_id.clone(),
        app_id: claims.app_id.clone(),
        scopes: claims.scopes.clone(),
        family_id: claims.family_id.clone(),
    };
    // Made with a key this hub does not hold.
    let other = Keyring::generate(&hub.issuer, &hub.hub.config.audience()).unwrap();
    let foreign = other.issue(&subject, 600).unwrap();
    assert_eq!(
        hub.access(foreign.expose(), &source).await,
        StatusCode::UNAUTHORIZED
    );
    // Expired, and not yet valid, though otherwise perfect.
    let now = uplink_hub::clock::now();
    let expired = hub
        .hub
        .keys
        .issue_with_times(&subject, now - 1200, now - 1200, now - 600)
        .unwrap();
    assert_eq!(
        hub.access(expired.expose(), &source).await,
        StatusCode::UNAUTHORIZED
    );
    let future = hub
        .hub
        .keys
        .issue_with_times(&subject, now, now + 600, now + 1200)
        .unwrap();
    assert_eq!(
        hub.access(future.expose(), &source).await,
        StatusCode::UNAUTHORIZED
    );
    // No token, and a token in the wrong scheme.
    let r = hub
        .client
        .get(hub.url(&format!("/api/v1/sources/{source}/access")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "missing_token");
    // The genuine token still works: none of this disturbed it.
    assert_eq!(hub.access(&tokens.access, &source).await, StatusCode::OK);
}

#[tokio::test]
async fn a_token_reads_only_the_ticked_source() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::OK
    );
    let r = hub
        .client
        .get(hub.url(&format!("/api/v1/sources/{}/access", hub.lab.id)))
        .bearer_auth(&tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "no_grant");
    assert!(body["message"].as_str().unwrap().contains("no grant"));
}

#[tokio::test]
async fn app_a_token_is_not_app_b() {
    let hub = TestHub::start().await;
    // The user gives the lab to the confidential app, the historian to the public app.
    let conf_code = hub
        .consent_for(CONF_APP, CONF_REDIRECT, &[&hub.lab.id])
        .await;
    let conf = TestHub::tokens(hub.exchange(CONF_APP, &conf_code).await).await;
    let public = hub.grant_public(&[&hub.historian.id]).await;
    assert_eq!(
        hub.access(&public.access, &hub.lab.id).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hub.access(&conf.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    // A's refresh token presented by B is refused, and does not burn A's token.
    let r = hub
        .token_request(
            CONF_APP,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &public.refresh),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
    let r = hub
        .token_request(
            PUBLIC_APP,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &public.refresh),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
