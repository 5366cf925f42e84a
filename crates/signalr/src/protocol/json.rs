//! The JSON hub protocol (`json`, version 1): one JSON object per `0x1E`-terminated record.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::message::{
    Arguments, CancelInvocation, Close, Completion, Headers, HubMessage, Invocation, Outcome,
    StreamItem,
};
use super::records::{RECORD_SEPARATOR, RecordReader};
use super::{HubProtocol, MessageDecoder, TransferFormat, ValueEncoding};
use crate::error::{Error, Result};

/// The JSON hub protocol, the one every official client speaks by default.
///
/// ```
/// use uplink_signalr::protocol::{HubMessage, HubProtocol, JsonProtocol};
///
/// let mut decoder = JsonProtocol.decoder(32 * 1024);
/// decoder.extend(b"{\"type\":1,\"invocationId\":\"0\",\"target\":\"Add\",\"arguments\":[1,2]}\x1e");
/// let Some(HubMessage::Invocation(call)) = decoder.next_message().unwrap() else { panic!() };
/// assert_eq!(call.target, "Add");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonProtocol;

impl HubProtocol for JsonProtocol {
    fn name(&self) -> &'static str {
        "json"
    }

    fn version(&self) -> u32 {
        1
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }

    fn value_encoding(&self) -> ValueEncoding {
        ValueEncoding::Json
    }

    fn encode(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<()> {
        encode(message, out)?;
        out.push(RECORD_SEPARATOR);
        Ok(())
    }

    fn decoder(&self, max_message_size: usize) -> Box<dyn MessageDecoder> {
        Box::new(JsonDecoder {
            records: RecordReader::new(max_message_size),
        })
    }
}

#[derive(Debug)]
struct JsonDecoder {
    records: RecordReader,
}

impl MessageDecoder for JsonDecoder {
    fn extend(&mut self, bytes: &[u8]) {
        self.records.extend(bytes);
    }

    fn next_message(&mut self) -> Result<Option<HubMessage>> {
        match self.records.next_record()? {
            Some(record) => decode(&record).map(Some),
            None => Ok(None),
        }
    }

    fn has_partial(&self) -> bool {
        self.records.has_partial()
    }
}

/// Every field any message type may carry; each type then checks the ones it needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireIn {
    #[serde(rename = "type")]
    kind: Option<u64>,
    #[serde(default)]
    headers: Headers,
    invocation_id: Option<String>,
    target: Option<String>,
    arguments: Option<Vec<Value>>,
    stream_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    item: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    error: Option<String>,
    allow_reconnect: Option<bool>,
    sequence_id: Option<u64>,
}

