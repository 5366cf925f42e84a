//! The MQTT source against a real broker: mosquitto started by each test on loopback ports of
//! its own, with publishers and a command-topic listener written here on rumqttc, and Sparkplug
//! B payloads built with the crate's own prost messages.

mod journal;
mod mosquitto;
mod recording;

use std::time::{Duration, Instant};

use futures::StreamExt;
use mosquitto::{Mosquitto, Setup};
use prost::Message;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, watch};
use uplink_model::{DataType, Status, TagSearch, TagValue};
use uplink_source::{DataSource, HealthState, SourceConfig, SourceError, WriteValue};
use uplink_source_mqtt::sparkplug::{
    self, Metric, MetricValue, Payload, PropertySet, PropertyValue, PropertyValueKind,
};
use uplink_source_mqtt::{Connection, MqttSource};

/// How long any wait for the broker or the source may take on a loaded machine.
const LIMIT: Duration = Duration::from_secs(30);

fn config(url: &str, subscriptions: &str, extra: &[(&str, Value)]) -> SourceConfig {
    let mut settings = Map::new();
    settings.insert("brokerUrl".into(), json!(url));
    settings.insert("subscriptions".into(), json!(subscriptions));
    for (key, value) in extra {
        settings.insert((*key).into(), value.clone());
    }
    SourceConfig {
        name: "broker".into(),
        kind: "mqtt".into(),
        description: "test broker".into(),
        settings,
    }
}

async fn open(url: &str, subscriptions: &str, extra: &[(&str, Value)]) -> MqttSource {
    MqttSource::open(&config(url, subscriptions, extra))
        .await
        .expect("the source opens")
}

/// Waits until `check` passes on the tag's snapshot value, or fails the test saying what it saw.
async fn wait_value(source: &MqttSource, tag: &str, check: impl Fn(&TagValue) -> bool) -> TagValue {
    let deadline = Instant::now() + LIMIT;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(values) = source.snapshot(&[tag.to_owned()]).await {
            if check(&values[0]) {
                return values[0].clone();
            }
            last = Some(values[0].clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{tag} never had the value looked for; last seen: {last:?}; health: {:?}",
        source.health()
    );
}

fn number(value: f64) -> impl Fn(&TagValue) -> bool {
    move |v| v.value == Some(value) && v.status == Status::Good
}

/// A test client: publishes, and forwards what it receives on its subscriptions.
struct Client {
    client: AsyncClient,
    acks: watch::Receiver<u64>,
    received: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    sent: u64,
}

impl Client {
    async fn connect(port: u16, subscribe: &[&str]) -> Self {
        Self::connect_as(port, subscribe, None).await
    }

    async fn connect_as(port: u16, subscribe: &[&str], user: Option<(&str, &str)>) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((name, password)) = user {
            options.set_credentials(name, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let (ack_tx, acks) = watch::channel(0u64);
        let (sub_tx, mut subscribed) = watch::channel(false);
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => ack_tx.send_modify(|n| *n += 1),
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = sub_tx.send(true);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for filter in subscribe {
            client.subscribe(*filter, QoS::AtLeastOnce).await.unwrap();
        }
        if !subscribe.is_empty() {
            tokio::time::timeout(LIMIT, subscribed.wait_for(|&s| s))
                .await
                .expect("the test client subscribed")
                .unwrap();
        }
        Self {
            client,
            acks,
            received,
            sent: 0,
        }
    }

    /// Publishes at QoS 1 and waits for the broker's acknowledgement.
    async fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .await
            .unwrap();
        self.sent += 1;
        let sent = self.sent;
        tokio::time::timeout(LIMIT, self.acks.wait_for(|&n| n >= sent))
            .await
            .expect("the broker acknowledged the publish")
            .unwrap();
    }

    /// Publishes every payload to one topic back to back at QoS 1 (each queued before the
    /// last is acknowledged: a burst), then waits for all the acknowledgements.
    async fn burst(&mut self, topic: &str, payloads: impl IntoIterator<Item = String>) {
        for payload in payloads {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
                .await
                .unwrap();
            self.sent += 1;
        }
        let sent = self.sent;
        tokio::time::timeout(LIMIT, self.acks.wait_for(|&n| n >= sent))
            .await
            .expect("the broker acknowledged the burst")
            .unwrap();
    }

    async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(LIMIT, self.received.recv())
            .await
            .expect("a message arrived")
            .expect("the test client runs")
    }
}

