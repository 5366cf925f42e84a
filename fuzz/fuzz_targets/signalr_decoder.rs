//! Feeds arbitrary bytes, in arbitrary chunks, to the SignalR decoders a server runs on every
//! connection: the handshake parser and the JSON hub protocol with its 0x1E framing. Nothing
//! may panic, hang or buffer beyond the size limit, and every decoded message must re-encode
//! to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uplink_signalr::protocol::{HandshakeRequest, HubProtocol, JsonProtocol, RecordReader};

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split_seed, rest)) = data.split_first() else {
        return;
    };
    let _ = HandshakeRequest::parse(rest);
    let mut records = RecordReader::new(LIMIT);
    records.extend(rest);
    while let Ok(Some(_)) = records.next_record() {}

    let mut decoder = JsonProtocol.decoder(LIMIT);
    // Chunk sizes from the first byte: 1..=256.
    let chunk = usize::from(split_seed) + 1;
    for piece in rest.chunks(chunk) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    let mut encoded = Vec::new();
                    JsonProtocol.encode(&message, &mut encoded).expect("re-encode");
                    let mut again = JsonProtocol.decoder(usize::MAX);
                    again.extend(&encoded);
                    assert_eq!(again.next_message().expect("re-decode"), Some(message));
                }
                Ok(None) => break,
                Err(uplink_signalr::Error::MessageTooLarge { .. }) => return,
                Err(_) => {}
            }
        }
    }
});
