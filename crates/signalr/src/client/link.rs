//! A connected transport as the client session sees it: bytes out, bytes in.

use bytes::Bytes;
use hyper::http::{Method, StatusCode, Uri};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::http::HttpClient;
use super::token::TokenCell;
use crate::error::{Error, Result};
use crate::frames::{FrameBuilder, POST_FRAME_LIMIT};
use crate::negotiate::Transport;

/// One transport connection. Dropping the `outgoing` sender ends it gracefully (WebSocket
/// close, DELETE for long polling); dropping the link stops its receiving tasks.
pub(crate) struct Link {
    pub transport: Transport,
    pub outgoing: mpsc::Sender<Bytes>,
    pub incoming: mpsc::Receiver<Result<Bytes>>,
    /// How long this link's own TCP and TLS connect took, when it dialled one of its own.
    pub connect: Option<std::time::Duration>,
    pub _receivers: AbortOnDrop,
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

/// Sends queued messages by POST, one request at a time (the server must see them in order),
/// as many as are queued in each, up to [`POST_FRAME_LIMIT`], for SSE and long polling. When the
/// queue closes it sends DELETE if asked (long polling's graceful end).
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
        loop {
            let first = match frames.take_carry() {
                Some(first) => first,
                None => match outgoing.recv().await {
                    Some(first) => first,
                    None => break,
                },
            };
            let body = frames.build(first, &mut outgoing);
            let current = token.get();
            let sent = http
                .send(Method::POST, &uri, current.as_deref(), None, body)
                .await;
            let failure = match sent {
                Ok(response) if response.status() == StatusCode::OK => continue,
                Ok(response) => Error::HttpStatus {
                    operation: "send (POST)",
                    status: response.status().as_u16(),
                },
                Err(e) => e,
            };
            let _ = failures.send(Err(failure)).await;
            return;
        }
        if delete_on_end {
            let current = token.get();
            let _ = http
                .send(Method::DELETE, &uri, current.as_deref(), None, Bytes::new())
                .await;
        }
    })
}
