//! The MessagePack hub protocol (`messagepack`, version 1): each message is one MessagePack
//! array, framed by a VarInt length prefix. It needs a transport that carries binary
//! (WebSockets, long polling); Server-Sent Events carry text only.
//!
//! Arguments are kept as the MessagePack array they arrived in and bound to the method's
//! parameter types directly, so a `bin` argument reaches a handler as bytes, with no base64
//! and no JSON string escaping on either side. Stream items and results become JSON values
//! (a `bin` among them becomes an array of byte values).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::length_prefix::{LengthPrefixedReader, write_length_prefix};
use super::message::{
    Arguments, CancelInvocation, Close, Completion, Headers, HubMessage, Invocation, Outcome,
    StreamItem,
};
use super::{HubProtocol, MessageDecoder, TransferFormat, ValueEncoding};
use crate::error::{Error, Result};

/// Values nested deeper than this are refused: binding and conversion recurse per level.
const MAX_DEPTH: usize = 64;

/// Completion result kinds.
const RESULT_ERROR: u64 = 1;
const RESULT_VOID: u64 = 2;
const RESULT_VALUE: u64 = 3;

/// The MessagePack hub protocol, which the official clients offer as an option
/// (`@microsoft/signalr-protocol-msgpack`, `AddMessagePackProtocol`).
///
/// ```
/// use uplink_signalr::protocol::{HubMessage, HubProtocol, MessagePackProtocol};
///
/// let mut decoder = MessagePackProtocol.decoder(32 * 1024);
/// // The specification's example: Invocation "method" with id "xyz" and the argument 42.
/// decoder.extend(&[0x11, 0x96, 0x01, 0x80, 0xa3, b'x', b'y', b'z', 0xa6,
///     b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a, 0x90]);
/// let Some(HubMessage::Invocation(call)) = decoder.next_message().unwrap() else { panic!() };
/// assert_eq!(call.target, "method");
/// assert_eq!(call.arguments.into_values().unwrap(), [serde_json::json!(42)]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackProtocol;

impl HubProtocol for MessagePackProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        1
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn value_encoding(&self) -> ValueEncoding {
        ValueEncoding::MessagePack
    }

    fn encode(&self, message: &HubMessage, out: &mut Vec<u8>) -> Result<()> {
        // Arguments already in MessagePack (a relayed answer chunk) go straight to `out`: the
        // parts around them are encoded aside to learn the length first.
        if let HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) = message
            && let Arguments::MessagePack { array, .. } = &inv.arguments
        {
            let mut head = Vec::with_capacity(64);
            encode_invocation_head(message.type_id(), inv, &mut head)?;
            let mut tail = Vec::with_capacity(8);
            encode_stream_ids(inv, &mut tail)?;
            out.reserve(head.len() + array.len() + tail.len() + 5);
            write_length_prefix(head.len() + array.len() + tail.len(), out);
            out.extend_from_slice(&head);
            out.extend_from_slice(array);
            out.extend_from_slice(&tail);
            return Ok(());
        }
        let mut body = Vec::with_capacity(64);
        encode(message, &mut body)?;
        out.reserve(body.len() + 5);
        write_length_prefix(body.len(), out);
        out.extend_from_slice(&body);
        Ok(())
    }

    fn encode_stream_item(
        &self,
        invocation_id: &str,
        item: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if item.is_empty() {
            return Err(Error::Conversion(
                "a stream item encoded ahead is empty".into(),
            ));
        }
        // `[2, {}, invocationId, item]`, the parts before the item encoded aside to learn the
        // length first.
        let mut head = Vec::with_capacity(invocation_id.len() + 8);
        rmp::encode::write_array_len(&mut head, 4).map_err(write_error)?;
        rmp::encode::write_uint(&mut head, 2).map_err(write_error)?;
        rmp::encode::write_map_len(&mut head, 0).map_err(write_error)?;
        rmp::encode::write_str(&mut head, invocation_id).map_err(write_error)?;
        out.reserve(head.len() + item.len() + 5);
        write_length_prefix(head.len() + item.len(), out);
        out.extend_from_slice(&head);
        out.extend_from_slice(item);
        Ok(())
    }

    fn decoder(&self, max_message_size: usize) -> Box<dyn MessageDecoder> {
        Box::new(MessagePackDecoder {
            frames: LengthPrefixedReader::new(max_message_size),
        })
    }
}

