//! MQTT events journaled by the edge historian, as the connector opens an MQTT source with
//! event lines: time-range event reads answer the events from before a restart; with a
//! persistent session, events published while the connection was cut or the connector was
//! down are journaled once each when it is back, messages the broker sends again included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uplink_faults::{Close, FaultProxy};
use uplink_historian::{JournalOptions, Journaled, events_file};
use uplink_model::{EventMessage, EventPriority, EventsQuery};
use uplink_source::{DataSource, HealthState};

use super::{Client, LIMIT, Mosquitto, Setup, config, next_events};

/// The MQTT source with its events journaled in `folder`, as the connector's runtime opens it.
async fn journaled(url: &str, folder: &std::path::Path) -> Arc<dyn DataSource> {
    journaled_with(url, folder, &[]).await
}

/// As [`journaled`], with more form fields.
async fn journaled_with(
    url: &str,
    folder: &std::path::Path,
    extra: &[(&str, Value)],
) -> Arc<dyn DataSource> {
    let source = uplink_source_mqtt::MqttSource::open(&config(url, "plant/+/alarms event", extra))
        .await
        .expect("the source opens");
    Journaled::wrap(
        Arc::new(source),
        events_file(folder, "broker"),
        JournalOptions::default(),
    )
    .await
    .expect("the journal opens")
}

/// Every event of the last hour, in pages of `limit`, starting after `cursor`.
async fn read_all(
    source: &dyn DataSource,
    limit: u32,
    cursor: Option<String>,
) -> Vec<EventMessage> {
    let mut query: EventsQuery =
        serde_json::from_value(json!({"start": "*-1h", "end": "*+1m", "limit": limit})).unwrap();
    query.cursor = cursor;
    let mut events = Vec::new();
    for _ in 0..100 {
        let page = source
            .events(&query.resolve(chrono::Utc::now()).unwrap())
            .await
            .unwrap();
        assert!(page.events.len() <= limit as usize);
        events.extend(page.events);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return events,
        }
    }
    panic!("the pages never end");
}

/// Waits until the journal answers `count` events.
async fn wait_journaled(source: &dyn DataSource, count: usize) -> Vec<EventMessage> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let events = read_all(source, 100, None).await;
        if events.len() >= count {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} events journaled",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn time_range_event_reads_survive_a_connector_restart() {
    let broker = Mosquitto::start(Setup::default());
    let folder = tempfile::tempdir().unwrap();
    let source = journaled(&broker.url(), folder.path()).await;
    let mut stream = source.subscribe_events().await.unwrap();
    let mut publisher = Client::connect(broker.port, &[]).await;
    for (i, priority) in ["low", "high", "critical", "medium", "high"]
        .into_iter()
        .enumerate()
    {
        publisher
            .publish(
                "plant/boiler/alarms",
                json!({"message": format!("alarm {i}"), "priority": priority}).to_string(),
                false,
            )
            .await;
    }
    let live = next_events(&mut stream, 5).await;
    let before = wait_journaled(source.as_ref(), 5).await;
    assert_eq!(before, live, "journaled as streamed");
    // An app part way through its pages when the connector stops.
    let query: EventsQuery =
        serde_json::from_value(json!({"start": "*-1h", "end": "*+1m", "limit": 2})).unwrap();
    let first_page = source
        .events(&query.resolve(chrono::Utc::now()).unwrap())
        .await
        .unwrap();
    let cursor = first_page
        .next
        .clone()
        .expect("five events in pages of two");
    drop(stream);
    drop(source);

    let source = journaled(&broker.url(), folder.path()).await;
    let after = read_all(source.as_ref(), 2, None).await;
    assert_eq!(
        after, before,
        "the same events, oldest first, after the restart"
    );
    assert_eq!(after[2].priority, EventPriority::Critical);
    assert_eq!(after[2].topic, "plant/boiler/alarms");
    let rest = read_all(source.as_ref(), 2, Some(cursor)).await;
    assert_eq!(
        rest,
        before[2..],
        "a cursor from before the restart goes on where it was"
    );

    publisher
        .publish(
            "plant/pump/alarms",
            json!({"message": "after the restart", "priority": 800}).to_string(),
            false,
        )
        .await;
    let all = wait_journaled(source.as_ref(), 6).await;
    assert_eq!(all.len(), 6);
    assert_eq!(all[5].message, "after the restart");
    let ids: std::collections::HashSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 6, "ids stay unique across the restart: {all:#?}");
}

