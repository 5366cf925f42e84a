//! The SignalR hub protocol without I/O: messages, the handshake, and the two encodings behind
//! the [`HubProtocol`] trait — JSON with `0x1E` record framing, and MessagePack with VarInt
//! length framing — so the transports never depend on which one a connection speaks.

pub mod handshake;
pub mod json;
mod length_prefix;
mod message;
pub mod messagepack;
mod records;

pub use handshake::{HandshakeRequest, HandshakeResponse};
pub use json::JsonProtocol;
pub use length_prefix::{LengthPrefixedReader, write_length_prefix};
pub use message::{
    Arguments, CancelInvocation, Close, Completion, Headers, HubMessage, Invocation, Outcome,
    StreamItem,
};
pub use messagepack::MessagePackProtocol;
pub use records::{DEFAULT_MAX_MESSAGE_SIZE, RECORD_SEPARATOR, RecordReader, write_record};

use bytes::Bytes;

use crate::error::Result;

/// Whether a protocol's messages are text (safe for Server-Sent Events) or arbitrary bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferFormat {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl TransferFormat {
    /// The name used in the negotiate response.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferFormat::Text => "Text",
            TransferFormat::Binary => "Binary",
        }
    }
}

/// How a protocol carries argument values, and so how typed arguments are serialised for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// JSON values; byte strings must travel as text.
    Json,
    /// MessagePack; byte strings travel as `bin`.
    MessagePack,
}

/// An encoding of hub messages, chosen by name in the handshake.
pub trait HubProtocol: Send + Sync + std::fmt::Debug + 'static {
    /// The name a client asks for in the handshake (`json`, `messagepack`).
    fn name(&self) -> &'static str;
    /// The protocol version (1 for both official protocols).
    fn version(&self) -> u32;
    /// Text or binary; text protocols may use Server-Sent Events.
    fn transfer_format(&self) -> TransferFormat;
    /// How argument values are encoded.
    fn value_encoding(&self) -> ValueEncoding;
    /// Appends one message with its framing to `out`.
    ///
    /// # Errors
    /// If the message cannot be encoded.
    fn encode(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<()>;
    /// Appends one `StreamItem` of `invocation_id` (no headers) with its framing, its item
    /// already encoded in this protocol's [`ValueEncoding`] — a JSON value's text, or one
    /// MessagePack value — and copied in as it is: what a stream whose items are encoded once,
    /// ahead of the connection, costs instead of a second encoding.
    ///
    /// # Errors
    /// If the item could break the framing (a JSON text holding the record separator, which
    /// no valid JSON text does), or is empty.
    fn encode_stream_item(&self, invocation_id: &str, item: &[u8], out: &mut Vec<u8>)
    -> Result<()>;
    /// A decoder for one connection's incoming byte stream.
    fn decoder(&self, max_message_size: usize) -> Box<dyn MessageDecoder>;
}

