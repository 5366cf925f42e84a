use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use uplink_hub::relay::RelayError;
use uplink_signalr::Transport;

use crate::harness::*;

async fn registered(hub: &LinkHub, transport: Transport) -> TestConnector {
    let connector = TestConnector::connect(hub, transport, hub.connector_token().await).await;
    let registered = connector
        .register(hub.plant_id(), &["line-1", "line-2"])
        .await
        .unwrap();
    assert_eq!(registered.connector_id, hub.plant_id());
    assert_eq!(registered.sources.len(), 2);
    assert!(registered.sources.iter().all(|s| s.id.starts_with("src_")));
    connector
}

#[tokio::test]
async fn a_relayed_answer_arrives_in_order_over_each_transport() {
    let hub = LinkHub::start().await;
    for transport in Transport::ALL {
        let mut connector = registered(&hub, transport).await;
        assert!(hub.hub.relay().is_online(hub.plant_id()), "{transport}");
        let described = hub.hub.relay().describe(hub.plant_id()).unwrap();
        assert_eq!(described[1].name, "line-2");

        let relay = hub.hub.relay();
        let plant = hub.plant_id().to_owned();
        let query = snapshot(&hub.ada, "line-1");
        let app = tokio::spawn(async move { relay.relay(&plant, query).await });
        let asked = connector.queries.recv().await.unwrap();
        assert_ne!(
            asked.query_id, "set-by-the-router",
            "the router names queries"
        );
        assert_eq!(
            (asked.app_id.as_str(), asked.source.as_str()),
            (APP, "line-1")
        );
        assert_eq!(asked.user_id, hub.ada.id);
        // Bytes a JSON parser would rewrite (escapes, non-ASCII) must arrive as sent.
        let mut pieces = vec!["{\"values\":[".to_owned()];
        for i in 0..20 {
            pieces.push(format!(
                "{{\"tag\":\"FIC{i}.PV\",\"text\":\"d\\u00e9j\\u00e0 \u{e9}\\n\"}},"
            ));
        }
        // A full 64 KiB chunk of quotes doubles in JSON escaping: the posted message is far
        // over the hub's 64 KiB form limit, which must not apply to the link.
        pieces.push(format!(
            "{{\"text\":\"{}\"}}",
            "\\\"".repeat((uplink_link::MAX_CHUNK_BYTES - 16) / 2)
        ));
        pieces.push("]}".to_owned());
        connector
            .chunk(&asked.query_id, 0, &pieces[0])
            .await
            .unwrap();
        // The app reads while the connector sends: the hub holds only a few chunks.
        let reader = tokio::spawn(async move {
            let mut answer = app.await.unwrap().unwrap();
            let mut body = Vec::new();
            while let Some(chunk) = answer.next().await {
                body.extend_from_slice(&chunk.unwrap());
            }
            body
        });
        for (seq, piece) in pieces.iter().enumerate().skip(1) {
            connector
                .chunk(&asked.query_id, seq as u64, piece)
                .await
                .unwrap_or_else(|e| panic!("{transport}: {e}"));
        }
        connector.end(&asked.query_id).await.unwrap();
        let body = reader.await.unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            pieces.concat(),
            "{transport}"
        );
        connector.connection.stop().await;
    }
}

