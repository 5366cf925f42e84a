//! The Server-Sent Events transport of the client: an event stream down, POSTs up.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::http::{Method, StatusCode, Uri, header};
use tokio::sync::mpsc;

use super::http::HttpClient;
use super::link::{AbortOnDrop, Incoming, Link, spawn_sender};
use super::token::TokenCell;
use crate::error::{Error, Result};
use crate::negotiate::Transport;

const NAME: &str = "ServerSentEvents";

pub(crate) async fn connect(
    http: &HttpClient,
    uri: &Uri,
    token: &TokenCell,
    max_event_size: usize,
) -> Result<Link> {
    let response = http
        .send(
            Method::GET,
            uri,
            token.get().as_deref(),
            Some("text/event-stream"),
            Bytes::new(),
        )
        .await?;
    if response.status() != StatusCode::OK {
        return Err(Error::HttpStatus {
            operation: "Server-Sent Events GET",
            status: response.status().as_u16(),
        });
    }
    let is_event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_event_stream {
        return Err(Error::transport(NAME, "response is not an event stream"));
    }
    let (outgoing, outgoing_rx) = mpsc::channel::<Bytes>(256);
    let (incoming_tx, incoming) = mpsc::channel(256);
    let mut body = response.into_body();
    let failures = incoming_tx.clone();
    let reader = tokio::spawn(async move {
        let mut parser = EventParser::new(max_event_size);
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    let events = match parser.feed(&data) {
                        Ok(events) => events,
                        Err(e) => {
                            let _ = incoming_tx.send(Err(e)).await;
                            return;
                        }
                    };
                    for event in events {
                        if incoming_tx.send(Ok(Bytes::from(event))).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = incoming_tx.send(Err(Error::transport(NAME, e))).await;
                    return;
                }
                None => return,
            }
        }
    });
    let sender = spawn_sender(
        http.clone(),
        uri.clone(),
        token.clone(),
        outgoing_rx,
        failures,
        false,
    );
    Ok(Link {
        transport: Transport::ServerSentEvents,
        outgoing,
        incoming: Incoming::Queue(incoming),
        // Stopping the sender too: without the event stream there is nobody to answer.
        connect: None,
        _receivers: AbortOnDrop(vec![reader, sender]),
    })
}

/// Parses the `text/event-stream` format: `data:` lines joined by `\n`, dispatched at a blank
/// line; comments and other fields ignored; `\r\n`, `\n` and `\r` all end lines.
///
/// It holds at most `max_event_size` bytes of one event (plus [`EventParser::LINE_SLACK`] for a
/// field name and line ends): a longer event, or a line that never ends, is an error rather than
/// a buffer that grows for as long as the server keeps sending.
///
/// ```
/// use uplink_signalr::client::EventParser;
/// use uplink_signalr::server::encode_sse_event;
///
/// let mut parser = EventParser::new(1024);
/// let stream = encode_sse_event(b"{\"type\":6}\x1e");
/// assert_eq!(parser.feed(&stream).unwrap(), vec![b"{\"type\":6}\x1e".to_vec()]);
/// assert!(parser.feed(&[b'x'; 2048]).is_err());
/// ```
#[derive(Debug)]
pub struct EventParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    after_cr: bool,
    max_event_size: usize,
}

impl EventParser {
    /// Room beyond `max_event_size` for the `data: ` field name and the separators.
    pub const LINE_SLACK: usize = 16;

    /// A parser for events of at most `max_event_size` bytes of data.
    pub fn new(max_event_size: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            after_cr: false,
            max_event_size,
        }
    }

    /// The data of every event `chunk` completes, in order.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when an event or a line outgrows the limit; the stream is then
    /// unusable and the connection should close.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut events = Vec::new();
        // Whole runs between line ends are copied at once: an answer chunk's event is one
        // line of up to 64 KiB.
        while let Some((&first, rest)) = chunk.split_first() {
            if self.after_cr {
                self.after_cr = false;
                if first == b'\n' {
                    chunk = rest;
                    continue;
                }
            }
            match memchr::memchr2(b'\r', b'\n', chunk) {
                Some(end) => {
                    self.append(&chunk[..end])?;
                    self.after_cr = chunk[end] == b'\r';
                    self.end_line(&mut events);
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.append(chunk)?;
                    break;
                }
            }
        }
        Ok(events)
    }

    /// Adds bytes to the line being read, within the limit on an event.
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let limit = self.max_event_size.saturating_add(Self::LINE_SLACK);
        if self.line.len() + self.data.len() + bytes.len() > limit {
            return Err(Error::MessageTooLarge {
                limit: self.max_event_size,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, events: &mut Vec<Vec<u8>>) {
        let Self {
            line,
            data,
            has_data,
            ..
        } = self;
        if line.is_empty() {
            if *has_data {
                data.pop(); // the '\n' after the last data line
                events.push(std::mem::take(data));
                *has_data = false;
            }
            return;
        }
        if line[0] != b':' {
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let value = &line[i + 1..];
                    (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &[][..]),
            };
            if field == b"data" {
                data.extend_from_slice(value);
                data.push(b'\n');
                *has_data = true;
            }
        }
        // Kept, not taken: the next line reuses its room.
        line.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_events_comments_and_every_line_ending() {
        let mut p = EventParser::new(64);
        let events = p
            .feed(b":\r\n\r\ndata: one\r\n\r\ndata: a\ndata:b\n\nevent: x\rdata: c\r\r")
            .unwrap();
        assert_eq!(
            events,
            vec![b"one".to_vec(), b"a\nb".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn a_crlf_split_between_chunks_is_one_line_end() {
        let mut p = EventParser::new(64);
        assert!(p.feed(b"data: x\r").unwrap().is_empty());
        assert!(p.feed(b"\n").unwrap().is_empty());
        assert_eq!(p.feed(b"\r\n").unwrap(), vec![b"x".to_vec()]);
    }

    #[test]
    fn an_endless_line_or_event_is_refused_not_buffered() {
        let mut p = EventParser::new(100);
        let mut fed = 0;
        let refused = loop {
            match p.feed(&[b'a'; 10]) {
                Ok(events) => assert!(events.is_empty()),
                Err(e) => break e,
            }
            fed += 10;
            assert!(fed < 1000, "a line without end is buffered past the limit");
        };
        assert!(matches!(refused, Error::MessageTooLarge { limit: 100 }));

        // Many short data lines of one event count together.
        let mut p = EventParser::new(100);
        let mut fed = 0;
        while p.feed(b"data: 0123456789\n").is_ok() {
            fed += 1;
            assert!(fed < 100, "an event without end is buffered past the limit");
        }

        // An event of exactly the limit passes.
        let payload = vec![b'x'; 100];
        let mut p = EventParser::new(100);
        let events = p.feed(&crate::server::encode_sse_event(&payload)).unwrap();
        assert_eq!(events, vec![payload]);
    }

    proptest! {
        #[test]
        fn the_server_encoding_parses_back_under_any_chunking(
            payloads in proptest::collection::vec("[a-z{}\u{1e}\"]{1,20}", 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut stream = Vec::new();
            for p in &payloads {
                stream.extend(crate::server::encode_sse_event(p.as_bytes()));
            }
            let at = cut.index(stream.len() + 1);
            let mut parser = EventParser::new(64);
            let mut events = parser.feed(&stream[..at]).unwrap();
            events.extend(parser.feed(&stream[at..]).unwrap());
            let expected: Vec<Vec<u8>> = payloads.iter().map(|p| p.as_bytes().to_vec()).collect();
            prop_assert_eq!(events, expected);
        }
    }
}
