use uplink_link::to_hub;
use uplink_signalr::Transport;

use crate::harness::*;

#[tokio::test]
async fn consent_and_revoke_are_pushed_to_the_connector() {
    let hub = LinkHub::start().await;
    let mut connector =
        TestConnector::connect(&hub, Transport::WebSockets, hub.connector_token().await).await;
    let registered = connector
        .register(hub.plant_id(), &["line-1", "line-2"])
        .await
        .unwrap();
    assert!(registered.grants.is_empty());
    assert!(
        connector.grants.recv().await.unwrap().grants.is_empty(),
        "sent after Register"
    );

    let line_1 = &registered.sources[0].id;
    hub.hub
        .grant(
            &hub.ada.id,
            APP,
            std::slice::from_ref(line_1),
            &["data.read".into()],
        )
        .await
        .unwrap();
    let pushed = connector.grants.recv().await.unwrap().grants;
    assert_eq!(pushed.len(), 1);
    assert_eq!(
        (
            pushed[0].app_id.as_str(),
            pushed[0].app_name.as_str(),
            pushed[0].source.as_str()
        ),
        (APP, "Energy dashboard", "line-1")
    );
    assert_eq!(pushed[0].scopes, vec!["data.read"]);

    hub.hub
        .revoke(&hub.ada.id, APP, Some(line_1))
        .await
        .unwrap();
    assert!(connector.grants.recv().await.unwrap().grants.is_empty());
}

#[tokio::test]
async fn a_revoke_on_site_stops_the_apps_next_request() {
    let hub = LinkHub::start().await;
    let mut connector =
        TestConnector::connect(&hub, Transport::LongPolling, hub.connector_token().await).await;
    let registered = connector
        .register(hub.plant_id(), &["line-1", "line-2"])
        .await
        .unwrap();
    let _ = connector.grants.recv().await.unwrap();
    let line_1 = registered.sources[0].id.clone();
    let line_2 = registered.sources[1].id.clone();
    let token = hub.app_token(&hub.ada, &line_1).await;
    hub.hub
        .grant(
            &hub.ada.id,
            APP,
            std::slice::from_ref(&line_2),
            &["data.read".into()],
        )
        .await
        .unwrap();
    assert!(
        hub.hub
            .check_access(&token, &line_1, "data.read")
            .await
            .is_ok()
    );
    assert!(
        hub.hub
            .check_access(&token, &line_2, "data.read")
            .await
            .is_ok()
    );
    // Drain the pushes of the two consents.
    while connector.grants.recv().await.unwrap().grants.len() < 2 {}

    let err = connector
        .connection
        .invoke::<()>(
            to_hub::REVOKE_GRANT,
            (serde_json::json!({"appId": APP, "source": "nowhere"}),),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no data source named 'nowhere'"),
        "{err}"
    );

    connector
        .connection
        .invoke::<()>(
            to_hub::REVOKE_GRANT,
            (serde_json::json!({"appId": APP, "source": "line-1"}),),
        )
        .await
        .unwrap();
    assert!(
        hub.hub
            .check_access(&token, &line_1, "data.read")
            .await
            .is_err()
    );
    assert!(
        hub.hub
            .check_access(&token, &line_2, "data.read")
            .await
            .is_ok()
    );
    // Each consent's push lists the grants of that moment: both may list both sources, so a
    // push of the two consents can still be queued behind the drain above.
    let left = loop {
        let list = connector.grants.recv().await.unwrap().grants;
        if list.len() != 2 {
            break list;
        }
    };
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].source, "line-2");

    // Without a source: every source of this connector.
    connector
        .connection
        .invoke::<()>(to_hub::REVOKE_GRANT, (serde_json::json!({"appId": APP}),))
        .await
        .unwrap();
    assert!(
        hub.hub
            .check_access(&token, &line_2, "data.read")
            .await
            .is_err()
    );
    assert!(connector.grants.recv().await.unwrap().grants.is_empty());
    let events = hub.hub.store.audit_events(50).await.unwrap();
    assert!(events.iter().any(|e| e.event == "revoked_on_site"));
    assert!(hub.hub.relay().is_online(hub.plant_id()));
}

/// docs/protocol.md: `RevokeGrant` for an app the hub does not know answers an error naming
/// it; it used to complete as if something had been revoked.
#[tokio::test]
async fn revoking_an_unknown_app_on_site_is_an_error_not_a_silent_success() {
    let hub = LinkHub::start().await;
    let mut connector =
        TestConnector::connect(&hub, Transport::WebSockets, hub.connector_token().await).await;
    let registered = connector
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap();
    let _ = connector.grants.recv().await.unwrap();
    let line_1 = registered.sources[0].id.clone();
    let token = hub.app_token(&hub.ada, &line_1).await;
    assert_eq!(connector.grants.recv().await.unwrap().grants.len(), 1);

    for request in [
        serde_json::json!({"appId": "app_nobody"}),
        serde_json::json!({"appId": "app_nobody", "source": "line-1"}),
    ] {
        let err = connector
            .connection
            .invoke::<()>(to_hub::REVOKE_GRANT, (request.clone(),))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no app 'app_nobody' on this hub"),
            "{request}: {err}"
        );
    }
    // The known app's grant is untouched, and the link is still up.
    assert!(
        hub.hub
            .check_access(&token, &line_1, "data.read")
            .await
            .is_ok()
    );
    assert!(hub.hub.relay().is_online(hub.plant_id()));
}
