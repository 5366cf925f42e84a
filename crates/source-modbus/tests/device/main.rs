//! The Modbus source against a real device: pymodbus serving known registers and coils on
//! loopback (tests/fixtures/modbus_server.py, whose layout these tests repeat on their own).

mod server;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Map, Value, json};
use server::Device;
use uplink_model::{Status, TagSearch, TagValue};
use uplink_source::{DataSource, HealthState, SourceConfig, SourceError, WriteValue};
use uplink_source_modbus::ModbusSource;

const HEADER: &str = "name,table,address,type,order,scale,offset,units,description\n";
const ORDERS: [&str; 4] = ["ABCD", "CDAB", "BADC", "DCBA"];
/// Type, registers, value: the fixture's typed block, repeated for each order.
const TYPED: [(&str, u16, f64); 6] = [
    ("u16", 1, 51966.0),
    ("i16", 1, -12345.0),
    ("u32", 2, 3_735_928_559.0),
    ("i32", 2, -123_456_789.0),
    ("f32", 2, -1234.5),
    ("f64", 4, 12345.678901234),
];
const COILS: [bool; 16] = [
    true, false, true, true, false, false, false, true, false, true, false, true, false, true,
    false, true,
];
const DISCRETE: [bool; 4] = [false, true, true, false];

fn config(port: u16, map: &str, extra: &[(&str, Value)]) -> SourceConfig {
    let mut settings = Map::new();
    settings.insert("host".into(), json!("127.0.0.1"));
    settings.insert("port".into(), json!(port));
    settings.insert("registerMap".into(), json!(map));
    for (key, value) in extra {
        settings.insert((*key).into(), value.clone());
    }
    SourceConfig {
        name: "plc".into(),
        kind: "modbus".into(),
        description: "test device".into(),
        settings,
    }
}

async fn open(port: u16, map: &str, extra: &[(&str, Value)]) -> ModbusSource {
    ModbusSource::open(&config(port, map, extra))
        .await
        .expect("the source opens")
}

/// Rows for every type in every order, in holding and input registers; coils, discrete inputs.
fn typed_map() -> (String, Vec<(String, f64)>) {
    let mut map = String::from(HEADER);
    let mut expected = Vec::new();
    for table in ["holding register", "input register"] {
        let short = if table.starts_with('h') { "hr" } else { "ir" };
        let mut address = 0;
        for order in ORDERS {
            for (value_type, width, value) in TYPED {
                let name = format!("{short}.{order}.{value_type}");
                map.push_str(&format!(
                    "{name},{table},{address},{value_type},{order},,,,\n"
                ));
                expected.push((name, value));
                address += width;
            }
        }
    }
    for (i, on) in COILS.iter().enumerate() {
        map.push_str(&format!("coil.{i},coil,{i},bool,,,,,\n"));
        expected.push((format!("coil.{i}"), f64::from(u8::from(*on))));
    }
    for (i, on) in DISCRETE.iter().enumerate() {
        map.push_str(&format!("di.{i},discrete input,{i},bool,,,,,\n"));
        expected.push((format!("di.{i}"), f64::from(u8::from(*on))));
    }
    (map, expected)
}

fn names(expected: &[(String, f64)]) -> Vec<String> {
    expected.iter().map(|(name, _)| name.clone()).collect()
}

/// Waits (generously: the machine is loaded) until `check` holds.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_type_and_order_decodes_from_a_real_device() {
    let device = Device::start(0);
    let (map, expected) = typed_map();
    let source = open(device.port, &map, &[]).await;
    assert_eq!(
        source.health().state,
        HealthState::Ok,
        "{:?}",
        source.health()
    );
    let values = source.snapshot(&names(&expected)).await.unwrap();
    for ((name, want), got) in expected.iter().zip(&values) {
        assert_eq!(got.status, Status::Good, "{name}: {got:?}");
        assert_eq!(got.value, Some(*want), "{name}");
    }
    // Coils, discrete inputs, the input registers and the holding registers: one request each.
    assert_eq!(source.stats().requests_per_poll, 4);
}

