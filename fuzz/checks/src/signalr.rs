//! The SignalR hub protocol decoders a server runs on every connection's bytes, and a client on
//! every server's: the JSON protocol (0x1E records), MessagePack (VarInt length prefixes), and
//! the way long-polling and POST bodies reach them.

use bytes::Bytes;
use uplink_signalr::protocol::{
    HandshakeRequest, HubMessage, HubProtocol, JsonProtocol, MessagePackProtocol, RecordReader,
};

use crate::chunk_size;

/// The size limit the decoders run with: small, so oversized messages are reachable.
const LIMIT: usize = 4096;

/// Messages decoded from `pieces` (each given to the decoder as it would arrive: copied, or
/// handed over whole when `owned`), up to the first error, and that error's code. A conforming
/// endpoint closes the connection on an error.
fn decode<'a>(
    protocol: &dyn HubProtocol,
    pieces: impl IntoIterator<Item = (&'a [u8], bool)>,
) -> (Vec<HubMessage>, Option<&'static str>) {
    let mut decoder = protocol.decoder(LIMIT);
    let mut messages = Vec::new();
    for (piece, owned) in pieces {
        if owned {
            decoder.extend_owned(Bytes::copy_from_slice(piece));
        } else {
            decoder.extend(piece);
        }
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e.code())),
            }
        }
    }
    (messages, None)
}

/// Each message re-encodes to bytes that decode to the same message, alone and as one batch
/// (a long poll's body or a WebSocket frame holds several).
fn assert_round_trips(protocol: &dyn HubProtocol, messages: &[HubMessage]) {
    let mut batch = Vec::new();
    for message in messages {
        if let HubMessage::Invocation(call) | HubMessage::StreamInvocation(call) = message {
            // Arguments convert to JSON values or fail with an error, never a panic.
            let _ = call.arguments.clone().into_values();
        }
        let mut encoded = Vec::new();
        protocol.encode(message, &mut encoded).expect("re-encode");
        let mut again = protocol.decoder(usize::MAX);
        again.extend(&encoded);
        assert_eq!(
            again.next_message().expect("re-decode").as_ref(),
            Some(message)
        );
        assert!(!again.has_partial(), "re-encoded message left bytes over");
        batch.extend_from_slice(&encoded);
    }
    let mut again = protocol.decoder(usize::MAX);
    again.extend_owned(Bytes::from(batch));
    for message in messages {
        assert_eq!(
            again.next_message().expect("re-decode batch").as_ref(),
            Some(message)
        );
    }
    assert_eq!(again.next_message().expect("end of batch"), None);
}

/// One protocol's stream, whole and in chunks of `chunk` bytes: the same messages and the same
/// error either way, and every message round-trips.
fn check_stream(protocol: &dyn HubProtocol, stream: &[u8], chunk: usize) {
    let (messages, error) = decode(protocol, stream.chunks(chunk).map(|c| (c, false)));
    let (whole, whole_error) = decode(protocol, [(stream, false)]);
    assert_eq!(messages, whole, "chunking changed the messages");
    assert_eq!(error, whole_error, "chunking changed the outcome");
    assert_round_trips(protocol, &messages);
}

/// `signalr_decoder`: the handshake parser, the 0x1E record reader and the JSON hub protocol.
/// First byte: chunk size; the rest: what a client sends.
pub fn json(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let _ = HandshakeRequest::parse(rest);
    let mut records = RecordReader::new(LIMIT);
    records.extend(rest);
    while let Ok(Some(record)) = records.next_record() {
        assert!(record.len() <= LIMIT);
        assert!(!record.contains(&0x1e));
    }
    check_stream(&JsonProtocol, rest, chunk_size(seed));
}

/// `signalr_messagepack`: the MessagePack hub protocol, VarInt framing then message arrays.
/// First byte: chunk size; the rest: what a binary client sends.
pub fn messagepack(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    check_stream(&MessagePackProtocol, rest, chunk_size(seed));
}

/// `long_polling`: a connection's bodies (POSTs to the server, poll answers to the client) as
/// both ends read them: the handshake record first, whatever follows it in the same body goes
/// to the hub protocol's decoder, every later body is handed over whole (`extend_owned`, so
/// MessagePack messages are sliced out of it without a copy).
///
/// First byte: the protocol (low bit) and the body size; the rest: the stream after a valid
/// handshake, which is prepended. Cut into bodies or not, the messages are the same.
pub fn long_polling(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let protocol: &dyn HubProtocol = if seed & 1 == 0 {
        &JsonProtocol
    } else {
        &MessagePackProtocol
    };
    let mut stream = Vec::new();
    HandshakeRequest {
        protocol: protocol.name().to_owned(),
        version: protocol.version(),
    }
    .write(&mut stream);
    stream.extend_from_slice(rest);
    let body_size = chunk_size(seed >> 1);

    let (messages, error) = receive(protocol, stream.chunks(body_size));
    let (whole, whole_error) = receive(protocol, [&stream[..]]);
    assert_eq!(messages, whole, "the cut into bodies changed the messages");
    assert_eq!(
        error, whole_error,
        "the cut into bodies changed the outcome"
    );
    assert_round_trips(protocol, &messages);
}

/// What one end makes of a connection's bodies, as its session loop does.
fn receive<'a>(
    protocol: &dyn HubProtocol,
    bodies: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<HubMessage>, Option<&'static str>) {
    let mut bodies = bodies.into_iter();
    let mut records = RecordReader::new(LIMIT);
    let handshake = loop {
        match records.next_record() {
            Ok(Some(record)) => break record,
            Ok(None) => {}
            Err(e) => return (Vec::new(), Some(e.code())),
        }
        match bodies.next() {
            Some(body) => records.extend(body),
            None => return (Vec::new(), Some("no_handshake")),
        }
    };
    let request = HandshakeRequest::parse(&handshake).expect("the handshake written above");
    assert_eq!(request.protocol, protocol.name());
    // The rest of the handshake's body is copied in; later bodies are handed over whole.
    let first = records.into_remaining();
    decode(
        protocol,
        std::iter::once((&first[..], false)).chain(bodies.map(|body| (body, true))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_stream_passes_every_check() {
        let mut stream = vec![3];
        stream.extend_from_slice(b"{\"type\":1,\"target\":\"Send\",\"arguments\":[1,\"a\"]}\x1e");
        stream.extend_from_slice(b"{\"type\":6}\x1e");
        json(&stream);
        long_polling(&stream);
    }
}
