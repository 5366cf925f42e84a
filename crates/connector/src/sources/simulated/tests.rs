use chrono::{TimeZone, Utc};
use futures::StreamExt;
use serde_json::json;
use uplink_model::{EventPriority, RawRequest, Status, TimeRange};

use super::*;

fn source(settings: serde_json::Value) -> SimulatedSource {
    SimulatedSource::open(&SourceConfig {
        name: "sim".into(),
        kind: KIND.into(),
        description: String::new(),
        settings: settings.as_object().cloned().unwrap(),
    })
    .unwrap()
}

fn request(tag: &str, start_s: i64, end_s: i64) -> RawRequest {
    RawRequest {
        tag: tag.into(),
        range: TimeRange::new(
            Utc.timestamp_opt(start_s, 0).unwrap(),
            Utc.timestamp_opt(end_s, 0).unwrap(),
        )
        .unwrap(),
        max_count: None,
        boundary: Boundary::Inside,
    }
}

async fn read(source: &SimulatedSource, request: &RawRequest) -> Vec<Sample> {
    let mut stream = source.raw(request).await.unwrap();
    let mut all = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= CHUNK);
        all.extend(chunk);
    }
    all
}

#[tokio::test]
async fn shapes_have_exact_values_at_known_phases() {
    let sim = source(json!({}));
    // A quarter period (15 min of 1 h) after a whole hour.
    let t = 1_700_002_800 * 1_000_000 + 15 * 60 * 1_000_000;
    assert_eq!(sim.value_at("sim.sinusoid.1", t).unwrap().value, 60.0);
    assert_eq!(sim.value_at("sim.ramp.1", t).unwrap().value, 45.0);
    assert_eq!(sim.value_at("sim.square.1", t).unwrap().value, 60.0);
    assert_eq!(
        sim.value_at("sim.square.1", t + 30 * 60 * 1_000_000)
            .unwrap()
            .value,
        40.0
    );
    for tag in ["sim.noise.1", "sim.randomWalk.1"] {
        let v = sim.value_at(tag, t).unwrap().value;
        assert!((40.0..=60.0).contains(&v), "{tag}: {v}");
    }
}

#[tokio::test]
async fn same_seed_same_values_whatever_the_query_range() {
    let a = source(json!({"seed": 42}));
    let b = source(json!({"seed": 42}));
    let c = source(json!({"seed": 43}));
    for tag in ["sim.noise.1", "sim.randomWalk.1", "sim.sinusoid.1"] {
        let wide = read(&a, &request(tag, 1_000_000, 1_000_100)).await;
        let narrow = read(&b, &request(tag, 1_000_050, 1_000_060)).await;
        assert_eq!(&wide[50..=60], &narrow[..], "{tag}");
    }
    let noise_a = read(&a, &request("sim.noise.1", 0, 100)).await;
    let noise_c = read(&c, &request("sim.noise.1", 0, 100)).await;
    assert_ne!(noise_a, noise_c);
}

#[tokio::test]
async fn raw_reads_respect_grid_boundary_and_count() {
    let sim = source(json!({"sampleInterval": "10s"}));
    let mut req = request("sim.ramp.1", 5, 35);
    let inside = read(&sim, &req).await;
    assert_eq!(
        inside
            .iter()
            .map(|s| s.time_us / 1_000_000)
            .collect::<Vec<_>>(),
        [10, 20, 30]
    );
    req.boundary = Boundary::Outside;
    let outside = read(&sim, &req).await;
    assert_eq!(
        outside
            .iter()
            .map(|s| s.time_us / 1_000_000)
            .collect::<Vec<_>>(),
        [0, 10, 20, 30, 40]
    );
    let exact = read(
        &sim,
        &RawRequest {
            boundary: Boundary::Outside,
            ..request("sim.ramp.1", 10, 30)
        },
    )
    .await;
    assert_eq!(exact.len(), 3);
    req.max_count = Some(2);
    assert_eq!(read(&sim, &req).await.len(), 2);
}

#[tokio::test]
async fn huge_reads_are_lazy_and_chunked() {
    let sim = source(json!({"sampleInterval": "1ms"}));
    // Three hundred years of millisecond samples: only what is polled is computed.
    let mut stream = sim
        .raw(&request("sim.sinusoid.1", 0, 10_000_000_000))
        .await
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.len(), CHUNK);
    assert_eq!(first[1].time_us - first[0].time_us, 1_000);
    drop(stream);
}