#[tokio::test]
async fn scale_and_offset_apply_and_tags_carry_their_units() {
    let device = Device::start(0);
    let map = format!(
        "{HEADER}level,holding register,100,u16,,0.1,-50,%,Tank level\n\
         delta,holding register,101,i16,,0.5,10,bar,\n\
         running,holding register,102,bool,,,,,Pump running\n"
    );
    let source = open(device.port, &map, &[]).await;
    let values = source
        .snapshot(&["level".into(), "delta".into(), "running".into()])
        .await
        .unwrap();
    let level = values[0].value.unwrap();
    assert!((level - 73.4).abs() < 1e-9, "{level}");
    assert_eq!(values[0].units.as_deref(), Some("%"));
    assert_eq!(values[1].value, Some(-90.0));
    assert_eq!(values[2].value, Some(1.0));
    let page = source.search(&TagSearch::new("l*")).await.unwrap();
    assert_eq!(page.tags.len(), 1);
    let tag = &page.tags[0];
    assert_eq!(tag.name, "level");
    assert_eq!(tag.units, "%");
    assert_eq!(tag.description, "Tank level");
    assert_eq!(tag.properties["table"], "holding register");
    assert_eq!(tag.properties["scale"], "0.1");
    assert_eq!(
        source
            .search(&TagSearch::new("*"))
            .await
            .unwrap()
            .tags
            .len(),
        3
    );
}

#[tokio::test]
async fn neighbouring_addresses_are_coalesced_into_few_requests() {
    let device = Device::start(0);
    let mut map = String::from(HEADER);
    for n in 1000..2000 {
        map.push_str(&format!("r{n},holding register,{n},u16,,,,,\n"));
    }
    let source = open(device.port, &map, &[("pollInterval", json!("100ms"))]).await;
    // 1 000 registers in requests of at most 125.
    assert_eq!(source.stats().requests_per_poll, 8);
    let tags: Vec<String> = (1000..2000).map(|n| format!("r{n}")).collect();
    let values = source.snapshot(&tags).await.unwrap();
    for (n, value) in (1000..2000).zip(&values) {
        assert_eq!(value.value, Some(f64::from(n)), "r{n}");
    }
    source.wait_for_polls(3).await;
    let stats = source.stats();
    assert_eq!(stats.last_poll_requests, 8);
    assert!(
        stats.requests >= 3 * 8 && stats.requests % 8 == 0,
        "{stats:?}"
    );

    // A smaller per-request limit and rows 20 addresses apart with a gap bound of 10: more
    // requests, and every value still right.
    let sparse = format!(
        "{HEADER}a,holding register,1000,u16,,,,,\nb,holding register,1011,u16,,,,,\nc,holding register,1031,u16,,,,,\n"
    );
    let source = open(device.port, &sparse, &[("maxGap", json!(10))]).await;
    assert_eq!(source.stats().requests_per_poll, 2);
    let values = source
        .snapshot(&["a".into(), "b".into(), "c".into()])
        .await
        .unwrap();
    let got: Vec<Option<f64>> = values.iter().map(|v| v.value).collect();
    assert_eq!(got, [Some(1000.0), Some(1011.0), Some(1031.0)]);
    let source = open(device.port, &map, &[("maxRegisters", json!(100))]).await;
    assert_eq!(source.stats().requests_per_poll, 10);
}

