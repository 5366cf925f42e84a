use reqwest::StatusCode;
use uplink_hub::secret::{Secret, pkce_s256};
use uplink_hub::store::CodeGrant;

use crate::harness::*;

async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.get("access_token").is_none(), "no token in an error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let hub = TestHub::start().await;
    let code = hub
        .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
        .await;
    let first = TestHub::tokens(hub.exchange(PUBLIC_APP, &code).await).await;
    assert_eq!(
        hub.access(&first.access, &hub.historian.id).await,
        StatusCode::OK
    );
    let (status, error) = error_of(hub.exchange(PUBLIC_APP, &code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // What the first redemption issued is revoked.
    assert_eq!(
        hub.access(&first.access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
    let r = hub
        .token_request(
            PUBLIC_APP,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first.refresh),
            ],
        )
        .await;
    assert_eq!(error_of(r).await.1, "invalid_grant");
}

#[tokio::test]
async fn concurrent_redemptions_exactly_one_wins() {
    let hub = std::sync::Arc::new(TestHub::start().await);
    let code = hub
        .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
        .await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let hub = hub.clone();
            let code = code.clone();
            tokio::spawn(async move { hub.exchange(PUBLIC_APP, &code).await })
        })
        .collect();
    let mut winners = Vec::new();
    let mut refused = 0;
    for a in attempts {
        let r = a.await.unwrap();
        if r.status() == StatusCode::OK {
            winners.push(TestHub::tokens(r).await);
        } else {
            assert_eq!(error_of(r).await.1, "invalid_grant");
            refused += 1;
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    assert_eq!(refused, 7);
    // The replays revoked the winner's tokens too (RFC 6749 §4.1.2).
    assert_eq!(
        hub.access(&winners[0].access, &hub.historian.id).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let hub = TestHub::start().await;
    hub.hub
        .store
        .grant(
            &hub.user.id,
            PUBLIC_APP,
            std::slice::from_ref(&hub.historian.id),
            &["data.read".into()],
            1,
        )
        .await
        .unwrap();
    let code = Secret::generate();
    let now = uplink_hub::clock::now();
    hub.hub
        .store
        .create_code(
            &code.digest(),
            &CodeGrant {
                app_id: PUBLIC_APP.into(),
                user_id: hub.user.id.clone(),
                redirect_uri: PUBLIC_REDIRECT.into(),
                scopes: vec!["data.read".into()],
                code_challenge: pkce_s256(VERIFIER),
                nonce: None,
                auth_time: now - 700,
                created_at: now - 700,
                expires_at: now - 100,
            },
        )
        .await
        .unwrap();
    let r = hub
        .exchange(
            PUBLIC_APP,
            &Code {
                code: code.expose().to_owned(),
                redirect_uri: PUBLIC_REDIRECT.into(),
            },
        )
        .await;
    let (status, error) = error_of(r).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn a_code_redeemed_by_another_client_is_refused() {
    let hub = TestHub::start().await;
    let code = hub
        .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
        .await;
    let (status, error) = error_of(hub.exchange(CONF_APP, &code).await).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // The stolen code is spent: the attacker got nothing, and nobody can use it now.
    assert_eq!(
        error_of(hub.exchange(PUBLIC_APP, &code).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn a_code_with_another_redirect_uri_is_refused() {
    let hub = TestHub::start().await;
    let mut code = hub
        .consent_for(PUBLIC_APP, PUBLIC_REDIRECT, &[&hub.historian.id])
        .await;
    code.redirect_uri = "http://127.0.0.1:9999/callback".into();
    assert_eq!(
        error_of(hub.exchange(PUBLIC_APP, &code).await).await.1,
        "invalid_grant"
    );
}
