//! The kit's own promises: a killed hub is gone (nothing answers on its port), and a restarted
//! one is the same hub — same port and issuer, same store and token keys, so what was granted
//! and issued before still holds.

use reqwest::StatusCode;
use uplink_testkit::TestHub;

#[tokio::test]
async fn a_restarted_hub_keeps_its_port_store_and_keys() {
    let mut hub = TestHub::start().await;
    let source = hub
        .hub
        .add_source(hub.plant_id(), "historian", "Process historian")
        .await
        .unwrap();
    let tokens = hub.grant_public(&[&source.id]).await;
    assert_eq!(hub.access(&tokens.access, &source.id).await, StatusCode::OK);
    let issuer = hub.issuer.clone();

    hub.kill();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", hub.port)).await;
    assert!(refused.is_err(), "a killed hub still accepts connections");

    hub.restart().await;
    assert_eq!(hub.issuer, issuer);
    // The access token was issued before the restart: the keys and the grant were kept.
    assert_eq!(hub.access(&tokens.access, &source.id).await, StatusCode::OK);
    // And the seeded account is still there.
    hub.sign_in().await;
}

#[tokio::test]
async fn a_restart_can_change_the_configuration() {
    let mut hub = TestHub::start().await;
    let before = hub.connector_token().await;
    hub.restart_with(|config| config.access_token_ttl = 7).await;
    let r = hub
        .client
        .post(hub.url("/oauth/token"))
        .basic_auth(hub.plant_id(), Some(hub.plant.credential.expose()))
        .form(&[("grant_type", "client_credentials"), ("scope", "connector")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 7);
    assert_ne!(body["access_token"].as_str().unwrap(), before);
}