#[tokio::test]
async fn a_device_that_stops_answering_turns_values_bad_and_health_says_so() {
    let device = Device::start(0);
    let map = format!("{HEADER}level,holding register,100,u16,,,,,\n");
    let source = open(
        device.port,
        &map,
        &[
            ("pollInterval", json!("100ms")),
            ("timeout", json!("300ms")),
        ],
    )
    .await;
    let level = || {
        let source = source.clone();
        async move { source.snapshot(&["level".into()]).await.unwrap().remove(0) }
    };
    assert_eq!(level().await.value, Some(1234.0));

    device.freeze();
    // The first health that is not ok: failed at once, never merely degraded.
    let mut failed = None;
    eventually("health changes", || {
        let health = source.health();
        let done = health.state != HealthState::Ok;
        failed = done.then_some(health);
        done
    })
    .await;
    let failed = failed.unwrap();
    assert_eq!(failed.state, HealthState::Failed, "{failed:?}");
    // The first poll after the freeze waits for an answer on the open connection; later ones
    // reconnect, and a frozen server's kernel may stop accepting connections too.
    let message = failed.issues[0].message.clone();
    let endpoint = format!("the device at 127.0.0.1:{}", device.port);
    assert!(
        message == format!("{endpoint} (unit 1) did not answer within 300ms")
            || message == format!("{endpoint} did not accept a connection within 300ms"),
        "{message}"
    );
    let value: TagValue = level().await;
    assert_eq!(value.status, Status::Bad);
    assert_eq!(value.value, None);

    device.thaw();
    eventually("health recovers", || {
        source.health().state == HealthState::Ok
    })
    .await;
    assert_eq!(level().await.value, Some(1234.0));
}

#[tokio::test]
async fn an_exception_is_named_and_only_its_rows_turn_bad() {
    let device = Device::start(0);
    // Holding register 500 does not exist on the device.
    let map = format!(
        "{HEADER}level,holding register,100,u16,,,,,\nghost,holding register,500,u16,,,,,\n"
    );
    let source = open(device.port, &map, &[]).await;
    let health = source.health();
    assert_eq!(health.state, HealthState::Degraded);
    assert_eq!(
        health.issues[0].message,
        "the device refused to read holding registers 500–500: exception 2, illegal data address (the device has no such address)"
    );
    let values = source
        .snapshot(&["level".into(), "ghost".into()])
        .await
        .unwrap();
    assert_eq!(
        (values[0].status, values[0].value),
        (Status::Good, Some(1234.0))
    );
    assert_eq!((values[1].status, values[1].value), (Status::Bad, None));
}

#[tokio::test]
async fn a_read_refused_for_its_gaps_is_split_into_the_mapped_runs() {
    let device = Device::start(0);
    // Registers 48–99 do not exist on the device; a gap bound of 100 makes one read over them.
    let map = format!(
        "{HEADER}first,holding register,36,u16,DCBA,,,,\nlevel,holding register,100,u16,,,,,\n"
    );
    let source = open(device.port, &map, &[("maxGap", json!(100))]).await;
    assert_eq!(
        source.health().state,
        HealthState::Ok,
        "{:?}",
        source.health()
    );
    let values = source
        .snapshot(&["first".into(), "level".into()])
        .await
        .unwrap();
    assert_eq!(values[0].value, Some(51966.0));
    assert_eq!(values[1].value, Some(1234.0));
    // The refused read and its two pieces, then only the pieces.
    let stats = source.stats();
    assert_eq!((stats.last_poll_requests, stats.requests_per_poll), (3, 2));
    source.poll_now().await;
    assert_eq!(source.stats().last_poll_requests, 2);
    assert_eq!(source.health().state, HealthState::Ok);
}

#[tokio::test]
async fn a_device_nobody_listens_on_opens_with_a_failed_health() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let map = format!("{HEADER}level,holding register,100,u16,,,,,\n");
    let source = open(port, &map, &[]).await;
    let health = source.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(
        health.issues[0]
            .message
            .starts_with(&format!("cannot connect to the device at 127.0.0.1:{port}")),
        "{health:?}"
    );
}

