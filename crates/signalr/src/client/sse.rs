//! The Server-Sent Events transport of the client: an event stream down, POSTs up.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::http::{Method, StatusCode, Uri, header};
use tokio::sync::mpsc;

use super::http::HttpClient;
use super::link::{AbortOnDrop, Link, spawn_sender};
use super::token::TokenCell;
use crate::error::{Error, Result};
use crate::negotiate::Transport;

const NAME: &str = "ServerSentEvents";

pub(crate) async fn connect(http: &HttpClient, uri: &Uri, token: &TokenCell) -> Result<Link> {
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
        let mut parser = EventParser::default();
        loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    for event in parser.feed(&data) {
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
        incoming,
        // Stopping the sender too: without the event stream there is nobody to answer.
        _receivers: AbortOnDrop(vec![reader, sender]),
    })
}

/// Parses the `text/event-stream` format: `data:` lines joined by `\n`, dispatched at a blank
/// line; comments and other fields ignored; `\r\n`, `\n` and `\r` all end lines.
#[derive(Debug, Default)]
pub(crate) struct EventParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    after_cr: bool,
}

impl EventParser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    self.end_line(&mut events);
                }
                _ => self.line.push(byte),
            }
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<Vec<u8>>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                self.data.pop(); // the '\n' after the last data line
                events.push(std::mem::take(&mut self.data));
                self.has_data = false;
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &[][..]),
        };
        if field == b"data" {
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_events_comments_and_every_line_ending() {
        let mut p = EventParser::default();
        let events = p.feed(b":\r\n\r\ndata: one\r\n\r\ndata: a\ndata:b\n\nevent: x\rdata: c\r\r");
        assert_eq!(
            events,
            vec![b"one".to_vec(), b"a\nb".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn a_crlf_split_between_chunks_is_one_line_end() {
        let mut p = EventParser::default();
        assert!(p.feed(b"data: x\r").is_empty());
        assert!(p.feed(b"\n").is_empty());
        assert_eq!(p.feed(b"\r\n"), vec![b"x".to_vec()]);
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
            let mut parser = EventParser::default();
            let mut events = parser.feed(&stream[..at]);
            events.extend(parser.feed(&stream[at..]));
            let expected: Vec<Vec<u8>> = payloads.iter().map(|p| p.as_bytes().to_vec()).collect();
            prop_assert_eq!(events, expected);
        }
    }
}