#[tokio::test]
async fn plain_and_json_topics_are_read_searched_and_pushed() {
    let broker = Mosquitto::start(Setup::default());
    let source = open(
        &broker.url(),
        "plant/+/temp plain name={2}.temp\n\
         plant/+/state json value=$.v time=$.ts quality=$.q name={2}.state\n\
         plant/+/label plain name={2}.label",
        &[],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());
    assert_eq!(source.health().state, HealthState::Ok);
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher.publish("plant/boiler/temp", "71.5", false).await;
    publisher
        .publish(
            "plant/boiler/state",
            r#"{"v": 3, "ts": 1700000000123, "q": "uncertain"}"#,
            false,
        )
        .await;
    publisher
        .publish("plant/boiler/label", "  Running ", false)
        .await;
    publisher.publish("plant/pump/temp", "true", false).await;

    wait_value(&source, "boiler.temp", number(71.5)).await;
    let state = wait_value(&source, "boiler.state", |v| v.value == Some(3.0)).await;
    assert_eq!(state.status, Status::Uncertain);
    assert_eq!(state.time.timestamp_millis(), 1_700_000_000_123);
    let label = wait_value(&source, "boiler.label", |v| v.text.is_some()).await;
    assert_eq!(label.text.as_deref(), Some("Running"));
    wait_value(&source, "pump.temp", number(1.0)).await;

    let page = source.search(&TagSearch::new("*.TEMP")).await.unwrap();
    let names: Vec<_> = page.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["boiler.temp", "pump.temp"]);
    assert_eq!(page.tags[0].properties["topic"], "plant/boiler/temp");
    let label_tag = source
        .search(&TagSearch::new("boiler.label"))
        .await
        .unwrap();
    assert_eq!(label_tag.tags[0].data_type, DataType::Text);

    // Live values: the current value first, then each change of a subscribed tag.
    let mut stream = source
        .subscribe(&["boiler.temp".into(), "boiler.state".into()])
        .await
        .unwrap();
    let first = tokio::time::timeout(LIMIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first[0].value, Some(71.5));
    publisher.publish("plant/boiler/temp", "72.25", false).await;
    let next = tokio::time::timeout(LIMIT, stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next[0].value, Some(72.25));
    assert_eq!(next[1].value, Some(3.0));

    // A payload the rule cannot read is counted in health, not taken as a value.
    publisher
        .publish("plant/boiler/state", "not json", false)
        .await;
    publisher
        .publish("plant/boiler/state", r#"{"other": 1}"#, false)
        .await;
    let deadline = Instant::now() + LIMIT;
    while source.health().state == HealthState::Ok {
        assert!(
            Instant::now() < deadline,
            "bad payloads never showed in health"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = source.health();
    assert_eq!(health.state, HealthState::Degraded);
    assert!(
        health.issues[0]
            .message
            .contains("messages could not be read"),
        "{health:?}"
    );
    assert_eq!(
        source.snapshot(&["boiler.state".into()]).await.unwrap()[0].value,
        Some(3.0)
    );

    let err = source.snapshot(&["nowhere".into()]).await.unwrap_err();
    assert!(matches!(err, SourceError::UnknownTag { .. }), "{err}");
    let err = source
        .raw(&uplink_model::RawRequest {
            tag: "boiler.temp".into(),
            range: uplink_model::TimeRange::new(
                chrono::Utc::now() - chrono::Duration::hours(1),
                chrono::Utc::now(),
            )
            .unwrap(),
            max_count: None,
            boundary: uplink_model::Boundary::Inside,
        })
        .await
        .err()
        .expect("raw reads are not served yet");
    assert_eq!(err.code(), "unsupported");
    assert!(err.to_string().contains("edge historian"), "{err}");
}

#[tokio::test]
async fn retained_values_seed_the_snapshot() {
    let broker = Mosquitto::start(Setup::default());
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher.publish("site/tank1/level", "12.5", true).await;
    publisher
        .publish("site/tank2/level", r#"{"data": [{"value": 7}]}"#, true)
        .await;
    let source = open(
        &broker.url(),
        "site/tank1/level plain name=tank1\n\
         site/tank2/level json value=$.data[0].value name=tank2\n\
         site/tank3/level plain name=tank3",
        &[],
    )
    .await;
    wait_value(&source, "tank1", number(12.5)).await;
    wait_value(&source, "tank2", number(7.0)).await;
    // A line without wildcards names its tag before any message: known, but no value yet.
    let tank3 = source.snapshot(&["tank3".into()]).await.unwrap();
    assert_eq!(tank3[0].status, Status::Bad);
    assert_eq!(tank3[0].value, None);
}

#[tokio::test]
async fn user_name_and_password_are_used_and_a_refusal_is_named() {
    let broker = Mosquitto::start(Setup {
        users: vec![("plant", "s3cret-pa55")],
        ..Setup::default()
    });
    let lines = "a/b plain";
    let source = open(
        &broker.url(),
        lines,
        &[
            ("username", json!("plant")),
            ("password", json!("s3cret-pa55")),
        ],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());

    let refused = open(
        &broker.url(),
        lines,
        &[
            ("username", json!("plant")),
            ("password", json!("wrong-pa55")),
        ],
    )
    .await;
    let health = refused.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(
        health.issues[0].message.contains("user name or password"),
        "{health:?}"
    );
    let anonymous = open(&broker.url(), lines, &[]).await;
    let health = anonymous.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(health.issues[0].message.contains("refused"), "{health:?}");
    for text in [
        format!("{health:?}"),
        format!("{:?}", refused.health()),
        format!("{refused:?}"),
    ] {
        assert!(!text.contains("pa55"), "a password leaked: {text}");
    }
}

#[tokio::test]
async fn tls_with_the_broker_ca_works_and_another_ca_is_refused() {
    let broker = Mosquitto::start(Setup {
        tls: true,
        ..Setup::default()
    });
    let lines = "secure/# plain";
    let source = open(
        &broker.tls_url(),
        lines,
        &[("caFile", json!(broker.ca_file()))],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher.publish("secure/x", "5", false).await;
    wait_value(&source, "secure/x", number(5.0)).await;

    let other = uplink_tls::LoopbackCa::generate(&["localhost"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    other.write_to_dir(dir.path()).unwrap();
    let wrong = dir.path().join("ca.pem").display().to_string();
    let refused = open(&broker.tls_url(), lines, &[("caFile", json!(wrong))]).await;
    let health = refused.health();
    assert_eq!(health.state, HealthState::Failed);
    let message = &health.issues[0].message;
    assert!(
        message.contains("TLS") && message.contains("not trusted"),
        "{health:?}"
    );

    // Plain TCP to the TLS port is not MQTT to it either: the source says it cannot connect.
    let plain = open(&format!("mqtt://127.0.0.1:{}", broker.tls_port), lines, &[]).await;
    assert_eq!(plain.health().state, HealthState::Failed);
}

#[tokio::test]
async fn a_broker_that_asks_for_a_client_certificate_gets_the_configured_one() {
    let broker = Mosquitto::start(Setup {
        tls: true,
        client_certificates: true,
        ..Setup::default()
    });
    let lines = "secure/# plain";
    let ca = ("caFile", json!(broker.ca_file()));
    let source = open(
        &broker.tls_url(),
        lines,
        &[
            ca.clone(),
            ("clientCertFile", json!(broker.file("client.pem"))),
            ("clientKeyFile", json!(broker.file("client-key.pem"))),
        ],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());
    let without = open(&broker.tls_url(), lines, std::slice::from_ref(&ca)).await;
    let health = without.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(
        health.issues[0].message.contains("TLS")
            && health.issues[0]
                .message
                .contains("asks for a client certificate"),
        "{health:?}"
    );

    // A key that is not PEM is a field error that does not quote the file.
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        junk.path(),
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = MqttSource::open(&config(
        &broker.tls_url(),
        lines,
        &[
            ca,
            ("clientCertFile", json!(broker.file("client.pem"))),
            ("clientKeyFile", json!(junk.path().display().to_string())),
        ],
    ))
    .await
    .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "clientKeyFile", "{err}");
    assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
}

#[tokio::test]
async fn a_broker_restart_is_survived_and_values_resume() {
    let mut broker = Mosquitto::start(Setup::default());
    let source = open(&broker.url(), "line/+/speed plain name={2}", &[]).await;
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher.publish("line/a/speed", "1", false).await;
    wait_value(&source, "a", number(1.0)).await;

    broker.stop();
    let deadline = Instant::now() + LIMIT;
    while source.connection() == Connection::Up {
        assert!(
            Instant::now() < deadline,
            "the source never noticed the broker went away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = source.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(health.issues[0].message.contains("broker"), "{health:?}");
    // Reconnecting to nothing: the broker is named as down, in plain words.
    let deadline = Instant::now() + LIMIT;
    loop {
        let health = source.health();
        if health.issues.iter().any(|i| {
            i.message.contains(&format!(
                "the broker at mqtt://127.0.0.1:{} is down or not listening",
                broker.port
            ))
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broker was never named as down: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    broker.restart();
    assert!(
        source.wait_connected(LIMIT).await,
        "the source did not reconnect: {:?}",
        source.health()
    );
    let mut publisher = Client::connect(broker.port, &[]).await;
    // The source subscribes again after its connect; publish until a value arrives.
    let deadline = Instant::now() + LIMIT;
    let mut n = 2.0;
    loop {
        publisher
            .publish("line/a/speed", n.to_string(), false)
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        if source.snapshot(&["a".into()]).await.unwrap()[0].value == Some(n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "values did not resume after the restart"
        );
        n += 1.0;
    }
    assert_eq!(source.health().state, HealthState::Ok);
}

fn property_units(units: &str) -> PropertySet {
    PropertySet {
        keys: vec!["engUnit".into()],
        values: vec![PropertyValue {
            r#type: Some(sparkplug::code::STRING),
            is_null: None,
            value: Some(PropertyValueKind::StringValue(units.into())),
        }],
    }
}

fn metric(name: Option<&str>, alias: u64, datatype: u32, value: MetricValue) -> Metric {
    Metric {
        name: name.map(str::to_owned),
        alias: Some(alias),
        datatype: Some(datatype),
        value: Some(value),
        ..Default::default()
    }
}

fn payload(seq: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
    Payload {
        timestamp: Some(1_700_000_000_000),
        metrics,
        seq,
        ..Default::default()
    }
    .encode_to_vec()
}

fn bd_seq(n: u64) -> Metric {
    Metric {
        name: Some("bdSeq".into()),
        datatype: Some(sparkplug::code::UINT64),
        value: Some(MetricValue::LongValue(n)),
        ..Default::default()
    }
}

#[tokio::test]
async fn sparkplug_births_data_aliases_deaths_and_sequence_gaps() {
    let broker = Mosquitto::start(Setup::default());
    let source = open(&broker.url(), "spBv1.0/# sparkplug", &[]).await;
    let mut edge = Client::connect(broker.port, &[]).await;
    let node = "spBv1.0/plant/NBIRTH/edge1";
    let mut temp = metric(
        Some("Boiler/Temp"),
        1,
        sparkplug::code::DOUBLE,
        MetricValue::DoubleValue(80.5),
    );
    temp.properties = Some(property_units("°C"));
    edge.publish(
        node,
        payload(
            Some(0),
            vec![
                bd_seq(0),
                temp,
                metric(
                    Some("Mode"),
                    2,
                    sparkplug::code::STRING,
                    MetricValue::StringValue("auto".into()),
                ),
            ],
        ),
        false,
    )
    .await;
    edge.publish(
        "spBv1.0/plant/DBIRTH/edge1/pump3",
        payload(
            Some(1),
            vec![
                metric(
                    Some("Speed"),
                    10,
                    sparkplug::code::INT16,
                    MetricValue::IntValue((-20i16) as u16 as u32),
                ),
                metric(
                    Some("Running"),
                    11,
                    sparkplug::code::BOOLEAN,
                    MetricValue::BooleanValue(true),
                ),
            ],
        ),
        false,
    )
    .await;
    let temp = wait_value(&source, "plant/edge1/Boiler/Temp", number(80.5)).await;
    assert_eq!(temp.time.timestamp_millis(), 1_700_000_000_000);
    wait_value(&source, "plant/edge1/pump3/Speed", number(-20.0)).await;
    let mode = source.snapshot(&["plant/edge1/Mode".into()]).await.unwrap();
    assert_eq!(mode[0].text.as_deref(), Some("auto"));
    let tags = source
        .search(&TagSearch::new("plant/edge1/*"))
        .await
        .unwrap()
        .tags;
    let boiler = tags
        .iter()
        .find(|t| t.name == "plant/edge1/Boiler/Temp")
        .unwrap();
    assert_eq!(
        (boiler.data_type, boiler.units.as_str()),
        (DataType::Float, "°C")
    );
    let speed = tags
        .iter()
        .find(|t| t.name == "plant/edge1/pump3/Speed")
        .unwrap();
    assert_eq!(speed.data_type, DataType::Integer);
    assert_eq!(speed.properties["sparkplugType"], "Int16");

    // Data by alias only, in sequence.
    edge.publish(
        "spBv1.0/plant/NDATA/edge1",
        payload(
            Some(2),
            vec![metric(
                None,
                1,
                sparkplug::code::DOUBLE,
                MetricValue::DoubleValue(81.0),
            )],
        ),
        false,
    )
    .await;
    edge.publish(
        "spBv1.0/plant/DDATA/edge1/pump3",
        payload(
            Some(3),
            vec![metric(
                None,
                10,
                sparkplug::code::INT16,
                MetricValue::IntValue(1500),
            )],
        ),
        false,
    )
    .await;
    wait_value(&source, "plant/edge1/Boiler/Temp", number(81.0)).await;
    wait_value(&source, "plant/edge1/pump3/Speed", number(1500.0)).await;
    assert_eq!(source.sparkplug_gaps("plant/edge1"), Some((0, 0, 0)));
    assert_eq!(
        source.health().state,
        HealthState::Ok,
        "{:?}",
        source.health()
    );

    // seq 4 is lost: a gap, noted in health; the value still counts.
    edge.publish(
        "spBv1.0/plant/DDATA/edge1/pump3",
        payload(
            Some(5),
            vec![metric(
                None,
                10,
                sparkplug::code::INT16,
                MetricValue::IntValue(1600),
            )],
        ),
        false,
    )
    .await;
    wait_value(&source, "plant/edge1/pump3/Speed", number(1600.0)).await;
    assert_eq!(source.sparkplug_gaps("plant/edge1"), Some((1, 0, 0)));
    let health = source.health();
    assert!(
        health
            .issues
            .iter()
            .any(|i| i.message.contains("plant/edge1: 1 sequence gaps")
                && i.message.contains("expected seq 4, got 5")),
        "{health:?}"
    );

    // An alias no birth defined is named in health.
    edge.publish(
        "spBv1.0/plant/NDATA/edge1",
        payload(
            Some(6),
            vec![metric(
                None,
                99,
                sparkplug::code::DOUBLE,
                MetricValue::DoubleValue(1.0),
            )],
        ),
        false,
    )
    .await;
    // The device dies: its tags go bad, the node's stay good.
    edge.publish(
        "spBv1.0/plant/DDEATH/edge1/pump3",
        payload(Some(7), vec![]),
        false,
    )
    .await;
    let dead = wait_value(&source, "plant/edge1/pump3/Speed", |v| {
        v.status == Status::Bad
    })
    .await;
    assert_eq!(
        dead.value,
        Some(1600.0),
        "the last value is kept, marked bad"
    );
    assert_eq!(
        source
            .snapshot(&["plant/edge1/pump3/Running".into()])
            .await
            .unwrap()[0]
            .status,
        Status::Bad
    );
    assert_eq!(
        source
            .snapshot(&["plant/edge1/Boiler/Temp".into()])
            .await
            .unwrap()[0]
            .status,
        Status::Good
    );
    assert!(
        source
            .health()
            .issues
            .iter()
            .any(|i| i.message.contains("alias 99")),
        "{:?}",
        source.health()
    );

    // A death certificate of an earlier session (another bdSeq) is ignored …
    edge.publish(
        "spBv1.0/plant/NDEATH/edge1",
        payload(None, vec![bd_seq(7)]),
        false,
    )
    .await;
    let deadline = Instant::now() + LIMIT;
    while source.sparkplug_gaps("plant/edge1").unwrap().2 == 0 {
        assert!(Instant::now() < deadline, "the stale death was never seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        source
            .snapshot(&["plant/edge1/Boiler/Temp".into()])
            .await
            .unwrap()[0]
            .status,
        Status::Good
    );
    // … this session's marks the node's tags bad.
    edge.publish(
        "spBv1.0/plant/NDEATH/edge1",
        payload(None, vec![bd_seq(0)]),
        false,
    )
    .await;
    wait_value(&source, "plant/edge1/Boiler/Temp", |v| {
        v.status == Status::Bad
    })
    .await;
    assert!(
        source
            .health()
            .issues
            .iter()
            .any(|i| i.message.contains("plant/edge1 is offline")),
        "{:?}",
        source.health()
    );

    // A rebirth with bdSeq 2 (1 was missed) brings the tags back and counts a bdSeq gap.
    edge.publish(
        node,
        payload(
            Some(0),
            vec![
                bd_seq(2),
                metric(
                    Some("Boiler/Temp"),
                    1,
                    sparkplug::code::DOUBLE,
                    MetricValue::DoubleValue(79.0),
                ),
            ],
        ),
        false,
    )
    .await;
    wait_value(&source, "plant/edge1/Boiler/Temp", number(79.0)).await;
    assert_eq!(source.sparkplug_gaps("plant/edge1").map(|g| g.1), Some(1));
    assert!(
        !source
            .health()
            .issues
            .iter()
            .any(|i| i.message.contains("offline"))
    );
}

#[tokio::test]
async fn writes_are_published_to_the_command_topic() {
    let broker = Mosquitto::start(Setup::default());
    let source = open(
        &broker.url(),
        "plant/+/setpoint plain name={2}.sp command={topic}/set\n\
         plant/+/mode json value=$.cmd.value name={2}.mode command=cmd/{2}/mode\n\
         plant/+/readonly plain name={2}.ro\n\
         spBv1.0/# sparkplug",
        &[],
    )
    .await;
    let mut listener = Client::connect(
        broker.port,
        &[
            "plant/+/setpoint/set",
            "cmd/#",
            "spBv1.0/+/DCMD/#",
            "spBv1.0/+/NCMD/#",
        ],
    )
    .await;
    let mut publisher = Client::connect(broker.port, &[]).await;
    publisher
        .publish("plant/boiler/setpoint", "70", false)
        .await;
    publisher
        .publish("plant/boiler/mode", r#"{"cmd": {"value": "auto"}}"#, false)
        .await;
    publisher.publish("plant/boiler/readonly", "1", false).await;
    publisher
        .publish(
            "spBv1.0/plant/NBIRTH/edge1",
            payload(
                Some(0),
                vec![
                    bd_seq(0),
                    metric(
                        Some("Limit"),
                        5,
                        sparkplug::code::UINT8,
                        MetricValue::IntValue(10),
                    ),
                ],
            ),
            false,
        )
        .await;
    publisher
        .publish(
            "spBv1.0/plant/DBIRTH/edge1/pump3",
            payload(
                Some(1),
                vec![metric(
                    Some("Speed"),
                    10,
                    sparkplug::code::FLOAT,
                    MetricValue::FloatValue(1.0),
                )],
            ),
            false,
        )
        .await;
    wait_value(&source, "boiler.sp", number(70.0)).await;
    wait_value(&source, "boiler.mode", |v| v.text.is_some()).await;
    wait_value(&source, "boiler.ro", number(1.0)).await;
    wait_value(&source, "plant/edge1/pump3/Speed", number(1.0)).await;

    source
        .write("boiler.sp", &WriteValue::Number(72.5))
        .await
        .unwrap();
    assert_eq!(
        listener.next().await,
        ("plant/boiler/setpoint/set".into(), b"72.5".to_vec())
    );
    source
        .write("boiler.mode", &WriteValue::Text("manual".into()))
        .await
        .unwrap();
    let (topic, body) = listener.next().await;
    assert_eq!(topic, "cmd/boiler/mode");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"cmd": {"value": "manual"}})
    );

    source
        .write("plant/edge1/pump3/Speed", &WriteValue::Number(1450.0))
        .await
        .unwrap();
    let (topic, body) = listener.next().await;
    assert_eq!(topic, "spBv1.0/plant/DCMD/edge1/pump3");
    let command = Payload::decode(body.as_slice()).unwrap();
    assert_eq!(command.metrics[0].name.as_deref(), Some("Speed"));
    assert_eq!(command.metrics[0].alias, Some(10));
    assert_eq!(
        command.metrics[0].value,
        Some(MetricValue::FloatValue(1450.0))
    );
    source
        .write("plant/edge1/Limit", &WriteValue::Text("200".into()))
        .await
        .unwrap();
    let (topic, body) = listener.next().await;
    assert_eq!(topic, "spBv1.0/plant/NCMD/edge1");
    assert_eq!(
        Payload::decode(body.as_slice()).unwrap().metrics[0].value,
        Some(MetricValue::IntValue(200))
    );

    // Refused before anything is published.
    let err = source
        .write("boiler.ro", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "write_refused");
    assert!(err.to_string().contains("no command topic"), "{err}");
    let err = source
        .write("plant/edge1/Limit", &WriteValue::Number(300.0))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("outside the range of a UInt8"),
        "{err}"
    );
    let err = source
        .write("nowhere", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_tag");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), listener.received.recv())
            .await
            .is_err(),
        "a refused write was published"
    );
}

#[tokio::test]
async fn bad_form_input_is_named_field_by_field() {
    let errors = |settings: Value| async move {
        let config = SourceConfig {
            name: "broker".into(),
            kind: "mqtt".into(),
            description: String::new(),
            settings: settings.as_object().unwrap().clone(),
        };
        let err = MqttSource::open(&config).await.unwrap_err();
        assert_eq!(err.code(), "invalid_settings", "{err}");
        err.field_errors()
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect::<Vec<_>>()
    };
    let found = errors(json!({
        "brokerUrl": "http://broker",
        "subscriptions": "a/b plain\na/# json\nx/#/y plain",
        "cleanSession": false,
        "password": "hunter2-secret",
        "keepAlive": "0.5s",
    }))
    .await;
    let has = |field: &str, fragment: &str| {
        assert!(
            found
                .iter()
                .any(|(f, m)| f == field && m.contains(fragment)),
            "no {field} error with '{fragment}': {found:?}"
        );
    };
    has("brokerUrl", "not mqtt:// or mqtts://");
    has("subscriptions", "line 2: the json rule needs value=PATH");
    has("subscriptions", "line 3:");
    has("clientId", "clean session is off");
    has("username", "needed with a password");
    has("keepAlive", "between 1s and 18h");
    assert!(!format!("{found:?}").contains("hunter2"));

    let found =
        errors(json!({"brokerUrl": "mqtt://h", "subscriptions": "a plain", "caFile": "/x.pem"}))
            .await;
    assert_eq!(
        found,
        [(
            "caFile".to_owned(),
            "applies to mqtts:// brokers only".to_owned()
        )]
    );
    let found = errors(
        json!({"brokerUrl": "mqtts://h", "subscriptions": "a plain", "caFile": "/no/such/ca.pem"}),
    )
    .await;
    assert_eq!(found[0].0, "caFile");
    assert!(
        found[0].1.contains("cannot read /no/such/ca.pem"),
        "{found:?}"
    );
    let found = errors(json!({"subscriptions": "a plain", "mqttVersion": "4"})).await;
    assert!(found.iter().any(|(f, _)| f == "brokerUrl"), "{found:?}");
    assert!(found.iter().any(|(f, _)| f == "mqttVersion"), "{found:?}");
}

#[tokio::test]
async fn mqtt_5_reads_retained_and_live_values_writes_and_names_a_refusal() {
    let broker = Mosquitto::start(Setup {
        users: vec![("plant", "v5-pa55")],
        ..Setup::default()
    });
    let v5 = ("mqttVersion", json!("5"));
    let user = ("username", json!("plant"));
    // The test clients speak 3.1.1 with the same user (the broker refuses anonymous clients).
    let mut publisher =
        Client::connect_as(broker.port, &["cmd/#"], Some(("plant", "v5-pa55"))).await;
    publisher.publish("v5/seed", "4.5", true).await;
    let lines = "v5/+ plain name={2} command=cmd/{2}";
    let source = open(
        &broker.url(),
        lines,
        &[
            v5.clone(),
            user.clone(),
            ("password", json!("v5-pa55")),
            ("clientId", json!("uplink-v5-test")),
        ],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());
    // mosquitto logs each client's protocol: p5 is MQTT 5 (p2 is 3.1.1).
    let log = broker.log();
    assert!(log.contains("as uplink-v5-test (p5"), "{log}");
    wait_value(&source, "seed", number(4.5)).await;
    publisher.publish("v5/live", "6", false).await;
    wait_value(&source, "live", number(6.0)).await;
    source
        .write("live", &WriteValue::Number(7.0))
        .await
        .unwrap();
    assert_eq!(publisher.next().await, ("cmd/live".into(), b"7".to_vec()));

    let refused = open(
        &broker.url(),
        lines,
        &[v5, user, ("password", json!("wrong"))],
    )
    .await;
    let health = refused.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(
        health.issues[0].message.contains("user name or password"),
        "{health:?}"
    );
}

#[tokio::test]
async fn an_edge_node_whose_birth_was_missed_is_asked_for_a_rebirth_when_allowed() {
    let broker = Mosquitto::start(Setup::default());
    let mut edge = Client::connect(broker.port, &["spBv1.0/+/NCMD/#"]).await;
    let quiet = open(&broker.url(), "spBv1.0/# sparkplug", &[]).await;
    let asking = open(
        &broker.url(),
        "spBv1.0/# sparkplug",
        &[("sparkplugRebirth", json!(true))],
    )
    .await;

    // The node was born before either source connected: its data names an alias no one knows.
    let data = |seq| {
        payload(
            Some(seq),
            vec![metric(
                None,
                1,
                sparkplug::code::DOUBLE,
                MetricValue::DoubleValue(5.0),
            )],
        )
    };
    edge.publish("spBv1.0/plant/NDATA/edge9", data(7), false)
        .await;
    let (topic, body) = edge.next().await;
    assert_eq!(topic, "spBv1.0/plant/NCMD/edge9");
    let request = Payload::decode(body.as_slice()).unwrap();
    assert_eq!(
        request.metrics[0].name.as_deref(),
        Some("Node Control/Rebirth")
    );
    assert_eq!(
        request.metrics[0].value,
        Some(MetricValue::BooleanValue(true))
    );
    // One request per node per 10 s, however much data arrives; the quiet source asks nothing.
    edge.publish("spBv1.0/plant/NDATA/edge9", data(8), false)
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), edge.received.recv())
            .await
            .is_err(),
        "a second rebirth request, or one from the source that may not ask"
    );

    // The node answers with its birth: both sources now know its tags.
    let birth = payload(
        Some(0),
        vec![
            bd_seq(3),
            metric(
                Some("Flow"),
                1,
                sparkplug::code::DOUBLE,
                MetricValue::DoubleValue(6.0),
            ),
        ],
    );
    edge.publish("spBv1.0/plant/NBIRTH/edge9", birth, false)
        .await;
    wait_value(&asking, "plant/edge9/Flow", number(6.0)).await;
    wait_value(&quiet, "plant/edge9/Flow", number(6.0)).await;
    edge.publish("spBv1.0/plant/NDATA/edge9", data(1), false)
        .await;
    wait_value(&asking, "plant/edge9/Flow", number(5.0)).await;
}

/// Events from the stream until `count` arrived, or fails saying what came.
async fn next_events(
    stream: &mut uplink_source::EventStream,
    count: usize,
) -> Vec<uplink_model::EventMessage> {
    let mut events = Vec::new();
    while events.len() < count {
        match tokio::time::timeout(LIMIT, stream.next()).await {
            Ok(Some(item)) => {
                assert!(!item.is_empty(), "an events item is never empty");
                events.extend(item);
            }
            other => panic!("the events stream stopped after {events:?}: {other:?}"),
        }
    }
    events
}

#[tokio::test]
async fn alarm_messages_become_events_streamed_and_paged() {
    use uplink_model::{EventPriority, EventsQuery};

    let broker = Mosquitto::start(Setup::default());
    let source = open(
        &broker.url(),
        "plant/+/alarms event\n\
         plant/+/temp plain name={2}.temp",
        &[],
    )
    .await;
    assert_eq!(source.connection(), Connection::Up, "{:?}", source.health());
    assert!(source.descriptor().capabilities.events);
    let mut stream = source.subscribe_events().await.unwrap();
    let mut publisher = Client::connect(broker.port, &[]).await;
    let a_minute_ago = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let alarms = [
        json!({"message": "TI100 high", "priority": "high", "category": "process",
               "type": "alarm", "limit": 58, "tag": "TI100"}),
        json!({"message": "pump tripped", "priority": 900}),
        json!({"message": "earlier", "priority": 100,
               "time": a_minute_ago.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}),
    ];
    publisher
        .publish("plant/boiler/alarms", alarms[0].to_string(), false)
        .await;
    publisher
        .publish("plant/pump/alarms", alarms[1].to_string(), false)
        .await;
    // Not an event: counted in health.
    publisher
        .publish("plant/pump/alarms", "{\"message\": ", false)
        .await;
    publisher
        .publish("plant/boiler/alarms", alarms[2].to_string(), false)
        .await;
    publisher.publish("plant/boiler/temp", "71.5", false).await;
    for i in 0..4 {
        publisher
            .publish(
                "plant/mixer/alarms",
                json!({"message": format!("mixer {i}"), "priority": "low"}).to_string(),
                false,
            )
            .await;
    }

    let events = next_events(&mut stream, 7).await;
    let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "TI100 high",
            "pump tripped",
            "earlier",
            "mixer 0",
            "mixer 1",
            "mixer 2",
            "mixer 3"
        ],
        "in arrival order, the malformed payload left out"
    );
    let first = &events[0];
    assert_eq!(first.source, "broker");
    assert_eq!(first.topic, "plant/boiler/alarms");
    assert_eq!(first.priority, EventPriority::High);
    assert_eq!(first.category, "process");
    assert_eq!(first.event_type, "alarm");
    assert_eq!(first.properties["limit"], "58");
    assert_eq!(first.properties["tag"], "TI100");
    assert_eq!(events[1].priority, EventPriority::Critical);
    assert_eq!(events[1].topic, "plant/pump/alarms");
    assert_eq!(
        events[2].time.timestamp_millis(),
        a_minute_ago.timestamp_millis()
    );
    wait_value(&source, "boiler.temp", number(71.5)).await;
    let health = source.health();
    assert!(
        health
            .issues
            .iter()
            .any(|i| i.message.starts_with("1 messages could not be read")
                && i.message.contains("plant/pump/alarms")),
        "{health:?}"
    );

    // Read back a page of 3 at a time: every event once, oldest first.
    let mut query: EventsQuery =
        serde_json::from_value(json!({"start": "*-1h", "end": "*+1h", "limit": 3})).unwrap();
    let mut paged = Vec::new();
    let mut pages = 0;
    loop {
        let request = query.resolve(chrono::Utc::now()).unwrap();
        let page = source.events(&request).await.unwrap();
        assert!(page.events.len() <= 3);
        pages += 1;
        paged.extend(page.events);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let ids: std::collections::BTreeSet<&str> = paged.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 7, "no event twice: {paged:?}");
    assert_eq!(paged[0].message, "earlier", "oldest first");
    assert!(paged.windows(2).all(|w| w[0].time <= w[1].time));
    let mut streamed: Vec<_> = events.iter().map(|e| e.id.as_str()).collect();
    streamed.sort_unstable();
    assert_eq!(streamed, ids.into_iter().collect::<Vec<_>>());

    query.cursor = Some("not-a-cursor".into());
    let err = source
        .events(&query.resolve(chrono::Utc::now()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_cursor", "{err}");

    // A source without event lines says so.
    let plain = open(&broker.url(), "plant/+/temp plain", &[]).await;
    assert!(!plain.descriptor().capabilities.events);
    let err = plain.subscribe_events().await.err().unwrap();
    assert_eq!(err.code(), "unsupported", "{err}");
}

#[tokio::test]
async fn a_bad_event_line_is_a_field_error_naming_it() {
    let config = config(
        "mqtt://127.0.0.1:1",
        "plant/+/temp plain\nplant/+/alarms event priority=sev",
        &[],
    );
    let err = MqttSource::open(&config).await.unwrap_err();
    assert_eq!(err.code(), "invalid_settings", "{err}");
    let errors = err.field_errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "subscriptions");
    assert!(
        errors[0].message.starts_with("line 2: ")
            && errors[0].message.contains("'sev' is not a JSON path"),
        "{errors:?}"
    );
}

/// A reader of the events stream that falls more than [`EVENT_QUEUE`] behind (an event journal
/// whose disk is slow) gets what it missed from the source's memory, in the order it arrived:
/// nothing is lost while the log still holds it.
#[tokio::test]
async fn a_slow_events_reader_catches_up_from_the_log_in_order() {
    let broker = Mosquitto::start(Setup::default());
    let source = open(&broker.url(), "alarms/# event", &[]).await;
    let mut stream = source.subscribe_events().await.unwrap();
    let mut publisher = Client::connect(broker.port, &[]).await;
    let count = uplink_source_mqtt::EVENT_QUEUE * 2 + 40;
    publisher
        .burst(
            "alarms/a",
            (0..count).map(|i| json!({ "message": i.to_string() }).to_string()),
        )
        .await;
    let deadline = Instant::now() + LIMIT;
    while source.messages() < count as u64 {
        assert!(
            Instant::now() < deadline,
            "{} messages arrived",
            source.messages()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Read only now: the broadcast held the newest EVENT_QUEUE, the log all of them.
    let events = next_events(&mut stream, count).await;
    let messages: Vec<String> = events.iter().map(|e| e.message.clone()).collect();
    let expected: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    assert_eq!(
        messages, expected,
        "every event once, in the order it arrived"
    );
    assert_eq!(source.events_lost(), 0);
    assert!(
        !source
            .health()
            .issues
            .iter()
            .any(|i| i.message.contains("events were lost")),
        "{:?}",
        source.health()
    );
    // Later events follow as before.
    publisher
        .publish("alarms/a", json!({ "message": "after" }).to_string(), false)
        .await;
    assert_eq!(next_events(&mut stream, 1).await[0].message, "after");
}

/// Publishes `value` to `topic` until `tag` shows it: a source just opened may not have its
/// subscription acknowledged yet when the first publish arrives.
async fn publish_until_seen(
    publisher: &mut Client,
    source: &MqttSource,
    topic: &str,
    tag: &str,
    value: f64,
) {
    let deadline = Instant::now() + LIMIT;
    loop {
        publisher.publish(topic, value.to_string(), false).await;
        let seen = tokio::time::timeout(
            Duration::from_secs(1),
            wait_value(source, tag, number(value)),
        )
        .await;
        if seen.is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "{tag} never showed {value}");
    }
}

/// A kept session (clean session off) resumed with a subscription line removed and another
/// added: the broker stops sending what only the removed line matched, and sends what the new
/// one does. Without the filters remembered in the sessions folder, the broker would go on
/// delivering the removed line's topic to the session for as long as it lives.
#[tokio::test]
async fn a_kept_session_resumed_with_other_lines_drops_the_removed_and_adds_the_new() {
    let broker = Mosquitto::start(Setup::default());
    let sessions = tempfile::tempdir().unwrap();
    let kept = [
        ("clientId", json!("kept-resubscribe")),
        ("cleanSession", json!(false)),
    ];
    let open_with = |lines: &'static str| {
        let config = config(&broker.url(), lines, &kept);
        let dir = sessions.path().to_owned();
        async move {
            MqttSource::open_in(&config, Some(&dir))
                .await
                .expect("the source opens")
        }
    };
    let mut publisher = Client::connect(broker.port, &[]).await;
    let source = open_with("plant/a plain name=a\nplant/b plain name=b").await;
    publish_until_seen(&mut publisher, &source, "plant/a", "a", 1.0).await;
    publish_until_seen(&mut publisher, &source, "plant/b", "b", 2.0).await;
    drop(source);

    // The owner replaces the line of plant/b with one of plant/c; the broker resumes the
    // session. plant/c's retained value is sent once its subscribe is handled, after the
    // unsubscribe sent before it.
    publisher.publish("plant/c", "3", true).await;
    let source = open_with("plant/a plain name=a\nplant/c plain name=c").await;
    wait_value(&source, "c", number(3.0)).await;
    publisher.publish("plant/b", "4", false).await;
    publisher.publish("plant/a", "5", false).await;
    wait_value(&source, "a", number(5.0)).await;
    assert_eq!(
        source.messages(),
        2,
        "only plant/c and plant/a were delivered, not plant/b"
    );
    drop(source);

    // Resumed again with the same lines: both still delivered.
    publisher.publish("plant/c", "6", true).await;
    let source = open_with("plant/a plain name=a\nplant/c plain name=c").await;
    wait_value(&source, "c", number(6.0)).await;
    publish_until_seen(&mut publisher, &source, "plant/a", "a", 7.0).await;
}
