//! The hub at its connector limit: a connector beyond the cap is refused with 503, a
//! `Retry-After` and a body naming the limit; links already up keep answering; a slot frees
//! when a link leaves.

use std::time::Duration;

use futures::StreamExt as _;
use futures::future::join_all;
use uplink_hub::RegisteredConnector;
use uplink_hub::link::limit::{LIMIT_CODE, RETRY_AFTER_SECS};
use uplink_signalr::Transport;

use crate::harness::*;

const CAP: usize = 2;

async fn capped() -> LinkHub {
    LinkHub::start_with(|c| c.max_connectors = CAP).await
}

fn token_of(hub: &LinkHub, c: &RegisteredConnector) -> String {
    hub.issue(&uplink_hub::link::connector_token_subject(&c.connector))
}

async fn refused_negotiate(hub: &LinkHub, token: &str) -> serde_json::Value {
    let response = hub
        .client
        .post(hub.url("/hubs/connector/negotiate?negotiateVersion=1"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"].to_str().unwrap(),
        RETRY_AFTER_SECS.to_string()
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    response.json().await.unwrap()
}

/// Relays a snapshot to `connector` and has it answer `body`; what the app received.
async fn answered(hub: &LinkHub, connector_id: &str, connector: &mut TestConnector, body: &str) {
    let relay = hub.hub.relay();
    let id = connector_id.to_owned();
    let query = snapshot(&hub.ada, "line-1");
    let app = tokio::spawn(async move {
        let mut answer = relay.relay(&id, query).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = answer.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(bytes).unwrap()
    });
    let asked = tokio::time::timeout(Duration::from_secs(10), connector.queries.recv())
        .await
        .expect("the query reached the connector")
        .unwrap();
    connector.chunk(&asked.query_id, 0, body).await.unwrap();
    connector.end(&asked.query_id).await.unwrap();
    assert_eq!(app.await.unwrap(), body);
}

#[tokio::test]
async fn a_connector_beyond_the_cap_is_refused_and_links_that_are_up_keep_answering() {
    let hub = capped().await;
    let second = hub.hub.add_connector("ada", "Plant B").await.unwrap();
    let third = hub.hub.add_connector("ada", "Plant C").await.unwrap();

    let mut a =
        TestConnector::connect(&hub, Transport::WebSockets, hub.connector_token().await).await;
    a.register(hub.plant_id(), &["line-1"]).await.unwrap();
    let mut b = TestConnector::connect(&hub, Transport::LongPolling, token_of(&hub, &second)).await;
    b.register(&second.connector.id, &["line-1"]).await.unwrap();

    // The third connector is refused, with the limit named in {code, message} and in the
    // `error` a SignalR client reads from a negotiate answer.
    let body = refused_negotiate(&hub, &token_of(&hub, &third)).await;
    assert_eq!(body["code"], LIMIT_CODE);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("at most {CAP} connector links")),
        "{message}"
    );
    assert_eq!(body["error"], body["message"]);
    // A WebSocket that skips negotiate is refused the same way, before any upgrade.
    let skipped = hub
        .client
        .get(hub.url("/hubs/connector"))
        .bearer_auth(token_of(&hub, &third))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(skipped.status(), 503);
    // Even a connector already linked cannot open a further connection past the cap.
    refused_negotiate(&hub, &hub.connector_token().await).await;
    // The refusal needs no valid token: it says nothing about one.
    refused_negotiate(&hub, "not-a-token").await;

    // The links that are up are untouched: both still answer queries.
    answered(&hub, hub.plant_id(), &mut a, r#"{"values":["a"]}"#).await;
    let b_id = second.connector.id.clone();
    answered(&hub, &b_id, &mut b, r#"{"values":["b"]}"#).await;
    assert_eq!(hub.hub.links.links().len(), CAP);

    // One leaves: the next connector gets in at once, and the cap holds again.
    b.connection.stop().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.hub.links.links().len() == CAP {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub did not notice the link leaving"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = tokio::time::timeout(
        Duration::from_secs(10),
        TestConnector::connect(&hub, Transport::WebSockets, token_of(&hub, &third)),
    )
    .await
    .expect("a connector gets the slot a leaving link freed");
    c.register(&third.connector.id, &["line-1"]).await.unwrap();
    assert_eq!(hub.hub.links.links().len(), CAP);
    refused_negotiate(&hub, &token_of(&hub, &second)).await;
    answered(&hub, hub.plant_id(), &mut a, r#"{"values":["still a"]}"#).await;
}

#[tokio::test]
async fn a_burst_of_negotiates_cannot_slip_past_the_cap() {
    let hub = capped().await;
    let token = hub.connector_token().await;
    let statuses = join_all((0..12).map(|_| hub.negotiate(Some(&token)))).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(
        (admitted, refused),
        (CAP, 12 - CAP),
        "exactly the cap is admitted: {statuses:?}"
    );
}
