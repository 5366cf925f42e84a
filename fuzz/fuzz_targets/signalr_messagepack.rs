//! Feeds arbitrary bytes, in arbitrary chunks, to the MessagePack hub protocol decoder a
//! server runs on every binary connection: VarInt length framing, then the message arrays.
//! Nothing may panic, hang, recurse without bound or buffer beyond the size limit; every
//! decoded message must re-encode to bytes that decode to the same message, and its arguments
//! must convert to JSON values or fail with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uplink_signalr::protocol::{HubMessage, HubProtocol, MessagePackProtocol};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = MessagePackProtocol.decoder(LIMIT);
    // Chunk sizes from the first byte: 1..=256.
    let chunk = usize::from(split_seed) + 1;
    for piece in rest.chunks(chunk) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if let HubMessage::Invocation(call) | HubMessage::StreamInvocation(call) =
                        &message
                    {
                        let _ = call.arguments.clone().into_values();
                    }
                    let mut encoded = Vec::new();
                    MessagePackProtocol
                        .encode(&message, &mut encoded)
                        .expect("re-encode");
                    let mut again = MessagePackProtocol.decoder(usize::MAX);
                    again.extend(&encoded);
                    assert_eq!(again.next_message().expect("re-decode"), Some(message));
                }
                Ok(None) => break,
                // A bad prefix leaves the stream unreadable: a server closes the connection.
                Err(_) => return,
            }
        }
    }
});
