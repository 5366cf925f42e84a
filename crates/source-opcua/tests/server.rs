//! The `opcua` kind against a real OPC UA server: Python asyncua (pinned, installed by
//! `scripts/lib/setup.sh`) running `tests/fixtures/opcua_server.py` on loopback, started and
//! stopped by each test.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use uplink_model::time_expr::from_micros;
use uplink_model::{
    AtTimesRequest, Boundary, ComputedBy, DataType, EventMessage, EventPriority, EventsRequest,
    Function, ProcessedRequest, RawRequest, Span, Status, TagSearch, TimeRange,
};
use uplink_source::{
    DataSource, HealthState, SourceConfig, SourceContext, SourceError, WriteValue,
};
use uplink_source_opcua::OpcUaSource;

const ASYNCUA_VERSION: &str = "2.1.0";

/// The venv's python: `UPLINK_ASYNCUA_PYTHON`, else where setup.sh installs it.
fn python() -> PathBuf {
    let path = std::env::var_os("UPLINK_ASYNCUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
            cache
                .join("uplink")
                .join(format!("asyncua-{ASYNCUA_VERSION}"))
                .join("bin")
                .join("python")
        });
    assert!(
        path.is_file(),
        "the OPC UA test server needs Python asyncua {ASYNCUA_VERSION} at {}: run ./scripts/test (it installs it), or \
         `python3 -m venv ~/.cache/uplink/asyncua-{ASYNCUA_VERSION} && ~/.cache/uplink/asyncua-{ASYNCUA_VERSION}/bin/pip install asyncua=={ASYNCUA_VERSION}`, \
         or point UPLINK_ASYNCUA_PYTHON at a python that has it",
        path.display()
    );
    path
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py")
}

