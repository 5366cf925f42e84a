use reqwest::StatusCode;

use crate::harness::*;

async fn refresh(hub: &TestHub, token: &str, scope: Option<&str>) -> reqwest::Response {
    let mut fields = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        fields.push(("scope", s));
    }
    hub.token_request(PUBLIC_APP, &fields).await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let hub = TestHub::start().await;
    let first = hub.grant_public(&[&hub.historian.id]).await;
    let second = TestHub::tokens(refresh(&hub, &first.refresh, None).await).await;
    assert_ne!(first.refresh, second.refresh, "rotated");
    assert_eq!(
        hub.access(&second.access, &hub.historian.id).await,
        StatusCode::OK
    );
    // The old one again: someone copied it. The whole family goes.
    let r = refresh(&hub, &first.refresh, None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
    assert_eq!(
        refresh(&hub, &second.refresh, None).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        hub.access(&second.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        hub.access(&first.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_refresh_cannot_widen_scopes() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let r = refresh(&hub, &tokens.refresh, Some("data.read tags.read")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    assert!(body.get("access_token").is_none());
    // The refused attempt did not spend the token.
    let ok = TestHub::tokens(refresh(&hub, &tokens.refresh, Some("data.read")).await).await;
    let claims = hub.hub.keys.verify(&ok.access).unwrap();
    assert_eq!(claims.scopes, vec!["data.read".to_owned()]);
}

#[tokio::test]
async fn revoking_the_last_grant_stops_refreshes() {
    let hub = TestHub::start().await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    hub.hub
        .revoke(&hub.user.id, PUBLIC_APP, Some(&hub.historian.id))
        .await
        .unwrap();
    let r = refresh(&hub, &tokens.refresh, None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        hub.access(&tokens.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
}
