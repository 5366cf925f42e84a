//! Live values on one connection: the hub's app hub (`/hubs/app`, SignalR) and its
//! `CreateSnapshotTagValueChannel` stream, from the real connector runtime's simulated source
//! through the real hub over TLS on loopback, with this workspace's SignalR client. An app adds
//! and removes tags on one connection; every call checks the grant on that call; a revoke, a
//! site block and the token's expiry complete the stream with an error naming why; a call
//! given the last item's id resumes after it with no gap and no repeat (or says `restarted`
//! and sends a new snapshot); 1 000
//! streams at once all get their snapshot and updates and all end on one revoke; the caps on
//! streams per sign-in and per connector (the hub's, and the connector's own) refuse one more
//! with a clear code and take a new one once a place is free.
//!
//! `cargo test -p uplink-cli --test connector_hub live_channels -- --nocapture`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::Value;
use uplink_signalr::Transport;
use uplink_signalr::client::{HubConnection, InvocationStream};
use uplink_testkit::APP;

use super::live_values::{BOUND, Stage, simulated_tags};

const PATH: &str = "/hubs/app";
const CHANNEL: &str = "CreateSnapshotTagValueChannel";

/// A connection to the app hub with `token`, over `transport`.
async fn connect(stage: &Stage, token: &str, transport: Transport) -> HubConnection {
    connect_speaking(stage, token, transport, false).await
}

/// As [`connect`], in MessagePack when `message_pack`.
async fn connect_speaking(
    stage: &Stage,
    token: &str,
    transport: Transport,
    message_pack: bool,
) -> HubConnection {
    let token = token.to_owned();
    let mut builder = HubConnection::builder(stage.kit.url(PATH))
        .tls(stage.kit.tls.clone())
        .force_transport(transport)
        .access_token(move || {
            let token = token.clone();
            async move { Ok::<_, String>(token) }
        });
    if message_pack {
        builder = builder.message_pack();
    }
    let connection = builder.start().unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(30), connection.wait_connected())
        .await
        .expect("connected within 30 s");
    assert_eq!(connected, transport);
    connection
}

async fn channel(
    connection: &HubConnection,
    source: &str,
    tags: &[&str],
    interval: Option<&str>,
) -> InvocationStream<Value> {
    connection
        .stream::<Value>(CHANNEL, (source, tags, interval))
        .await
        .unwrap()
}

/// The next item (within 30 s): `Ok(item)`, `Err(completion error)`, or `None` at the end.
async fn next(stream: &mut InvocationStream<Value>) -> Option<Result<Value, String>> {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("an item within 30 s")
        .map(|item| item.map_err(|e| e.to_string()))
}

/// The completion error a stream ends with, skipping the values before it; how long it took.
async fn end_of(stream: &mut InvocationStream<Value>) -> (String, Duration) {
    let from = Instant::now();
    loop {
        match next(stream).await {
            Some(Ok(item)) => assert_eq!(item["event"], "values", "{item}"),
            Some(Err(error)) => return (error, from.elapsed()),
            None => panic!("the stream completed without saying why"),
        }
    }
}

fn assert_code(error: &str, code: &str) {
    // The client's error names the server's message, which starts with the code.
    assert!(
        error.contains(&format!("{code}: ")),
        "expected `{code}: …`, got {error}"
    );
}

