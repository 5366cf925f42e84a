//! `uplink query events`: a source's alarms and events by time range, a page at a time behind
//! the cursor the app API hands out; an MQTT source's come from the event journal the
//! connector wrote, opened read-only (the file is not written to), in JSON and as a table.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use common::{free_port, run, run_ok, text};
use uplink_historian::{EventJournal, JournalOptions, events_file};
use uplink_model::{EventMessage, EventPriority};

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, second).unwrap()
}

fn event(second: u32, topic: &str, priority: EventPriority, message: &str) -> EventMessage {
    EventMessage {
        id: format!("{second}.{message}"),
        source: "broker".into(),
        time: at(second),
        topic: topic.into(),
        priority,
        category: "process".into(),
        event_type: "alarm".into(),
        message: message.into(),
        properties: BTreeMap::from([("limit".to_owned(), "58".to_owned())]),
    }
}

fn query(data: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["query", "--data-dir", data, "--source", "broker"];
    args.extend_from_slice(extra);
    run_ok(&args)
}

#[test]
fn query_lists_an_mqtt_sources_journaled_events_a_page_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_str = data.to_str().unwrap();
    // A broker nobody runs: the source is saved anyway; its events are in its journal.
    let port = free_port();
    run_ok(&[
        "sources",
        "add",
        "--data-dir",
        data_str,
        "--name",
        "broker",
        "--kind",
        "mqtt",
        "--set",
        &format!("brokerUrl=mqtt://127.0.0.1:{port}"),
        "--set",
        "subscriptions=plant/+/alarms event",
    ]);
    // Before the connector journaled anything: none, and no file made.
    let none = query(
        data_str,
        &["events", "--start", "2026-05-01T12:00:00Z", "--end", "*"],
    );
    assert!(
        text(&none.stdout).contains("(no events)"),
        "{}",
        text(&none.stdout)
    );
    let file = events_file(&data.join("historian"), "broker");
    assert!(!file.exists(), "a query makes no journal");

    // What the connector journaled (written here through the journal itself), out of order.
    let written = [
        event(
            3,
            "plant/pump/alarms",
            EventPriority::Critical,
            "pump tripped",
        ),
        event(1, "plant/boiler/alarms", EventPriority::High, "TI100 high"),
        event(2, "plant/boiler/alarms", EventPriority::Low, "TI100 normal"),
        event(
            5,
            "plant/mixer/alarms",
            EventPriority::Medium,
            "mixer stopped",
        ),
        event(
            40,
            "plant/mixer/alarms",
            EventPriority::Medium,
            "out of range",
        ),
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let journal = EventJournal::open(&file, JournalOptions::default())
            .await
            .unwrap();
        journal.append(&written).await.unwrap();
        journal.close().await;
    });
    let before = std::fs::read(&file).unwrap();

    // JSON pages of two, each the app API's page, until there is no next cursor.
    let mut cursor: Option<String> = None;
    let mut read = Vec::new();
    let mut pages = 0;
    loop {
        let mut args = vec![
            "--json",
            "events",
            "--start",
            "2026-05-01T12:00:00Z",
            "--end",
            "2026-05-01T12:00:30Z",
            "--limit",
            "2",
        ];
        if let Some(cursor) = &cursor {
            args.extend(["--cursor", cursor.as_str()]);
        }
        let out = text(&query(data_str, &args).stdout);
        let page: serde_json::Value = serde_json::from_str(&out).expect("one JSON page");
        let events: Vec<EventMessage> =
            serde_json::from_value(page["events"].clone()).expect("events as the API has them");
        assert!(events.len() <= 2, "{out}");
        read.extend(events);
        pages += 1;
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the pages never end");
    }
    assert_eq!(pages, 2);
    let mut expected = written[..4].to_vec();
    expected.sort_by_key(|e| e.time);
    assert_eq!(
        read, expected,
        "every event in the range once, oldest first, whole"
    );

    // The table, with the cursor of the next page.
    let table = text(
        &query(
            data_str,
            &[
                "events",
                "--start",
                "2026-05-01T12:00:00Z",
                "--end",
                "2026-05-01T12:01:00Z",
                "--limit",
                "3",
            ],
        )
        .stdout,
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].ends_with("MESSAGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("2026-05-01T12:00:01Z")
            && lines[1].contains("high")
            && lines[1].contains("plant/boiler/alarms")
            && lines[1].ends_with("TI100 high"),
        "{table}"
    );
    assert!(
        lines[3].contains("critical") && lines[3].ends_with("pump tripped"),
        "{table}"
    );
    let more = lines[4]
        .strip_prefix("(more: --cursor ")
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a next cursor: {table}"));
    let rest = text(
        &query(
            data_str,
            &[
                "events",
                "--start",
                "2026-05-01T12:00:00Z",
                "--end",
                "2026-05-01T12:01:00Z",
                "--cursor",
                more,
            ],
        )
        .stdout,
    );
    let rest: Vec<&str> = rest.lines().skip(1).collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(
        rest[0].ends_with("mixer stopped") && rest[1].ends_with("out of range"),
        "{rest:?}"
    );

    // A cursor the journal did not hand out is refused with the API's words.
    let bad = run(&[
        "query",
        "--data-dir",
        data_str,
        "--source",
        "broker",
        "events",
        "--cursor",
        "nonsense",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("cursor"),
        "{}",
        text(&bad.stderr)
    );

    // The query only read: the journal is as the connector left it.
    assert_eq!(std::fs::read(&file).unwrap(), before);
}