#[tokio::test]
async fn an_unread_answer_holds_the_connector_at_its_window() {
    let hub = LinkHub::start().await;
    for transport in Transport::ALL {
        let mut connector = registered(&hub, transport).await;
        let relay = hub.hub.relay();
        let plant = hub.plant_id().to_owned();
        let query = snapshot(&hub.ada, "line-1");
        let app = tokio::spawn(async move { relay.relay(&plant, query).await });
        let id = connector.queries.recv().await.unwrap().query_id;
        connector.chunk(&id, 0, "0,").await.unwrap();
        let mut answer = app.await.unwrap().unwrap(); // began: and now nobody reads it

        // The hub buffers two chunks beyond the one the app holds; the connector then keeps
        // its window of four unacknowledged chunks and must wait.
        for seq in 1..=2u64 {
            connector.chunk(&id, seq, &format!("{seq},")).await.unwrap();
        }
        let c = &connector;
        let mut window: Vec<_> = (3..=6u64)
            .map(|seq| {
                let id = id.clone();
                async move { c.chunk(&id, seq, &format!("{seq},")).await }.boxed()
            })
            .collect();
        for pending in &mut window {
            assert!(pending.as_mut().now_or_never().is_none());
        }
        // A round trip behind the window: had the hub acknowledged any of it, those
        // completions would have come back first.
        let heartbeat: serde_json::Value = connector
            .connection
            .invoke(uplink_link::to_hub::HEARTBEAT, ())
            .await
            .unwrap();
        assert!(heartbeat["serverTime"].is_string());
        for pending in &mut window {
            assert!(
                pending.as_mut().now_or_never().is_none(),
                "{transport}: a chunk was acknowledged while the app read nothing"
            );
        }
        // The app reads: the window drains, in order.
        let reader = tokio::spawn(async move {
            let mut body = String::new();
            while let Some(chunk) = answer.next().await {
                body.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
            }
            body
        });
        for result in futures::future::join_all(window).await {
            result.unwrap();
        }
        connector.end(&id).await.unwrap();
        assert_eq!(reader.await.unwrap(), "0,1,2,3,4,5,6,", "{transport}");
        connector.connection.stop().await;
    }
}

#[tokio::test]
async fn dropping_the_answer_cancels_the_query_on_the_connector() {
    let hub = LinkHub::start().await;
    let mut connector = registered(&hub, Transport::WebSockets).await;
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let query = snapshot(&hub.ada, "line-1");
    let app = tokio::spawn(async move { relay.relay(&plant, query).await });
    let id = connector.queries.recv().await.unwrap().query_id;
    connector.chunk(&id, 0, "[").await.unwrap();
    let answer = app.await.unwrap().unwrap();
    drop(answer); // the app disconnected
    let (cancelled, reason) = connector.cancels.recv().await.unwrap();
    assert_eq!(cancelled, id);
    assert!(reason.contains("app"), "{reason}");
    let err = connector.chunk(&id, 1, "1").await.unwrap_err();
    assert!(err.to_string().contains("no query"), "{err}");
    // The link carries on.
    let query = snapshot(&hub.ada, "line-2");
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let app = tokio::spawn(async move { relay.relay(&plant, query).await });
    let id = connector.queries.recv().await.unwrap().query_id;
    connector.end(&id).await.unwrap();
    let mut empty = app.await.unwrap().unwrap();
    assert!(empty.next().await.is_none(), "an empty answer ends at once");
}

#[tokio::test]
async fn a_silent_connector_times_out_and_is_told_to_stop() {
    let hub = LinkHub::start_with(|c| c.query_timeout = Duration::from_secs(1)).await;
    let mut connector = registered(&hub, Transport::LongPolling).await;
    let err = hub
        .hub
        .relay()
        .relay(hub.plant_id(), snapshot(&hub.ada, "line-1"))
        .await
        .unwrap_err();
    assert_eq!(err, RelayError::Timeout { seconds: 1 });
    assert_eq!(err.http_status(), 504);
    let asked = connector.queries.recv().await.unwrap();
    let (cancelled, _) = connector.cancels.recv().await.unwrap();
    assert_eq!(cancelled, asked.query_id);

    // Between chunks too: the first arrives, then nothing.
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let app = tokio::spawn(async move { relay.relay(&plant, snapshot_of_line_2()).await });
    let id = connector.queries.recv().await.unwrap().query_id;
    connector.chunk(&id, 0, "[").await.unwrap();
    let mut answer = app.await.unwrap().unwrap();
    assert_eq!(&answer.next().await.unwrap().unwrap()[..], b"[");
    assert_eq!(
        answer.next().await.unwrap().unwrap_err(),
        RelayError::Timeout { seconds: 1 }
    );
    assert_eq!(connector.cancels.recv().await.unwrap().0, id);
}

