//! Long polling (GET waits for messages, DELETE ends the connection) and the HTTP POST
//! half-transport that Server-Sent Events and long polling both use to send.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::connection::{Connection, lock};
use super::{ServerShared, attach, error_response, find_connection};
use crate::negotiate::Transport;

pub(crate) async fn poll(server: Arc<ServerShared>, headers: HeaderMap, uri: Uri) -> Response {
    let conn = match find_connection(&server, &headers, &uri).await {
        Ok(conn) => conn,
        Err(response) => return response,
    };
    match attach(&server, &conn, Transport::LongPolling) {
        // The first poll only starts the connection and returns at once, empty.
        Ok(true) => {
            lock(&conn.long_poll).last_ended = Instant::now();
            return StatusCode::OK.into_response();
        }
        Ok(false) => {}
        Err(response) => return response,
    }
    // A new poll supersedes the one still open: that one answers 204.
    let generation = {
        let mut lp = lock(&conn.long_poll);
        lp.generation += 1;
        lp.active = true;
        lp.generation
    };
    conn.poll_superseded.notify_waiters();
    let response = wait_for_messages(&server, &conn, generation).await;
    let mut lp = lock(&conn.long_poll);
    if lp.generation == generation {
        lp.active = false;
        lp.last_ended = Instant::now();
    }
    response
}

async fn wait_for_messages(
    server: &ServerShared,
    conn: &Arc<Connection>,
    generation: u64,
) -> Response {
    let superseded = || lock(&conn.long_poll).generation != generation;
    let mut outbound = tokio::select! {
        guard = conn.outbound_rx.clone().lock_owned() => guard,
        _ = conn.poll_superseded.notified() => return StatusCode::NO_CONTENT.into_response(),
    };
    if superseded() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let frame = tokio::select! {
        frame = conn.next_frame(&mut outbound) => frame,
        _ = conn.poll_superseded.notified() => return StatusCode::NO_CONTENT.into_response(),
        _ = tokio::time::sleep(server.options.long_poll_timeout) => {
            return (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response();
        }
    };
    match frame {
        Some(frame) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            frame,
        )
            .into_response(),
        // Closed and drained: tell the client the connection is over.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// `POST [endpoint]?id=…`: messages from the client, for SSE and long polling.
pub(crate) async fn post_messages(
    State(server): State<Arc<ServerShared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let conn = match find_connection(&server, &headers, &uri).await {
        Ok(conn) => conn,
        Err(response) => return response,
    };
    if conn.is_closed() {
        return error_response(StatusCode::NOT_FOUND, "the connection has ended");
    }
    if conn.transport() == Some(Transport::WebSockets) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "a WebSocket connection cannot receive messages by POST",
        );
    }
    if conn.post_in_progress.swap(true, Ordering::AcqRel) {
        return error_response(
            StatusCode::CONFLICT,
            "another POST is already in progress for this connection",
        );
    }
    let delivered = conn.inbound_tx.send(body).await.is_ok();
    conn.post_in_progress.store(false, Ordering::Release);
    if delivered {
        StatusCode::OK.into_response()
    } else {
        error_response(StatusCode::NOT_FOUND, "the connection has ended")
    }
}

/// `DELETE [endpoint]?id=…`: the long-polling client is done.
pub(crate) async fn delete(
    State(server): State<Arc<ServerShared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let conn = match find_connection(&server, &headers, &uri).await {
        Ok(conn) => conn,
        Err(response) => return response,
    };
    match conn.transport() {
        Some(Transport::LongPolling) | None => {
            conn.close(None);
            StatusCode::ACCEPTED.into_response()
        }
        Some(_) => error_response(
            StatusCode::BAD_REQUEST,
            "only long-polling connections are ended with DELETE",
        ),
    }
}
