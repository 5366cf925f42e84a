//! A data source's page over a real connector runtime (no hub needed): tags found by wildcard a
//! page at a time, a watch whose values the runtime pushes and which ends when stopped, and
//! local queries answered as tables — each through `dispatch`, as the UI sends them — plus the
//! loopback bridge's `/tag-values` event stream.

use std::time::Duration;

use serde_json::{Value, json};
use uplink_control::{Control, HostKind};

/// A control surface on a fresh data dir: the embedded default, one simulated source.
async fn control() -> (Control, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let control = Control::start(HostKind::Browser, dir.path().to_owned());
    // The runtime opens its sources in the background; the first command waits for it.
    control.dispatch("status", json!({})).await.unwrap();
    (control, dir)
}

async fn call(control: &Control, command: &str, args: Value) -> Value {
    control
        .dispatch(command, args)
        .await
        .unwrap_or_else(|e| panic!("{command} failed: {e:?}"))
}

/// Starts a watch of one ramp of the simulated source; its id.
async fn watch_ramp(control: &Control) -> String {
    let lease = call(
        control,
        "watch_tags",
        json!({"source": "simulated", "tags": ["sim.ramp.1"]}),
    )
    .await;
    lease["watchId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_found_by_wildcard_a_page_at_a_time() {
    let (control, _dir) = control().await;
    let ramps = call(
        &control,
        "search_tags",
        json!({"source": "simulated", "pattern": "SIM.r?mp.*", "limit": 10}),
    )
    .await;
    let names = |page: &Value| -> Vec<String> {
        page["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(!names(&ramps).is_empty(), "{ramps}");
    assert!(
        names(&ramps).iter().all(|n| n.starts_with("sim.ramp.")),
        "{ramps}"
    );
    assert_eq!(ramps["tags"][0]["description"], "Simulated ramp signal");
    assert_eq!(ramps["tags"][0]["dataType"], "float");

    let page = call(
        &control,
        "search_tags",
        json!({"source": "simulated", "pattern": "sim.*", "limit": 2}),
    )
    .await;
    assert_eq!(names(&page).len(), 2, "{page}");
    let next = page["nextOffset"]
        .as_u64()
        .expect("more tags than one page");
    let second = call(
        &control,
        "search_tags",
        json!({"source": "simulated", "pattern": "sim.*", "offset": next, "limit": 2}),
    )
    .await;
    assert!(
        names(&second).iter().all(|n| !names(&page).contains(n)),
        "pages overlap: {page} {second}"
    );

    let unknown = control
        .dispatch(
            "search_tags",
            json!({"source": "nope", "pattern": "*", "limit": 5}),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.code, "unknown_source");
    control.shutdown().await;
}

/// A watch stopped while its values flow stays gone: a value being published on another
/// thread at the moment of the stop does not put the watch back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_stopped_while_values_flow_stays_stopped() {
    let (control, _dir) = control().await;
    for round in 0..40 {
        let mut values = control.watched_values();
        let id = watch_ramp(&control).await;
        tokio::time::timeout(
            Duration::from_secs(30),
            values.wait_for(|all| all.contains_key(&id)),
        )
        .await
        .expect("the watch's first values")
        .unwrap();
        // Stopped in the middle of the flow of values (the ramp changes every millisecond).
        tokio::time::sleep(Duration::from_millis(round % 5)).await;
        call(&control, "stop_watch", json!({"watchId": id})).await;
        assert!(!control.watched_values().borrow().contains_key(&id));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !control.watched_values().borrow().contains_key(&id),
            "round {round}: the stopped watch's values came back"
        );
    }
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_pushes_changing_values_until_it_is_stopped() {
    let (control, _dir) = control().await;
    let mut values = control.watched_values();
    let lease = call(
        &control,
        "watch_tags",
        json!({"source": "simulated", "tags": ["sim.ramp.1", "sim.sinusoid.1"]}),
    )
    .await;
    let id = lease["watchId"].as_str().unwrap().to_owned();
    assert!(lease["leaseSeconds"].as_u64().unwrap() > 0);

    // Two different values of the ramp arrive, pushed by the runtime.
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < 2 {
            values.changed().await.unwrap();
            let now = values.borrow_and_update().get(&id).cloned();
            if let Some(watched) = now {
                assert_eq!(watched.source, "simulated");
                let ramp = watched
                    .values
                    .iter()
                    .find(|v| v.tag == "sim.ramp.1")
                    .expect("the ramp's value");
                assert_eq!(ramp.quality, "good");
                assert!(ramp.value.is_number(), "{ramp:?}");
                if seen.last() != Some(&ramp.time) {
                    seen.push(ramp.time.clone());
                }
            }
        }
    })
    .await
    .expect("two values of the ramp within the wait");

    // Renewing with other tags keeps the id; stopping ends it and its values go.
    let renewed = call(
        &control,
        "watch_tags",
        json!({"source": "simulated", "tags": ["sim.ramp.2"], "watchId": id}),
    )
    .await;
    assert_eq!(renewed["watchId"], id.as_str());
    call(&control, "stop_watch", json!({"watchId": id})).await;
    assert!(!control.watched_values().borrow().contains_key(&id));

    let too_many: Vec<String> = (0..201).map(|i| format!("sim.ramp.{i}")).collect();
    let refused = control
        .dispatch(
            "watch_tags",
            json!({"source": "simulated", "tags": too_many}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "count_out_of_range");
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_queries_answer_tables_with_the_app_api_fields() {
    let (control, _dir) = control().await;
    let plot = call(
        &control,
        "run_query",
        json!({"source": "simulated", "query": {"kind": "plot", "tag": "sim.sinusoid.1", "start": "*-1h", "intervals": 50}}),
    )
    .await;
    let rows = plot["rows"].as_array().unwrap();
    assert!(
        rows.len() > 50,
        "a plot gives up to four points per interval: {}",
        rows.len()
    );
    assert!(rows.len() <= 200);
    assert_eq!(plot["columns"], json!(["Time", "Value", "Quality"]));

    let raw = call(
        &control,
        "run_query",
        json!({"source": "simulated", "query": {"kind": "raw", "tag": "sim.ramp.1", "start": "*-10m", "maxCount": 7}}),
    )
    .await;
    assert_eq!(raw["rows"].as_array().unwrap().len(), 7);

    let processed = call(
        &control,
        "run_query",
        json!({"source": "simulated", "query": {"kind": "processed", "tag": "sim.ramp.1", "start": "*-1h", "interval": "10m", "functions": ["AVG", "max"]}}),
    )
    .await;
    assert_eq!(
        processed["columns"],
        json!(["Interval start", "AVG", "MAX"])
    );
    assert_eq!(processed["rows"].as_array().unwrap().len(), 6);

    let at = call(
        &control,
        "run_query",
        json!({"source": "simulated", "query": {"kind": "atTimes", "tag": "sim.ramp.1", "times": ["*-1h", "*-30m"]}}),
    )
    .await;
    assert_eq!(at["rows"].as_array().unwrap().len(), 2);

    let bad = control
        .dispatch(
            "run_query",
            json!({"source": "simulated", "query": {"kind": "raw", "tag": "sim.ramp.1", "start": "*-8x"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code, "bad_time_expression");
    assert!(bad.message.starts_with("start: "), "{}", bad.message);
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_streams_watched_values_to_the_token_holder_only() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    use uplink_control::http::{AccessToken, TAG_VALUES_EVENT, commands_router};

    let (control, _dir) = control().await;
    let token = AccessToken::generate();
    let router = commands_router(control.clone(), token.clone());
    let get = |bearer: Option<&str>| {
        let mut request = Request::get("/tag-values").header(header::HOST, "127.0.0.1:1");
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        request.body(Body::empty()).unwrap()
    };
    let refused = router.clone().oneshot(get(None)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let id = watch_ramp(&control).await;
    let response = router.oneshot(get(Some(token.expose()))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !(text.contains(&format!("event: {TAG_VALUES_EVENT}")) && text.contains(&id)) {
            let frame = body.frame().await.expect("the stream stays open").unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&data));
            }
        }
    })
    .await
    .expect("the watch's values on the stream");
    assert!(text.contains("\"tag\":\"sim.ramp.1\""), "{text}");
    control.shutdown().await;
}

/// A page that closes without stopping its watch (a crash, a lost connection) leaves nothing
/// running: the watch ends once its lease passes without renewal. Time is paused and advanced
/// by the test runtime, so nothing here waits or measures.
#[tokio::test(start_paused = true)]
async fn a_watch_nobody_renews_ends_with_its_lease() {
    let (control, _dir) = control().await;
    let id = watch_ramp(&control).await;
    let mut values = control.watched_values();
    values
        .wait_for(|all| all.contains_key(&id))
        .await
        .expect("the watch's first values");
    tokio::time::sleep(uplink_control::WATCH_LEASE / 2).await;
    assert!(
        control.watched_values().borrow().contains_key(&id),
        "ended before its lease"
    );
    // On the paused clock a watch that never ended would fail here, not hang.
    tokio::time::timeout(
        uplink_control::WATCH_LEASE * 2,
        values.wait_for(|all| !all.contains_key(&id)),
    )
    .await
    .expect("the watch ends with its lease")
    .expect("the control surface is alive");
    control.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_events_come_newest_first_within_the_limit() {
    let (control, _dir) = control().await;
    let recent = call(&control, "source_events", json!({"source": "simulated"})).await;
    let events = recent["events"].as_array().unwrap();
    assert!(
        !events.is_empty(),
        "the simulated source raises alarms: {recent}"
    );
    assert!(events.len() <= 200);
    let times: Vec<chrono::DateTime<chrono::Utc>> = events
        .iter()
        .map(|e| e["time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|pair| pair[0] >= pair[1]),
        "newest first: {times:?}"
    );
    let hour_ago = chrono::Utc::now() - chrono::Duration::minutes(61);
    assert!(times.iter().all(|t| *t >= hour_ago), "{times:?}");
    assert!(
        events.iter().any(|e| e["priority"] == "high"
            && e["eventType"] == "alarm"
            && e["topic"] == "sim.square.1"),
        "a high alarm of the square wave: {recent}"
    );
    assert!(
        events
            .iter()
            .all(|e| !e["message"].as_str().unwrap().is_empty())
    );

    let three = call(
        &control,
        "source_events",
        json!({"source": "simulated", "since": "*-2h", "limit": 3}),
    )
    .await;
    assert_eq!(three["events"].as_array().unwrap().len(), 3, "{three}");
    assert_eq!(three["truncated"], true);
    let newest: chrono::DateTime<chrono::Utc> = three["events"][0]["time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(newest >= times[0], "the newest event leads: {three}");

    for (args, code) in [
        (
            json!({"source": "simulated", "since": "*-8x"}),
            "bad_time_expression",
        ),
        (
            json!({"source": "simulated", "limit": 0}),
            "count_out_of_range",
        ),
        (
            json!({"source": "simulated", "since": "*+1h"}),
            "start_after_end",
        ),
        (json!({"source": "nope"}), "unknown_source"),
    ] {
        let error = control
            .dispatch("source_events", args.clone())
            .await
            .unwrap_err();
        assert_eq!(error.code, code, "{args}: {error:?}");
    }
    control.shutdown().await;
}