/// A running fixture server; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    args: Vec<String>,
    /// Secure channel renewals the server reported (`RENEW` lines).
    renewals: Arc<AtomicUsize>,
    /// Times it closed every session on SIGUSR1 (`SESSIONS CLOSED` lines).
    sessions_closed: Arc<AtomicUsize>,
    /// Commands for `--alarms` (`raise`, `ack`, `normal`, `event`).
    stdin: ChildStdin,
    /// The server's answers to them (`EVENT <command>` lines).
    answers: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Server {
    async fn start(args: &[&str]) -> Server {
        Self::start_owned(args.iter().map(|a| (*a).to_owned()).collect()).await
    }

    async fn start_owned(args: Vec<String>) -> Server {
        // RUST_LOG=opcua=debug shows the client's side of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut child = Command::new(python())
            .arg(fixture())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the OPC UA fixture server");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let (answer, answers) = tokio::sync::mpsc::unbounded_channel();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("the fixture server did not start within 120 s")
            .unwrap()
            .expect("the fixture server exited before listening");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the fixture: {line}"));
        let renewals = Arc::new(AtomicUsize::new(0));
        let sessions_closed = Arc::new(AtomicUsize::new(0));
        {
            let (renewals, sessions_closed) = (renewals.clone(), sessions_closed.clone());
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("RENEW ") {
                        renewals.fetch_add(1, Ordering::Relaxed);
                    } else if line == "SESSIONS CLOSED" {
                        sessions_closed.fetch_add(1, Ordering::Relaxed);
                    } else if line.starts_with("EVENT ") || line.starts_with("UNKNOWN ") {
                        let _ = answer.send(line);
                    }
                }
            });
        }
        Server {
            child,
            port,
            args,
            renewals,
            sessions_closed,
            stdin,
            answers,
        }
    }

    /// Has a server started with `--alarms` raise, acknowledge or clear its alarm, or send an
    /// event; returns once it was sent.
    async fn command(&mut self, command: &str) {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        self.stdin.flush().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(30), self.answers.recv())
            .await
            .unwrap_or_else(|_| panic!("the fixture did not answer '{command}' within 30 s"))
            .expect("the fixture server exited");
        assert_eq!(answer, format!("EVENT {command}"));
    }

    fn url(&self) -> String {
        format!("opc.tcp://127.0.0.1:{}/uplink/", self.port)
    }

    async fn stop(&mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }

    /// Stops the server and starts it again on the same port.
    async fn restart(&mut self) {
        self.stop().await;
        let mut args = self.args.clone();
        if !args.iter().any(|a| a == "--port") {
            args.extend(["--port".to_owned(), self.port.to_string()]);
        }
        let port = self.port;
        // The port may take a moment to be free again.
        for _ in 0..20 {
            let next = Self::start_owned(args.clone()).await;
            if next.port == port {
                *self = next;
                return;
            }
        }
        panic!("could not restart the fixture server on port {port}");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn config(settings: Value) -> SourceConfig {
    SourceConfig {
        name: "plant".into(),
        kind: "opcua".into(),
        description: "the test plant".into(),
        settings: settings.as_object().unwrap().clone(),
    }
}

async fn open(dir: &tempfile::TempDir, settings: Value) -> Result<OpcUaSource, SourceError> {
    OpcUaSource::open(&config(settings), &SourceContext::in_dir(dir.path())).await
}

fn field_error(result: Result<OpcUaSource, SourceError>, field: &str) -> String {
    match result {
        Err(SourceError::InvalidSettings(errors)) => {
            let error = errors
                .iter()
                .find(|e| e.field == field)
                .unwrap_or_else(|| panic!("no error on {field}: {errors:?}"));
            error.message.clone()
        }
        Err(other) => panic!("expected a field error on {field}, got {other}"),
        Ok(_) => panic!("expected a field error on {field}, but the source opened"),
    }
}

fn names(page: &uplink_model::TagPage) -> Vec<&str> {
    page.tags.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browses_tags_with_units_descriptions_and_types_and_searches_them() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    let all = source.search(&TagSearch::new("*")).await.unwrap();
    let mut found = names(&all);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "Counter",
            "Label",
            "Line1/Speed",
            "Pressure",
            "Running",
            "Setpoint",
            "Temperature"
        ],
        "the properties (EngineeringUnits) are not tags"
    );
    let temperature = all.tags.iter().find(|t| t.name == "Temperature").unwrap();
    assert_eq!(temperature.units, "°C");
    assert_eq!(temperature.description, "Boiler temperature");
    assert_eq!(temperature.data_type, DataType::Float);
    assert_eq!(temperature.id, "ns=2;s=Plant.Temperature");
    let by_name = |n: &str| all.tags.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by_name("Counter").data_type, DataType::Integer);
    assert_eq!(by_name("Running").data_type, DataType::Boolean);
    assert_eq!(by_name("Label").data_type, DataType::Text);
    assert_eq!(by_name("Line1/Speed").units, "m/s");

    let page = source.search(&TagSearch::new("*e*ure")).await.unwrap();
    let mut matched = names(&page);
    matched.sort_unstable();
    assert_eq!(matched, ["Pressure", "Temperature"]);
    let paged = source
        .search(&TagSearch {
            pattern: "*".into(),
            offset: 0,
            limit: 3,
        })
        .await
        .unwrap();
    assert_eq!(paged.tags.len(), 3);
    assert_eq!(paged.next_offset, Some(3));

    // From Objects, with node ids as names.
    let by_id = open(
        &dir,
        json!({"endpointUrl": server.url(), "tagNames": "nodeId"}),
    )
    .await
    .unwrap();
    let page = by_id
        .search(&TagSearch::new("ns=2;s=Plant.*"))
        .await
        .unwrap();
    assert!(
        names(&page).contains(&"ns=2;s=Plant.Line1.Speed"),
        "{:?}",
        names(&page)
    );
    let snapshot = by_id
        .snapshot(&["ns=2;s=Plant.Label".to_owned()])
        .await
        .unwrap();
    assert_eq!(snapshot[0].text.as_deref(), Some("Line one"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_reads_current_values_and_names_unknown_tags() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    assert!(
        dir.path().join("opcua/pki/own/cert.der").is_file(),
        "the application certificate is made on first use"
    );
    let tags: Vec<String> = ["Temperature", "Label", "Running", "Line1/Speed"]
        .map(str::to_owned)
        .to_vec();
    let values = source.snapshot(&tags).await.unwrap();
    assert_eq!(values.len(), 4);
    let temperature = values[0].value.unwrap();
    assert!((15.0..=25.0).contains(&temperature), "{temperature}");
    assert_eq!(values[0].status, Status::Good);
    assert_eq!(values[0].units.as_deref(), Some("°C"));
    assert_eq!(values[1].text.as_deref(), Some("Line one"));
    assert!(matches!(values[2].value, Some(v) if v == 0.0 || v == 1.0));
    assert_eq!(values[3].value, Some(1.25));
    let age = chrono::Utc::now() - values[0].time;
    assert!(
        age < chrono::Duration::seconds(60),
        "a current value: {age}"
    );

    let err = source
        .snapshot(&["Temperature".to_owned(), "Nope".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_tag");
    assert!(err.to_string().contains("Nope"));
    assert_eq!(source.health().state, HealthState::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_history_is_paged_with_continuation_points_and_streamed_in_chunks() {
    let server = Server::start(&["--history", "20000"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let request = RawRequest {
        tag: "Counter".into(),
        range: TimeRange::new(now - chrono::Duration::hours(7), now).unwrap(),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let mut stream = source.raw(&request).await.unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.unwrap());
    }
    assert!(chunks.len() >= 3, "20,000 values come in several pages");
    assert!(chunks.iter().all(|c| c.len() <= uplink_source::CHUNK));
    let samples: Vec<_> = chunks.concat();
    assert!(samples.len() >= 20_000, "{}", samples.len());
    for (i, s) in samples.iter().take(20_000).enumerate() {
        assert_eq!(
            s.value, i as f64,
            "value {i} in order, none lost or repeated at page edges"
        );
        assert_eq!(s.status, Status::Good);
    }
    assert!(samples.windows(2).all(|w| w[0].time_us < w[1].time_us));

    let limited = RawRequest {
        max_count: Some(10_000),
        ..request
    };
    let mut stream = source.raw(&limited).await.unwrap();
    let mut count = 0;
    while let Some(chunk) = stream.next().await {
        count += chunk.unwrap().len();
    }
    assert_eq!(count, 10_000, "max_count stops the paging");
}

fn processed_request(start_us: i64, functions: Vec<Function>) -> ProcessedRequest {
    ProcessedRequest {
        tag: "Temperature".into(),
        range: TimeRange::new(from_micros(start_us), from_micros(start_us + 600_000_000)).unwrap(),
        interval: Span::from_secs(60),
        functions,
    }
}

async fn first_stored_time(source: &OpcUaSource) -> i64 {
    let now = chrono::Utc::now();
    let request = RawRequest {
        tag: "Temperature".into(),
        range: TimeRange::new(now - chrono::Duration::hours(1), now).unwrap(),
        max_count: Some(1),
        boundary: Boundary::Inside,
    };
    let mut stream = source.raw(&request).await.unwrap();
    stream.next().await.unwrap().unwrap()[0].time_us
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_reads_are_pushed_down_to_the_server_or_computed_from_raw() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    let start = first_stored_time(&source).await;
    // Values 0..599, one a second: interval k averages 60k..60k+59.
    let answer = source
        .processed(&processed_request(
            start,
            vec![Function::Avg, Function::Max],
        ))
        .await
        .unwrap();
    assert_eq!(
        answer.by,
        ComputedBy::Source,
        "HistoryRead processed on the server"
    );
    let answer = answer.values;
    let averages: Vec<f64> = answer[0].1.iter().map(|s| s.value).collect();
    let expected: Vec<f64> = (0..10).map(|k| 60.0 * k as f64 + 29.5).collect();
    assert_eq!(averages, expected);
    assert_eq!(answer[1].1[9].value, 599.0);
    assert_eq!(
        answer[0].1[0].time_us, start,
        "stamped at each interval's start"
    );

    // A function with no OPC UA aggregate of the same meaning is computed by Uplink.
    let answer = source
        .processed(&processed_request(start, vec![Function::Count]))
        .await
        .unwrap();
    assert_eq!(
        answer.by,
        ComputedBy::Uplink,
        "no OPC UA aggregate for COUNT"
    );
    let answer = answer.values;
    assert_eq!(answer[0].1[0].value, 60.0);

    // Raw with bounding values: the last before the start and the first after the end, whether
    // or not the server honours returnBounds (asyncua does not).
    let bounded = RawRequest {
        tag: "Temperature".into(),
        range: TimeRange::new(
            from_micros(start + 10_500_000),
            from_micros(start + 20_500_000),
        )
        .unwrap(),
        max_count: None,
        boundary: Boundary::Outside,
    };
    let mut stream = source.raw(&bounded).await.unwrap();
    let mut values = Vec::new();
    while let Some(chunk) = stream.next().await {
        values.extend(chunk.unwrap().into_iter().map(|s| s.value));
    }
    let expected_bounded: Vec<f64> = (10..=21).map(f64::from).collect();
    assert_eq!(values, expected_bounded);

    // Values at times, interpolated by the server.
    let at = |s: f64| from_micros(start + (s * 1e6) as i64);
    let request = AtTimesRequest {
        tag: "Temperature".into(),
        times: vec![at(10.5), at(3.0), at(100.25)],
    };
    let values = source.at_times(&request).await.unwrap();
    assert_eq!(values.by, ComputedBy::Source, "HistoryRead at-time");
    let got: Vec<f64> = values.values.iter().map(|s| s.value).collect();
    assert_eq!(got, [10.5, 3.0, 100.25], "in the order asked");

    // Several functions, one the server lacks: the answer as a whole is Uplink's.
    let answer = source
        .processed(&processed_request(
            start,
            vec![Function::Avg, Function::Count],
        ))
        .await
        .unwrap();
    assert_eq!(answer.by, ComputedBy::Uplink);
    assert_eq!(answer.values[0].1[0].value, 29.5);

    // A server without processed reads: the same averages, computed by Uplink.
    let plain = Server::start(&["--no-processed"]).await;
    let source = open(
        &dir,
        json!({"endpointUrl": plain.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    let start = first_stored_time(&source).await;
    let answer = source
        .processed(&processed_request(start, vec![Function::Avg]))
        .await
        .unwrap();
    assert_eq!(
        answer.by,
        ComputedBy::Uplink,
        "the server lacks processed reads"
    );
    let answer = answer.values;
    let averages: Vec<f64> = answer[0].1.iter().map(|s| s.value).collect();
    assert_eq!(averages, expected);
    let at = |s: f64| from_micros(start + (s * 1e6) as i64);
    let request = AtTimesRequest {
        tag: "Temperature".into(),
        times: vec![at(10.5), at(3.0), at(100.25)],
    };
    let values = source.at_times(&request).await.unwrap();
    assert_eq!(values.by, ComputedBy::Uplink);
    let got: Vec<f64> = values.values.iter().map(|s| s.value).collect();
    assert_eq!(
        got,
        [10.5, 3.0, 100.25],
        "the same answer, computed by Uplink"
    );
}

async fn next_update(
    stream: &mut uplink_source::SnapshotStream,
    within: Duration,
) -> Vec<uplink_model::TagValue> {
    tokio::time::timeout(within, stream.next())
        .await
        .unwrap_or_else(|_| panic!("no update within {within:?}"))
        .expect("the subscription ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_delivers_changes_within_a_publishing_interval() {
    let server = Server::start(&["--period", "0.05"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant", "publishingInterval": "200ms"}),
    )
    .await
    .unwrap();
    assert!(source.descriptor().capabilities.subscribe);
    let tags = vec!["Counter".to_owned(), "Label".to_owned()];
    let mut stream = source.subscribe(&tags).await.unwrap();
    let first = next_update(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 2);
    assert_eq!(first[1].text.as_deref(), Some("Line one"));
    let start = first[0].value.unwrap();
    let mut last = start;
    // The counter changes every 50 ms: each publishing interval (200 ms) brings a change. The
    // bound is generous (the machine is loaded), far below what a poll every few seconds gives.
    for _ in 0..5 {
        let update = next_update(&mut stream, Duration::from_millis(200 + 1_800)).await;
        let counter = update[0].value.unwrap();
        assert!(counter >= last, "{counter} after {last}");
        assert_eq!(
            update[1].text.as_deref(),
            Some("Line one"),
            "unchanged tags keep their value"
        );
        last = counter;
    }
    assert!(last > start, "the counter moved: {start} → {last}");
    assert_eq!(source.subscription_count(), 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.subscription_count() != 0 {
        assert!(
            Instant::now() < deadline,
            "dropping the stream never deleted the subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_name_identity_signs_in_and_a_bad_password_is_a_plain_field_error() {
    let server = Server::start(&["--user", "alice:s3cret-pw"]).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = |password: &str| {
        json!({
            "endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
            "identity": "userName", "userName": "alice", "password": password,
        })
    };
    let source = open(&dir, settings("s3cret-pw")).await.unwrap();
    let values = source.snapshot(&["Pressure".to_owned()]).await.unwrap();
    assert!(values[0].value.is_some());

    let wrong = open(&dir, settings("guess")).await;
    let message = field_error(wrong, "password");
    assert!(message.contains("refused the identity"), "{message}");
    assert!(!message.contains("guess"), "never the password itself");

    let anonymous = open(&dir, json!({"endpointUrl": server.url()})).await;
    let message = field_error(anonymous, "identity");
    assert!(
        message.contains("does not accept anonymous sign-in"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_encrypt_needs_the_server_certificate_trusted_first() {
    let certs = tempfile::tempdir().unwrap();
    let server = Server::start(&["--encrypted", certs.path().to_str().unwrap()]).await;
    let dir = tempfile::tempdir().unwrap();
    let secure = |thumbprint: Option<&str>| {
        let mut settings = json!({
            "endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
            "securityPolicy": "Basic256Sha256", "securityMode": "SignAndEncrypt",
        });
        if let Some(t) = thumbprint {
            settings["trustedThumbprint"] = json!(t);
        }
        settings
    };
    // Seen for the first time: refused, with its thumbprints.
    let message = field_error(open(&dir, secure(None)).await, "trustedThumbprint");
    assert!(message.contains("not trusted yet"), "{message}");
    let sha256 = message
        .split("SHA-256 ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap_or_else(|| panic!("no SHA-256 thumbprint in: {message}"))
        .to_owned();
    assert!(sha256.chars().all(|c| c.is_ascii_hexdigit()));
    let rejected = std::fs::read_dir(dir.path().join("opcua/pki/rejected"))
        .unwrap()
        .count();
    assert_eq!(rejected, 1, "kept aside for the owner to inspect");
    // Trying again does not trust it either.
    field_error(open(&dir, secure(None)).await, "trustedThumbprint");

    // Another thumbprint: refused.
    let message = field_error(
        open(&dir, secure(Some(&"ab".repeat(32)))).await,
        "trustedThumbprint",
    );
    assert!(
        message.contains("not the certificate you trusted"),
        "{message}"
    );

    // The owner trusts it by its thumbprint: the session is encrypted and works.
    let source = open(&dir, secure(Some(&sha256.to_uppercase())))
        .await
        .unwrap();
    let values = source.snapshot(&["Temperature".to_owned()]).await.unwrap();
    assert!(values[0].value.is_some());
    drop(source);
    // Now on the trust list: no thumbprint needed.
    let again = open(&dir, secure(None)).await.unwrap();
    assert!(again.snapshot(&["Label".to_owned()]).await.is_ok());
    drop(again);
    // The Aes policies, and signing only.
    for (policy, mode) in [
        ("Aes128Sha256RsaOaep", "SignAndEncrypt"),
        ("Aes256Sha256RsaPss", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
    ] {
        let mut settings = secure(None);
        settings["securityPolicy"] = json!(policy);
        settings["securityMode"] = json!(mode);
        let source = open(&dir, settings)
            .await
            .unwrap_or_else(|err| panic!("{policy} {mode}: {err}"));
        let values = source.snapshot(&["Label".to_owned()]).await.unwrap();
        assert_eq!(
            values[0].text.as_deref(),
            Some("Line one"),
            "{policy} {mode}"
        );
    }

    // `uplink sources trust` for a fresh connector, checked against the thumbprint.
    let other = tempfile::tempdir().unwrap();
    let context = SourceContext::in_dir(other.path());
    let err =
        uplink_source_opcua::trust_server(&config(secure(None)), &context, Some(&"cd".repeat(20)))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("nothing was trusted"), "{err}");
    let trusted = uplink_source_opcua::trust_server(&config(secure(None)), &context, Some(&sha256))
        .await
        .unwrap();
    assert_eq!(trusted.sha256, sha256);
    OpcUaSource::open(&config(secure(None)), &context)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_subscription_is_survived() {
    let mut server = Server::start(&["--period", "0.05"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
               "publishingInterval": "200ms", "timeout": "3s"}),
    )
    .await
    .unwrap();
    let mut stream = source.subscribe(&["Counter".to_owned()]).await.unwrap();
    next_update(&mut stream, Duration::from_secs(10)).await;
    next_update(&mut stream, Duration::from_secs(10)).await;

    server.stop().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let health = source.health();
        if health.state == HealthState::Failed {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "health never said the server is gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let words = health.issues[0].message.clone();
    assert!(
        words.contains("connection to the server") || words.contains("reconnect"),
        "{words}"
    );
    let err = source.snapshot(&["Counter".to_owned()]).await.unwrap_err();
    assert!(
        matches!(err.code(), "source_unavailable" | "source_timeout"),
        "a read while the server is down fails with a stable code: {err}"
    );

    server.restart().await;
    // The counter starts again from 1 on the new server: updates resume on the same stream.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let update = tokio::time::timeout(Duration::from_secs(90), stream.next())
            .await
            .expect("no update after the restart")
            .expect("the subscription ended");
        if source.reconnects() >= 1 && update[0].value.is_some_and(|v| v < 1_000.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no update from the restarted server"
        );
    }
    next_update(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(source.health().state, HealthState::Ok);
    assert!(source.snapshot(&["Counter".to_owned()]).await.is_ok());
    // The re-created subscription is found again and deleted with the stream.
    assert_eq!(source.subscription_count(), 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.subscription_count() != 0 {
        assert!(
            Instant::now() < deadline,
            "the re-created subscription outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_fails_reads_with_a_stable_code_instead_of_hanging() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant", "timeout": "2s"}),
    )
    .await
    .unwrap();
    server.signal("-STOP");
    let started = Instant::now();
    let err = source
        .snapshot(&["Temperature".to_owned()])
        .await
        .unwrap_err();
    let waited = started.elapsed();
    server.signal("-CONT");
    assert!(
        matches!(err.code(), "source_timeout" | "source_unavailable"),
        "{} {err}",
        err.code()
    );
    assert!(
        waited < Duration::from_secs(30),
        "gave up after {waited:?}, not never"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_set_the_variable_in_its_own_type() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    source
        .write("Setpoint", &WriteValue::Number(42.5))
        .await
        .unwrap();
    let values = source.snapshot(&["Setpoint".to_owned()]).await.unwrap();
    assert_eq!(values[0].value, Some(42.5));
    let err = source
        .write("Setpoint", &WriteValue::Text("hot".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("takes a number"), "{err}");
    let err = source
        .write("Nope", &WriteValue::Number(1.0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_tag");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_endpoint_is_a_plain_field_error() {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let result = open(
        &dir,
        json!({"endpointUrl": format!("opc.tcp://127.0.0.1:{port}/"), "timeout": "3s"}),
    )
    .await;
    let message = field_error(result, "endpointUrl");
    assert!(
        message.contains(&format!("opc.tcp://127.0.0.1:{port}/"))
            && (message.contains("cannot reach an OPC UA server")
                || message.contains("no OPC UA server answered")),
        "{message}"
    );

    let result = open(&dir, json!({"endpointUrl": "http://127.0.0.1:80/"})).await;
    assert!(field_error(result, "endpointUrl").contains("opc.tcp://"));

    // A security policy the server does not offer.
    let server = Server::start(&[]).await;
    let result = open(
        &dir,
        json!({"endpointUrl": server.url(), "securityPolicy": "Basic256Sha256", "securityMode": "Sign"}),
    )
    .await;
    assert!(field_error(result, "securityPolicy").contains("does not offer"));

    // Outside a connector there is no folder for the certificate.
    let err = OpcUaSource::open(
        &config(json!({"endpointUrl": server.url()})),
        &SourceContext::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("data folder"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_when_the_connector_starts_is_retried_until_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let settings = json!({
        "endpointUrl": format!("opc.tcp://127.0.0.1:{port}/uplink/"),
        "browseRoot": "ns=2;s=Plant", "timeout": "2s",
    });
    // A form being tested: the error at once.
    assert!(open(&dir, settings.clone()).await.is_err());
    // A connector starting: the source opens, failed, and keeps trying.
    let context = SourceContext::in_dir(dir.path()).retrying();
    let source = OpcUaSource::open(&config(settings), &context)
        .await
        .unwrap();
    assert!(!source.is_connected());
    let health = source.health();
    assert_eq!(health.state, HealthState::Failed);
    assert!(
        health.issues[0].message.contains("not connected yet"),
        "{health:?}"
    );
    let err = source
        .snapshot(&["Temperature".to_owned()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "source_unavailable", "{err}");

    let _server = Server::start(&["--port", &port.to_string()]).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let page = source.search(&TagSearch::new("Temperature")).await;
        if matches!(&page, Ok(p) if p.tags.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never connected: {page:?} {:?}",
            source.health()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(source.is_connected());
    assert_eq!(source.health().state, HealthState::Ok);
    let values = source.snapshot(&["Temperature".to_owned()]).await.unwrap();
    assert!(values[0].value.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x509_user_certificate_signs_in() {
    let certs = tempfile::tempdir().unwrap();
    let users = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "--encrypted",
        certs.path().to_str().unwrap(),
        "--x509-user",
        users.path().to_str().unwrap(),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = json!({
        "endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
        "securityPolicy": "Basic256Sha256", "securityMode": "SignAndEncrypt",
        "identity": "x509",
        "userCertificate": users.path().join("user-cert.der"),
        "userPrivateKey": users.path().join("user-key.pem"),
    });
    let context = SourceContext::in_dir(dir.path());
    uplink_source_opcua::trust_server(&config(settings.clone()), &context, None)
        .await
        .unwrap();
    let source = OpcUaSource::open(&config(settings.clone()), &context)
        .await
        .unwrap();
    assert!(
        source.snapshot(&["Pressure".to_owned()]).await.unwrap()[0]
            .value
            .is_some()
    );

    // Anonymous is not accepted by this server.
    settings["identity"] = json!("anonymous");
    let message = field_error(open(&dir, settings.clone()).await, "identity");
    assert!(
        message.contains("does not accept anonymous sign-in"),
        "{message}"
    );
    // A certificate the server does not know: refused, on the certificate field.
    settings["identity"] = json!("x509");
    settings["userCertificate"] = json!(certs.path().join("server-cert.der"));
    settings["userPrivateKey"] = json!(certs.path().join("server-key.pem"));
    let message = field_error(open(&dir, settings.clone()).await, "userCertificate");
    assert!(message.contains("refused the identity"), "{message}");
    // A missing key file is named.
    settings["userPrivateKey"] = json!(users.path().join("nope.pem"));
    let message = field_error(open(&dir, settings).await, "userPrivateKey");
    assert!(message.contains("not a readable file"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_change_event_refreshes_the_tag_list() {
    let server = Server::start(&["--grow-after", "3"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant", "publishingInterval": "200ms"}),
    )
    .await
    .unwrap();
    let before = source.search(&TagSearch::new("Added")).await.unwrap();
    assert!(before.tags.is_empty(), "not there yet");
    // Search reads the cached list; only the server's event makes it browse again.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let page = source.search(&TagSearch::new("Added")).await.unwrap();
        if let Some(tag) = page.tags.first() {
            assert_eq!(tag.units, "kg");
            break;
        }
        assert!(Instant::now() < deadline, "the new variable never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        source.subscription_count(),
        0,
        "the model watch is not a live-value stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_keep_the_servers_own_status_code() {
    let server = Server::start(&["--period", "0.05"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Quality", "publishingInterval": "200ms"}),
    )
    .await
    .unwrap();
    // BadSensorFailure and UncertainLastUsableValue, as OPC UA numbers them.
    const BAD_SENSOR_FAILURE: u32 = 0x808C_0000;
    const UNCERTAIN_LAST_USABLE: u32 = 0x4090_0000;
    let tags = vec!["Failed".to_owned(), "Stale".to_owned()];
    let values = source.snapshot(&tags).await.unwrap();
    assert_eq!(values[0].status, Status::Bad);
    assert_eq!(values[0].source_status_code, Some(BAD_SENSOR_FAILURE));
    assert_eq!(values[1].status, Status::Uncertain);
    assert_eq!(values[1].source_status_code, Some(UNCERTAIN_LAST_USABLE));
    let json = serde_json::to_value(&values[0]).unwrap();
    assert_eq!(json["sourceStatusCode"], BAD_SENSOR_FAILURE);

    // Live values carry it too: a change of Stale arrives with its code.
    let mut stream = source.subscribe(&tags).await.unwrap();
    let first = next_update(&mut stream, Duration::from_secs(10)).await;
    let before = first[1].value;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let update = next_update(&mut stream, Duration::from_secs(10)).await;
        if update[1].value != before {
            assert_eq!(update[1].status, Status::Uncertain);
            assert_eq!(update[1].source_status_code, Some(UNCERTAIN_LAST_USABLE));
            assert_eq!(update[0].source_status_code, Some(BAD_SENSOR_FAILURE));
            break;
        }
        assert!(Instant::now() < deadline, "Stale never changed");
    }

    // Stored values keep it too: Stale's history, read raw, and written for an app.
    let now = chrono::Utc::now();
    let request = RawRequest {
        tag: "Stale".into(),
        range: TimeRange::new(now - chrono::Duration::minutes(10), now).unwrap(),
        max_count: None,
        boundary: Boundary::Inside,
    };
    let mut history = Vec::new();
    let mut stream = source.raw(&request).await.unwrap();
    while let Some(chunk) = stream.next().await {
        history.extend(chunk.unwrap());
    }
    assert!(history.len() >= 3, "{history:?}");
    assert!(
        history[..3]
            .iter()
            .all(|s| s.status == Status::Uncertain && s.source_code == UNCERTAIN_LAST_USABLE),
        "{history:?}"
    );
    let json = serde_json::to_value(uplink_model::TagValue::from(history[0])).unwrap();
    assert_eq!(json["sourceStatusCode"], UNCERTAIN_LAST_USABLE);

    // A plain Good value carries no code.
    let plain = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant"}),
    )
    .await
    .unwrap();
    let good = plain.snapshot(&["Label".to_owned()]).await.unwrap();
    assert_eq!(good[0].source_status_code, None);
}

/// Waits (generously) until `done`, failing with `what`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 90 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the stream until a Counter value above `above` arrives (older values queued before
/// a fault do not count).
async fn counter_above(stream: &mut uplink_source::SnapshotStream, above: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let update = tokio::time::timeout(Duration::from_secs(90), stream.next())
            .await
            .expect("no update within 90 s")
            .expect("the subscription ended");
        if let Some(value) = update[0].value.filter(|v| *v > above) {
            return value;
        }
        assert!(Instant::now() < deadline, "no Counter above {above}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_drop_mid_subscription_is_reported_and_values_flow_again() {
    let server = Server::start(&["--period", "0.05"]).await;
    let proxy = uplink_faults::FaultProxy::start(([127, 0, 0, 1], server.port).into())
        .await
        .unwrap();
    let faults = proxy.faults();
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": format!("opc.tcp://{}/uplink/", proxy.addr()),
               "browseRoot": "ns=2;s=Plant", "publishingInterval": "200ms", "timeout": "3s"}),
    )
    .await
    .unwrap();
    assert!(
        faults.open_connections() >= 1,
        "the session runs through the proxy"
    );
    let mut stream = source.subscribe(&["Counter".to_owned()]).await.unwrap();
    let before = counter_above(&mut stream, 0.0).await;

    // The network goes: open connections are cut and new ones refused.
    faults.set_refuse(true);
    faults.drop_connections(uplink_faults::Close::Rst);
    eventually("health says the connection is lost", || {
        source.health().state == HealthState::Failed
    })
    .await;
    let words = source.health().issues[0].message.clone();
    assert!(
        words.contains("connection to the server") || words.contains("reconnect"),
        "{words}"
    );
    let err = source.snapshot(&["Counter".to_owned()]).await.unwrap_err();
    assert!(
        matches!(err.code(), "source_unavailable" | "source_timeout"),
        "a read while the network is down fails with a stable code: {err}"
    );

    // It comes back: the client reconnects by itself and the same stream flows again, with
    // values newer than any from before the drop.
    faults.set_refuse(false);
    let resumed_from = counter_above(&mut stream, before + 20.0).await;
    assert!(resumed_from > before);
    eventually("health is ok again", || {
        source.health().state == HealthState::Ok
    })
    .await;
    assert!(source.reconnects() >= 1, "it reconnected");
    assert!(source.snapshot(&["Counter".to_owned()]).await.is_ok());
    assert_eq!(source.subscription_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_closed_is_created_again_and_values_flow() {
    let server = Server::start(&["--period", "0.05"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(
        &dir,
        json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
               "publishingInterval": "200ms", "timeout": "3s"}),
    )
    .await
    .unwrap();
    let mut stream = source.subscribe(&["Counter".to_owned()]).await.unwrap();
    let before = counter_above(&mut stream, 0.0).await;

    // The server forgets the session (as when it timed out) and its subscriptions with it.
    server.signal("-USR1");
    eventually("the server closed the session", || {
        server.sessions_closed.load(Ordering::Relaxed) == 1
    })
    .await;
    let after = counter_above(&mut stream, before + 40.0).await;
    assert!(after > before + 40.0);
    // Still flowing: not a value queued before the close.
    let later = counter_above(&mut stream, after).await;
    assert!(later > after);
    eventually("health is ok", || source.health().state == HealthState::Ok).await;
    assert!(source.snapshot(&["Counter".to_owned()]).await.is_ok());
    assert_eq!(source.subscription_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_keep_flowing_across_secure_channel_renewals() {
    let certs = tempfile::tempdir().unwrap();
    let server = Server::start(&[
        "--period",
        "0.05",
        "--encrypted",
        certs.path().to_str().unwrap(),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({
        "endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
        "securityPolicy": "Basic256Sha256", "securityMode": "SignAndEncrypt",
        "publishingInterval": "200ms", "secureChannelLifetime": "3s",
    });
    let context = SourceContext::in_dir(dir.path());
    uplink_source_opcua::trust_server(&config(settings.clone()), &context, None)
        .await
        .unwrap();
    let source = OpcUaSource::open(&config(settings), &context)
        .await
        .unwrap();
    let mut stream = source.subscribe(&["Counter".to_owned()]).await.unwrap();
    let mut last = counter_above(&mut stream, 0.0).await;
    let start = server.renewals.load(Ordering::Relaxed);
    // Every update within a few publishing intervals, across at least two renewals.
    let deadline = Instant::now() + Duration::from_secs(90);
    while server.renewals.load(Ordering::Relaxed) < start + 2 {
        assert!(
            Instant::now() < deadline,
            "the channel was not renewed twice within 90 s"
        );
        let update = next_update(&mut stream, Duration::from_secs(5)).await;
        let counter = update[0].value.unwrap();
        assert!(counter >= last, "{counter} after {last}");
        last = counter;
        assert_eq!(source.health().state, HealthState::Ok);
    }
    let after = counter_above(&mut stream, last).await;
    assert!(after > last, "values flow after the renewals");
    assert_eq!(source.reconnects(), 0, "renewed, not reconnected");
    assert!(source.snapshot(&["Label".to_owned()]).await.is_ok());
}

/// The next events from the stream, at least `count` of them.
async fn next_events(stream: &mut uplink_source::EventStream, count: usize) -> Vec<EventMessage> {
    let mut events = Vec::new();
    while events.len() < count {
        let item = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} events within 30 s", events.len()))
            .expect("the events stream ended");
        assert!(!item.is_empty(), "an events item holds at least one event");
        events.extend(item);
    }
    events
}

fn events_settings(server: &Server) -> Value {
    json!({"endpointUrl": server.url(), "browseRoot": "ns=2;s=Plant",
           "publishingInterval": "100ms", "timeout": "3s"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_arrive_live_with_their_condition_fields_and_each_change_is_its_own_event() {
    let mut server = Server::start(&["--alarms"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    assert!(source.descriptor().capabilities.events);
    let mut stream = source.subscribe_events().await.unwrap();
    for command in ["raise", "ack", "normal", "event"] {
        server.command(command).await;
    }
    let events = next_events(&mut stream, 4).await;
    assert_eq!(events.len(), 4, "{events:#?}");
    let [raised, acked, normal, pump] = &events[..] else {
        unreachable!()
    };

    assert_eq!(raised.source, "plant");
    assert_eq!(raised.message, "Boiler temperature high");
    assert_eq!(raised.topic, "Temperature", "the event's SourceName");
    assert_eq!(raised.priority, EventPriority::High, "severity 700");
    assert_eq!(raised.category, "ExclusiveLevelAlarmType");
    assert_eq!(raised.event_type, "alarm");
    let property = |event: &EventMessage, key: &str| event.properties.get(key).cloned();
    assert_eq!(
        property(raised, "conditionName").as_deref(),
        Some("TemperatureHigh")
    );
    assert_eq!(property(raised, "activeState").as_deref(), Some("true"));
    assert_eq!(property(raised, "ackedState").as_deref(), Some("false"));
    assert_eq!(property(raised, "severity").as_deref(), Some("700"));
    assert_eq!(
        property(raised, "sourceNode").as_deref(),
        Some("ns=2;s=Plant.Temperature")
    );
    assert_eq!(
        property(raised, "conditionId").as_deref(),
        Some("ns=2;s=Plant.Temperature.High")
    );
    assert_eq!(
        raised.id.len(),
        64,
        "asyncua's 32-byte EventId in hex: {}",
        raised.id
    );
    let age = chrono::Utc::now() - raised.time;
    assert!(
        age < chrono::Duration::seconds(60),
        "the event's own Time: {age}"
    );

    assert_eq!(acked.event_type, "acknowledged");
    assert_eq!(acked.message, "Boiler temperature high acknowledged");
    assert_eq!(property(acked, "ackedState").as_deref(), Some("true"));
    assert_eq!(normal.event_type, "returnToNormal");
    assert_eq!(normal.message, "Boiler temperature back to normal");
    assert_eq!(normal.priority, EventPriority::Low, "severity 100");
    assert_eq!(property(normal, "activeState").as_deref(), Some("false"));
    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "each change is an event of its own");

    assert_eq!(pump.message, "Pump 2 started");
    assert_eq!(pump.category, "SystemEventType");
    assert_eq!(pump.event_type, "event");
    assert_eq!(pump.priority, EventPriority::Low, "severity 200");
    assert_eq!(pump.topic, "Server");
    assert!(
        !pump.properties.contains_key("conditionName")
            && !pump.properties.contains_key("activeState"),
        "a plain event has no condition fields: {:?}",
        pump.properties
    );
    assert_eq!(source.events_lost(), 0);
    assert_eq!(source.subscription_count(), 1);
    drop(stream);
    eventually("the events subscription is deleted with its stream", || {
        source.subscription_count() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_history_is_read_by_time_range_and_paged_with_the_cursor() {
    let mut server = Server::start(&["--alarms", "--event-history", "12"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    server.command("raise").await;
    let range = || {
        let now = chrono::Utc::now();
        TimeRange::new(
            now - chrono::Duration::minutes(5),
            now + chrono::Duration::seconds(1),
        )
        .unwrap()
    };
    let read_all = |limit: u32| {
        let source = source.clone();
        async move {
            let range = range();
            let mut pages = Vec::new();
            let mut cursor = None;
            loop {
                let page = source
                    .events(&EventsRequest {
                        range,
                        limit,
                        cursor: cursor.take(),
                    })
                    .await
                    .unwrap();
                assert!(page.events.len() <= limit as usize);
                cursor = page.next.clone();
                pages.push(page.events);
                if cursor.is_none() {
                    return pages;
                }
                assert!(pages.len() < 100, "the pages never end");
            }
        }
    };
    // The live alarm reaches the server's history through its own subscription.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pages = loop {
        let pages = read_all(100).await;
        if pages.concat().len() >= 13 {
            break pages;
        }
        assert!(
            Instant::now() < deadline,
            "the live alarm never reached the history"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all = pages.concat();
    let messages: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
    let mut expected: Vec<String> = (0..12).map(|i| format!("Seeded alarm {i}")).collect();
    expected.push("Boiler temperature high".into());
    assert_eq!(messages, expected);
    assert_eq!(all[0].id, "736565642d30", "EventId b\"seed-0\" in hex");
    let priorities: Vec<EventPriority> = all[..12].iter().map(|e| e.priority).collect();
    use EventPriority::{Critical, High, Low, Medium};
    assert_eq!(
        priorities,
        [
            Low, Low, Medium, Medium, Medium, Medium, High, High, High, Critical, Critical,
            Critical
        ],
        "severities 100 + 80 i"
    );
    assert!(all.iter().all(|e| e.category == "ExclusiveLevelAlarmType"));
    assert_eq!(all[12].event_type, "alarm");
    assert_eq!(all[12].properties["conditionName"], "TemperatureHigh");

    // Pages of 5 cut the pairs of seeded alarms that share an instant: none lost or repeated.
    let pages = read_all(5).await;
    assert_eq!(pages.len(), 3, "13 events in pages of 5");
    let paged: Vec<String> = pages.concat().into_iter().map(|e| e.id).collect();
    let ids: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
    assert_eq!(paged, ids);
    for limit in [1, 2, 3] {
        let paged: Vec<String> = read_all(limit)
            .await
            .concat()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(paged, ids, "pages of {limit}");
    }

    // Only the range's events.
    let first = all[0].time;
    let page = source
        .events(&EventsRequest {
            range: TimeRange::new(first, first).unwrap(),
            limit: 100,
            cursor: None,
        })
        .await
        .unwrap();
    let messages: Vec<&str> = page.events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["Seeded alarm 0", "Seeded alarm 1"]);

    let err = source
        .events(&EventsRequest {
            range: range(),
            limit: 5,
            cursor: Some("nope".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_cursor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_event_history_refuses_time_range_reads_as_unsupported() {
    let server = Server::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    let now = chrono::Utc::now();
    let request = EventsRequest {
        range: TimeRange::new(now - chrono::Duration::hours(1), now).unwrap(),
        limit: 10,
        cursor: None,
    };
    let err = source.events(&request).await.unwrap_err();
    assert_eq!(err.code(), "unsupported", "{err}");
    assert!(err.to_string().contains("event history"), "{err}");
    // Live events still come: the Server object reports them.
    let stream = source.subscribe_events().await;
    assert!(stream.is_ok(), "{:?}", stream.err());

    let mut settings = events_settings(&server);
    settings["events"] = json!(false);
    let off = open(&dir, settings).await.unwrap();
    assert!(!off.descriptor().capabilities.events);
    assert_eq!(
        off.events(&request).await.unwrap_err().code(),
        "unsupported"
    );
    assert_eq!(
        off.subscribe_events().await.err().map(|e| e.code()),
        Some("unsupported")
    );

    let mut settings = events_settings(&server);
    settings["eventNotifier"] = json!("ns=2;s=Nowhere");
    let nowhere = open(&dir, settings).await.unwrap();
    let err = nowhere.events(&request).await.unwrap_err();
    assert_eq!(err.code(), "source_unavailable", "{err}");
    assert!(err.to_string().contains("ns=2;s=Nowhere"), "{err}");
    let err = nowhere
        .subscribe_events()
        .await
        .err()
        .expect("an unknown notifier is refused");
    assert!(err.to_string().contains("ns=2;s=Nowhere"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_stream_resumes_after_the_server_restarts() {
    let mut server = Server::start(&["--alarms"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    let mut stream = source.subscribe_events().await.unwrap();
    server.command("raise").await;
    assert_eq!(next_events(&mut stream, 1).await[0].event_type, "alarm");

    server.restart().await;
    // Until the client has its session and monitored item back, alarms raised go nowhere:
    // raise again until one arrives on the same stream.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        server.command("event").await;
        if let Ok(Some(events)) =
            tokio::time::timeout(Duration::from_millis(1_000), stream.next()).await
        {
            assert_eq!(events[0].message, "Pump 2 started");
            break;
        }
        assert!(Instant::now() < deadline, "no event after the restart");
    }
    assert!(source.reconnects() >= 1);
    server.command("ack").await;
    // Events sent while the stream came back may still be queued before it.
    loop {
        let events = next_events(&mut stream, 1).await;
        if events.iter().any(|e| e.event_type == "acknowledged") {
            break;
        }
        assert!(
            events.iter().all(|e| e.message == "Pump 2 started"),
            "{events:#?}"
        );
    }
    assert_eq!(
        source.subscription_count(),
        1,
        "the events subscription, created again"
    );
}

/// Reads events until one matches, returning all read.
async fn events_until(
    stream: &mut uplink_source::EventStream,
    mut seen: Vec<EventMessage>,
    done: impl Fn(&EventMessage) -> bool,
) -> Vec<EventMessage> {
    while !seen.iter().any(&done) {
        seen.extend(next_events(stream, 1).await);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_active_before_the_stream_starts_comes_once_as_a_refresh_and_again_after_a_reconnect()
 {
    let mut server = Server::start(&["--alarms"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    server.command("raise").await;
    let mut stream = source.subscribe_events().await.unwrap();
    let first = next_events(&mut stream, 1).await;
    let refreshed = &first[0];
    assert_eq!(refreshed.event_type, "alarm", "{first:#?}");
    assert_eq!(refreshed.message, "Boiler temperature high");
    assert_eq!(refreshed.priority, EventPriority::High);
    assert_eq!(
        refreshed.properties.get("refresh").map(String::as_str),
        Some("true"),
        "sent again by ConditionRefresh: {:?}",
        refreshed.properties
    );

    server.command("ack").await;
    let seen = events_until(&mut stream, first, |e| e.event_type == "acknowledged").await;
    let acked = seen.last().unwrap();
    assert!(
        !acked.properties.contains_key("refresh"),
        "a live change is no refresh"
    );
    assert_eq!(
        seen.iter().filter(|e| e.event_type == "alarm").count(),
        1,
        "the active alarm comes once: {seen:#?}"
    );
    assert!(
        seen.iter().all(|e| !e.category.starts_with("Refresh")),
        "RefreshStart and RefreshEnd are not forwarded: {seen:#?}"
    );
    assert_eq!(
        source.health().state,
        HealthState::Ok,
        "ConditionRefresh answered"
    );

    // The server forgets the session; the client creates a new one and its subscriptions,
    // and refreshes the conditions again: the alarm (now acknowledged) comes as a refresh.
    server.signal("-USR1");
    let again = events_until(&mut stream, Vec::new(), |e| {
        e.properties.get("refresh").map(String::as_str) == Some("true")
    })
    .await;
    let again = again.last().unwrap();
    assert_eq!(again.event_type, "acknowledged", "{again:#?}");
    assert_eq!(
        again.properties.get("conditionName").map(String::as_str),
        Some("TemperatureHigh")
    );
    assert!(source.reconnects() >= 1);
    assert_eq!(source.subscription_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_condition_refresh_is_reported_and_live_events_still_flow() {
    let mut server = Server::start(&["--alarms", "--no-condition-refresh"]).await;
    let dir = tempfile::tempdir().unwrap();
    let source = open(&dir, events_settings(&server)).await.unwrap();
    server.command("raise").await;
    let mut stream = source
        .subscribe_events()
        .await
        .expect("a refused ConditionRefresh does not fail the stream");
    let health = source.health();
    assert_eq!(health.state, HealthState::Degraded, "{health:?}");
    let issue = &health.issues[0].message;
    assert!(
        issue.contains("ConditionRefresh") && issue.contains("BadNothingToDo"),
        "{issue}"
    );
    server.command("ack").await;
    let events = next_events(&mut stream, 1).await;
    assert_eq!(
        events[0].event_type, "acknowledged",
        "the alarm raised before the stream is not sent: {events:#?}"
    );
    assert!(!events[0].properties.contains_key("refresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_event_notifiers_are_watched_live_and_their_histories_merged_in_pages() {
    let mut server = Server::start(&["--alarms", "--event-history", "4"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = events_settings(&server);
    settings["eventNotifier"] = json!("Server\nns=2;s=Area2");
    let source = open(&dir, settings).await.unwrap();

    // History first: 4 alarms on the Server object and 2 events of Area2's own, the first at
    // the instant of the first alarm.
    let range = || {
        let now = chrono::Utc::now();
        TimeRange::new(
            now - chrono::Duration::minutes(5),
            now + chrono::Duration::seconds(1),
        )
        .unwrap()
    };
    let read_all = |limit: u32| {
        let source = source.clone();
        async move {
            let range = range();
            let mut events = Vec::new();
            let mut cursor = None;
            for _ in 0..100 {
                let page = source
                    .events(&EventsRequest {
                        range,
                        limit,
                        cursor: cursor.take(),
                    })
                    .await
                    .unwrap();
                assert!(page.events.len() <= limit as usize);
                events.extend(page.events);
                match page.next {
                    Some(next) => {
                        assert_eq!(next.split('.').count(), 3, "names its notifier: {next}");
                        cursor = Some(next);
                    }
                    None => return events,
                }
            }
            panic!("the pages never end");
        }
    };
    let all = read_all(100).await;
    let messages: Vec<&str> = all.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Seeded alarm 0",
            "Seeded alarm 1",
            "Area 2 seeded 0",
            "Seeded alarm 2",
            "Seeded alarm 3",
            "Area 2 seeded 1",
        ],
        "by time, then notifier, then the server's order"
    );
    let ids: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
    for limit in [1, 2, 3] {
        let paged: Vec<String> = read_all(limit).await.into_iter().map(|e| e.id).collect();
        assert_eq!(paged, ids, "pages of {limit}");
    }

    // Live: each notifier's events on one stream.
    let mut stream = source.subscribe_events().await.unwrap();
    for command in ["raise", "area2", "event"] {
        server.command(command).await;
    }
    let live = next_events(&mut stream, 3).await;
    let mut messages: Vec<&str> = live.iter().map(|e| e.message.as_str()).collect();
    messages.sort_unstable();
    assert_eq!(
        messages,
        [
            "Area 2 door opened",
            "Boiler temperature high",
            "Pump 2 started"
        ],
        "each notifier's events: {live:#?}"
    );
    let door = live
        .iter()
        .find(|e| e.message == "Area 2 door opened")
        .unwrap();
    assert_eq!(door.topic, "Area2");
    assert_eq!(door.priority, EventPriority::Medium, "severity 300");
    assert_eq!(door.category, "SystemEventType");
    assert_eq!(
        source.subscription_count(),
        1,
        "one subscription, two items"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_notifier_line_is_named_in_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        json!({"endpointUrl": "opc.tcp://127.0.0.1:1/", "eventNotifier": "Server\nArea 2"});
    let message = field_error(open(&dir, settings).await, "eventNotifier");
    assert!(
        message.contains("line 2") && message.contains("Area 2"),
        "{message}"
    );
}