#[tokio::test]
async fn unknown_tags_and_search() {
    let sim = source(json!({"tagsPerShape": 3}));
    let Err(err) = sim.raw(&request("nope", 0, 1)).await else {
        panic!("an unknown tag was read")
    };
    assert_eq!(err.to_string(), "data source 'sim' has no tag 'nope'");
    assert_eq!(err.code(), "unknown_tag");
    let page = sim.search(&TagSearch::new("sim.ramp.*")).await.unwrap();
    assert_eq!(page.tags.len(), 3);
    assert_eq!(
        sim.search(&TagSearch::new("*")).await.unwrap().tags.len(),
        15
    );
    assert!(sim.snapshot(&["nope".into()]).await.is_err());
    let now = sim.snapshot(&["sim.ramp.2".into()]).await.unwrap();
    assert_eq!(now[0].status, Status::Good);
}

#[tokio::test]
async fn processed_and_plot_come_from_the_model() {
    let sim = source(json!({"period": "1m"}));
    let request = uplink_model::ProcessedRequest {
        tag: "sim.square.1".into(),
        range: request("x", 0, 120).range,
        interval: Span::from_secs(30),
        functions: vec![uplink_model::Function::Avg, uplink_model::Function::Count],
    };
    let result = sim.processed(&request).await.unwrap();
    assert_eq!(result.by, uplink_model::ComputedBy::Uplink);
    let result = result.values;
    // Square: +10 for the first half minute, −10 for the second.
    assert_eq!(
        result[0].1.iter().map(|s| s.value).collect::<Vec<_>>(),
        [60.0, 40.0, 60.0, 40.0]
    );
    assert_eq!(result[1].1[0].value, 30.0);
}

#[tokio::test]
async fn subscriptions_push_current_values() {
    let sim = source(json!({"sampleInterval": "100ms"}));
    let mut values = sim
        .subscribe(&["sim.ramp.1".into(), "sim.noise.1".into()])
        .await
        .unwrap();
    let first = values.next().await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(sim.subscribe(&["nope".into()]).await.is_err());
}

/// Subscriptions and snapshots find their tags by name once: each value must still be its own
/// tag's, in the order asked (repeats included), on the sample grid, with written values held.
#[tokio::test]
async fn each_subscribed_value_is_its_own_tags_on_the_grid() {
    let sim = source(json!({"sampleInterval": "1ms", "tagsPerShape": 40, "period": "1s"}));
    let tags: Vec<String> = [
        "sim.noise.40",
        "sim.ramp.3",
        "sim.randomWalk.17",
        "sim.noise.40",
    ]
    .into_iter()
    .chain(["sim.sinusoid.1", "sim.square.22"])
    .map(str::to_owned)
    .collect();
    sim.write("sim.ramp.3", &WriteValue::Number(-7.0))
        .await
        .unwrap();
    let check = |values: &[TagValue]| {
        assert_eq!(values.len(), tags.len());
        let t = values[0].time.timestamp_micros();
        assert_eq!(t % 1_000, 0, "on the 1 ms grid");
        for (tag, value) in tags.iter().zip(values) {
            if tag == "sim.ramp.3" {
                assert_eq!(value.value, Some(-7.0), "{tag} holds the written value");
            } else {
                assert_eq!(
                    value.time.timestamp_micros(),
                    t,
                    "{tag}: one instant per item"
                );
                let direct = sim.value_at(tag, t).unwrap();
                assert_eq!(value.value, Some(direct.value), "{tag}");
            }
        }
    };
    check(&sim.snapshot(&tags).await.unwrap());
    let mut live = sim.subscribe(&tags).await.unwrap();
    check(&live.next().await.unwrap());
    // Distinct noise tags are seeded apart, so a mixed-up position would show.
    let noise = sim
        .snapshot(&["sim.noise.39".into(), "sim.noise.40".into()])
        .await
        .unwrap();
    assert_ne!(noise[0].value, noise[1].value);
    let err = sim
        .subscribe(&["sim.ramp.3".into(), "sim.ramp.41".into()])
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "unknown_tag");
}

#[test]
fn bad_settings_are_field_errors() {
    let err = SimulatedSource::open(&SourceConfig {
        name: "sim".into(),
        kind: KIND.into(),
        description: String::new(),
        settings: json!({"sampleInterval": "fast", "tagsPerShape": 0})
            .as_object()
            .cloned()
            .unwrap(),
    })
    .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["sampleInterval", "tagsPerShape"]);
}