#[derive(Debug)]
struct MessagePackDecoder {
    frames: LengthPrefixedReader,
}

impl MessageDecoder for MessagePackDecoder {
    fn extend(&mut self, bytes: &[u8]) {
        self.frames.extend(bytes);
    }

    fn extend_owned(&mut self, bytes: Bytes) {
        self.frames.extend_owned(bytes);
    }

    fn next_message(&mut self) -> Result<Option<HubMessage>> {
        let Some(body) = self.frames.next_message()? else {
            return Ok(None);
        };
        let mut message = decode(&body)?;
        // Arguments are a slice of what they arrived in, and a byte string bound from them a
        // slice of them (`Binary`), which may live on: arguments that are a small part of
        // their frame are copied out, so that they never keep much more than themselves alive.
        if let HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) = &mut message
            && let Arguments::MessagePack { array, .. } = &mut inv.arguments
            && !crate::binary::worth_sharing(array.len(), self.frames.held_by_last())
        {
            *array = Bytes::copy_from_slice(array);
        }
        Ok(Some(message))
    }

    fn has_partial(&self) -> bool {
        self.frames.has_partial()
    }
}

fn write_error(e: impl std::fmt::Display) -> Error {
    Error::Conversion(format!("MessagePack encoding failed: {e}"))
}

/// Encodes one message as a MessagePack array, without the length prefix.
///
/// # Errors
/// Only if a value cannot be serialised.
pub fn encode(message: &HubMessage, out: &mut Vec<u8>) -> Result<()> {
    use rmp::encode as mp;
    let kind = u64::from(message.type_id());
    match message {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => {
            encode_invocation_head(message.type_id(), inv, out)?;
            match &inv.arguments {
                Arguments::MessagePack { array, .. } => out.extend_from_slice(array),
                Arguments::Values(values) => {
                    mp::write_array_len(out, len_u32(values.len())?).map_err(write_error)?;
                    for value in values {
                        write_value(value, out)?;
                    }
                }
            }
            encode_stream_ids(inv, out)?;
        }
        HubMessage::StreamItem(item) => {
            mp::write_array_len(out, 4).map_err(write_error)?;
            mp::write_uint(out, kind).map_err(write_error)?;
            write_headers(&item.headers, out)?;
            mp::write_str(out, &item.invocation_id).map_err(write_error)?;
            write_value(&item.item, out)?;
        }
        HubMessage::Completion(c) => {
            let fields = if matches!(c.outcome, Outcome::Void) {
                4
            } else {
                5
            };
            mp::write_array_len(out, fields).map_err(write_error)?;
            mp::write_uint(out, kind).map_err(write_error)?;
            write_headers(&c.headers, out)?;
            mp::write_str(out, &c.invocation_id).map_err(write_error)?;
            match &c.outcome {
                Outcome::Void => {
                    mp::write_uint(out, RESULT_VOID).map_err(write_error)?;
                }
                Outcome::Error(e) => {
                    mp::write_uint(out, RESULT_ERROR).map_err(write_error)?;
                    mp::write_str(out, e).map_err(write_error)?;
                }
                Outcome::Result(v) => {
                    mp::write_uint(out, RESULT_VALUE).map_err(write_error)?;
                    write_value(v, out)?;
                }
            }
        }
        HubMessage::CancelInvocation(c) => {
            mp::write_array_len(out, 3).map_err(write_error)?;
            mp::write_uint(out, kind).map_err(write_error)?;
            write_headers(&c.headers, out)?;
            mp::write_str(out, &c.invocation_id).map_err(write_error)?;
        }
        // Always exactly 0x91 0x06, as the specification requires.
        HubMessage::Ping => out.extend_from_slice(&[0x91, 0x06]),
        HubMessage::Close(close) => {
            mp::write_array_len(out, 3).map_err(write_error)?;
            mp::write_uint(out, kind).map_err(write_error)?;
            match &close.error {
                Some(e) => mp::write_str(out, e).map_err(write_error)?,
                None => mp::write_nil(out).map_err(write_error)?,
            }
            mp::write_bool(out, close.allow_reconnect).map_err(write_error)?;
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            mp::write_array_len(out, 2).map_err(write_error)?;
            mp::write_uint(out, kind).map_err(write_error)?;
            mp::write_uint(out, *sequence_id).map_err(write_error)?;
        }
    }
    Ok(())
}

