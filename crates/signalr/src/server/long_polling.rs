//! Long polling (GET waits for messages, DELETE ends the connection) and the HTTP POST
//! half-transport that Server-Sent Events and long polling both use to send.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::connection::{Connection, ORDERED_POSTS, lock};
use super::{ServerShared, attach, auth, error_response, find_connection};
use crate::frames::{ORDERED_POSTS_HEADER, POST_SEQ_PARAM};
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
    if let Some(seq) = auth::query_param(&uri, POST_SEQ_PARAM) {
        return match seq.parse::<u64>() {
            Ok(seq) => post_in_order(&conn, seq, body).await,
            Err(_) => error_response(StatusCode::BAD_REQUEST, "the POST's number is not a number"),
        };
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

/// A numbered POST: applied once every POST numbered before it was, so batches a client sends
/// together reach the hub in the order they were sent. At most [`ORDERED_POSTS`] are admitted
/// at once; a number seen before or beyond them is refused.
async fn post_in_order(conn: &Arc<Connection>, seq: u64, body: Bytes) -> Response {
    let mut turn = conn.post_turn.subscribe();
    {
        // The turn only advances under this lock, so `next` cannot pass `seq` unseen.
        let mut waiting = lock(&conn.posts_waiting);
        let next = *turn.borrow_and_update();
        if seq < next || seq - next >= ORDERED_POSTS || !waiting.insert(seq) {
            return error_response(
                StatusCode::CONFLICT,
                "this POST's number was seen before or is too far ahead of the ones applied",
            );
        }
    }
    let mut admitted = Admitted {
        conn,
        seq,
        applied: false,
    };
    let ready = tokio::select! {
        ready = turn.wait_for(|next| *next == seq) => ready.is_ok(),
        () = conn.closed() => false,
    };
    let delivered = ready && conn.inbound_tx.send(body).await.is_ok();
    admitted.applied = true;
    {
        let _waiting = lock(&conn.posts_waiting);
        conn.post_turn.send_replace(seq + 1);
    }
    if delivered {
        (
            StatusCode::OK,
            [(ORDERED_POSTS_HEADER, ORDERED_POSTS.to_string())],
        )
            .into_response()
    } else {
        error_response(StatusCode::NOT_FOUND, "the connection has ended")
    }
}

/// A numbered POST's place among those admitted, given up whatever happens.
struct Admitted<'a> {
    conn: &'a Connection,
    seq: u64,
    applied: bool,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        lock(&self.conn.posts_waiting).remove(&self.seq);
        if !self.applied {
            // The client went away mid-request: the POSTs after this one could never be
            // applied in order, so the connection ends rather than stalls or skips.
            self.conn.close(Some(
                "a numbered POST was abandoned before it was applied".into(),
            ));
        }
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