#[tokio::test]
async fn period_tables_give_the_very_values_computed_directly() {
    let sim = source(json!({"sampleInterval": "250ms", "period": "90s", "tagsPerShape": 3}));
    for tag in ["sim.sinusoid.2", "sim.ramp.3", "sim.square.1"] {
        let position = sim.position(tag).unwrap();
        assert!(sim.cycle(position).is_some(), "{tag} has a table");
        let values = read(&sim, &request(tag, -200, 300)).await;
        assert_eq!(values.len(), 2_001);
        for sample in values {
            let direct = sim.value_at(tag, sample.time_us).unwrap();
            assert_eq!(
                sample.value.to_bits(),
                direct.value.to_bits(),
                "{tag} at {}",
                sample.time_us
            );
        }
    }
    // A period that is no whole number of samples is computed directly.
    let odd = source(json!({"sampleInterval": "7s", "period": "1h"}));
    assert!(odd.cycle(odd.position("sim.sinusoid.1").unwrap()).is_none());
}

#[tokio::test]
async fn plot_streams_across_chunks_to_the_same_points() {
    let sim = source(json!({"period": "7h"}));
    let range = request("x", 0, 86_400).range;
    let plot = uplink_model::PlotRequest {
        tag: "sim.randomWalk.1".into(),
        range,
        intervals: 300,
    };
    let streamed = sim.plot(&plot).await.unwrap().values;
    let all = sim
        .collect_raw("sim.randomWalk.1", range, Boundary::Inside)
        .await
        .unwrap();
    assert!(all.len() > 10 * CHUNK);
    assert_eq!(
        streamed,
        uplink_model::aggregate::plot(&all, &plot.intervals())
    );
    assert!(streamed.len() <= 4 * 300);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn a_raw_read_is_every_grid_point_in_range_with_its_direct_value(
            start in -100_000i64..100_000,
            length in 0i64..5_000,
            interval_ms in 1i64..5_000,
            outside in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let sim = source(json!({"sampleInterval": format!("{interval_ms}ms"), "period": "17s"}));
            let mut req = request("sim.sinusoid.1", 0, 0);
            req.range = TimeRange::new(
                Utc.timestamp_millis_opt(start).unwrap(),
                Utc.timestamp_millis_opt(start + length).unwrap(),
            ).unwrap();
            req.boundary = if outside { Boundary::Outside } else { Boundary::Inside };
            let values = runtime.block_on(read(&sim, &req));
            let (lo, hi) = (req.range.start_us(), req.range.end_us());
            let step = interval_ms * 1_000;
            let inside = values.iter().filter(|s| s.time_us >= lo && s.time_us <= hi).count() as i64;
            prop_assert_eq!(inside, hi.div_euclid(step) - (lo + step - 1).div_euclid(step) + 1);
            prop_assert!(values.windows(2).all(|w| w[1].time_us - w[0].time_us == step));
            if !outside {
                prop_assert_eq!(inside as usize, values.len());
            }
            for sample in &values {
                let direct = sim.value_at("sim.sinusoid.1", sample.time_us).unwrap();
                prop_assert_eq!(sample.value.to_bits(), direct.value.to_bits());
            }
        }
    }
}

