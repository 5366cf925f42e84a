//! The client's `text/event-stream` parser, which reads whatever the server (or a proxy on the
//! way) sends down a Server-Sent Events link.

use uplink_signalr::client::EventParser;
use uplink_signalr::server::encode_sse_event;

use crate::chunk_size;

/// The event size limit: small, so the limit is reachable.
const LIMIT: usize = 512;

/// Events from `pieces` until the first error, and whether there was one.
fn parse<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Vec<u8>>, bool) {
    parse_within(LIMIT, pieces)
}

fn parse_within<'a>(
    limit: usize,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Vec<u8>>, bool) {
    let mut parser = EventParser::new(limit);
    let mut events = Vec::new();
    for piece in pieces {
        match parser.feed(piece) {
            Ok(more) => events.extend(more),
            Err(_) => return (events, true),
        }
    }
    (events, false)
}

/// `sse_framing`. First byte: chunk size; the rest: an event stream as received.
///
/// - In chunks or whole, the same events; an over-long event fails either way, and the events
///   delivered before it are then a prefix of what the stream holds (those of the chunk that
///   fails are lost with the connection, so how far they reach depends on the chunking).
/// - No event is larger than the limit (plus the parser's slack for field names).
/// - The rest cut at every NUL into payloads (bare `\r` removed: JSON never holds one), each
///   encoded as the server sends it, parses back to exactly those payloads.
pub fn framing(data: &[u8]) {
    let Some((&seed, rest)) = data.split_first() else {
        return;
    };
    let (chunked, chunked_failed) = parse(rest.chunks(chunk_size(seed)));
    let (whole, whole_failed) = parse([rest]);
    assert_eq!(chunked_failed, whole_failed, "chunking changed the outcome");
    if whole_failed {
        // Delivered before the failure: the events of a stream with no limit, in order, cut
        // short (which chunk fails decides where).
        let (unbounded, _) = parse_within(usize::MAX / 8, [rest]);
        assert!(
            unbounded.starts_with(&whole),
            "the limit changed the events"
        );
        assert!(
            unbounded.starts_with(&chunked),
            "chunking changed the events"
        );
    } else {
        assert_eq!(chunked, whole, "chunking changed the events");
    }
    for event in &whole {
        assert!(
            event.len() <= LIMIT + EventParser::LINE_SLACK,
            "an event of {} bytes",
            event.len()
        );
    }

    let payloads: Vec<Vec<u8>> = rest
        .split(|&b| b == 0)
        .map(|p| p.iter().copied().filter(|&b| b != b'\r').collect())
        .collect();
    let mut stream = b":\r\n\r\n".to_vec();
    for payload in &payloads {
        stream.extend(encode_sse_event(payload));
    }
    let (events, failed) = parse(stream.chunks(chunk_size(seed)));
    let longest = payloads.iter().map(Vec::len).max().unwrap_or(0);
    if longest <= LIMIT {
        assert!(!failed, "a server event within the limit was refused");
        assert_eq!(events, payloads, "server events did not parse back");
    } else if longest > LIMIT + EventParser::LINE_SLACK {
        assert!(failed, "an event beyond the limit was accepted");
    }
}
