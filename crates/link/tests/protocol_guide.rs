//! docs/protocol.md is normative, and a stranger writes a connector from its examples. Each
//! ```` ```json KIND ```` block in it is parsed here by the types the hub decodes the link with
//! (`uplink-link`, `uplink-model`, and the SignalR JSON hub protocol for whole messages), and
//! written back: every field the example shows must survive, with its value. An example that
//! drifts from the code (a renamed field, a missing required one, a wrong enum value) fails.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uplink_link::{
    CHUNK_WINDOW, ChunkData, GrantList, Heartbeat, MAX_CHUNK_BYTES, QueryInfo, QueryOutcome,
    Registered, Registration, RelayedQuery, RevokeRequest, SubscribeRequest, SubscriptionUpdate,
    TokenRenewed, WriteAnswer, WriteRequest, close_reason, to_connector, to_hub,
};
use uplink_model::{EventMessage, Tag, TagValue};
use uplink_signalr::protocol::json::decode;
use uplink_signalr::protocol::{HubMessage, Outcome};

const GUIDE: &str = include_str!("../../../docs/protocol.md");

/// Every ```` ```json ```` block: (line number, info word, text).
fn examples() -> Vec<(usize, String, String)> {
    let mut found = Vec::new();
    let mut lines = GUIDE.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```json") else {
            continue;
        };
        let mut text = String::new();
        for (_, line) in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        found.push((number + 1, info.trim().to_owned(), text));
    }
    found
}

/// Whether `written` (what the code writes back) shows everything `example` shows. Times are
/// compared as instants, numbers as numbers; fields the example leaves out may hold defaults.
fn covers(written: &Value, example: &Value) -> Result<(), String> {
    match (written, example) {
        (Value::Object(w), Value::Object(e)) => e.iter().try_for_each(|(key, value)| {
            let Some(found) = w.get(key) else {
                return Err(format!("field '{key}' is not part of the message"));
            };
            covers(found, value).map_err(|why| format!("{key}: {why}"))
        }),
        (Value::Array(w), Value::Array(e)) if w.len() == e.len() => w
            .iter()
            .zip(e)
            .enumerate()
            .try_for_each(|(i, (w, e))| covers(w, e).map_err(|why| format!("[{i}]: {why}"))),
        (Value::String(w), Value::String(e)) if w != e => {
            match (
                DateTime::parse_from_rfc3339(w),
                DateTime::parse_from_rfc3339(e),
            ) {
                (Ok(a), Ok(b)) if a == b => Ok(()),
                _ => Err(format!("'{e}' reads back as '{w}'")),
            }
        }
        (Value::Number(w), Value::Number(e)) if w.as_f64() == e.as_f64() => Ok(()),
        (w, e) if w == e => Ok(()),
        (w, e) => Err(format!("{e} reads back as {w}")),
    }
}

fn check<T: DeserializeOwned + Serialize>(example: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(example.clone()).map_err(|e| e.to_string())?;
    covers(&serde_json::to_value(&typed).unwrap(), example)
}

/// The arguments of an invocation, read as the method's parameter types.
fn arguments<T: DeserializeOwned>(values: Vec<Value>) -> Result<(), String> {
    serde_json::from_value::<T>(Value::Array(values))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A whole SignalR JSON message, as the hub's decoder reads it off the wire.
fn check_message(text: &str) -> Result<(), String> {
    let message = decode(text.trim().as_bytes()).map_err(|e| e.to_string())?;
    match message {
        HubMessage::Invocation(invocation) => {
            let values = invocation.arguments.into_values().unwrap();
            match invocation.target.as_str() {
                to_hub::QUERY_CHUNK => {
                    let (_, seq, data): (String, u64, ChunkData) =
                        serde_json::from_value(Value::Array(values)).map_err(|e| e.to_string())?;
                    if data.len() > MAX_CHUNK_BYTES {
                        return Err(format!("chunk {seq} is over the limit"));
                    }
                    Ok(())
                }
                to_hub::QUERY_END => arguments::<(String, QueryOutcome)>(values),
                to_hub::QUERY_INFO => arguments::<(String, QueryInfo)>(values),
                to_hub::REGISTER => arguments::<(Registration,)>(values),
                to_hub::RENEW_TOKEN => arguments::<(String,)>(values),
                to_hub::REVOKE_GRANT => arguments::<(RevokeRequest,)>(values),
                to_hub::HEARTBEAT => arguments::<()>(values),
                to_connector::QUERY => arguments::<(RelayedQuery,)>(values),
                to_connector::CANCEL_QUERY => arguments::<(String, String)>(values),
                to_connector::GRANTS => arguments::<(GrantList,)>(values),
                to_connector::SUBSCRIBE => arguments::<(SubscribeRequest,)>(values),
                to_connector::UNSUBSCRIBE => arguments::<(String, String)>(values),
                to_connector::WRITE => arguments::<(WriteRequest,)>(values),
                to_hub::SUBSCRIPTION_UPDATE => arguments::<(String, SubscriptionUpdate)>(values),
                to_hub::SUBSCRIPTION_END => arguments::<(String, QueryOutcome)>(values),
                other => Err(format!("no method '{other}' on the link")),
            }
        }
        HubMessage::Completion(completion) => match completion.outcome {
            Outcome::Error(message) if message.is_empty() => Err("an empty error".into()),
            _ => Ok(()),
        },
        HubMessage::Close(close) => {
            let reason = close.error.unwrap_or_default();
            let known = [
                close_reason::REPLACED,
                close_reason::REMOVED,
                close_reason::SIGN_IN_REVOKED,
                close_reason::TOKEN_EXPIRED,
                close_reason::NOT_REGISTERED,
            ];
            if known.contains(&reason.as_str()) {
                Ok(())
            } else {
                Err(format!("the hub never closes a link with '{reason}'"))
            }
        }
        other => Err(format!("unexpected message {other:?}")),
    }
}

#[test]
fn every_example_message_in_the_guide_is_read_by_the_hubs_decoder() {
    let examples = examples();
    let mut failures = Vec::new();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for (line, kind, text) in &examples {
        *kinds.entry(kind.clone()).or_default() += 1;
        let outcome = if kind == "message" {
            check_message(text)
        } else {
            match serde_json::from_str::<Value>(text) {
                Err(e) => Err(format!("not JSON: {e}")),
                Ok(example) => match kind.as_str() {
                    "Registration" => check::<Registration>(&example),
                    "Registered" => check::<Registered>(&example),
                    "TokenRenewed" => check::<TokenRenewed>(&example),
                    "QueryOutcome" => check::<QueryOutcome>(&example),
                    "QueryInfo" => check::<QueryInfo>(&example),
                    "RevokeRequest" => check::<RevokeRequest>(&example),
                    "Heartbeat" => check::<Heartbeat>(&example),
                    "RelayedQuery" => check::<RelayedQuery>(&example),
                    "GrantList" => check::<GrantList>(&example),
                    "TagValue" => check::<TagValue>(&example),
                    "Tag" => check::<Tag>(&example),
                    "EventMessage" => check::<EventMessage>(&example),
                    "SubscribeRequest" => check::<SubscribeRequest>(&example),
                    "SubscriptionUpdate" => check::<SubscriptionUpdate>(&example),
                    "WriteRequest" => check::<WriteRequest>(&example),
                    "WriteAnswer" => check::<WriteAnswer>(&example),
                    "" => Err("the block does not name its message (```json KIND)".into()),
                    other => Err(format!("no message kind '{other}' is known to this test")),
                },
            }
        };
        if let Err(why) = outcome {
            failures.push(format!("docs/protocol.md line {line} ({kind}): {why}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The guide shows every message an implementer handles.
    for kind in [
        "Registration",
        "Registered",
        "TokenRenewed",
        "QueryOutcome",
        "QueryInfo",
        "RevokeRequest",
        "Heartbeat",
        "RelayedQuery",
        "GrantList",
        "TagValue",
        "Tag",
        "SubscribeRequest",
        "SubscriptionUpdate",
        "WriteRequest",
        "WriteAnswer",
        "EventMessage",
        "message",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} example in the guide");
    }
}

/// A drifted example must fail: the checks above are not vacuous.
#[test]
fn a_drifted_example_is_caught() {
    let renamed = serde_json::json!({ "appID": "app_x" });
    assert!(check::<RevokeRequest>(&renamed).is_err());
    let extra = serde_json::json!({ "appId": "app_x", "sources": "line-1" });
    assert!(check::<RevokeRequest>(&extra).is_err(), "unknown field");
    let relayed = serde_json::json!({ "queryId": "q", "appId": "a", "userId": "u", "source": "s",
        "query": { "type": "raw", "tag": "T", "start": "2026-11-25T08:00:00Z",
                   "end": "2026-11-25T09:00:00Z", "maxcount": 5 } });
    assert!(
        check::<RelayedQuery>(&relayed).is_err(),
        "misspelt maxCount"
    );
    let tag = serde_json::json!({ "id": "T", "name": "T", "dataType": "double" });
    assert!(check::<Tag>(&tag).is_err(), "unknown dataType");
    assert!(check_message(r#"{"type":7,"error":"bye"}"#).is_err());
    assert!(check_message(r#"{"type":1,"target":"QueryChunk","arguments":["q",0]}"#).is_err());
}

/// The numbers the guide states are the ones the code enforces.
#[test]
fn the_guides_limits_are_the_codes() {
    assert!(GUIDE.contains(&format!(
        "Keep at most {CHUNK_WINDOW} chunks of one query unacknowledged"
    )));
    assert_eq!(MAX_CHUNK_BYTES, 65_536);
    assert!(GUIDE.contains("At most 65 536 bytes (64 KiB) of body per chunk"));
    for reason in [
        close_reason::REPLACED,
        close_reason::REMOVED,
        close_reason::SIGN_IN_REVOKED,
        close_reason::TOKEN_EXPIRED,
    ] {
        assert!(
            GUIDE.contains(&format!("| `{reason}` |")),
            "the guide's Close table lacks '{reason}'"
        );
    }
    // Relayed times carry nanoseconds: the guide's example does, and it reads back exactly.
    let at: DateTime<Utc> = "2026-11-25T08:00:00.123456789Z".parse().unwrap();
    assert!(GUIDE.contains("2026-11-25T08:00:00.123456789Z"));
    assert_eq!(
        uplink_model::TimeExpr::from(at).to_string(),
        "2026-11-25T08:00:00.123456789Z"
    );
}
