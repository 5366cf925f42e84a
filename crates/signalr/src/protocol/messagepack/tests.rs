use serde_json::json;

use super::*;

/// Decodes one framed message.
fn decode_framed(bytes: &[u8]) -> Result<Option<HubMessage>> {
    let mut decoder = MessagePackProtocol.decoder(1024 * 1024);
    decoder.extend(bytes);
    decoder.next_message()
}

fn body(message: &HubMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode(message, &mut out).unwrap();
    out
}

fn values(arguments: &Arguments) -> Vec<Value> {
    arguments.clone().into_values().unwrap()
}

#[test]
fn decodes_the_specification_examples() {
    let invocation = [
        0x96, 0x01, 0x80, 0xa3, b'x', b'y', b'z', 0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91,
        0x2a, 0x90,
    ];
    let HubMessage::Invocation(inv) = decode(&Bytes::copy_from_slice(&invocation)).unwrap() else {
        panic!("an invocation")
    };
    assert_eq!(inv.invocation_id.as_deref(), Some("xyz"));
    assert_eq!(inv.target, "method");
    assert_eq!(values(&inv.arguments), [json!(42)]);

    let non_blocking = [
        0x96, 0x01, 0x80, 0xc0, 0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a, 0x90,
    ];
    let HubMessage::Invocation(inv) = decode(&Bytes::copy_from_slice(&non_blocking)).unwrap()
    else {
        panic!("an invocation")
    };
    assert_eq!(inv.invocation_id, None);

    let with_headers = [
        0x96, 0x01, 0x82, 0xa1, b'x', 0xa1, b'y', 0xa1, b'z', 0xa1, b'z', 0xa3, b'x', b'y', b'z',
        0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a, 0x90,
    ];
    let HubMessage::Invocation(inv) = decode(&Bytes::copy_from_slice(&with_headers)).unwrap()
    else {
        panic!("an invocation")
    };
    assert_eq!(inv.headers.get("x").map(String::as_str), Some("y"));
    assert_eq!(inv.headers.get("z").map(String::as_str), Some("z"));

    let cases: [(&[u8], HubMessage); 9] = [
        (
            &[0x94, 0x02, 0x80, 0xa3, b'x', b'y', b'z', 0x2a],
            HubMessage::StreamItem(StreamItem {
                headers: Headers::new(),
                invocation_id: "xyz".into(),
                item: json!(42),
            }),
        ),
        (
            &[
                0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x01, 0xa5, b'E', b'r', b'r', b'o', b'r',
            ],
            HubMessage::Completion(Completion::new("xyz", Outcome::Error("Error".into()))),
        ),
        (
            &[0x94, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x02],
            HubMessage::Completion(Completion::new("xyz", Outcome::Void)),
        ),
        (
            &[0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x03, 0x2a],
            HubMessage::Completion(Completion::new("xyz", Outcome::Result(json!(42)))),
        ),
        (
            &[0x93, 0x05, 0x80, 0xa3, b'x', b'y', b'z'],
            HubMessage::CancelInvocation(CancelInvocation {
                headers: Headers::new(),
                invocation_id: "xyz".into(),
            }),
        ),
        (&[0x91, 0x06], HubMessage::Ping),
        (
            &[0x92, 0x07, 0xa3, b'x', b'y', b'z'],
            HubMessage::Close(Close {
                error: Some("xyz".into()),
                allow_reconnect: false,
            }),
        ),
        (
            &[0x93, 0x07, 0xa3, b'x', b'y', b'z', 0xc3],
            HubMessage::Close(Close {
                error: Some("xyz".into()),
                allow_reconnect: true,
            }),
        ),
        (
            &[0x92, 0x08, 0xcc, 0x24],
            HubMessage::Ack { sequence_id: 36 },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            decode(&Bytes::copy_from_slice(bytes)).unwrap(),
            expected,
            "{bytes:x?}"
        );
    }
    assert_eq!(
        decode(&Bytes::from_static(&[0x92, 0x09, 0xcc, 0x13])).unwrap(),
        HubMessage::Sequence { sequence_id: 19 }
    );
}

#[test]
fn encodes_as_the_specification_shows() {
    assert_eq!(body(&HubMessage::Ping), [0x91, 0x06]);
    assert_eq!(
        body(&HubMessage::Completion(Completion::new(
            "xyz",
            Outcome::Void
        ))),
        [0x94, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x02]
    );
    assert_eq!(
        body(&HubMessage::Completion(Completion::new(
            "xyz",
            Outcome::Result(json!(42))
        ))),
        [0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x03, 0x2a]
    );
    assert_eq!(
        body(&HubMessage::Invocation(Invocation::new(
            Some("xyz".into()),
            "method",
            vec![json!(42)]
        ))),
        [
            0x96, 0x01, 0x80, 0xa3, b'x', b'y', b'z', 0xa6, b'm', b'e', b't', b'h', b'o', b'd',
            0x91, 0x2a, 0x90
        ]
    );
    // Framed: the VarInt length, then the body.
    let mut framed = Vec::new();
    MessagePackProtocol
        .encode(&HubMessage::Ping, &mut framed)
        .unwrap();
    assert_eq!(framed, [0x02, 0x91, 0x06]);
}