/// An invocation up to its arguments: `[type, headers, id, target, `.
fn encode_invocation_head(type_id: u8, inv: &Invocation, out: &mut Vec<u8>) -> Result<()> {
    write_invocation_head(
        type_id,
        &inv.headers,
        inv.invocation_id.as_deref(),
        &inv.target,
        out,
    )
}

fn write_invocation_head(
    type_id: u8,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    out: &mut Vec<u8>,
) -> Result<()> {
    use rmp::encode as mp;
    mp::write_array_len(out, 6).map_err(write_error)?;
    mp::write_uint(out, u64::from(type_id)).map_err(write_error)?;
    write_headers(headers, out)?;
    match invocation_id {
        Some(id) => mp::write_str(out, id).map_err(write_error)?,
        None => mp::write_nil(out).map_err(write_error)?,
    }
    mp::write_str(out, target).map_err(write_error)?;
    Ok(())
}

/// An invocation's last field, its stream ids.
fn encode_stream_ids(inv: &Invocation, out: &mut Vec<u8>) -> Result<()> {
    write_stream_ids(&inv.stream_ids, out)
}

fn write_stream_ids(stream_ids: &[String], out: &mut Vec<u8>) -> Result<()> {
    rmp::encode::write_array_len(out, len_u32(stream_ids.len())?).map_err(write_error)?;
    for id in stream_ids {
        rmp::encode::write_str(out, id).map_err(write_error)?;
    }
    Ok(())
}

/// Room left ahead of a message encoded by [`encode_invocation_with`] for its length prefix.
const PREFIX_ROOM: usize = 5;

/// Counts what a serialiser writes, and the first byte, without keeping any of it.
#[derive(Default)]
struct Measure {
    len: usize,
    first: Option<u8>,
}

impl std::io::Write for Measure {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.first.is_none() {
            self.first = bytes.first().copied();
        }
        self.len += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes an invocation (`type_id` 1) or stream invocation (4) without headers or stream
/// ids, length prefix included, its arguments serialised straight into the message under
/// [`arguments_from`]'s rule: the bytes [`MessagePackProtocol::encode`] gives for the same
/// invocation with `arguments_from(arguments)`, but a `bin` argument (an answer chunk) is
/// copied once, into the message, instead of into an argument array and then the message.
///
/// The arguments are serialised twice, first only to measure them, so the message is
/// allocated once at its size; the prefix goes into room kept ahead of it.
pub(crate) fn encode_invocation_with<A: Serialize>(
    type_id: u8,
    invocation_id: Option<&str>,
    target: &str,
    arguments: A,
) -> Result<Bytes> {
    let conversion = |e: rmp_serde::encode::Error| Error::Conversion(e.to_string());
    let mut measure = Measure::default();
    arguments
        .serialize(&mut rmp_serde::Serializer::new(&mut measure).with_struct_map())
        .map_err(conversion)?;
    let mut out = Vec::with_capacity(
        PREFIX_ROOM + 16 + invocation_id.map_or(0, str::len) + target.len() + measure.len + 2,
    );
    out.resize(PREFIX_ROOM, 0);
    write_invocation_head(type_id, &Headers::new(), invocation_id, target, &mut out)?;
    match measure.first {
        // A sequence is the argument list as it is.
        Some(0x90..=0x9f | 0xdc | 0xdd) => arguments
            .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
            .map_err(conversion)?,
        // `()` (nil) is no arguments.
        Some(0xc0) => out.push(0x90),
        // Any other value is the one argument.
        Some(_) => {
            out.push(0x91);
            arguments
                .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
                .map_err(conversion)?;
        }
        None => {
            return Err(Error::Conversion(
                "the arguments serialise to nothing".into(),
            ));
        }
    }
    write_stream_ids(&[], &mut out)?;
    let len = out.len() - PREFIX_ROOM;
    let mut prefix = Vec::with_capacity(PREFIX_ROOM);
    write_length_prefix(len, &mut prefix);
    let start = PREFIX_ROOM - prefix.len();
    out[start..PREFIX_ROOM].copy_from_slice(&prefix);
    Ok(Bytes::from(out).slice(start..))
}

fn len_u32(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::Conversion("too many items for MessagePack".into()))
}

