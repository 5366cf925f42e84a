//! The protocol loop of one server connection: handshake, dispatch of invocations to the hub,
//! keep-alive pings and the client timeout. Transports only move bytes in and out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::connection::{Connection, ConnectionHandle, lock};
use super::hub::{HubError, Method};
use super::websocket;
use super::{ServerShared, registry_remove};
use crate::error::Error;
use crate::negotiate::Transport;
use crate::protocol::{
    Completion, HandshakeRequest, HandshakeResponse, HubMessage, Invocation, Outcome, RecordReader,
    TransferFormat,
};

type Running = Arc<Mutex<HashMap<String, AbortHandle>>>;

/// Where the session reads what the client sends.
pub(crate) enum Inbound {
    /// Long polling and Server-Sent Events: each POST's body, pushed by its handler into the
    /// connection's channel.
    Channel(mpsc::Receiver<Bytes>),
    /// WebSockets: the session reads the socket itself, so a frame received wakes this one task
    /// rather than a reader task and then the session through a channel.
    WebSocket(websocket::Reader),
}

impl Inbound {
    /// The next bytes from the client; `None` once it is gone. Cancel-safe.
    async fn recv(&mut self, conn: &Connection) -> Option<Bytes> {
        match self {
            Inbound::Channel(channel) => channel.recv().await,
            Inbound::WebSocket(reader) => websocket::read(reader, conn).await,
        }
    }
}

/// Runs the connection until it closes, then cleans up. Started when a transport first attaches:
/// with `None`, it reads the connection's inbound channel.
pub(crate) async fn run(
    server: Arc<ServerShared>,
    conn: Arc<Connection>,
    inbound: Option<Inbound>,
) {
    let channel = lock(&conn.inbound_rx).take();
    let Some(inbound) = inbound.or(channel.map(Inbound::Channel)) else {
        return;
    };
    let error = drive(&server, &conn, inbound).await.err();
    let reason = error.map(|e| e.to_string()).or_else(|| conn.close_reason());
    conn.close(reason.clone());
    if lock(&conn.protocol).is_some()
        && let Some(callback) = &server.hub.on_disconnected
    {
        callback(ConnectionHandle::new(&conn), reason).await;
    }
    // Long polling clients collect the final messages with one more poll: keep the connection
    // findable for a moment so that poll gets its 204 rather than a 404.
    let linger = if conn.transport() == Some(Transport::LongPolling) {
        server.options.disconnect_timeout
    } else {
        std::time::Duration::ZERO
    };
    tokio::time::sleep(linger).await;
    registry_remove(&server, &conn);
}

