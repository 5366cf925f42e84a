use uplink_hub::token::TokenSubject;
use uplink_link::to_hub;
use uplink_signalr::Transport;

use crate::harness::*;

#[tokio::test]
async fn only_live_connector_tokens_open_a_link() {
    let hub = LinkHub::start().await;
    let now = uplink_hub::clock::now();
    assert_eq!(hub.negotiate(Some(&hub.connector_token().await)).await, 200);
    assert_eq!(hub.negotiate(None).await, 401);
    let plant = uplink_hub::link::connector_token_subject(&hub.plant.connector);
    let expired = hub
        .hub
        .keys
        .issue_with_times(&plant, now - 700, now - 700, now - 100)
        .unwrap();
    assert_eq!(hub.negotiate(Some(expired.expose())).await, 401, "expired");
    let wrong_scope = hub.issue(&TokenSubject {
        scopes: vec!["data.read".into()],
        ..plant.clone()
    });
    assert_eq!(hub.negotiate(Some(&wrong_scope)).await, 401, "wrong scope");
    let lab = hub.hub.add_source(hub.plant_id(), "lab", "").await.unwrap();
    let app = hub.app_token(&hub.ada, &lab.id).await;
    assert_eq!(hub.negotiate(Some(&app)).await, 401, "an app's token");
    // An app token made to look like a connector's (its family is no connector) is refused.
    let forged = hub.issue(&TokenSubject {
        app_id: APP.into(),
        family_id: APP.into(),
        ..plant.clone()
    });
    assert_eq!(hub.negotiate(Some(&forged)).await, 401, "forged");
    // A removed connector's still-unexpired token no longer opens a link.
    let token = hub.connector_token().await;
    hub.hub.remove_connector(hub.plant_id()).await.unwrap();
    assert_eq!(hub.negotiate(Some(&token)).await, 401, "removed connector");
    // A sign-in opens one until its family is revoked.
    let signed_in = hub.signed_in_token(&hub.ada).await;
    assert_eq!(hub.negotiate(Some(&signed_in)).await, 200);
    let family = hub.hub.keys.verify(&signed_in).unwrap().family_id;
    hub.hub.revoke_family(&family, "test").await.unwrap();
    assert_eq!(
        hub.negotiate(Some(&signed_in)).await,
        401,
        "revoked sign-in"
    );
}

#[tokio::test]
async fn client_credentials_need_the_connectors_own_credential() {
    let hub = LinkHub::start().await;
    let token = |id: String, secret: String, scope: &'static str| {
        let request = hub
            .client
            .post(hub.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)]);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }
    };
    let id = hub.plant_id().to_owned();
    let (status, body) = token(id.clone(), "wrong".into(), "connector").await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let secret = hub.plant.credential.expose().to_owned();
    let (status, body) = token(id.clone(), secret.clone(), "data.read").await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = token(id, secret, "connector").await;
    assert_eq!(status, 200);
    let claims = hub
        .hub
        .keys
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.app_id, hub.plant_id());
    assert_eq!(claims.user_id, hub.ada.id);
    // A connector that registered itself has no credential to present.
    let bob = hub
        .hub
        .add_user("bob", "another long password".into())
        .await
        .unwrap();
    let own =
        TestConnector::connect(&hub, Transport::WebSockets, hub.signed_in_token(&bob).await).await;
    own.register("con_bobs-own-connector-0001", &["x"])
        .await
        .unwrap();
    let (status, _) = token(
        "con_bobs-own-connector-0001".into(),
        String::new(),
        "connector",
    )
    .await;
    assert_eq!(status, 401);
    let metadata: serde_json::Value = hub
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        metadata["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "client_credentials")
    );
}

