//! Encoding hub messages in the JSON protocol: `uplink-signalr`'s encoder beside the generic
//! way, `serde_json` serialising a struct of the message's fields, in the same run. The echo
//! benchmarks' profile put string escaping first; this isolates it.
//! Run with `cargo bench -p uplink-signalr --bench encode`.

use serde::Serialize;
use serde_json::{Value, json};
use uplink_measure::{Runs, compare};
use uplink_signalr::protocol::{Completion, HubMessage, Invocation, Outcome, json};

/// The baseline: the same fields, serialised by `serde_json` in one call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Generic<'a> {
    #[serde(rename = "type")]
    kind: u8,
    invocation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a [Value]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
}

const MESSAGES: usize = 1000;

#[allow(clippy::print_stdout)]
fn main() {
    let runs = Runs::new(20, 101);
    for (label, payload) in [
        ("100 B", "x".repeat(100)),
        ("16 KiB", "x".repeat(16 * 1024)),
    ] {
        let arguments = vec![json!(payload)];
        let invocation = HubMessage::Invocation(Invocation::new(
            Some("17".into()),
            "Echo",
            arguments.clone(),
        ));
        let result = json!(payload);
        let completion = HubMessage::Completion(Completion {
            headers: Default::default(),
            invocation_id: "17".into(),
            outcome: Outcome::Result(result.clone()),
        });
        let mut out = Vec::with_capacity(32 * 1024);
        let ours = runs.time(|| {
            for _ in 0..MESSAGES {
                out.clear();
                json::encode(&invocation, &mut out).expect("encodes");
                out.clear();
                json::encode(&completion, &mut out).expect("encodes");
            }
            out.len()
        });
        let generic = runs.time(|| {
            for _ in 0..MESSAGES {
                out.clear();
                let call = Generic {
                    kind: 1,
                    invocation_id: "17",
                    target: Some("Echo"),
                    arguments: Some(&arguments),
                    result: None,
                };
                serde_json::to_writer(&mut out, &call).expect("encodes");
                out.clear();
                let done = Generic {
                    kind: 3,
                    invocation_id: "17",
                    target: None,
                    arguments: None,
                    result: Some(&result),
                };
                serde_json::to_writer(&mut out, &done).expect("encodes");
            }
            out.len()
        });
        println!(
            "{}",
            compare(
                &format!("JSON invocation + completion of {label}, ours, per {MESSAGES}"),
                &ours,
                "serde_json serialising the fields",
                &generic
            )
        );
    }
}