#[tokio::test]
async fn a_written_value_shows_in_snapshots_and_subscriptions() {
    let sim = source(json!({"sampleInterval": "100ms"}));
    let tag = "sim.ramp.1".to_owned();
    sim.write(&tag, &WriteValue::Number(123.5)).await.unwrap();
    let snapshot = sim.snapshot(std::slice::from_ref(&tag)).await.unwrap();
    assert_eq!(snapshot[0].value, Some(123.5));
    let mut live = sim.subscribe(std::slice::from_ref(&tag)).await.unwrap();
    assert_eq!(live.next().await.unwrap()[0].value, Some(123.5));
    sim.write(&tag, &WriteValue::Bool(true)).await.unwrap();
    assert_eq!(live.next().await.unwrap()[0].value, Some(1.0));
    // Other tags keep their signal; unknown tags and texts are refused by code.
    let other = sim.snapshot(&["sim.ramp.2".into()]).await;
    assert!(other.is_err(), "only one tag per shape");
    let err = sim
        .write("sim.nothing", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_tag");
    let err = sim
        .write(&tag, &WriteValue::Text("high".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "write_refused");
}

fn events_request(start_s: i64, end_s: i64, limit: u32, cursor: Option<String>) -> EventsRequest {
    EventsRequest {
        range: TimeRange::new(
            Utc.timestamp_opt(start_s, 0).unwrap(),
            Utc.timestamp_opt(end_s, 0).unwrap(),
        )
        .unwrap(),
        limit,
        cursor,
    }
}

/// A whole hour, so the default one-hour period starts there.
const HOUR: i64 = 1_700_002_800;
const FAR_FUTURE: i64 = i64::MAX / 2;

#[test]
fn a_square_tag_raises_clears_and_acknowledges_at_its_edges() {
    let sim = source(json!({}));
    let page = sim
        .events_until(&events_request(HOUR, HOUR + 3599, 100, None), FAR_FUTURE)
        .unwrap();
    let square: Vec<(i64, &str, &str, EventPriority)> = page
        .events
        .iter()
        .filter(|e| e.topic == "sim.square.1")
        .map(|e| {
            (
                e.time.timestamp() - HOUR,
                e.event_type.as_str(),
                e.properties["condition"].as_str(),
                e.priority,
            )
        })
        .collect();
    assert_eq!(
        square,
        [
            // At the hour the value jumps from the low to the high side.
            (0, "returnToNormal", "LO", EventPriority::Low),
            (0, "alarm", "HI", EventPriority::High),
            (60, "acknowledged", "HI", EventPriority::Low),
            (1800, "returnToNormal", "HI", EventPriority::Low),
            (1800, "alarm", "LO", EventPriority::Medium),
            (1860, "acknowledged", "LO", EventPriority::Low),
        ]
    );
    let raised = page
        .events
        .iter()
        .find(|e| e.topic == "sim.square.1" && e.event_type == "alarm")
        .unwrap();
    assert_eq!(raised.properties["limit"], "58");
    assert_eq!(raised.properties["value"], "60");
    assert_eq!(raised.source, "sim");
}

#[test]
fn alarms_follow_the_limit_crossings_of_the_signal() {
    let sim = source(json!({}));
    let page = sim
        .events_until(&events_request(HOUR, HOUR + 3599, 100, None), FAR_FUTURE)
        .unwrap();
    for tag in ["sim.sinusoid.1", "sim.ramp.1"] {
        let alarms: Vec<_> = page
            .events
            .iter()
            .filter(|e| e.topic == tag && e.event_type == "alarm")
            .collect();
        assert!(!alarms.is_empty(), "{tag} raises alarms");
        for alarm in alarms {
            let t = to_micros(alarm.time);
            let now = sim.value_at(tag, t).unwrap().value;
            let before = sim.value_at(tag, t - 1_000_000).unwrap().value;
            match alarm.properties["condition"].as_str() {
                "HI" => assert!(
                    now >= 58.0 && before < 58.0,
                    "{tag} at {t}: {before} → {now}"
                ),
                "LO" => assert!(
                    now <= 42.0 && before > 42.0,
                    "{tag} at {t}: {before} → {now}"
                ),
                other => panic!("unexpected condition {other}"),
            }
        }
    }
    // Noise and random-walk tags raise none.
    assert!(
        page.events
            .iter()
            .all(|e| !e.topic.contains("noise") && !e.topic.contains("randomWalk"))
    );
    // A sinusoid crosses each limit once a period: raised, acknowledged, cleared, twice.
    let sinusoid = page
        .events
        .iter()
        .filter(|e| e.topic == "sim.sinusoid.1")
        .count();
    assert_eq!(sinusoid, 6);
}

#[test]
fn pages_cover_a_range_once_each_in_order() {
    let sim = source(json!({"tagsPerShape": 3}));
    let (start, end) = (HOUR - 1_234, HOUR + 6 * 3600 + 17);
    let all = sim
        .events_until(&events_request(start, end, 10_000, None), FAR_FUTURE)
        .unwrap();
    assert!(all.next.is_none());
    assert!(all.events.len() > 50, "{}", all.events.len());
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = sim
            .events_until(&events_request(start, end, 7, cursor.clone()), FAR_FUTURE)
            .unwrap();
        assert!(page.events.len() <= 7);
        paged.extend(page.events);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, all.events, "no event twice, none missing");
    for pair in all.events.windows(2) {
        assert!(pair[0].time <= pair[1].time, "oldest first");
    }
    let mut ids: Vec<&str> = all.events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.events.len(), "ids are unique");
}

#[test]
fn events_stop_at_now_and_a_foreign_cursor_is_refused() {
    let sim = source(json!({}));
    let now = (HOUR + 1800) * 1_000_000;
    let page = sim
        .events_until(&events_request(HOUR, HOUR + 3599, 100, None), now)
        .unwrap();
    assert!(!page.events.is_empty());
    assert!(page.events.iter().all(|e| to_micros(e.time) <= now));
    let error = sim
        .events_until(
            &events_request(HOUR, HOUR + 3599, 100, Some("not-a-cursor".into())),
            now,
        )
        .unwrap_err();
    assert!(error.to_string().contains("cursor"), "{error}");
}