#[tokio::test]
async fn an_open_given_up_halfway_leaves_no_poller_behind() {
    // A peer that accepts connections and never answers: the first poll waits for its timeout.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let map = format!("{HEADER}level,holding register,100,u16,,,,,\n");
    let config = config(
        port,
        &map,
        &[("pollInterval", json!("100ms")), ("timeout", json!("2s"))],
    );
    let given_up =
        tokio::time::timeout(Duration::from_millis(300), ModbusSource::open(&config)).await;
    assert!(given_up.is_err(), "open waits for the first poll");
    let mut held = Vec::new();
    while let Ok(Ok((socket, _))) =
        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
    {
        held.push(socket);
    }
    assert!(held.len() <= 1, "{} connections", held.len());
    // A poller still running would give up on its read after 2 s and connect again.
    let again = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
    assert!(
        again.is_err(),
        "the poller of an abandoned open kept polling"
    );
}

#[tokio::test]
async fn writes_reach_coils_and_holding_registers_and_read_back() {
    let device = Device::start(0);
    let map = format!(
        "{HEADER}setpoint,holding register,200,f32,CDAB,,,,\n\
         speed,holding register,202,u16,,0.1,-50,%,\n\
         total,holding register,204,f64,DCBA,,,,\n\
         count,holding register,208,i16,BADC,,,,\n\
         enable,holding register,209,bool,,,,,\n\
         pump,coil,101,bool,,,,,\n\
         level,input register,0,u16,,,,,\n\
         ghost,holding register,600,u16,,,,,\n"
    );
    let source = open(device.port, &map, &[]).await;
    let writes = [
        ("setpoint", WriteValue::Number(12.5)),
        ("speed", WriteValue::Number(73.4)),
        ("total", WriteValue::Number(-98765.4321)),
        ("count", WriteValue::Text("-300".into())),
        ("enable", WriteValue::Bool(true)),
        ("pump", WriteValue::Bool(true)),
    ];
    for (tag, value) in &writes {
        source
            .write(tag, value)
            .await
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
    }
    let tags: Vec<String> = writes.iter().map(|(t, _)| (*t).to_owned()).collect();
    let read_back: Vec<Option<f64>> = source
        .snapshot(&tags)
        .await
        .unwrap()
        .iter()
        .map(|v| v.value)
        .collect();
    assert_eq!(read_back[0], Some(12.5));
    assert!((read_back[1].unwrap() - 73.4).abs() < 1e-9, "{read_back:?}");
    assert_eq!(
        read_back[2..],
        [Some(-98765.4321), Some(-300.0), Some(1.0), Some(1.0)]
    );

    // What reached the device, seen through a second source reading plain registers.
    let raw_map = format!(
        "{HEADER}w0,hr,200,u16,,,,,\nw1,hr,201,u16,,,,,\nw2,hr,202,u16,,,,,\nw8,hr,208,u16,,,,,\nc101,coil,101,bool,,,,,\nc100,coil,100,bool,,,,,\n"
    );
    let raw = open(device.port, &raw_map, &[]).await;
    let words: Vec<Option<f64>> = raw
        .snapshot(&["w0", "w1", "w2", "w8", "c101", "c100"].map(String::from))
        .await
        .unwrap()
        .iter()
        .map(|v| v.value)
        .collect();
    // 12.5 is 0x41480000; CDAB puts the low word first. 73.4 % is (73.4 + 50) / 0.1 = 1234 raw.
    // -300 is 0xFED4; BADC swaps its bytes.
    assert_eq!(
        words,
        [
            Some(0.0),
            Some(f64::from(0x4148)),
            Some(1234.0),
            Some(f64::from(0xD4FE)),
            Some(1.0),
            Some(0.0)
        ]
    );

    // Refused before reaching the device: a read-only table, a value that does not fit.
    let err = source
        .write("level", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "write_refused");
    assert!(
        err.to_string()
            .contains("input register, which Modbus only reads"),
        "{err}"
    );
    let err = source
        .write("speed", &WriteValue::Number(7000.0))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not fit a u16 (0 to 65535)"),
        "{err}"
    );
    let err = source
        .write("pump", &WriteValue::Number(2.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "write_refused");
    raw.poll_now().await;
    let w2 = raw.snapshot(&["w2".into()]).await.unwrap()[0].value;
    assert_eq!(w2, Some(1234.0), "a refused write changed nothing");
    // Refused by the device: named.
    let err = source
        .write("ghost", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::Device { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the device refused the write to holding register 600: exception 2, illegal data address"),
        "{err}"
    );
}

#[tokio::test]
async fn subscribers_get_the_values_of_every_poll() {
    let device = Device::start(0);
    let map = format!("{HEADER}level,holding register,100,u16,,,,,\npump,coil,0,bool,,,,,\n");
    let source = open(device.port, &map, &[("pollInterval", json!("100ms"))]).await;
    let mut stream = source
        .subscribe(&["pump".into(), "level".into()])
        .await
        .unwrap();
    let mut times = Vec::new();
    for _ in 0..3 {
        let values = stream.next().await.expect("a value per poll");
        assert_eq!(values[0].value, Some(1.0));
        assert_eq!(values[1].value, Some(1234.0));
        times.push(values[1].time);
    }
    assert!(times[0] < times[1] && times[1] < times[2], "{times:?}");
    assert!(source.subscribe(&["nope".into()]).await.is_err());
}

#[tokio::test]
async fn bad_maps_are_field_errors_naming_the_row() {
    let errors = |map: String| async move {
        let err = ModbusSource::open(&config(502, &map, &[]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_settings");
        err.field_errors().to_vec()
    };
    let overlap = errors(format!(
        "{HEADER}flow,holding register,10,f32,,,,,\ntemp,holding register,11,u16,,,,,\n"
    ))
    .await;
    assert_eq!(overlap.len(), 1);
    assert_eq!(overlap[0].field, "registerMap");
    assert_eq!(
        overlap[0].message,
        "line 3 (temp): holding registers 11–11 overlap line 2 (flow), which takes holding registers 10–11"
    );
    let past = errors(format!("{HEADER}total,holding register,65533,f64,,,,,\n")).await;
    assert_eq!(
        past[0].message,
        "line 2 (total): a f64 at holding register 65533 takes 4 registers and runs past the last address, 65535"
    );
    // The host's problem and the map's, together.
    let mut both = config(502, &format!("{HEADER}a,hr,0,u8,,,,,\n"), &[]);
    both.settings.insert("host".into(), json!("plc 1"));
    let err = ModbusSource::open(&both).await.unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["host", "registerMap"]);
    let empty = errors(HEADER.to_owned()).await;
    assert!(empty[0].message.starts_with("has no rows"), "{empty:?}");
    // Other fields are checked by the form.
    let mut bad_port = config(502, &format!("{HEADER}a,hr,1,u16,,,,,\n"), &[]);
    bad_port.settings.insert("port".into(), json!(70_000));
    bad_port.settings.insert("unitId".into(), json!(300));
    let err = ModbusSource::open(&bad_port).await.unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["port", "unitId"]);
}

#[tokio::test]
async fn the_change_stream_keeps_every_polls_values_for_a_slow_reader() {
    let device = Device::start(0);
    let map = format!("{HEADER}level,holding register,100,u16,,,,,\npump,coil,0,bool,,,,,\n");
    let source = open(device.port, &map, &[("pollInterval", json!("100ms"))]).await;
    let stats = source.stats();
    let mut changes = source.changes().await.unwrap();
    // The reader takes nothing while several polls go by: a snapshot stream would keep only
    // the last poll's values; the change stream keeps them all.
    eventually("six polls went by", || {
        source.stats().polls >= stats.polls + 6
    })
    .await;
    let got = changes.next().await.expect("the values of the polls");
    assert_eq!(got.dropped, 0);
    let level: Vec<&TagValue> = got
        .values
        .iter()
        .filter(|c| &*c.tag == "level")
        .map(|c| &c.value)
        .collect();
    let pump = got.values.iter().filter(|c| &*c.tag == "pump").count();
    assert!(level.len() >= 5, "{} level values", level.len());
    assert_eq!(pump, level.len(), "every poll gives every row");
    assert!(level.iter().all(|v| v.value == Some(1234.0)));
    assert!(level.windows(2).all(|w| w[0].time < w[1].time));
}