fn write_headers(headers: &Headers, out: &mut Vec<u8>) -> Result<()> {
    rmp::encode::write_map_len(out, len_u32(headers.len())?).map_err(write_error)?;
    for (key, value) in headers {
        rmp::encode::write_str(out, key).map_err(write_error)?;
        rmp::encode::write_str(out, value).map_err(write_error)?;
    }
    Ok(())
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    value
        .serialize(&mut rmp_serde::Serializer::new(out))
        .map_err(write_error)
}

/// Serialises call arguments as a MessagePack array, under the same rule as the JSON
/// protocol: a tuple or sequence is the argument list, `()` none, any other value one
/// argument. Structs become maps keyed by field name, as other languages expect.
pub(crate) fn arguments_from<A: Serialize>(arguments: A) -> Result<Arguments> {
    let mut out = Vec::with_capacity(64);
    arguments
        .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
        .map_err(|e| Error::Conversion(e.to_string()))?;
    let mut reader = Reader::new(&out);
    let array = match out.first() {
        Some(0x90..=0x9f | 0xdc | 0xdd) => {
            let len = reader.array_len("arguments")?;
            return Ok(Arguments::MessagePack {
                array: Bytes::from(out),
                len,
            });
        }
        Some(0xc0) => vec![0x90],
        _ => {
            let mut one = Vec::with_capacity(out.len() + 1);
            one.push(0x91);
            one.extend_from_slice(&out);
            one
        }
    };
    let len = Reader::new(&array).array_len("arguments")?;
    Ok(Arguments::MessagePack {
        array: Bytes::from(array),
        len,
    })
}

/// Binds a MessagePack argument array to the handler's parameter type; a
/// [`Binary`](crate::Binary) among them becomes a slice of `array`.
pub(crate) fn bind<A: serde::de::DeserializeOwned>(
    array: &Bytes,
    len: usize,
) -> std::result::Result<A, String> {
    if len == 0 {
        // `()` and `Option<_>` bind from nil, not from an empty array.
        if let Ok(bound) = rmp_serde::from_slice(&[0xc0]) {
            return Ok(bound);
        }
    }
    let _binding = crate::binary::binding(array);
    rmp_serde::from_slice(array).map_err(|e| e.to_string())
}