#[test]
fn binary_arguments_bind_to_bytes_without_conversion() {
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Chunk(#[serde(with = "bytes_visitor")] Vec<u8>);
    mod bytes_visitor {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(V)
        }
    }
    // ["q1", 7, bin "a\"\n\u{1e}"]: bytes JSON would have to escape travel as they are.
    let array = [
        0x93, 0xa2, b'q', b'1', 0x07, 0xc4, 0x04, b'a', b'"', b'\n', 0x1e,
    ];
    let message = HubMessage::Invocation(Invocation::new(
        Some("1".into()),
        "QueryChunk",
        Arguments::MessagePack {
            array: Bytes::copy_from_slice(&array),
            len: 3,
        },
    ));
    let mut framed = Vec::new();
    MessagePackProtocol.encode(&message, &mut framed).unwrap();
    let Some(HubMessage::Invocation(inv)) = decode_framed(&framed).unwrap() else {
        panic!("an invocation")
    };
    let Arguments::MessagePack { array: got, len } = &inv.arguments else {
        panic!("arguments kept as MessagePack")
    };
    assert_eq!((&got[..], *len), (&array[..], 3));
    let (id, seq, chunk): (String, u64, Chunk) = bind(got, *len).unwrap();
    assert_eq!(
        (id.as_str(), seq, chunk),
        ("q1", 7, Chunk(b"a\"\n\x1e".to_vec()))
    );
    // As JSON values a bin is an array of byte values.
    assert_eq!(
        values(&inv.arguments)[2],
        json!([97, 34, 10, 30]),
        "bin as JSON"
    );
}

#[test]
fn malformed_messages_get_errors_naming_the_problem() {
    let cases: [(&[u8], &str, &str); 14] = [
        (&[0x2a], "malformed_message", "message: expected an array"),
        (&[0x90], "malformed_message", "empty array"),
        (&[0x91, 0xa1, b'x'], "malformed_message", "message type"),
        (&[0x91, 0x63], "unknown_message_type", "99"),
        (&[0x93, 0x01, 0x80, 0xc0], "missing_field", "'arguments'"),
        (
            &[0x95, 0x04, 0x80, 0xc0, 0xa1, b'm', 0x90],
            "missing_field",
            "'invocationId'",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0x2a, 0x90],
            "malformed_message",
            "target: expected a string, found MessagePack unsigned integer",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0xa0],
            "malformed_message",
            "arguments: expected an array",
        ),
        (&[0x93, 0x02, 0x80, 0xa1, b'1'], "missing_field", "'item'"),
        (
            &[0x95, 0x03, 0x80, 0xa1, b'1', 0x09, 0x2a],
            "protocol_violation",
            "result kind 9",
        ),
        (
            &[0x94, 0x03, 0x80, 0xa1, b'1', 0x02, 0x2a],
            "malformed_message",
            "follow",
        ),
        (
            &[
                0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x91, 0xdb, 0xff, 0xff, 0xff, 0xff,
            ],
            "malformed_message",
            "ends in the middle",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa2, 0xff, 0xfe, 0x90],
            "malformed_message",
            "UTF-8",
        ),
        (
            &[0x94, 0x02, 0x80, 0xa1, b'1', 0xd4, 0x01, 0x00],
            "malformed_message",
            "extension",
        ),
    ];
    for (bytes, code, words) in cases {
        let err = decode(&Bytes::copy_from_slice(bytes)).unwrap_err();
        assert_eq!(err.code(), code, "{bytes:x?}: {err}");
        assert!(err.to_string().contains(words), "{bytes:x?}: {err}");
    }
}

#[test]
fn deep_nesting_is_refused_before_anything_recurses() {
    let mut array = vec![0x91u8; 200];
    array.push(0x2a);
    let mut message = vec![0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x91];
    message.extend_from_slice(&array);
    let err = decode(&Bytes::from(message)).unwrap_err();
    assert!(err.to_string().contains("deeper than 64"), "{err}");
    let mut item = vec![0x94, 0x02, 0x80, 0xa1, b'1'];
    item.extend_from_slice(&array);
    let err = decode(&Bytes::from(item)).unwrap_err();
    assert!(err.to_string().contains("deeper than 64"), "{err}");
}

#[test]
fn a_huge_announced_container_is_refused_without_allocating_for_it() {
    // An array announcing 2^32 - 1 items in a few bytes.
    let message = [
        0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0xdd, 0xff, 0xff, 0xff, 0xff,
    ];
    let err = decode(&Bytes::copy_from_slice(&message)).unwrap_err();
    assert!(err.to_string().contains("ends in the middle"), "{err}");
    let item = [0x94, 0x02, 0x80, 0xa1, b'1', 0xdf, 0xff, 0xff, 0xff, 0xff];
    assert!(decode(&Bytes::copy_from_slice(&item)).is_err());
}

#[test]
fn fields_a_later_version_adds_are_skipped() {
    let message = [0x93, 0x06, 0x81, 0xa1, b'k', 0x90, 0xc3];
    assert_eq!(
        decode(&Bytes::copy_from_slice(&message)).unwrap(),
        HubMessage::Ping
    );
    // An invocation of a 2.x client without stream ids.
    let message = [0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x90];
    let HubMessage::Invocation(inv) = decode(&Bytes::copy_from_slice(&message)).unwrap() else {
        panic!("an invocation")
    };
    assert!(inv.stream_ids.is_empty() && inv.arguments.is_empty());
}

#[test]
fn values_round_trip_through_messagepack() {
    let value = json!({
        "null": null, "t": true, "small": 7, "neg": -300, "big": u64::MAX, "min": i64::MIN,
        "float": 1.5, "text": "é漢\u{1e}\"", "list": [1, [2, {"x": []}]], "empty": {}
    });
    let mut out = Vec::new();
    write_value(&value, &mut out).unwrap();
    assert_eq!(value_from_slice(&out).unwrap(), value);
}
