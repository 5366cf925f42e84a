//! The Server-Sent Events transport: messages flow down an event stream; the client sends
//! with POST (see `long_polling::post_messages`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::{OwnedMutexGuard, mpsc};

use super::connection::Connection;
use super::{ServerShared, attach, find_connection};
use crate::negotiate::Transport;

pub(crate) async fn stream(server: Arc<ServerShared>, headers: HeaderMap, uri: Uri) -> Response {
    let conn = match find_connection(&server, &headers, &uri).await {
        Ok(conn) => conn,
        Err(response) => return response,
    };
    if let Err(response) = attach(&server, &conn, Transport::ServerSentEvents) {
        return response;
    }
    let outbound = conn.outbound_rx.clone().lock_owned().await;
    let state = EventStream {
        conn,
        outbound,
        opened: false,
    };
    let body = futures::stream::unfold(state, |mut state| async move {
        let chunk = state.next_chunk().await?;
        Some((Ok::<_, std::io::Error>(chunk), state))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Asks buffering reverse proxies (nginx) to pass events through at once.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// The body of the event stream; dropping it (the client went away) closes the connection.
struct EventStream {
    conn: Arc<Connection>,
    outbound: OwnedMutexGuard<mpsc::Receiver<Bytes>>,
    opened: bool,
}

impl EventStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.opened {
            // A comment first, so clients and proxies see the stream open before any message.
            self.opened = true;
            return Some(Bytes::from_static(b":\r\n\r\n"));
        }
        let frame = self.conn.next_frame(&mut self.outbound).await?;
        Some(Bytes::from(encode_event(&frame)))
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.conn.close(None);
    }
}

/// One Server-Sent Event whose data is `payload`: each line becomes a `data:` line (a `\r`
/// before a `\n` is dropped). Hub protocol frames sent this way are JSON text, which never holds
/// a bare `\r`, so [`crate::client::EventParser`] reads back exactly `payload`.
pub fn encode_event(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 16);
    let mut data_line = |line: &[u8]| {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    };
    // Line ends found by `memchr`: an event carries up to 64 KiB of answer in one line.
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', payload) {
        data_line(&payload[start..end]);
        start = end + 1;
    }
    data_line(&payload[start..]);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_becomes_a_data_line() {
        assert_eq!(encode_event(b"{}\x1e"), b"data: {}\x1e\r\n\r\n");
        assert_eq!(encode_event(b"a\nb"), b"data: a\r\ndata: b\r\n\r\n");
    }
}
