//! Issue 16 item 2: a signed-in link cannot take over a connector it did not create. The
//! attacker holds a valid sign-in of the owner (a device code or browser sign-in the owner was
//! tricked into approving) and registers with another connector's id to receive the apps'
//! queries and answer them with forged data.

use reqwest::StatusCode;

use crate::harness::*;
use crate::links::*;

/// A connector id a sign-in chooses for itself.
const OWN_ID: &str = "con_signed-in-connector-0001";

#[tokio::test]
async fn a_sign_in_cannot_register_as_a_connector_provisioned_with_a_credential() {
    let hub = TestHub::start().await;
    let plant = hub.hub.add_connector("ada", "Plant B").await.unwrap();
    let id = plant.connector.id.clone();
    let real = Link::open(
        &hub,
        hub.credential_token(&id, plant.credential.expose()).await,
    )
    .await;
    real.register(&id).await.unwrap();

    let signed_in = hub.connector_sign_in().await;
    let mut attacker = Link::open(&hub, signed_in.access.clone()).await;
    let err = attacker.register(&id).await.unwrap_err().to_string();
    assert!(err.contains("its own credential"), "{err}");
    // The real link is untouched: still registered, still answered.
    assert!(real.alive().await, "the real connector's link stays up");
    assert!(hub.hub.relay().is_online(&id));
    let links = hub.hub.links.links();
    let served = links.iter().find(|l| l.connector_id == id).unwrap();
    assert_eq!(served.software, "test-connector 1.0");
    // Nothing of the connector changed hands.
    let stored = hub.hub.store.connector(&id).await.unwrap().unwrap();
    assert_eq!(stored.name, "press-shop-pc", "named by the real connector");
    assert!(
        hub.hub
            .store
            .audit_events(50)
            .await
            .unwrap()
            .iter()
            .any(|e| e.event == "connector_register_refused" && e.detail.contains(&id)),
        "the attempt is audited"
    );
    // The sign-in may still register a connector of its own.
    attacker.register(OWN_ID).await.unwrap();
    assert!(!attacker.was_closed());
    attacker.stop().await;
    real.stop().await;
}

#[tokio::test]
async fn a_sign_in_cannot_register_as_a_connector_another_sign_in_created() {
    let hub = TestHub::start().await;
    let owner = hub.connector_sign_in().await;
    let mut real = Link::open(&hub, owner.access.clone()).await;
    real.register(OWN_ID).await.unwrap();

    let attacker_tokens = hub.connector_sign_in().await;
    let attacker = Link::open(&hub, attacker_tokens.access.clone()).await;
    let err = attacker.register(OWN_ID).await.unwrap_err().to_string();
    assert!(err.contains("another sign-in"), "{err}");
    assert!(real.alive().await, "the real link stays up");
    assert!(!real.was_closed());

    // A newer link of the same sign-in (a refreshed token) replaces the older one.
    let refreshed = TestHub::tokens(hub.refresh_connector(&owner.refresh).await).await;
    let newer = Link::open(&hub, refreshed.access.clone()).await;
    newer.register(OWN_ID).await.unwrap();
    let (why, _) = real.closed().await;
    assert!(why.contains("replaced"), "{why}");
    assert!(newer.alive().await);

    // The attacker is still refused while that sign-in stands.
    let err = attacker.register(OWN_ID).await.unwrap_err().to_string();
    assert!(err.contains("another sign-in"), "{err}");
    assert!(newer.alive().await);
    attacker.stop().await;
    newer.stop().await;
    real.stop().await;
}

#[tokio::test]
async fn a_connector_signed_in_again_takes_over_once_its_old_sign_in_is_revoked() {
    let hub = TestHub::start().await;
    let old = hub.connector_sign_in().await;
    let mut first = Link::open(&hub, old.access.clone()).await;
    first.register(OWN_ID).await.unwrap();
    let old_family = hub.hub.keys.verify(&old.access).unwrap().family_id;
    hub.hub.revoke_family(&old_family, "test").await.unwrap();
    first.closed().await;

    // Signing in again: the new sign-in takes the connector, and holds it against a third.
    let again = hub.connector_sign_in().await;
    let second = Link::open(&hub, again.access.clone()).await;
    second.register(OWN_ID).await.unwrap();
    let third = Link::open(&hub, hub.connector_sign_in().await.access).await;
    let err = third.register(OWN_ID).await.unwrap_err().to_string();
    assert!(err.contains("another sign-in"), "{err}");
    assert!(second.alive().await);
    assert_eq!(hub.negotiate(&old.access).await, StatusCode::UNAUTHORIZED);
    third.stop().await;
    second.stop().await;
    first.stop().await;
}