/// Keeps an explicit `null` as `Some(Value::Null)`: `"result": null` is a result.
fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Decodes one record (without its separator) into a message.
///
/// # Errors
/// A clear error for malformed JSON, a missing `type`, an unknown type or a missing field.
pub fn decode(record: &[u8]) -> Result<HubMessage> {
    let wire: WireIn = serde_json::from_slice(record).map_err(Error::malformed)?;
    let kind = wire.kind.ok_or(Error::MissingField {
        message_type: "hub",
        field: "type",
    })?;
    let need_id = |id: Option<String>, message_type: &'static str| {
        id.ok_or(Error::MissingField {
            message_type,
            field: "invocationId",
        })
    };
    Ok(match kind {
        1 | 4 => {
            let message_type = if kind == 1 {
                "Invocation"
            } else {
                "StreamInvocation"
            };
            let invocation_id = if kind == 4 {
                Some(need_id(wire.invocation_id, message_type)?)
            } else {
                wire.invocation_id
            };
            let invocation = Invocation {
                headers: wire.headers,
                invocation_id,
                target: wire.target.ok_or(Error::MissingField {
                    message_type,
                    field: "target",
                })?,
                arguments: wire
                    .arguments
                    .ok_or(Error::MissingField {
                        message_type,
                        field: "arguments",
                    })?
                    .into(),
                stream_ids: wire.stream_ids.unwrap_or_default(),
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => HubMessage::StreamItem(StreamItem {
            headers: wire.headers,
            invocation_id: need_id(wire.invocation_id, "StreamItem")?,
            item: wire.item.ok_or(Error::MissingField {
                message_type: "StreamItem",
                field: "item",
            })?,
        }),
        3 => {
            let outcome = match (wire.result, wire.error) {
                (Some(_), Some(_)) => {
                    return Err(Error::ProtocolViolation(
                        "Completion carries both a result and an error".into(),
                    ));
                }
                (Some(result), None) => Outcome::Result(result),
                (None, Some(error)) => Outcome::Error(error),
                (None, None) => Outcome::Void,
            };
            HubMessage::Completion(Completion {
                headers: wire.headers,
                invocation_id: need_id(wire.invocation_id, "Completion")?,
                outcome,
            })
        }
        5 => HubMessage::CancelInvocation(CancelInvocation {
            headers: wire.headers,
            invocation_id: need_id(wire.invocation_id, "CancelInvocation")?,
        }),
        6 => HubMessage::Ping,
        7 => HubMessage::Close(Close {
            error: wire.error,
            allow_reconnect: wire.allow_reconnect.unwrap_or(false),
        }),
        8 | 9 => {
            let message_type = if kind == 8 { "Ack" } else { "Sequence" };
            let sequence_id = wire.sequence_id.ok_or(Error::MissingField {
                message_type,
                field: "sequenceId",
            })?;
            if kind == 8 {
                HubMessage::Ack { sequence_id }
            } else {
                HubMessage::Sequence { sequence_id }
            }
        }
        other => return Err(Error::UnknownMessageType(other)),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireOut<'a> {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(skip_serializing_if = "no_headers")]
    headers: Option<&'a Headers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invocation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a [Value]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_ids: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_reconnect: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_id: Option<u64>,
}

fn no_headers(h: &Option<&Headers>) -> bool {
    h.is_none_or(|h| h.is_empty())
}

impl<'a> WireOut<'a> {
    fn of_kind(kind: u8) -> Self {
        Self {
            kind,
            headers: None,
            invocation_id: None,
            target: None,
            arguments: None,
            stream_ids: None,
            item: None,
            result: None,
            error: None,
            allow_reconnect: None,
            sequence_id: None,
        }
    }
}

/// Encodes one message as JSON, without the separator.
///
/// # Errors
/// Only if a value cannot be serialised (it always can for `serde_json::Value`).
pub fn encode(message: &HubMessage, out: &mut Vec<u8>) -> Result<()> {
    // Arguments that arrived as MessagePack are converted (only a relay between protocols
    // does this).
    let converted: Vec<Value>;
    let mut wire = WireOut::of_kind(message.type_id());
    match message {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => {
            wire.headers = Some(&inv.headers);
            wire.invocation_id = inv.invocation_id.as_deref();
            wire.target = Some(&inv.target);
            wire.arguments = Some(match &inv.arguments {
                Arguments::Values(values) => values,
                Arguments::MessagePack { .. } => {
                    converted = inv.arguments.clone().into_values()?;
                    &converted
                }
            });
            if !inv.stream_ids.is_empty() {
                wire.stream_ids = Some(&inv.stream_ids);
            }
        }
        HubMessage::StreamItem(item) => {
            wire.headers = Some(&item.headers);
            wire.invocation_id = Some(&item.invocation_id);
            wire.item = Some(&item.item);
        }
        HubMessage::Completion(c) => {
            wire.headers = Some(&c.headers);
            wire.invocation_id = Some(&c.invocation_id);
            match &c.outcome {
                Outcome::Void => {}
                Outcome::Result(v) => wire.result = Some(v),
                Outcome::Error(e) => wire.error = Some(e),
            }
        }
        HubMessage::CancelInvocation(c) => {
            wire.headers = Some(&c.headers);
            wire.invocation_id = Some(&c.invocation_id);
        }
        HubMessage::Ping => {}
        HubMessage::Close(close) => {
            wire.error = close.error.as_deref();
            if close.allow_reconnect {
                wire.allow_reconnect = Some(true);
            }
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            wire.sequence_id = Some(*sequence_id);
        }
    }
    serde_json::to_writer(out, &wire).map_err(Error::malformed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode_str(s: &str) -> Result<HubMessage> {
        decode(s.as_bytes())
    }

    #[test]
    fn decodes_every_message_type_of_the_specification() {
        let cases = [
            (
                r#"{"type":1,"invocationId":"123","target":"Send","arguments":[42,"Test Message"]}"#,
                HubMessage::Invocation(Invocation::new(
                    Some("123".into()),
                    "Send",
                    vec![json!(42), json!("Test Message")],
                )),
            ),
            (
                r#"{"type":1,"target":"Send","arguments":[]}"#,
                HubMessage::Invocation(Invocation::new(None, "Send", vec![])),
            ),
            (
                r#"{"type":2,"invocationId":"123","item":42}"#,
                HubMessage::StreamItem(StreamItem {
                    headers: Headers::new(),
                    invocation_id: "123".into(),
                    item: json!(42),
                }),
            ),
            (
                r#"{"type":3,"invocationId":"123"}"#,
                HubMessage::Completion(Completion::new("123", Outcome::Void)),
            ),
            (
                r#"{"type":3,"invocationId":"123","result":null}"#,
                HubMessage::Completion(Completion::new("123", Outcome::Result(Value::Null))),
            ),
            (
                r#"{"type":3,"invocationId":"123","error":"It didn't work!"}"#,
                HubMessage::Completion(Completion::new(
                    "123",
                    Outcome::Error("It didn't work!".into()),
                )),
            ),
            (
                r#"{"type":5,"invocationId":"123"}"#,
                HubMessage::CancelInvocation(CancelInvocation {
                    headers: Headers::new(),
                    invocation_id: "123".into(),
                }),
            ),
            (r#"{"type":6}"#, HubMessage::Ping),
            (
                r#"{"type":7,"error":"bye","allowReconnect":true}"#,
                HubMessage::Close(Close {
                    error: Some("bye".into()),
                    allow_reconnect: true,
                }),
            ),
            (
                r#"{"type":8,"sequenceId":1394}"#,
                HubMessage::Ack { sequence_id: 1394 },
            ),
            (
                r#"{"type":9,"sequenceId":1234}"#,
                HubMessage::Sequence { sequence_id: 1234 },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(decode_str(text).unwrap(), expected, "{text}");
            let mut out = Vec::new();
            encode(&expected, &mut out).unwrap();
            assert_eq!(decode(&out).unwrap(), expected, "re-encoded {text}");
        }
    }

    #[test]
    fn headers_and_stream_ids_are_kept_and_unknown_fields_ignored() {
        let msg = decode_str(
            r#"{"type":1,"headers":{"Foo":"Bar"},"invocationId":"1","target":"Up","arguments":[],"streamIds":["7"],"extra":true}"#,
        )
        .unwrap();
        let HubMessage::Invocation(inv) = msg else {
            panic!("not an invocation")
        };
        assert_eq!(inv.headers.get("Foo").map(String::as_str), Some("Bar"));
        assert_eq!(inv.stream_ids, vec!["7".to_string()]);
    }

    #[test]
    fn malformed_input_gets_an_error_naming_the_problem() {
        let cases: [(&str, &str); 10] = [
            ("{", "malformed_message"),
            ("[]", "malformed_message"),
            (r#"{"target":"x"}"#, "missing_field"),
            (r#"{"type":99}"#, "unknown_message_type"),
            (r#"{"type":"1"}"#, "malformed_message"),
            (r#"{"type":1,"arguments":[]}"#, "missing_field"),
            (r#"{"type":1,"target":"x"}"#, "missing_field"),
            (r#"{"type":4,"target":"x","arguments":[]}"#, "missing_field"),
            (r#"{"type":2,"invocationId":"1"}"#, "missing_field"),
            (
                r#"{"type":3,"invocationId":"1","result":1,"error":"e"}"#,
                "protocol_violation",
            ),
        ];
        for (text, code) in cases {
            let err = decode_str(text).unwrap_err();
            assert_eq!(err.code(), code, "{text}: {err}");
        }
        let err = decode_str(r#"{"type":1,"arguments":[]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invocation message is missing its required 'target' field"
        );
    }

    #[test]
    fn encoding_matches_the_specification_examples() {
        let mut out = Vec::new();
        JsonProtocol
            .encode(
                &HubMessage::Completion(Completion::new("1", Outcome::Result(json!(42)))),
                &mut out,
            )
            .unwrap();
        assert_eq!(
            out,
            b"{\"type\":3,\"invocationId\":\"1\",\"result\":42}\x1e"
        );
        out.clear();
        JsonProtocol.encode(&HubMessage::Ping, &mut out).unwrap();
        assert_eq!(out, b"{\"type\":6}\x1e");
        out.clear();
        JsonProtocol
            .encode(&HubMessage::Close(Close::default()), &mut out)
            .unwrap();
        assert_eq!(out, b"{\"type\":7}\x1e");
    }
}
