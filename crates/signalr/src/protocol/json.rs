//! The JSON hub protocol (`json`, version 1): one JSON object per `0x1E`-terminated record.

use serde::{Deserialize, Deserializer};
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

    fn encode_stream_item(
        &self,
        invocation_id: &str,
        item: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if item.is_empty() || item.contains(&RECORD_SEPARATOR) {
            return Err(Error::Conversion(
                "a stream item encoded ahead is not a JSON text".into(),
            ));
        }
        out.reserve(item.len() + invocation_id.len() + 40);
        out.extend_from_slice(b"{\"type\":2");
        write_key(b"invocationId", out);
        write_str(invocation_id, out);
        write_key(b"item", out);
        out.extend_from_slice(item);
        out.push(b'}');
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

/// Encodes one message as JSON, without the separator.
///
/// Written by hand rather than through a serialised struct: the fields are few and fixed, and
/// strings — a 16 KiB argument or result is common — are copied in one piece when they need no
/// escaping instead of byte by byte (the profile of the echo benchmark put `serde_json`'s
/// per-byte string escaping first). Numbers, objects and escaped strings still go through
/// `serde_json`, so the output is byte for byte what `serde_json` writes.
///
/// # Errors
/// Only if a value cannot be serialised (it always can for `serde_json::Value`).
pub fn encode(message: &HubMessage, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(b"{\"type\":");
    out.extend_from_slice(itoa::Buffer::new().format(message.type_id()).as_bytes());
    match message {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => {
            write_headers(&inv.headers, out);
            if let Some(id) = &inv.invocation_id {
                write_key(b"invocationId", out);
                write_str(id, out);
            }
            write_key(b"target", out);
            write_str(&inv.target, out);
            write_key(b"arguments", out);
            out.push(b'[');
            // Arguments that arrived as MessagePack are converted (only a relay between
            // protocols does this).
            let converted: Vec<Value>;
            let values = match &inv.arguments {
                Arguments::Values(values) => values,
                Arguments::MessagePack { .. } => {
                    converted = inv.arguments.clone().into_values()?;
                    &converted
                }
            };
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(value, out)?;
            }
            out.push(b']');
            if !inv.stream_ids.is_empty() {
                write_key(b"streamIds", out);
                out.push(b'[');
                for (i, id) in inv.stream_ids.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(id, out);
                }
                out.push(b']');
            }
        }
        HubMessage::StreamItem(item) => {
            write_headers(&item.headers, out);
            write_key(b"invocationId", out);
            write_str(&item.invocation_id, out);
            write_key(b"item", out);
            write_value(&item.item, out)?;
        }
        HubMessage::Completion(c) => {
            write_headers(&c.headers, out);
            write_key(b"invocationId", out);
            write_str(&c.invocation_id, out);
            match &c.outcome {
                Outcome::Void => {}
                Outcome::Result(v) => {
                    write_key(b"result", out);
                    write_value(v, out)?;
                }
                Outcome::Error(e) => {
                    write_key(b"error", out);
                    write_str(e, out);
                }
            }
        }
        HubMessage::CancelInvocation(c) => {
            write_headers(&c.headers, out);
            write_key(b"invocationId", out);
            write_str(&c.invocation_id, out);
        }
        HubMessage::Ping => {}
        HubMessage::Close(close) => {
            if let Some(error) = &close.error {
                write_key(b"error", out);
                write_str(error, out);
            }
            if close.allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            write_key(b"sequenceId", out);
            out.extend_from_slice(itoa::Buffer::new().format(*sequence_id).as_bytes());
        }
    }
    out.push(b'}');
    Ok(())
}

/// `,"key":` — every key follows `type`, so each is preceded by a comma.
fn write_key(key: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\":");
}

fn write_headers(headers: &Headers, out: &mut Vec<u8>) {
    if headers.is_empty() {
        return;
    }
    write_key(b"headers", out);
    out.push(b'{');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(name, out);
        out.push(b':');
        write_str(value, out);
    }
    out.push(b'}');
}

/// A JSON value; a string at the top is written by [`write_str`], anything else by `serde_json`.
fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::String(s) => {
            write_str(s, out);
            Ok(())
        }
        other => serde_json::to_writer(&mut *out, other).map_err(Error::malformed),
    }
}

/// A JSON string: copied whole between quotes when nothing in it needs escaping (the common
/// case), else escaped by `serde_json`.
fn write_str(s: &str, out: &mut Vec<u8>) {
    if needs_escaping(s.as_bytes()) {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

/// Whether any byte must be escaped in a JSON string: a quote, a backslash or a control
/// character. Checked 32 bytes at a time with no early exit inside a block, which the compiler
/// turns into vector instructions.
fn needs_escaping(bytes: &[u8]) -> bool {
    let escaped = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        if block.iter().fold(false, |any, &b| any | escaped(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| escaped(b))
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
    fn strings_are_written_as_serde_json_writes_them() {
        let long_clean = "x".repeat(100);
        let tricky = [
            "",
            "plain",
            long_clean.as_str(),
            "quote \" inside",
            "back\\slash",
            "new\nline and tab\t",
            "\u{1}\u{1f} controls",
            "unicode: Größe 温度 🚀",
            "\u{7f} DEL stays as it is",
            "end with quote\"",
        ];
        for text in tricky {
            // Placed at every offset of a 32-byte block, so the block scan and its tail both
            // see the byte that needs escaping.
            for pad in 0..33 {
                let s = format!("{}{text}", "a".repeat(pad));
                let mut out = Vec::new();
                write_str(&s, &mut out);
                assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
        let message = HubMessage::Completion(Completion {
            headers: [("k\"ey".to_owned(), "v\u{2}".to_owned())].into(),
            invocation_id: "7".into(),
            outcome: Outcome::Result(json!({"b": ["x\"", 1.5, null], "a": true})),
        });
        let mut out = Vec::new();
        encode(&message, &mut out).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"type":3,"headers":{"k\"ey":"v\u0002"},"invocationId":"7","result":{"a":true,"b":["x\"",1.5,null]}}"#
        );
        assert_eq!(decode(&out).unwrap(), message);
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