async fn drive(
    server: &Arc<ServerShared>,
    conn: &Arc<Connection>,
    mut inbound: Inbound,
) -> Result<(), Error> {
    let options = &server.options;

    // Handshake: the first record, always JSON, within the handshake timeout.
    let mut records = RecordReader::new(options.max_message_size);
    let deadline = tokio::time::sleep(options.handshake_timeout);
    tokio::pin!(deadline);
    let request = loop {
        if let Some(record) = records.next_record()? {
            break HandshakeRequest::parse(&record)?;
        }
        tokio::select! {
            bytes = inbound.recv(conn) => match bytes {
                Some(bytes) => records.extend(&bytes),
                None => return Err(Error::closed("transport ended before the handshake")),
            },
            _ = &mut deadline => {
                return Err(Error::Timeout { what: "handshake", after: options.handshake_timeout });
            }
            _ = conn.closed() => return Ok(()),
        }
    };
    let found = server
        .protocols
        .iter()
        .find(|p| p.name() == request.protocol && p.version() == request.version)
        .cloned();
    let refusal = match &found {
        None => Some(Error::UnsupportedProtocol {
            name: request.protocol.clone(),
            version: request.version,
        }),
        // Server-Sent Events carry text only: a binary protocol cannot use them.
        Some(p)
            if p.transfer_format() == TransferFormat::Binary
                && conn.transport() == Some(Transport::ServerSentEvents) =>
        {
            Some(Error::ProtocolViolation(format!(
                "the '{}' protocol is binary and cannot be used over Server-Sent Events, which carry text only",
                p.name()
            )))
        }
        Some(_) => None,
    };
    let (Some(protocol), None) = (found, refusal.as_ref()) else {
        let error = refusal.unwrap_or(Error::UnsupportedProtocol {
            name: request.protocol,
            version: request.version,
        });
        let mut out = Vec::new();
        HandshakeResponse {
            error: Some(error.to_string()),
        }
        .write(&mut out);
        let _ = conn.outbound_tx.try_send(Bytes::from(out));
        return Err(error);
    };
    let mut out = Vec::new();
    HandshakeResponse::default().write(&mut out);
    conn.outbound_tx
        .try_send(Bytes::from(out))
        .map_err(|_| Error::SlowConsumer)?;
    *lock(&conn.protocol) = Some(protocol.clone());
    // Pings are written by the transports (see `Connection::next_frame`), from now on.
    conn.arm_keep_alive();
    tracing::debug!(connection_id = %conn.id, transport = ?conn.transport(), "handshake complete");

    // Whatever followed the handshake in the same frame belongs to the hub protocol.
    let mut decoder = protocol.decoder(options.max_message_size);
    decoder.extend(&records.into_remaining());

    if let Some(callback) = &server.hub.on_connected {
        tokio::spawn(callback(ConnectionHandle::new(conn)));
    }

    let handle = ConnectionHandle::new(conn);
    let running: Running = Arc::default();
    let mut last_received = Instant::now();
    let tick_every = (options.client_timeout.min(options.disconnect_timeout) / 2)
        .max(std::time::Duration::from_millis(10));
    let mut tick = tokio::time::interval(tick_every);

    let result = loop {
        while let Some(message) = decoder.next_message()? {
            if !dispatch(server, conn, &handle, &running, message).await {
                return Ok(());
            }
        }
        tokio::select! {
            biased;
            bytes = inbound.recv(conn) => match bytes {
                Some(bytes) => {
                    last_received = Instant::now();
                    decoder.extend_owned(bytes);
                }
                None => break Ok(()),
            },
            _ = conn.closed() => break Ok(()),
            _ = tick.tick() => {
                // Long polling keeps itself alive: its polls are the client's sign of life (the
                // official clients send no pings on it), so it ends only when polling stops.
                let long_polling = conn.transport() == Some(Transport::LongPolling);
                if !long_polling && last_received.elapsed() > options.client_timeout {
                    break Err(Error::Timeout { what: "client keep-alive", after: options.client_timeout });
                }
                if long_polling {
                    let lp = lock(&conn.long_poll);
                    if !lp.active && lp.last_ended.elapsed() > options.disconnect_timeout {
                        break Err(Error::closed("the long-polling client stopped polling"));
                    }
                }
            }
        }
    };
    for (_, task) in lock(&running).drain() {
        task.abort();
    }
    result
}

/// Handles one message; `false` when the client closed the connection.
async fn dispatch(
    server: &Arc<ServerShared>,
    conn: &Arc<Connection>,
    handle: &ConnectionHandle,
    running: &Running,
    message: HubMessage,
) -> bool {
    match message {
        HubMessage::Invocation(invocation) => {
            invoke(server, conn, handle, running, invocation, false).await;
        }
        HubMessage::StreamInvocation(invocation) => {
            invoke(server, conn, handle, running, invocation, true).await;
        }
        HubMessage::Completion(completion) => {
            if !conn.complete_client_result(&completion.invocation_id, completion.outcome) {
                tracing::debug!(connection_id = %conn.id, "completion for no pending client result");
            }
        }
        HubMessage::CancelInvocation(cancel) => {
            if let Some(task) = lock(running).remove(&cancel.invocation_id) {
                task.abort();
                complete(
                    conn,
                    cancel.invocation_id,
                    Outcome::Error("Invocation canceled by the caller.".into()),
                );
            }
        }
        HubMessage::StreamItem(_) => {
            tracing::debug!(connection_id = %conn.id, "ignoring an upload stream item: upload streams are not supported");
        }
        HubMessage::Close(close) => {
            tracing::debug!(connection_id = %conn.id, error = ?close.error, "client closed the connection");
            return false;
        }
        HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
    }
    true
}

fn complete(conn: &Connection, invocation_id: String, outcome: Outcome) {
    let _ = conn.send_now(&HubMessage::Completion(Completion::new(
        invocation_id,
        outcome,
    )));
}

