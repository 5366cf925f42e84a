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

/// A byte string argument, serialised as `bin` (as an answer chunk is).
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// The framed message `encode` gives for an invocation whose arguments were built first.
fn encoded_in_two_steps<A: Serialize>(
    type_id: u8,
    id: Option<&str>,
    target: &str,
    arguments: A,
) -> Vec<u8> {
    let invocation = Invocation::new(
        id.map(str::to_owned),
        target,
        arguments_from(arguments).unwrap(),
    );
    let message = if type_id == 4 {
        HubMessage::StreamInvocation(invocation)
    } else {
        HubMessage::Invocation(invocation)
    };
    let mut out = Vec::new();
    MessagePackProtocol.encode(&message, &mut out).unwrap();
    out
}

#[test]
fn invocations_encoded_in_one_step_are_the_bytes_of_two() {
    #[derive(Serialize)]
    struct Point {
        x: i32,
        label: String,
    }
    let point = || Point {
        x: -3,
        label: "p".into(),
    };
    let id = Some("17");
    let check = |one: Bytes, two: Vec<u8>, what: &str| {
        assert_eq!(&one[..], &two[..], "{what}");
    };
    // An answer chunk at its largest, so the length prefix takes three bytes, and a small one.
    for size in [64 * 1024, 100, 0] {
        let chunk = vec![b'x'; size];
        check(
            encode_invocation_with(1, id, "QueryChunk", ("q1", 7u64, Blob(chunk.clone()))).unwrap(),
            encoded_in_two_steps(1, id, "QueryChunk", ("q1", 7u64, Blob(chunk))),
            "chunk",
        );
    }
    check(
        encode_invocation_with(1, None, "Send", ()).unwrap(),
        encoded_in_two_steps(1, None, "Send", ()),
        "no arguments",
    );
    check(
        encode_invocation_with(1, id, "One", point()).unwrap(),
        encoded_in_two_steps(1, id, "One", point()),
        "one struct argument",
    );
    check(
        encode_invocation_with(1, id, "One", "text").unwrap(),
        encoded_in_two_steps(1, id, "One", "text"),
        "one string argument",
    );
    check(
        encode_invocation_with(4, id, "Count", (3u32, point())).unwrap(),
        encoded_in_two_steps(4, id, "Count", (3u32, point())),
        "stream invocation",
    );
    check(
        encode_invocation_with(1, id, "Values", json!([1, "a", null, {"k": [true]}])).unwrap(),
        encoded_in_two_steps(1, id, "Values", json!([1, "a", null, {"k": [true]}])),
        "JSON values",
    );
    // A prefix of each length the VarInt takes up to three bytes.
    for size in [10, 200, 20_000] {
        let chunk = vec![b'y'; size];
        let one =
            encode_invocation_with(1, id, "QueryChunk", ("q", 0u64, Blob(chunk.clone()))).unwrap();
        check(
            one.clone(),
            encoded_in_two_steps(1, id, "QueryChunk", ("q", 0u64, Blob(chunk))),
            "prefix",
        );
        let Some(HubMessage::Invocation(inv)) = decode_framed(&one).unwrap() else {
            panic!("an invocation")
        };
        assert_eq!(inv.target, "QueryChunk");
    }
}

/// Binds the arguments of the one invocation in `frame`, received whole as a transport frame.
fn bind_chunk_from(frame: &Bytes) -> Vec<(String, u64, crate::Binary)> {
    let mut decoder = MessagePackProtocol.decoder(4 * 1024 * 1024);
    decoder.extend_owned(frame.clone());
    let mut bound = Vec::new();
    while let Some(message) = decoder.next_message().unwrap() {
        let HubMessage::Invocation(inv) = message else {
            panic!("an invocation")
        };
        let Arguments::MessagePack { array, len } = &inv.arguments else {
            panic!("arguments kept as MessagePack")
        };
        bound.push(bind(array, *len).unwrap());
    }
    bound
}

fn inside(frame: &[u8], part: &[u8]) -> bool {
    let start = frame.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + frame.len()
}

#[test]
fn a_chunk_bound_from_its_frame_is_a_slice_of_it_not_a_copy() {
    let chunk = vec![b'z'; 64 * 1024 - 300];
    let frame =
        encode_invocation_with(1, Some("4"), "QueryChunk", ("q", 3u64, Blob(chunk.clone())))
            .unwrap();
    let bound = bind_chunk_from(&frame);
    let (query, seq, data) = &bound[0];
    assert_eq!((query.as_str(), *seq, &data.0[..]), ("q", 3, &chunk[..]));
    assert!(
        inside(&frame, &data.0),
        "the chunk points into the received frame"
    );

    // A MessagePack `str` (what other clients may send) is shared the same way.
    let text = "t".repeat(10_000);
    let frame = encode_invocation_with(1, Some("5"), "QueryChunk", ("q", 4u64, &text)).unwrap();
    let bound = bind_chunk_from(&frame);
    assert_eq!(&bound[0].2.0[..], text.as_bytes());
    assert!(inside(&frame, &bound[0].2.0), "a str is a slice too");
}

#[test]
fn a_small_chunk_in_a_large_frame_is_copied_so_it_pins_no_more_than_itself() {
    // A small chunk batched with a large message: kept as a slice, it would keep the whole
    // frame alive while it waits for the app.
    let small = encode_invocation_with(
        1,
        Some("1"),
        "QueryChunk",
        ("q", 0u64, Blob(vec![b's'; 100])),
    )
    .unwrap();
    let large = encode_invocation_with(
        1,
        Some("2"),
        "QueryChunk",
        ("r", 0u64, Blob(vec![b'l'; 60_000])),
    )
    .unwrap();
    let frame = Bytes::from([&small[..], &large[..]].concat());
    let bound = bind_chunk_from(&frame);
    assert_eq!(bound.len(), 2);
    assert_eq!(&bound[0].2.0[..], &[b's'; 100][..]);
    assert!(!inside(&frame, &bound[0].2.0), "the small chunk is a copy");
    assert!(
        inside(&frame, &bound[1].2.0),
        "the chunk that is most of the frame is a slice"
    );

    // A small chunk among large other arguments is copied as well.
    let padded = encode_invocation_with(
        1,
        Some("3"),
        "QueryChunk",
        ("q".repeat(50_000), 0u64, Blob(vec![b'p'; 1_000])),
    )
    .unwrap();
    let bound = bind_chunk_from(&padded);
    assert!(!inside(&padded, &bound[0].2.0), "a copy");
}

#[test]
fn a_binary_bound_outside_messagepack_owns_its_bytes() {
    // JSON: the string's own buffer; rmp_serde from another buffer: a copy.
    let from_json: crate::Binary = serde_json::from_value(json!("abc")).unwrap();
    assert_eq!(&from_json.0[..], b"abc");
    let mut elsewhere = Vec::new();
    Blob(b"def".to_vec())
        .serialize(&mut rmp_serde::Serializer::new(&mut elsewhere))
        .unwrap();
    let copied: crate::Binary = rmp_serde::from_slice(&elsewhere).unwrap();
    assert_eq!(&copied.0[..], b"def");
    assert!(!inside(&elsewhere, &copied.0));
    let err = serde_json::from_value::<crate::Binary>(json!(12)).unwrap_err();
    assert!(err.to_string().contains("byte string"), "{err}");
}