#[tokio::test]
async fn a_link_registers_only_its_own_connector() {
    let hub = LinkHub::start().await;
    let bob = hub
        .hub
        .add_user("bob", "another long password".into())
        .await
        .unwrap();
    let connector =
        TestConnector::connect(&hub, Transport::WebSockets, hub.connector_token().await).await;
    // Nothing works before Register.
    let err = connector
        .connection
        .invoke::<serde_json::Value>(to_hub::HEARTBEAT, ())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("register first"), "{err}");
    // A client-credentials link is its connector, no other.
    let err = connector
        .register("con_somebody-elses-id-000", &["line-1"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("belongs to connector"), "{err}");
    let err = connector
        .register(hub.plant_id(), &["a/b"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("'a/b' is not valid"), "{err}");
    connector
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap();

    // Bob's sign-in may create his own connector but never claim Ada's.
    let bobs = TestConnector::connect(
        &hub,
        Transport::LongPolling,
        hub.signed_in_token(&bob).await,
    )
    .await;
    let err = bobs
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("belongs to another account"),
        "{err}"
    );
    assert!(
        hub.hub.relay().is_online(hub.plant_id()),
        "Ada's link untouched"
    );
    let registered = bobs
        .register("con_bobs-own-connector-0001", &["bench"])
        .await
        .unwrap();
    assert_eq!(registered.sources[0].name, "bench");
    let owned = hub.hub.store.connectors(Some(&bob.id)).await.unwrap();
    assert_eq!(owned.len(), 1);
    assert_eq!(owned[0].name, "press-shop-pc");
    // Re-registering replaces the list: a source no longer announced is unavailable.
    bobs.register("con_bobs-own-connector-0001", &["press"])
        .await
        .unwrap();
    let sources = hub.hub.store.sources_owned_by(&bob.id).await.unwrap();
    let available: Vec<_> = sources
        .iter()
        .filter(|s| s.available)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(available, vec!["press"]);
    assert_eq!(sources.len(), 2, "the old source is kept for its grants");
}

#[tokio::test]
async fn renew_token_accepts_only_the_same_connector() {
    let hub = LinkHub::start().await;
    let connector = TestConnector::connect(
        &hub,
        Transport::ServerSentEvents,
        hub.connector_token().await,
    )
    .await;
    connector
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap();
    let fresh = hub.connector_token().await;
    let renewed: uplink_link::TokenRenewed = connector
        .connection
        .invoke(to_hub::RENEW_TOKEN, (fresh.as_str(),))
        .await
        .unwrap();
    let claims = hub.hub.keys.verify(&fresh).unwrap();
    assert_eq!(renewed.expires_at.timestamp(), claims.expires_at);

    let other = hub.hub.add_connector("ada", "Plant B").await.unwrap();
    let others = hub.issue(&uplink_hub::link::connector_token_subject(&other.connector));
    let signed_in = hub.signed_in_token(&hub.ada).await;
    for (token, what) in [
        (others, "another connector"),
        (signed_in, "a sign-in"),
        ("v4.local.x".to_owned(), "garbage"),
    ] {
        let err = connector
            .connection
            .invoke::<uplink_link::TokenRenewed>(to_hub::RENEW_TOKEN, (token.as_str(),))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("token not renewed"),
            "{what}: {err}"
        );
    }
    // Still linked and serving after the refusals.
    let beat: serde_json::Value = connector
        .connection
        .invoke(to_hub::HEARTBEAT, ())
        .await
        .unwrap();
    assert!(beat["serverTime"].is_string());
}

#[tokio::test]
async fn a_link_whose_token_expires_unrenewed_is_closed() {
    let hub = LinkHub::start().await;
    let now = uplink_hub::clock::now();
    let plant = uplink_hub::link::connector_token_subject(&hub.plant.connector);
    let short = hub
        .hub
        .keys
        .issue_with_times(&plant, now, now, now + 2)
        .unwrap()
        .expose()
        .to_owned();
    let connector = TestConnector::connect(&hub, Transport::WebSockets, short).await;
    connector
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap();
    let mut events = connector.connection.events();
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            if let uplink_signalr::client::ClientEvent::Reconnecting { last_error, .. } =
                events.recv().await.unwrap()
            {
                return last_error;
            }
        }
    })
    .await
    .expect("the hub closes an expired link");
    assert!(closed.contains("expired"), "{closed}");
    assert!(!hub.hub.relay().is_online(hub.plant_id()));
    connector.connection.stop().await;
}
