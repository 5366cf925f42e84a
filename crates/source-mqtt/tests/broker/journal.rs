//! MQTT events journaled by the edge historian, as the connector opens an MQTT source with
//! event lines: time-range event reads answer the events from before a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use uplink_historian::{JournalOptions, Journaled, events_file};
use uplink_model::{EventMessage, EventPriority, EventsQuery};
use uplink_source::DataSource;

use super::{Client, LIMIT, Mosquitto, Setup, config, next_events};

/// The MQTT source with its events journaled in `folder`, as the connector's runtime opens it.
async fn journaled(url: &str, folder: &std::path::Path) -> Arc<dyn DataSource> {
    let source = uplink_source_mqtt::MqttSource::open(&config(url, "plant/+/alarms event", &[]))
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