/// Turns a connection's incoming bytes, in chunks of any size, into messages.
pub trait MessageDecoder: Send + std::fmt::Debug {
    /// Appends received bytes.
    fn extend(&mut self, bytes: &[u8]);
    /// Appends a received frame; a decoder may keep it rather than copy it.
    fn extend_owned(&mut self, bytes: Bytes) {
        self.extend(&bytes);
    }
    /// The next complete message, `None` until more bytes arrive.
    ///
    /// # Errors
    /// For an oversized or malformed message. The malformed message is consumed, but a
    /// conforming endpoint closes the connection after a protocol error.
    fn next_message(&mut self) -> Result<Option<HubMessage>>;
    /// Whether part of a message is buffered.
    fn has_partial(&self) -> bool;
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        // Includes the separator, newlines and non-ASCII: JSON escapes what it must.
        proptest::string::string_regex("[a-zA-Z0-9 \u{1e}\n\r\"\\\\é漢🙂]{0,12}").unwrap()
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(text(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn headers() -> impl Strategy<Value = Headers> {
        proptest::collection::btree_map(text(), text(), 0..3)
    }

    fn invocation() -> impl Strategy<Value = Invocation> {
        (
            headers(),
            proptest::option::of(text()),
            text(),
            proptest::collection::vec(value(), 0..4),
            proptest::collection::vec(text(), 0..3),
        )
            .prop_map(|(headers, invocation_id, target, arguments, stream_ids)| {
                Invocation {
                    headers,
                    invocation_id,
                    target,
                    arguments: arguments.into(),
                    stream_ids,
                }
            })
    }

    fn message() -> impl Strategy<Value = HubMessage> {
        let outcome = prop_oneof![
            Just(Outcome::Void),
            value().prop_map(Outcome::Result),
            text().prop_map(Outcome::Error),
        ];
        prop_oneof![
            invocation().prop_map(HubMessage::Invocation),
            invocation().prop_map(|mut i| {
                i.invocation_id.get_or_insert_with(|| "s".into());
                HubMessage::StreamInvocation(i)
            }),
            (headers(), text(), value()).prop_map(|(headers, invocation_id, item)| {
                HubMessage::StreamItem(StreamItem {
                    headers,
                    invocation_id,
                    item,
                })
            }),
            (headers(), text(), outcome).prop_map(|(headers, invocation_id, outcome)| {
                HubMessage::Completion(Completion {
                    headers,
                    invocation_id,
                    outcome,
                })
            }),
            (headers(), text()).prop_map(|(headers, invocation_id)| {
                HubMessage::CancelInvocation(CancelInvocation {
                    headers,
                    invocation_id,
                })
            }),
            Just(HubMessage::Ping),
            (proptest::option::of(text()), any::<bool>()).prop_map(|(error, allow_reconnect)| {
                HubMessage::Close(Close {
                    error,
                    allow_reconnect,
                })
            }),
            any::<u64>().prop_map(|sequence_id| HubMessage::Ack { sequence_id }),
            any::<u64>().prop_map(|sequence_id| HubMessage::Sequence { sequence_id }),
        ]
    }

    const PROTOCOLS: [&dyn HubProtocol; 2] = [&JsonProtocol, &MessagePackProtocol];

    proptest! {
        #[test]
        fn an_item_encoded_ahead_decodes_as_the_item_would(
            id in text(),
            item in value(),
            then in message(),
        ) {
            let expected = HubMessage::StreamItem(StreamItem {
                headers: Headers::new(),
                invocation_id: id.clone(),
                item: item.clone(),
            });
            let ahead: [(&dyn HubProtocol, Vec<u8>); 2] = [
                (&JsonProtocol, serde_json::to_vec(&item).unwrap()),
                (&MessagePackProtocol, rmp_serde::to_vec(&item).unwrap()),
            ];
            for (protocol, encoded) in ahead {
                let mut bytes = Vec::new();
                protocol.encode_stream_item(&id, &encoded, &mut bytes).unwrap();
                protocol.encode(&then, &mut bytes).unwrap();
                let mut decoder = protocol.decoder(usize::MAX);
                decoder.extend(&bytes);
                prop_assert_eq!(decoder.next_message().unwrap(), Some(expected.clone()));
                prop_assert_eq!(decoder.next_message().unwrap(), Some(then.clone()));
            }
        }

        #[test]
        fn encode_then_decode_round_trips(msg in message()) {
            for protocol in PROTOCOLS {
                let mut bytes = Vec::new();
                protocol.encode(&msg, &mut bytes).unwrap();
                let mut decoder = protocol.decoder(usize::MAX);
                decoder.extend(&bytes);
                prop_assert_eq!(decoder.next_message().unwrap(), Some(msg.clone()));
                prop_assert!(decoder.next_message().unwrap().is_none());
                prop_assert!(!decoder.has_partial());
            }
        }

        #[test]
        fn any_rechunking_yields_the_same_messages(
            messages in proptest::collection::vec(message(), 1..8),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
          for protocol in PROTOCOLS {
            let mut stream = Vec::new();
            for m in &messages {
                protocol.encode(m, &mut stream).unwrap();
            }
            let mut cut_points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cut_points.push(0);
            cut_points.push(stream.len());
            cut_points.sort_unstable();
            cut_points.dedup();

            let mut decoder = protocol.decoder(usize::MAX);
            let mut decoded = Vec::new();
            for pair in cut_points.windows(2) {
                decoder.extend(&stream[pair[0]..pair[1]]);
                while let Some(m) = decoder.next_message().unwrap() {
                    decoded.push(m);
                }
            }
            prop_assert_eq!(&decoded, &messages);
          }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for protocol in PROTOCOLS {
                let mut decoder = protocol.decoder(64);
                decoder.extend(&bytes);
                for _ in 0..bytes.len() + 1 {
                    match decoder.next_message() {
                        Ok(None) | Err(crate::Error::MessageTooLarge { .. }) => break,
                        Ok(Some(_)) | Err(_) => {}
                    }
                }
            }
        }

        #[test]
        fn arbitrary_messagepack_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            // Framed correctly, so every body reaches the message decoder.
            let mut framed = Vec::new();
            write_length_prefix(bytes.len(), &mut framed);
            framed.extend_from_slice(&bytes);
            let mut decoder = MessagePackProtocol.decoder(1024);
            decoder.extend(&framed);
            if let Ok(Some(message)) = decoder.next_message() {
                let mut again = Vec::new();
                MessagePackProtocol.encode(&message, &mut again).unwrap();
                let mut decoder = MessagePackProtocol.decoder(usize::MAX);
                decoder.extend(&again);
                prop_assert_eq!(decoder.next_message().unwrap(), Some(message));
            }
        }
    }

    #[test]
    fn an_item_encoded_ahead_cannot_break_the_framing() {
        let mut out = Vec::new();
        assert!(
            JsonProtocol
                .encode_stream_item("1", b"\"a\x1eb\"", &mut out)
                .is_err()
        );
        assert!(JsonProtocol.encode_stream_item("1", b"", &mut out).is_err());
        assert!(
            MessagePackProtocol
                .encode_stream_item("1", b"", &mut out)
                .is_err()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_string_holding_the_separator_is_escaped_not_split() {
        let msg = HubMessage::StreamItem(StreamItem {
            headers: Headers::new(),
            invocation_id: "1".into(),
            item: json!("a\u{1e}b"),
        });
        let mut bytes = Vec::new();
        JsonProtocol.encode(&msg, &mut bytes).unwrap();
        assert_eq!(bytes.iter().filter(|&&b| b == RECORD_SEPARATOR).count(), 1);
    }
}