/// Decodes one message body (without its length prefix).
///
/// # Errors
/// A clear error for a body that is not a MessagePack array of a known message type, a
/// missing or mistyped field, nesting deeper than 64 levels, or trailing bytes.
pub fn decode(body: &Bytes) -> Result<HubMessage> {
    let mut r = Reader::new(body);
    let fields = r.array_len("message")?;
    if fields == 0 {
        return Err(Error::malformed("an empty array is not a hub message"));
    }
    let kind = r.uint("message type")?;
    // Fields read, so that fields a later version may add can be skipped.
    let mut read = 2;
    let need = |count: usize, message_type: &'static str, field: &'static str| {
        if fields < count {
            Err(Error::MissingField {
                message_type,
                field,
            })
        } else {
            Ok(())
        }
    };
    let message = match kind {
        1 | 4 => {
            let message_type = if kind == 1 {
                "Invocation"
            } else {
                "StreamInvocation"
            };
            need(5, message_type, "arguments")?;
            let headers = r.headers()?;
            let invocation_id = r.optional_string("invocationId")?.map(str::to_owned);
            if kind == 4 && invocation_id.is_none() {
                return Err(Error::MissingField {
                    message_type,
                    field: "invocationId",
                });
            }
            let target = r.string("target")?.to_owned();
            let start = r.pos;
            let len = r.array_len("arguments")?;
            r.pos = start;
            r.skip_value()?;
            let arguments = Arguments::MessagePack {
                array: body.slice(start..r.pos),
                len,
            };
            read = 5;
            let mut stream_ids = Vec::new();
            if fields >= 6 {
                read = 6;
                let count = r.array_len("streamIds")?;
                for _ in 0..count {
                    stream_ids.push(r.string("streamIds")?.to_owned());
                }
            }
            let invocation = Invocation {
                headers,
                invocation_id,
                target,
                arguments,
                stream_ids,
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => {
            need(4, "StreamItem", "item")?;
            read = 4;
            HubMessage::StreamItem(StreamItem {
                headers: r.headers()?,
                invocation_id: r.string("invocationId")?.to_owned(),
                item: r.value(0)?,
            })
        }
        3 => {
            need(4, "Completion", "resultKind")?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?.to_owned();
            read = 4;
            let outcome = match r.uint("resultKind")? {
                RESULT_ERROR => {
                    need(5, "Completion", "error")?;
                    read = 5;
                    Outcome::Error(r.string("error")?.to_owned())
                }
                RESULT_VOID => Outcome::Void,
                RESULT_VALUE => {
                    need(5, "Completion", "result")?;
                    read = 5;
                    Outcome::Result(r.value(0)?)
                }
                other => {
                    return Err(Error::ProtocolViolation(format!(
                        "Completion has result kind {other}; 1 (error), 2 (void) and 3 (result) are defined"
                    )));
                }
            };
            HubMessage::Completion(Completion {
                headers,
                invocation_id,
                outcome,
            })
        }
        5 => {
            need(3, "CancelInvocation", "invocationId")?;
            read = 3;
            HubMessage::CancelInvocation(CancelInvocation {
                headers: r.headers()?,
                invocation_id: r.string("invocationId")?.to_owned(),
            })
        }
        6 => {
            read = 1;
            HubMessage::Ping
        }
        7 => {
            need(2, "Close", "error")?;
            let error = r.optional_string("error")?.map(str::to_owned);
            let allow_reconnect = if fields >= 3 {
                read = 3;
                r.boolean("allowReconnect")?
            } else {
                false
            };
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        }
        8 | 9 => {
            let message_type = if kind == 8 { "Ack" } else { "Sequence" };
            need(2, message_type, "sequenceId")?;
            let sequence_id = r.uint("sequenceId")?;
            if kind == 8 {
                HubMessage::Ack { sequence_id }
            } else {
                HubMessage::Sequence { sequence_id }
            }
        }
        other => return Err(Error::UnknownMessageType(other)),
    };
    // Fields a later version may add are skipped, as the official implementations do.
    for _ in read..fields {
        r.skip_value()?;
    }
    if r.pos != body.len() {
        return Err(Error::malformed(format!(
            "{} bytes follow the message",
            body.len() - r.pos
        )));
    }
    Ok(message)
}

/// Converts one MessagePack value to a JSON value (`bin` becomes an array of byte values).
///
/// # Errors
/// For malformed bytes, extension types, non-string map keys or nesting beyond 64 levels.
pub(crate) fn value_from_slice(bytes: &[u8]) -> Result<Value> {
    let mut r = Reader::new(bytes);
    let value = r.value(0)?;
    if r.pos != bytes.len() {
        return Err(Error::malformed("bytes follow the MessagePack value"));
    }
    Ok(value)
}

/// A cursor over MessagePack bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn truncated() -> Error {
        Error::malformed("the MessagePack message ends in the middle of a value")
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(Self::truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or_else(Self::truncated)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| Self::truncated())?;
        let end = self.pos.checked_add(n).ok_or_else(Self::truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or_else(Self::truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn be(&mut self, n: u64) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn mistyped(what: &str, marker: u8) -> Error {
        Error::malformed(format!(
            "{what}: expected {}, found MessagePack {}",
            match what {
                "message" | "arguments" | "streamIds" => "an array",
                "headers" => "a map of strings",
                "allowReconnect" => "a boolean",
                "message type" | "resultKind" | "sequenceId" => "an unsigned integer",
                _ => "a string",
            },
            describe(marker)
        ))
    }

    fn array_len(&mut self, what: &str) -> Result<usize> {
        let marker = self.byte()?;
        let len = match marker {
            0x90..=0x9f => u64::from(marker & 0x0f),
            0xdc => self.be(2)?,
            0xdd => self.be(4)?,
            _ => return Err(Self::mistyped(what, marker)),
        };
        self.items(len)
    }

    /// A container's item count, refused when the bytes left cannot hold that many.
    fn items(&self, len: u64) -> Result<usize> {
        if len > (self.buf.len() - self.pos) as u64 {
            return Err(Self::truncated());
        }
        Ok(len as usize)
    }

    fn uint(&mut self, what: &str) -> Result<u64> {
        let marker = self.byte()?;
        match marker {
            0x00..=0x7f => Ok(u64::from(marker)),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            // Signed encodings of non-negative numbers are fine too.
            0xd0..=0xd3 => {
                let v = self.signed(marker)?;
                u64::try_from(v).map_err(|_| Self::mistyped(what, marker))
            }
            _ => Err(Self::mistyped(what, marker)),
        }
    }

    fn signed(&mut self, marker: u8) -> Result<i64> {
        Ok(match marker {
            0xd0 => i64::from(self.be(1)? as u8 as i8),
            0xd1 => i64::from(self.be(2)? as u16 as i16),
            0xd2 => i64::from(self.be(4)? as u32 as i32),
            _ => self.be(8)? as i64,
        })
    }

    fn str_len(&mut self, marker: u8) -> Option<Result<u64>> {
        Some(match marker {
            0xa0..=0xbf => Ok(u64::from(marker & 0x1f)),
            0xd9 => self.be(1),
            0xda => self.be(2),
            0xdb => self.be(4),
            _ => return None,
        })
    }

    fn optional_string(&mut self, what: &str) -> Result<Option<&'a str>> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    fn string(&mut self, what: &str) -> Result<&'a str> {
        let marker = self.byte()?;
        let len = self
            .str_len(marker)
            .ok_or_else(|| Self::mistyped(what, marker))??;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map_err(|_| Error::malformed(format!("{what}: the string is not valid UTF-8")))
    }

    fn boolean(&mut self, what: &str) -> Result<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            marker => Err(Self::mistyped(what, marker)),
        }
    }

    fn headers(&mut self) -> Result<Headers> {
        let marker = self.byte()?;
        let len = match marker {
            0x80..=0x8f => u64::from(marker & 0x0f),
            0xde => self.be(2)?,
            0xdf => self.be(4)?,
            _ => return Err(Self::mistyped("headers", marker)),
        };
        let len = self.items(len)?;
        let mut headers = Headers::new();
        for _ in 0..len {
            let key = self.string("headers")?.to_owned();
            let value = self.string("headers")?.to_owned();
            headers.insert(key, value);
        }
        Ok(headers)
    }

    /// Steps over one value, checking its framing and nesting, without converting it.
    fn skip_value(&mut self) -> Result<()> {
        let mut outer: Vec<u64> = Vec::new();
        let mut left: u64 = 1;
        loop {
            while left == 0 {
                match outer.pop() {
                    Some(rest) => left = rest,
                    None => return Ok(()),
                }
            }
            left -= 1;
            let children = self.skip_scalar()?;
            if children > 0 {
                if outer.len() >= MAX_DEPTH {
                    return Err(too_deep());
                }
                if children > (self.buf.len() - self.pos) as u64 {
                    return Err(Self::truncated());
                }
                outer.push(left);
                left = children;
            }
        }
    }

    /// Steps over one marker and its payload; for a container, how many values it holds.
    fn skip_scalar(&mut self) -> Result<u64> {
        let marker = self.byte()?;
        let payload = match marker {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => 0,
            0x80..=0x8f => return Ok(2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => return Ok(u64::from(marker & 0x0f)),
            0xa0..=0xbf => u64::from(marker & 0x1f),
            0xc4 | 0xd9 => self.be(1)?,
            0xc5 | 0xda => self.be(2)?,
            0xc6 | 0xdb => self.be(4)?,
            0xc7 => self.be(1)? + 1,
            0xc8 => self.be(2)? + 1,
            0xc9 => self.be(4)? + 1,
            0xca => 4,
            0xcb => 8,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 => 4,
            0xcf | 0xd3 => 8,
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xdc => return self.be(2),
            0xdd => return self.be(4),
            0xde => return Ok(2 * self.be(2)?),
            0xdf => return Ok(2 * self.be(4)?),
            0xc1 => return Err(Error::malformed("0xc1 is not a MessagePack marker")),
        };
        self.take(payload)?;
        Ok(0)
    }

    /// One value as JSON.
    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        let marker = self.byte()?;
        if let Some(len) = self.str_len(marker) {
            let bytes = self.take(len?)?;
            return std::str::from_utf8(bytes)
                .map(|s| Value::String(s.to_owned()))
                .map_err(|_| Error::malformed("a string value is not valid UTF-8"));
        }
        Ok(match marker {
            0x00..=0x7f => Value::from(marker),
            0xe0..=0xff => Value::from(i64::from(marker as i8)),
            0xc0 => Value::Null,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::from(self.be(1)?),
            0xcd => Value::from(self.be(2)?),
            0xce => Value::from(self.be(4)?),
            0xcf => Value::from(self.be(8)?),
            0xd0..=0xd3 => Value::from(self.signed(marker)?),
            0xca => float(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => float(f64::from_bits(self.be(8)?)),
            0xc4..=0xc6 => {
                let len = self.be(1 << (marker - 0xc4))?;
                Value::Array(self.take(len)?.iter().map(|&b| Value::from(b)).collect())
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                self.pos -= 1;
                let len = self.array_len("value")?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let len = match marker {
                    0xde => self.be(2)?,
                    0xdf => self.be(4)?,
                    _ => u64::from(marker & 0x0f),
                };
                let len = self.items(len)?;
                let mut map = Map::new();
                for _ in 0..len {
                    let key = match self.value(depth + 1)? {
                        Value::String(key) => key,
                        Value::Number(n) => n.to_string(),
                        _ => {
                            return Err(Error::malformed(
                                "a map key is neither a string nor a number",
                            ));
                        }
                    };
                    map.insert(key, self.value(depth + 1)?);
                }
                Value::Object(map)
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(Error::malformed(format!(
                    "MessagePack extension types are not supported ({})",
                    describe(marker)
                )));
            }
            _ => return Err(Error::malformed("0xc1 is not a MessagePack marker")),
        })
    }
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn too_deep() -> Error {
    Error::malformed(format!("values nest deeper than {MAX_DEPTH} levels"))
}

/// What a marker announces, for error messages.
fn describe(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xcc..=0xcf => "unsigned integer",
        0xe0..=0xff | 0xd0..=0xd3 => "signed integer",
        0x80..=0x8f | 0xde | 0xdf => "map",
        0x90..=0x9f | 0xdc | 0xdd => "array",
        0xa0..=0xbf | 0xd9..=0xdb => "string",
        0xc0 => "nil",
        0xc2 | 0xc3 => "boolean",
        0xc4..=0xc6 => "bin",
        0xca | 0xcb => "float",
        0xc7..=0xc9 | 0xd4..=0xd8 => "extension",
        0xc1 => "invalid marker 0xc1",
    }
}

#[cfg(test)]
mod tests;
