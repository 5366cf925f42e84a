//! The WebSockets transport: one socket carries both directions.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};

use super::connection::Connection;
use super::session::{self, Inbound};
use super::{ServerShared, admit, auth, claim, find_connection, new_connection, registry_remove};
use crate::negotiate::Transport;

pub(crate) async fn accept(server: Arc<ServerShared>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let conn = if auth::query_param(&parts.uri, "id").is_some() {
        match find_connection(&server, &parts.headers, &parts.uri).await {
            Ok(conn) => conn,
            Err(response) => return response,
        }
    } else {
        // A client that skips negotiate connects straight to the WebSocket.
        match admit(&server, &parts.headers, &parts.uri).await {
            Ok(identity) => new_connection(&server, identity),
            Err(response) => return response,
        }
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // The session starts on the upgraded socket and reads it itself. Should the upgrade never
    // complete, the callback is dropped unrun and the guard ends the connection.
    // (Only long polling claims a connection twice, so a claim that succeeds here is the first.)
    if let Err(response) = claim(&server, &conn, Transport::WebSockets) {
        return response;
    }
    let unstarted = Unstarted(Some((server.clone(), conn)));
    // A WebSocket message may batch many messages (the official clients concatenate what
    // queued up while a send was in flight); each one alone is bounded by the maximum message
    // size when it is decoded.
    let frame_limit = server.options.batch_limit();
    // The read buffer is allocated up front for every connection and kept while it idles; the
    // 128 KiB default made an idle connector cost the hub ~190 KiB. One TLS record's worth reads
    // a large frame in a few more calls and keeps idle links cheap.
    upgrade
        .max_message_size(frame_limit)
        .read_buffer_size(WS_READ_BUFFER)
        .on_upgrade(move |socket| run(unstarted, socket))
}

/// Bytes read from the socket at a time (one TLS record).
const WS_READ_BUFFER: usize = 4 * 1024;

/// The read half of a connection's socket, read by its session.
pub(crate) type Reader = SplitStream<WebSocket>;

/// A claimed connection whose session has not started: dropped unstarted, it ends the
/// connection, so a failed upgrade leaves nothing registered.
struct Unstarted(Option<(Arc<ServerShared>, Arc<Connection>)>);

impl Unstarted {
    fn start(mut self) -> (Arc<ServerShared>, Arc<Connection>) {
        self.0.take().expect("started once")
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some((server, conn)) = self.0.take() {
            conn.close(None);
            registry_remove(&server, &conn);
        }
    }
}

async fn run(unstarted: Unstarted, socket: WebSocket) {
    let (server, conn) = unstarted.start();
    let (mut sink, stream) = socket.split();
    let writer_conn = conn.clone();
    let writer = tokio::spawn(async move {
        let conn = writer_conn;
        let mut outbound = conn.outbound_rx.clone().lock_owned().await;
        while let Some(frame) = conn.next_frame(&mut outbound).await {
            // Text protocols go in text frames, as the official clients expect; binary ones
            // (and a handshake answer sharing a frame with binary messages) in binary frames.
            let message = if conn.is_binary() {
                Message::Binary(frame)
            } else {
                match Utf8Bytes::try_from(frame.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(frame),
                }
            };
            if sink.send(message).await.is_err() {
                conn.close(None);
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    session::run(server, conn, Some(Inbound::WebSocket(stream))).await;
    let _ = writer.await;
}

/// The next message's bytes from the socket, skipping pings and pongs; `None` when the client
/// closed it or it failed. Cancel-safe: a frame is only taken from the socket when returned.
pub(crate) async fn read(reader: &mut Reader, conn: &Connection) -> Option<Bytes> {
    loop {
        match reader.next().await? {
            Ok(Message::Text(text)) => return Some(Bytes::from(text)),
            Ok(Message::Binary(bytes)) => return Some(bytes),
            Ok(Message::Close(_)) => return None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Err(error) => {
                // Tells the client why when it can still hear it (e.g. a batch over the limit).
                tracing::debug!(connection_id = %conn.id, %error, "WebSocket read failed");
                conn.close(Some(format!("Connection closed with an error: {error}")));
                return None;
            }
        }
    }
}