/// A persistent session: clean session off, under a client id the broker keeps it by.
fn persistent(client_id: &str) -> [(&'static str, Value); 2] {
    [
        ("clientId", json!(client_id)),
        ("cleanSession", json!(false)),
    ]
}

/// A payload with its own time, `second` seconds into the test's minute.
fn timed(message: &str, second: u32) -> String {
    let time = chrono::DateTime::UNIX_EPOCH
        + chrono::TimeDelta::seconds(1_700_000_000)
        + chrono::TimeDelta::seconds(i64::from(second));
    json!({"message": message, "priority": "high", "time": time.to_rfc3339()}).to_string()
}

/// Every event journaled since 2020, oldest first.
async fn read_everything(source: &dyn DataSource) -> Vec<EventMessage> {
    let query: EventsQuery = serde_json::from_value(
        json!({"start": "2020-01-01T00:00:00Z", "end": "*+1h", "limit": 1000}),
    )
    .unwrap();
    let page = source
        .events(&query.resolve(chrono::Utc::now()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.next, None, "one page holds them all");
    page.events
}

/// Publishes `marker` and waits until the journal has it: every message the broker sent
/// before it on the same session has been read by then.
async fn settle(
    source: &dyn DataSource,
    publisher: &mut Client,
    marker: &str,
) -> Vec<EventMessage> {
    publisher
        .publish(
            "plant/marker/alarms",
            json!({"message": marker}).to_string(),
            false,
        )
        .await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let events = read_everything(source).await;
        if events.iter().any(|e| e.message == marker) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "the marker was never journaled; journaled: {events:#?}; health: {:?}",
            source.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages of `events`, sorted, after checking that no id repeats.
fn messages(events: &[EventMessage]) -> Vec<String> {
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "no id twice: {events:#?}");
    let mut messages: Vec<String> = events.iter().map(|e| e.message.clone()).collect();
    messages.sort();
    messages
}

#[tokio::test]
async fn events_published_while_the_connection_is_cut_are_journaled_once_each() {
    let broker = Mosquitto::start(Setup::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], broker.port).into())
        .await
        .unwrap();
    let faults = proxy.faults();
    let folder = tempfile::tempdir().unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let source = journaled_with(&url, folder.path(), &persistent("journal-cut")).await;
    let mut publisher = Client::connect(broker.port, &[]).await;
    settle(source.as_ref(), &mut publisher, "before the cut").await;

    // The site's network drops the connection and keeps it down while alarms are raised.
    faults.set_refuse(true);
    faults.drop_connections(Close::Rst);
    let deadline = Instant::now() + LIMIT;
    while source.health().state == HealthState::Ok {
        assert!(
            Instant::now() < deadline,
            "the source never noticed the cut"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for second in 2..6 {
        publisher
            .publish(
                "plant/boiler/alarms",
                timed(&format!("during the cut {second}"), second),
                false,
            )
            .await;
    }
    // Without a time of its own: stamped when it arrives, still one event.
    publisher
        .publish(
            "plant/pump/alarms",
            json!({"message": "untimed during the cut"}).to_string(),
            false,
        )
        .await;

    // Back: the broker delivers what it queued for the session.
    faults.set_refuse(false);
    let all = settle(source.as_ref(), &mut publisher, "after the cut").await;
    assert_eq!(
        messages(&all),
        [
            "after the cut",
            "before the cut",
            "during the cut 2",
            "during the cut 3",
            "during the cut 4",
            "during the cut 5",
            "untimed during the cut"
        ],
        "each once: {all:#?}"
    );
    assert!(
        faults.accepted() >= 2,
        "the source connected again through the proxy"
    );
}

#[tokio::test]
async fn events_queued_while_the_connector_was_down_are_journaled_once_at_its_restart() {
    let broker = Mosquitto::start(Setup::default());
    let folder = tempfile::tempdir().unwrap();
    let session = persistent("journal-restart");
    let mut publisher = Client::connect(broker.port, &[]).await;
    // An alarm kept by the broker as the topic's retained message, sent on every subscribe.
    publisher
        .publish("plant/boiler/alarms", timed("retained", 1), true)
        .await;
    let source = journaled_with(&broker.url(), folder.path(), &session).await;
    publisher
        .publish("plant/boiler/alarms", timed("live", 2), false)
        .await;
    let first = settle(source.as_ref(), &mut publisher, "marker 1").await;
    assert_eq!(messages(&first), ["live", "marker 1", "retained"]);

    // The connector stops; the broker queues for its session meanwhile.
    drop(source);
    for second in 3..6 {
        publisher
            .publish(
                "plant/pump/alarms",
                timed(&format!("while down {second}"), second),
                false,
            )
            .await;
    }
    publisher
        .publish(
            "plant/pump/alarms",
            json!({"message": "untimed while down"}).to_string(),
            false,
        )
        .await;
    // The same message again, as a QoS 1 redelivery brings it: the same event.
    publisher
        .publish("plant/boiler/alarms", timed("live", 2), false)
        .await;
    // A retained alarm without a time: its queued copy is an event; the copy every subscribe
    // sends is not (when it happened is unknown).
    publisher
        .publish(
            "plant/mixer/alarms",
            json!({"message": "untimed retained"}).to_string(),
            true,
        )
        .await;

    // The connector starts again on the same session and journal: the queued messages arrive
    // as soon as it connects, before the journal follows the source's events.
    let source = journaled_with(&broker.url(), folder.path(), &session).await;
    let all = settle(source.as_ref(), &mut publisher, "marker 2").await;
    assert_eq!(
        messages(&all),
        [
            "live",
            "marker 1",
            "marker 2",
            "retained",
            "untimed retained",
            "untimed while down",
            "while down 3",
            "while down 4",
            "while down 5"
        ],
        "each once: {all:#?}"
    );
    let health = source.health();
    assert!(
        health
            .issues
            .iter()
            .any(|i| i.message.contains("retained messages on event lines")
                && i.message.contains("plant/mixer/alarms")),
        "{health:?}"
    );
}

#[tokio::test]
async fn a_broker_that_keeps_sessions_on_disk_delivers_events_published_after_its_restart() {
    let mut broker = Mosquitto::start(Setup {
        persistence: true,
        ..Setup::default()
    });
    let proxy = FaultProxy::start(([127, 0, 0, 1], broker.port).into())
        .await
        .unwrap();
    let faults = proxy.faults();
    let folder = tempfile::tempdir().unwrap();
    let url = format!("mqtt://{}", proxy.addr());
    let source = journaled_with(&url, folder.path(), &persistent("journal-broker")).await;
    let mut publisher = Client::connect(broker.port, &[]).await;
    let before = settle(source.as_ref(), &mut publisher, "before the restart").await;
    assert_eq!(messages(&before), ["before the restart"]);

    // The broker restarts; the source is kept away until alarms were published after it.
    faults.set_refuse(true);
    broker.shut_down();
    let deadline = Instant::now() + LIMIT;
    while source.health().state == HealthState::Ok {
        assert!(
            Instant::now() < deadline,
            "the source never noticed the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.start_again();
    let mut publisher = Client::connect(broker.port, &[]).await;
    for second in 1..4 {
        publisher
            .publish(
                "plant/boiler/alarms",
                timed(&format!("after the restart {second}"), second),
                false,
            )
            .await;
    }
    faults.set_refuse(false);
    let all = settle(source.as_ref(), &mut publisher, "reconnected").await;
    assert_eq!(
        messages(&all),
        [
            "after the restart 1",
            "after the restart 2",
            "after the restart 3",
            "before the restart",
            "reconnected"
        ],
        "the session, read back from disk, kept its subscription and queue: {all:#?}"
    );
}
