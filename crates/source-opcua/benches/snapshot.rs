//! OPC UA snapshot of 1 000 tags through Uplink's `opcua` source, beside the same Read service
//! calls (batches of 500 nodes) made directly with async-opcua in the same process, against the
//! same real server (Python asyncua running `tests/fixtures/opcua_server.py --tags 1000` on
//! loopback; `UPLINK_ASYNCUA_PYTHON` or the venv `scripts/lib/setup.sh` installs). Goal: ratio
//! ≥ 0.9.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use opcua::client::ClientBuilder;
use opcua::types::{MessageSecurityMode, NodeId, ReadValueId, TimestampsToReturn, UserTokenPolicy};
use serde_json::json;
use uplink_measure::{Runs, compare, describe};
use uplink_model::TagSearch;
use uplink_source::{DataSource, SourceConfig, SourceContext};
use uplink_source_opcua::OpcUaSource;

const TAGS: usize = 1_000;

fn python() -> PathBuf {
    std::env::var_os("UPLINK_ASYNCUA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                .join(".cache/uplink/asyncua-2.1.0/bin/python")
        })
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/opcua_server.py");
    let mut child = Command::new(python())
        .arg(fixture)
        .args(["--tags", &TAGS.to_string(), "--period", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the asyncua fixture (run scripts/test once to install it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the fixture's port");
    let _server = Server(child);
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .expect("PORT n");
    let url = format!("opc.tcp://127.0.0.1:{port}/uplink/");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = SourceConfig {
        name: "bench".into(),
        kind: "opcua".into(),
        description: String::new(),
        settings: json!({"endpointUrl": url, "browseRoot": "ns=2;s=Bulk", "maxTags": 5000})
            .as_object()
            .cloned()
            .expect("object"),
    };
    let source = runtime
        .block_on(OpcUaSource::open(
            &config,
            &SourceContext::in_dir(dir.path()),
        ))
        .expect("open the source");
    let page = runtime
        .block_on(source.search(&TagSearch {
            pattern: "*".into(),
            offset: 0,
            limit: 5_000,
        }))
        .expect("search");
    let names: Vec<String> = page.tags.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names.len(), TAGS, "the fixture serves {TAGS} bulk tags");
    let nodes: Vec<NodeId> = page
        .tags
        .iter()
        .map(|t| t.id.parse().expect("node id"))
        .collect();

    // The baseline: a plain async-opcua session doing the same Read calls.
    let (session, handle) = runtime.block_on(async {
        let mut client = ClientBuilder::new()
            .application_name("bench baseline")
            .application_uri("urn:uplink:bench")
            .create_sample_keypair(true)
            .pki_dir(dir.path().join("baseline-pki"))
            .trust_server_certs(false)
            .session_retry_limit(0)
            .client()
            .expect("client");
        let endpoint: opcua::types::EndpointDescription = (
            url.as_str(),
            "None",
            MessageSecurityMode::None,
            UserTokenPolicy::anonymous(),
        )
            .into();
        let (session, event_loop) = client
            .connect_to_matching_endpoint(endpoint, opcua::client::IdentityToken::Anonymous)
            .await
            .expect("baseline session");
        let handle = event_loop.spawn();
        session.wait_for_connection().await;
        (session, handle)
    });
    let direct = |nodes: &[NodeId]| {
        runtime.block_on(async {
            let mut values = Vec::with_capacity(nodes.len());
            for batch in nodes.chunks(500) {
                let read: Vec<ReadValueId> = batch.iter().cloned().map(ReadValueId::from).collect();
                values.extend(
                    session
                        .read(&read, TimestampsToReturn::Both, 0.0)
                        .await
                        .expect("read"),
                );
            }
            values
        })
    };

    let runs = Runs::new(3, 25);
    let ours = runs.time(|| runtime.block_on(source.snapshot(&names)).expect("snapshot"));
    let baseline = runs.time(|| direct(&nodes));
    report(&describe(
        "opcua snapshot, 1000 tags (Uplink)",
        &ours,
        Some(TAGS as u64),
    ));
    report(&compare(
        "opcua snapshot, 1000 tags",
        &ours,
        "direct async-opcua Read",
        &baseline,
    ));
    drop(source);
    handle.abort();
}

/// A benchmark's result line, on standard output.
#[allow(clippy::print_stdout)]
fn report(line: &str) {
    println!("{line}");
}
