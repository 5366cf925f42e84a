//! The WebSockets transport: one socket carries both directions.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::extract::Request;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};

use super::connection::Connection;
use super::{ServerShared, admit, attach, auth, find_connection, new_connection};
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
    if let Err(response) = attach(&server, &conn, Transport::WebSockets) {
        return response;
    }
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
        .on_upgrade(move |socket| run(conn, socket))
}

/// Bytes read from the socket at a time (one TLS record).
const WS_READ_BUFFER: usize = 4 * 1024;

async fn run(conn: Arc<Connection>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
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

    while let Some(message) = stream.next().await {
        let bytes = match message {
            Ok(Message::Text(text)) => Bytes::from(text),
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Close(_)) => break,
            Err(error) => {
                // Tells the client why when it can still hear it (e.g. a batch over the limit).
                tracing::debug!(connection_id = %conn.id, %error, "WebSocket read failed");
                conn.close(Some(format!("Connection closed with an error: {error}")));
                break;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
        };
        if conn.inbound_tx.send(bytes).await.is_err() {
            break;
        }
    }
    conn.close(None);
    let _ = writer.await;
}