fn snapshot_of_line_2() -> uplink_link::RelayedQuery {
    let mut query = snapshot(
        &uplink_hub::store::User {
            id: "usr_x".into(),
            username: "x".into(),
            created_at: 0,
            display_name: None,
            email: None,
        },
        "line-2",
    );
    query.app_id = APP.into();
    query
}

#[tokio::test]
async fn a_connector_without_a_link_is_offline_by_name() {
    let hub = LinkHub::start().await;
    let relay = hub.hub.relay();
    assert!(!relay.is_online(hub.plant_id()));
    let err = relay
        .relay(hub.plant_id(), snapshot(&hub.ada, "line-1"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RelayError::Offline {
            connector: "Plant A".into()
        }
    );
    assert_eq!(err.http_status(), 503);
    // Connected but not registered is still offline.
    let connector =
        TestConnector::connect(&hub, Transport::WebSockets, hub.connector_token().await).await;
    assert!(!relay.is_online(hub.plant_id()));
    connector
        .register(hub.plant_id(), &["line-1"])
        .await
        .unwrap();
    assert!(relay.is_online(hub.plant_id()));
    connector.connection.stop().await;
    // Stopping closes the link; the hub notices when the connection ends.
    let noticed = tokio::time::timeout(Duration::from_secs(30), async {
        while relay.is_online(hub.plant_id()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(noticed.is_ok(), "the hub never noticed the link closed");
}

#[tokio::test]
async fn a_newer_link_replaces_the_older_one() {
    let hub = LinkHub::start().await;
    let mut older = registered(&hub, Transport::ServerSentEvents).await;
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let app = tokio::spawn(async move { relay.relay(&plant, snapshot_of_line_2()).await });
    let id = older.queries.recv().await.unwrap().query_id;
    older.chunk(&id, 0, "[").await.unwrap();
    let mut in_flight = app.await.unwrap().unwrap();
    assert_eq!(&in_flight.next().await.unwrap().unwrap()[..], b"[");

    let mut newer = registered(&hub, Transport::WebSockets).await;
    // The older link's query ends for its app, and the older connector is told to stop it.
    assert_eq!(
        in_flight.next().await.unwrap().unwrap_err(),
        RelayError::LinkLost
    );
    let (cancelled, reason) = older.cancels.recv().await.unwrap();
    assert_eq!(cancelled, id);
    assert!(reason.contains("replaced"), "{reason}");
    older.connection.stop().await;

    // New queries go to the newer link.
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let app = tokio::spawn(async move { relay.relay(&plant, snapshot_of_line_2()).await });
    let id = newer.queries.recv().await.unwrap().query_id;
    newer.chunk(&id, 0, "ok").await.unwrap();
    newer.end(&id).await.unwrap();
    let mut answer = app.await.unwrap().unwrap();
    assert_eq!(&answer.next().await.unwrap().unwrap()[..], b"ok");
    assert!(answer.next().await.is_none());
    assert_eq!(hub.hub.links.links().len(), 1);
    assert_eq!(
        hub.hub.links.links()[0].transport,
        Some(Transport::WebSockets)
    );
}

#[tokio::test]
async fn an_answer_over_the_operators_limit_is_cut_off() {
    let hub = LinkHub::start_with(|c| c.max_answer_bytes = Some(10)).await;
    let mut connector = registered(&hub, Transport::WebSockets).await;
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let app = tokio::spawn(async move { relay.relay(&plant, snapshot_of_line_2()).await });
    let id = connector.queries.recv().await.unwrap().query_id;
    connector.chunk(&id, 0, "12345678").await.unwrap();
    let err = connector.chunk(&id, 1, "9abc").await.unwrap_err();
    assert!(err.to_string().contains("limit of 10 bytes"), "{err}");
    let mut answer = app.await.unwrap().unwrap();
    assert_eq!(&answer.next().await.unwrap().unwrap()[..], b"12345678");
    let err = answer.next().await.unwrap().unwrap_err();
    assert_eq!(err, RelayError::TooLarge { limit: 10 });
    assert!(answer.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_sent_concurrently_arrives_in_seq_order() {
    let hub = LinkHub::start().await;
    for transport in Transport::ALL {
        let mut connector = registered(&hub, transport).await;
        let relay = hub.hub.relay();
        let plant = hub.plant_id().to_owned();
        let reader = tokio::spawn(async move {
            let mut answer = relay.relay(&plant, snapshot_of_line_2()).await.unwrap();
            let mut body = Vec::new();
            while let Some(chunk) = answer.next().await {
                body.extend_from_slice(&chunk.unwrap());
            }
            String::from_utf8(body).unwrap()
        });
        let id = connector.queries.recv().await.unwrap().query_id;
        // Whole windows of four in flight at once, as a connector keeps them; big enough
        // chunks that the client's concurrent sends do not keep their call order.
        let piece = |seq: u64| format!("{seq:>6}{}", "-".repeat(60 * 1024));
        let c = &connector;
        let id2 = id.clone();
        futures::stream::iter(0..200u64)
            .map(|seq| {
                let id = id2.clone();
                async move { c.chunk(&id, seq, &piece(seq)).await.unwrap() }
            })
            .buffered(uplink_link::CHUNK_WINDOW)
            .collect::<Vec<_>>()
            .await;
        connector.end(&id).await.unwrap();
        let expected: String = (0..200u64).map(piece).collect();
        assert!(
            reader.await.unwrap() == expected,
            "{transport}: out of order"
        );
        connector.connection.stop().await;
    }
}

#[tokio::test]
async fn chunks_out_of_order_wait_for_their_turn_and_rule_breakers_fail_the_answer() {
    let hub = LinkHub::start().await;
    let mut connector = registered(&hub, Transport::WebSockets).await;
    let relay = hub.hub.relay();
    let plant = hub.plant_id().to_owned();
    let reader = tokio::spawn(async move {
        let mut answer = relay.relay(&plant, snapshot_of_line_2()).await.unwrap();
        let mut body = String::new();
        while let Some(chunk) = answer.next().await {
            body.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        body
    });
    let id = connector.queries.recv().await.unwrap().query_id;
    // Invoked 1, 0, 3, 2 (the order on the wire is the client's): delivered 0, 1, 2, 3.
    let results = futures::future::join_all(
        [1u64, 0, 3, 2].map(|seq| connector.chunk(&id, seq, ["a", "b", "c", "d"][seq as usize])),
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    connector.end(&id).await.unwrap();
    assert_eq!(reader.await.unwrap(), "abcd");

    // A chunk already received, or one beyond the window, fails the answer.
    for (seqs, expected) in [(&[0u64, 0][..], "twice"), (&[0, 5][..], "window")] {
        let relay = hub.hub.relay();
        let plant = hub.plant_id().to_owned();
        let app = tokio::spawn(async move { relay.relay(&plant, snapshot_of_line_2()).await });
        let id = connector.queries.recv().await.unwrap().query_id;
        connector.chunk(&id, seqs[0], "x").await.unwrap();
        let err = connector.chunk(&id, seqs[1], "y").await.unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
        let mut answer = app.await.unwrap().unwrap();
        assert_eq!(&answer.next().await.unwrap().unwrap()[..], b"x");
        let failed = answer.next().await.unwrap().unwrap_err();
        assert_eq!(failed.code(), "source_error");
        assert!(failed.to_string().contains(expected), "{failed}");
    }
}