async fn adds_and_removes_tags_on_one_connection(transport: Transport) {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    let connection = connect(&stage, &token, transport).await;
    let plant = stage.kit.plant_id().to_owned();
    let mut ramp = channel(&connection, &stage.source_id, &["sim.ramp.1"], Some("0s")).await;
    let snapshot = next(&mut ramp).await.unwrap().unwrap();
    assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["values"][0]["tag"], "sim.ramp.1");
    assert!(snapshot["id"].is_string());
    let values = next(&mut ramp).await.unwrap().unwrap();
    assert_eq!(values["event"], "values", "{values}");
    // A second tag set on the same connection.
    let mut noise = channel(
        &connection,
        &stage.source_id,
        &["sim.noise.1", "sim.square.1"],
        None,
    )
    .await;
    let snapshot = next(&mut noise).await.unwrap().unwrap();
    let tags: Vec<&str> = snapshot["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["sim.noise.1", "sim.square.1"]);
    assert_eq!(stage.kit.hub.live_streams.of_connector(&plant), 2);
    // Removing the first: its stream ends on the hub, the other goes on.
    drop(ramp);
    tokio::time::timeout(Duration::from_secs(10), async {
        while stage.kit.hub.live_streams.of_connector(&plant) != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the cancelled stream left the hub");
    let values = next(&mut noise).await.unwrap().unwrap();
    assert_eq!(values["event"], "values", "{values}");
    // The owner revokes: the stream completes with `revoked: …` at once.
    let session = stage.kit.settings_session().await;
    let asked = Instant::now();
    stage
        .kit
        .revoke_on_settings_page(&session, APP, Some(&stage.source_id))
        .await;
    let (error, _) = end_of(&mut noise).await;
    let took = asked.elapsed();
    assert_code(&error, "revoked");
    eprintln!(
        "{transport:?}: revoked stream completed {:.1} ms after the revoke began",
        took.as_secs_f64() * 1000.0
    );
    assert!(took <= BOUND, "took {took:?}");
    // The app's last grant went, and its sign-in with it: the token opens no connection now.
    let refused = stage
        .kit
        .client
        .post(
            stage
                .kit
                .url(&format!("{PATH}/negotiate?negotiateVersion=1")),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    connection.stop().await;
    stage.runtime.stop().await;
}

/// The `seq` of an item id (`generation-seq-arrivals-dropped`) and its generation.
fn position(id: &Value) -> (String, u64) {
    let mut parts = id.as_str().unwrap().split('-');
    let generation = parts.next().unwrap();
    (
        generation.to_owned(),
        parts.next().unwrap().parse().unwrap(),
    )
}

/// A stream stopped with its connection (as a dropped connection stops it) and called again
/// with its last item's id resumes after it: the next item is `values`, not a snapshot, with
/// the latest value of what changed meanwhile — nothing repeated, the newest not missed, the
/// values missed meanwhile counted in its `dropped`. A
/// witness stream of the same app on the same tag,
/// open throughout, sees every update with its id. An id the hub no longer holds gets
/// `restarted` and a new snapshot. The resuming calls speak MessagePack (the fourth argument
/// bound there too), the witness JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_the_last_items_id_resumes_after_it_without_a_gap_or_a_repeat() {
    let stage = Stage::start().await;
    let token = stage.token(600).await;
    let witness_connection = connect(&stage, &token, Transport::WebSockets).await;
    let mut witness = channel(
        &witness_connection,
        &stage.source_id,
        &["sim.ramp.1"],
        Some("0s"),
    )
    .await;
    let mut seen_by_witness: HashMap<u64, Value> = HashMap::new();
    let first = next(&mut witness).await.unwrap().unwrap();
    seen_by_witness.insert(position(&first["id"]).1, first);

    let connection = connect_speaking(&stage, &token, Transport::WebSockets, true).await;
    let mut stream = channel(&connection, &stage.source_id, &["sim.ramp.1"], Some("0s")).await;
    let mut last = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(last["event"], "snapshot", "{last}");
    for _ in 0..3 {
        last = next(&mut stream).await.unwrap().unwrap();
        assert_eq!(last["event"], "values", "{last}");
    }
    // The connection goes; values go on changing (one every 100 ms) while it is away.
    drop(stream);
    connection.stop().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let connection = connect_speaking(&stage, &token, Transport::WebSockets, true).await;
    let mut resumed = connection
        .stream::<Value>(
            CHANNEL,
            (
                stage.source_id.as_str(),
                ["sim.ramp.1"],
                Some("0s"),
                last["id"].as_str(),
            ),
        )
        .await
        .unwrap();
    let first = next(&mut resumed).await.unwrap().unwrap();
    assert_eq!(first["event"], "values", "a resume, not a restart: {first}");
    let (generation, last_seq) = position(&last["id"]);
    let (resumed_generation, resumed_seq) = position(&first["id"]);
    assert_eq!(resumed_generation, generation);
    assert!(
        resumed_seq > last_seq + 1,
        "values changed meanwhile: {first}"
    );
    // Each update between the two ids brought one value of the tag, coalesced away for this
    // app into the one resumed: the first item counts them.
    assert!(
        first["dropped"].as_u64().unwrap_or(0) >= resumed_seq - last_seq - 1,
        "what was missed while away is counted: {first} after {last}"
    );
    // The witness, open throughout, got that update too.
    while !seen_by_witness.contains_key(&resumed_seq) {
        let item = next(&mut witness).await.unwrap().unwrap();
        seen_by_witness.insert(position(&item["id"]).1, item);
    }
    let witnessed = &seen_by_witness[&resumed_seq];
    assert_eq!(
        first["values"], witnessed["values"],
        "the latest value, as every stream got it"
    );
    let time = |item: &Value| {
        chrono::DateTime::parse_from_rfc3339(item["values"][0]["time"].as_str().unwrap()).unwrap()
    };
    assert!(time(&first) > time(&last), "no value repeated");
    let second = next(&mut resumed).await.unwrap().unwrap();
    assert_eq!(second["event"], "values");
    assert!(position(&second["id"]).1 > resumed_seq);
    // An id the hub does not hold: said so, then a new snapshot, on the same call.
    let mut restarted = connection
        .stream::<Value>(
            CHANNEL,
            (
                stage.source_id.as_str(),
                ["sim.ramp.1"],
                Some("0s"),
                Some(format!("g_gone-{last_seq}")),
            ),
        )
        .await
        .unwrap();
    let said = next(&mut restarted).await.unwrap().unwrap();
    assert_eq!(said["event"], "restarted", "{said}");
    assert_eq!(said["code"], "restarted", "{said}");
    let snapshot = next(&mut restarted).await.unwrap().unwrap();
    assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
    // Three arguments as before, and a fifth refused with the method's own error.
    let mut plain = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
    assert_eq!(
        next(&mut plain).await.unwrap().unwrap()["event"],
        "snapshot"
    );
    let mut five = connection
        .stream::<Value>(
            CHANNEL,
            (stage.source_id.as_str(), ["sim.ramp.1"], "0s", "g_x-1", 5),
        )
        .await
        .unwrap();
    let refused = next(&mut five).await.unwrap().unwrap_err();
    assert!(refused.contains("could not be bound"), "{refused}");
    drop((resumed, restarted, plain, five, witness));
    connection.stop().await;
    witness_connection.stop().await;
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_adds_and_removes_tags_on_one_websocket_connection() {
    adds_and_removes_tags_on_one_connection(Transport::WebSockets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_adds_and_removes_tags_on_one_long_polling_connection() {
    adds_and_removes_tags_on_one_connection(Transport::LongPolling).await;
}

/// Every call checks the grant in the store on that call: a connection opened while the app
/// held two grants keeps serving the one left after the other was revoked, and refuses the
/// revoked one; malformed calls are refused with their code and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_checked_and_refused_with_a_code() {
    let stage = Stage::start().await;
    let spare = stage.add_simulated_source("spare").await;
    let token = stage
        .kit
        .mint_app_token(
            &stage.kit.user.id,
            APP,
            &[stage.source_id.clone(), spare.clone()],
            600,
        )
        .await;
    let connection = connect(&stage, &token, Transport::WebSockets).await;
    let mut open = channel(&connection, &stage.source_id, &["sim.ramp.1"], Some("0s")).await;
    assert_eq!(next(&mut open).await.unwrap().unwrap()["event"], "snapshot");
    let (hub, user, source) = (
        stage.kit.hub.clone(),
        stage.kit.user.id.clone(),
        stage.source_id.clone(),
    );
    stage
        .kit
        .run(async move { hub.revoke(&user, APP, Some(&source)).await.unwrap() })
        .await;
    assert_code(&end_of(&mut open).await.0, "revoked");
    let mut refused = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
    assert_code(&next(&mut refused).await.unwrap().unwrap_err(), "no_grant");
    let mut kept = channel(&connection, &spare, &["sim.ramp.1"], None).await;
    assert_eq!(next(&mut kept).await.unwrap().unwrap()["event"], "snapshot");
    drop(kept);
    let token = stage.token(600).await;
    let connection = connect(&stage, &token, Transport::WebSockets).await;
    for (source, tags, interval, code) in [
        (
            "src_nothere0000000000000",
            vec!["sim.ramp.1"],
            None,
            "unknown_source",
        ),
        (stage.source_id.as_str(), vec![], None, "invalid_query"),
        (
            stage.source_id.as_str(),
            vec!["sim.ramp.1"],
            Some("2h"),
            "invalid_query",
        ),
        (
            stage.source_id.as_str(),
            vec!["no.such.tag"],
            None,
            "unknown_tag",
        ),
    ] {
        let mut refused = channel(&connection, source, &tags, interval).await;
        let error = next(&mut refused).await.unwrap().unwrap_err();
        assert_code(&error, code);
    }
    // The connection still serves.
    let mut fine = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
    assert_eq!(next(&mut fine).await.unwrap().unwrap()["event"], "snapshot");
    // No token, or a bad one: the connection is refused before any call.
    for bearer in [None, Some("v4.local.not-a-token")] {
        let mut request = stage.kit.client.post(
            stage
                .kit
                .url(&format!("{PATH}/negotiate?negotiateVersion=1")),
        );
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bearer:?}");
    }
    connection.stop().await;
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_block_and_the_tokens_expiry_complete_the_stream_with_their_code() {
    let stage = Stage::start().await;
    // Expiry is kept in whole seconds: this token lives two to three seconds.
    let short = stage.token(3).await;
    let expiring_connection = connect(&stage, &short, Transport::WebSockets).await;
    let mut expiring = channel(
        &expiring_connection,
        &stage.source_id,
        &["sim.ramp.1"],
        Some("0s"),
    )
    .await;
    assert_eq!(
        next(&mut expiring).await.unwrap().unwrap()["event"],
        "snapshot"
    );
    let (error, _) = end_of(&mut expiring).await;
    assert_code(&error, "expired");
    expiring_connection.stop().await;
    let token = stage.token(600).await;
    let connection = connect(&stage, &token, Transport::WebSockets).await;
    let mut blocked = channel(&connection, &stage.source_id, &["sim.ramp.1"], Some("0s")).await;
    assert_eq!(
        next(&mut blocked).await.unwrap().unwrap()["event"],
        "snapshot"
    );
    let asked = Instant::now();
    let mut policy = stage.runtime.policy().unwrap();
    policy.block_app(APP);
    stage.runtime.set_policy(&policy).unwrap();
    let (error, _) = end_of(&mut blocked).await;
    assert_code(&error, "blocked");
    assert!(asked.elapsed() <= BOUND, "took {:?}", asked.elapsed());
    connection.stop().await;
    stage.runtime.stop().await;
}

/// 1 000 streams at once, each on a tag of its own (1 000 subscriptions on the connector and
/// the source), over ten sign-ins' connections: each gets its snapshot and an update, and one
/// revoke ends every one of them with `revoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_get_their_values_and_all_end_on_one_revoke() {
    const PER_SHAPE: usize = 200;
    const SIGN_INS: usize = 10;
    let stage = Stage::start_with(&[("tagsPerShape", PER_SHAPE.into())], |_| {}, |_| {}).await;
    let tags = simulated_tags(PER_SHAPE);
    assert_eq!(tags.len(), 1_000);
    let subscribed_before = stage.source_subscribes();
    let mut connections = Vec::new();
    for _ in 0..SIGN_INS {
        let token = stage.token(600).await;
        connections.push(connect(&stage, &token, Transport::WebSockets).await);
    }
    let mut streams = Vec::new();
    for (n, tag) in tags.iter().enumerate() {
        let connection = &connections[n % SIGN_INS];
        streams.push(channel(connection, &stage.source_id, &[tag.as_str()], Some("0s")).await);
    }
    let started = Instant::now();
    let read = futures::future::join_all(streams.iter_mut().zip(&tags).map(
        |(stream, tag)| async move {
            let snapshot = next(stream).await.unwrap().unwrap();
            assert_eq!(snapshot["event"], "snapshot", "{tag}: {snapshot}");
            assert_eq!(snapshot["values"][0]["tag"], tag.as_str());
            let values = next(stream).await.unwrap().unwrap();
            assert_eq!(values["event"], "values", "{tag}: {values}");
        },
    ))
    .await;
    assert_eq!(read.len(), 1_000);
    eprintln!(
        "1 000 streams: every snapshot and a first update within {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        stage
            .kit
            .hub
            .live_streams
            .of_connector(stage.kit.plant_id()),
        1_000
    );
    assert_eq!(stage.kit.hub.links.live_subscriptions().0, 1_000);
    assert_eq!(stage.source_subscribes() - subscribed_before, 1_000);
    // One revoke of the app on the source ends them all.
    let session = stage.kit.settings_session().await;
    let asked = Instant::now();
    stage
        .kit
        .revoke_on_settings_page(&session, APP, Some(&stage.source_id))
        .await;
    let ended = futures::future::join_all(streams.iter_mut().map(|stream| async move {
        let (error, _) = end_of(stream).await;
        assert_code(&error, "revoked");
    }))
    .await;
    assert_eq!(ended.len(), 1_000);
    eprintln!(
        "1 000 streams: all ended {:.1} ms after the revoke began",
        asked.elapsed().as_secs_f64() * 1000.0
    );
    tokio::time::timeout(Duration::from_secs(30), async {
        while stage
            .kit
            .hub
            .live_streams
            .of_connector(stage.kit.plant_id())
            > 0
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every stream left the hub");
    for connection in connections {
        connection.stop().await;
    }
    stage.runtime.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_refuse_one_stream_more_with_a_code_and_take_one_once_a_place_is_free() {
    let stage = Stage::start_with(
        &[],
        |hub| {
            hub.max_live_streams_per_sign_in = 2;
            hub.max_live_streams_per_connector = 3;
        },
        |_| {},
    )
    .await;
    let query = "tags=sim.ramp.1&interval=0s";
    // Per sign-in: the event stream route and the app hub count together.
    let first = stage.token(600).await;
    let mut open = stage.events(&first, query, None).await;
    assert_eq!(open.next().await.unwrap().name, "snapshot");
    let connection = connect(&stage, &first, Transport::WebSockets).await;
    let mut second = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
    assert_eq!(
        next(&mut second).await.unwrap().unwrap()["event"],
        "snapshot"
    );
    let refused = stage.subscribe(&first, query, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "too_many_subscriptions");
    assert!(
        body["message"].as_str().unwrap().contains("sign-in"),
        "{body}"
    );
    let mut third = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
    assert_code(
        &next(&mut third).await.unwrap().unwrap_err(),
        "too_many_subscriptions",
    );
    // A freed place is taken again.
    drop(second);
    let mut again = None;
    for _ in 0..100 {
        let mut retry = channel(&connection, &stage.source_id, &["sim.ramp.1"], None).await;
        match next(&mut retry).await.unwrap() {
            Ok(item) => {
                assert_eq!(item["event"], "snapshot");
                again = Some(retry);
                break;
            }
            Err(error) => assert_code(&error, "too_many_subscriptions"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the cancelled stream's place was freed");
    // Per connector: another sign-in's third stream on the connector is refused too.
    let other = stage.token(600).await;
    let mut other_stream = stage.events(&other, query, None).await;
    assert_eq!(other_stream.next().await.unwrap().name, "snapshot");
    let refused = stage.subscribe(&other, query, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("connector"),
        "{body}"
    );
    drop(open);
    drop(other_stream);
    drop(again);
    connection.stop().await;
    stage.runtime.stop().await;
}

/// The connector's own bound on subscriptions: past it, a new tag set is refused `busy` (503)
/// and the subscriptions it serves go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_refuses_a_subscription_past_its_bound_as_busy() {
    let stage = Stage::start_with(&[], |_| {}, |connector| connector.max_subscriptions = 2).await;
    let token = stage.token(600).await;
    let mut a = stage
        .events(&token, "tags=sim.ramp.1&interval=0s", None)
        .await;
    let mut b = stage
        .events(&token, "tags=sim.noise.1&interval=0s", None)
        .await;
    assert_eq!(a.next().await.unwrap().name, "snapshot");
    assert_eq!(b.next().await.unwrap().name, "snapshot");
    let refused = stage
        .subscribe(&token, "tags=sim.square.1&interval=0s", None)
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "busy", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 live-value subscriptions"),
        "{body}"
    );
    // A stream on a tag set already served shares its subscription and is not refused.
    let mut shared = stage
        .events(&token, "tags=sim.ramp.1&interval=0s", None)
        .await;
    assert_eq!(shared.next().await.unwrap().name, "snapshot");
    assert_eq!(a.next().await.unwrap().name, "values");
    stage.runtime.stop().await;
}
