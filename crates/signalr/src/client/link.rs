//! A connected transport as the client session sees it: bytes out, bytes in.

use std::future::Future;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hyper::http::{Method, StatusCode, Uri};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::http::HttpClient;
use super::token::TokenCell;
use crate::error::{Error, Result};
use crate::frames::{FrameBuilder, ORDERED_POSTS_HEADER, POST_FRAME_LIMIT, POST_SEQ_PARAM};
use crate::negotiate::Transport;

/// One transport connection. Dropping the `outgoing` sender ends it gracefully (WebSocket
/// close, DELETE for long polling); dropping the link stops its receiving tasks.
pub(crate) struct Link {
    pub transport: Transport,
    pub outgoing: mpsc::Sender<Bytes>,
    pub incoming: Incoming,
    /// How long this link's own TCP and TLS connect took, when it dialled one of its own.
    pub connect: Option<std::time::Duration>,
    pub _receivers: AbortOnDrop,
}

/// What arrives from the server, as the session reads it.
pub(crate) enum Incoming {
    /// Bytes a transport's receiving task queued (Server-Sent Events, long polling: each
    /// response is read by a task of its own).
    Queue(mpsc::Receiver<Result<Bytes>>),
    /// A WebSocket, read by the session itself: no task and no channel between the socket and
    /// the session, so each frame received wakes one task instead of two.
    WebSocket(Option<super::websocket::Reader>),
}

impl Incoming {
    /// The next bytes, a transport error, or `None` once the transport ended. Cancel-safe:
    /// nothing is lost when the future is dropped before it completes.
    pub async fn recv(&mut self) -> Option<Result<Bytes>> {
        match self {
            Self::Queue(queue) => queue.recv().await,
            Self::WebSocket(socket) => super::websocket::next_bytes(socket).await,
        }
    }
}

/// Aborts its tasks when dropped.
#[derive(Default)]
pub(crate) struct AbortOnDrop(pub Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// POSTs the sender keeps in flight at once, when the server applies numbered POSTs in order.
/// Each carries at most [`POST_FRAME_LIMIT`]; a connector's answer window (four chunks of
/// 64 KiB) needs no more than one, so several in flight only spare a queued batch the wait for
/// the one before it to be answered.
pub(crate) const POSTS_IN_FLIGHT: usize = 4;

/// Sends queued messages by POST for SSE and long polling, as many as are queued in each, up to
/// [`POST_FRAME_LIMIT`]. Every POST is numbered (`seq`, from 0 per connection): one at a time
/// until a server answers with [`ORDERED_POSTS_HEADER`] that it applies numbered POSTs in
/// order, then up to that many (at most [`POSTS_IN_FLIGHT`]) at once. A server that ignores the
/// number never says so, and gets one at a time, in order. When the queue closes and every
/// POST is answered it sends DELETE if asked (long polling's graceful end).
pub(crate) fn spawn_sender(
    http: HttpClient,
    uri: Uri,
    token: TokenCell,
    mut outgoing: mpsc::Receiver<Bytes>,
    failures: mpsc::Sender<Result<Bytes>>,
    delete_on_end: bool,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut frames = FrameBuilder::with_limit(POST_FRAME_LIMIT);
        let mut in_flight = FuturesUnordered::new();
        let mut window = 1;
        let mut seq: u64 = 0;
        let mut open = true;
        loop {
            let room = open && in_flight.len() < window;
            tokio::select! {
                biased;
                answered = in_flight.next(), if !in_flight.is_empty() => match answered {
                    Some(Ok(allowed)) => window = window.max(allowed),
                    Some(Err(failure)) => {
                        let _ = failures.send(Err(failure)).await;
                        return;
                    }
                    None => {}
                },
                first = next_message(&mut frames, &mut outgoing), if room => match first {
                    Some(first) => {
                        let body = frames.build(first, &mut outgoing);
                        let numbered = numbered(&uri, seq);
                        seq += 1;
                        let current = token.get();
                        in_flight.push(post(&http, numbered, current.as_deref(), body));
                    }
                    None => open = false,
                },
                else => break,
            }
        }
        if delete_on_end {
            let current = token.get();
            let _ = http
                .send(Method::DELETE, &uri, current.as_deref(), None, Bytes::new())
                .await;
        }
    })
}

/// A message kept back from the last batch, else the next one queued; `None` once closed.
async fn next_message(
    frames: &mut FrameBuilder,
    outgoing: &mut mpsc::Receiver<Bytes>,
) -> Option<Bytes> {
    match frames.take_carry() {
        Some(first) => Some(first),
        None => outgoing.recv().await,
    }
}

/// The POST address with the batch's number added to its query.
fn numbered(uri: &Uri, seq: u64) -> Uri {
    let joined = match uri.query() {
        Some(_) => format!("{uri}&{POST_SEQ_PARAM}={seq}"),
        None => format!("{uri}?{POST_SEQ_PARAM}={seq}"),
    };
    joined.parse().unwrap_or_else(|_| uri.clone())
}

/// One POST; its answer says how many POSTs the server takes in flight (1 unless it said more).
fn post(
    http: &HttpClient,
    uri: Uri,
    token: Option<&str>,
    body: Bytes,
) -> impl Future<Output = Result<usize>> + Send + 'static {
    let sent = http.send(Method::POST, &uri, token, None, body);
    async move {
        let response = sent.await?;
        if response.status() != StatusCode::OK {
            return Err(Error::HttpStatus {
                operation: "send (POST)",
                status: response.status().as_u16(),
            });
        }
        let allowed = response
            .headers()
            .get(ORDERED_POSTS_HEADER)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(1);
        Ok(allowed.clamp(1, POSTS_IN_FLIGHT))
    }
}
