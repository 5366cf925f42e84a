//! The WebSockets transport: one socket carries both directions.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::connection::Connection;
use super::{ServerShared, admit, attach, auth, find_connection, new_connection};
use crate::negotiate::Transport;

/// Outgoing messages queued together are sent as one frame, up to this size.
pub(crate) const COALESCE_LIMIT: usize = 64 * 1024;

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
    if let Err(response) = attach(&server, &conn, Transport::WebSockets) {
        return response;
    }
    let frame_limit = (server.options.max_message_size * 2).max(64 * 1024);
    upgrade
        .max_message_size(frame_limit)
        .on_upgrade(move |socket| run(conn, socket))
}

async fn run(conn: Arc<Connection>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let writer_conn = conn.clone();
    let writer = tokio::spawn(async move {
        let conn = writer_conn;
        let mut outbound = conn.outbound_rx.clone().lock_owned().await;
        let mut closed = conn.closed_signal();
        loop {
            let first = tokio::select! {
                biased;
                next = outbound.recv() => next,
                _ = crate::signal::raised(&mut closed) => None,
            };
            let Some(first) = first.or_else(|| outbound.try_recv().ok()) else {
                break;
            };
            let frame = coalesce(first, &mut outbound);
            let message = match String::from_utf8(frame) {
                Ok(text) => Message::Text(text.into()),
                Err(binary) => Message::Binary(Bytes::from(binary.into_bytes())),
            };
            if sink.send(message).await.is_err() {
                conn.close(None);
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });

    while let Some(message) = stream.next().await {
        let bytes = match message {
            Ok(Message::Text(text)) => Bytes::from(text),
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
        };
        if conn.inbound_tx.send(bytes).await.is_err() {
            break;
        }
    }
    conn.close(None);
    let _ = writer.await;
}

/// Joins the first queued message with whatever else is already waiting.
pub(crate) fn coalesce(first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Vec<u8> {
    let mut frame = Vec::with_capacity(first.len());
    frame.extend_from_slice(&first);
    while frame.len() < COALESCE_LIMIT {
        match queue.try_recv() {
            Ok(more) => frame.extend_from_slice(&more),
            Err(_) => break,
        }
    }
    frame
}