async fn invoke(
    server: &Arc<ServerShared>,
    conn: &Arc<Connection>,
    handle: &ConnectionHandle,
    running: &Running,
    invocation: Invocation,
    streaming: bool,
) {
    let Invocation {
        invocation_id,
        target,
        arguments,
        stream_ids,
        ..
    } = invocation;
    let fail = |message: String| {
        if let Some(id) = &invocation_id {
            complete(conn, id.clone(), Outcome::Error(message));
        } else {
            tracing::debug!(connection_id = %conn.id, %target, "non-blocking invocation failed: {message}");
        }
    };
    if !stream_ids.is_empty() {
        return fail(format!(
            "Failed to invoke '{target}': upload streams are not supported."
        ));
    }
    let Some(method) = server.hub.methods.get(&target).cloned() else {
        return fail(format!("Unknown hub method '{target}'"));
    };
    match (method, streaming) {
        (Method::Single(method), false) => {
            let mut call = std::panic::AssertUnwindSafe(method(handle.clone(), arguments))
                .catch_unwind()
                .boxed();
            // Most methods finish at once: answer inline and spare a task.
            if let Poll::Ready(result) = futures::poll!(&mut call) {
                return finish_single(conn, invocation_id, &target, result);
            }
            let conn2 = conn.clone();
            let running2 = running.clone();
            let id2 = invocation_id.clone();
            // Registered under the lock the task takes to deregister, so it cannot finish first.
            let mut registry = lock(running);
            let task = tokio::spawn(async move {
                let result = call.await;
                if let Some(id) = &id2 {
                    lock(&running2).remove(id);
                }
                finish_single(&conn2, id2, &target, result);
            });
            if let Some(id) = invocation_id {
                registry.insert(id, task.abort_handle());
            }
        }
        (Method::Stream(method), true) => {
            let Some(id) = invocation_id else {
                return;
            };
            let items = match method(handle.clone(), arguments) {
                Ok(items) => items,
                Err(e) => return complete(conn, id, Outcome::Error(e.to_string())),
            };
            let conn2 = conn.clone();
            let running2 = running.clone();
            let id2 = id.clone();
            let patience = server.options.stream_send_timeout;
            let mut registry = lock(running);
            let task = tokio::spawn(async move {
                let mut items = std::panic::AssertUnwindSafe(items).catch_unwind();
                let mut outcome = Outcome::Void;
                while let Some(item) = items.next().await {
                    match item {
                        Ok(Ok(item)) => match conn2.send_stream_item(&id2, item, patience).await {
                            Ok(()) => {}
                            // An item that cannot be encoded for this connection ends its
                            // stream, and the client is told; anything else ended the
                            // connection.
                            Err(
                                e @ (Error::Conversion(_)
                                | Error::MalformedMessage { .. }
                                | Error::ProtocolViolation(_)),
                            ) => {
                                outcome = Outcome::Error(format!(
                                    "the stream's item could not be sent: {e}"
                                ));
                                break;
                            }
                            Err(_) => return,
                        },
                        Ok(Err(e)) => {
                            outcome = Outcome::Error(e.to_string());
                            break;
                        }
                        Err(_) => {
                            outcome = Outcome::Error("the stream failed on the server".into());
                            break;
                        }
                    }
                }
                lock(&running2).remove(&id2);
                complete(&conn2, id2, outcome);
            });
            registry.insert(id, task.abort_handle());
        }
        (Method::Stream(_), false) => fail(format!(
            "The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."
        )),
        (Method::Single(_), true) => fail(format!(
            "The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."
        )),
    }
}

fn finish_single(
    conn: &Connection,
    invocation_id: Option<String>,
    target: &str,
    result: Result<Result<serde_json::Value, HubError>, Box<dyn std::any::Any + Send>>,
) {
    let outcome = match result {
        Ok(Ok(value)) => Outcome::Result(value),
        Ok(Err(e)) => Outcome::Error(e.to_string()),
        Err(_) => {
            tracing::error!(connection_id = %conn.id, %target, "hub method panicked");
            Outcome::Error(format!(
                "An unexpected error occurred invoking '{target}' on the server."
            ))
        }
    };
    match invocation_id {
        Some(id) => complete(conn, id, outcome),
        None => {
            if let Outcome::Error(e) = outcome {
                tracing::debug!(connection_id = %conn.id, %target, "non-blocking invocation failed: {e}");
            }
        }
    }
}
