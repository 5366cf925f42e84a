//! The holding replica's side of a relayed query: the query arrived on NATS from another
//! replica; it goes down this replica's link like any local query, and its answer goes back
//! chunk by chunk with at most [`uplink_link::CHUNK_WINDOW`] unacknowledged, an explicit end,
//! and a beat while the answer is open so the asking replica notices this one dying.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Message};
use bytes::Bytes;
use futures::StreamExt as _;
use tokio::time::Instant;
use uplink_link::RelayedQuery;

use super::wire::{self, kind};
use crate::link::LocalRouter;
use crate::relay::{ConnectorRouter as _, RelayError};

/// How often the holder says it is alive while an answer is open.
pub const BEAT: Duration = Duration::from_millis(500);

/// Serves one query request for `connector_id`, whose link is held here.
pub async fn serve(
    client: Client,
    local: Arc<LocalRouter>,
    connector_id: String,
    request: Message,
) {
    let Some(reply) = request.reply.clone() else {
        return;
    };
    let Some(answer_to) = wire::header(request.headers.as_ref(), wire::ANSWER).map(str::to_owned)
    else {
        tracing::debug!(connector = %connector_id, "a query request without an answer inbox");
        return;
    };
    let control_subject = client.new_inbox();
    let Ok(mut control) = client.subscribe(control_subject.clone()).await else {
        return;
    };
    let mut accepted = wire::headers(kind::ACCEPTED);
    accepted.insert(wire::CONTROL, control_subject.as_str());
    if client
        .publish_with_headers(reply, accepted, Bytes::new())
        .await
        .is_err()
    {
        return;
    }
    let answer = Answer {
        client: &client,
        to: answer_to,
        from: control_subject,
    };
    let query: RelayedQuery = match serde_json::from_slice(&request.payload) {
        Ok(query) => query,
        Err(e) => {
            let error = RelayError::Connector {
                code: uplink_link::failure::INVALID_QUERY.to_owned(),
                message: format!("the query could not be read: {e}"),
            };
            answer.failed(&error).await;
            return;
        }
    };
    let query_timeout = local.query_timeout();
    let mut beat = tokio::time::interval(BEAT);
    let relay = local.relay(&connector_id, query);
    tokio::pin!(relay);
    let stream = loop {
        tokio::select! {
            outcome = &mut relay => break outcome,
            _ = beat.tick() => answer.send(kind::BEAT, None, Bytes::new()).await,
            message = control.next() => match message {
                // Dropping the relay cancels the query on the connector.
                None => return,
                Some(m) if wire::header(m.headers.as_ref(), wire::KIND) == Some(kind::CANCEL) => return,
                Some(_) => {}
            },
        }
    };
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(error) => {
            answer.failed(&error).await;
            return;
        }
    };
    if let Some(by) = stream.computed()
        && let Ok(json) = serde_json::to_vec(&by)
    {
        answer.send(kind::INFO, None, json.into()).await;
    }
    let window = uplink_link::CHUNK_WINDOW as u64;
    let (mut sent, mut acked) = (0u64, 0u64);
    let mut last_ack = Instant::now();
    loop {
        tokio::select! {
            biased;
            message = control.next() => {
                let Some(message) = message else { return };
                match wire::header(message.headers.as_ref(), wire::KIND) {
                    Some(kind::ACK) => {
                        if let Some(seq) = wire::seq(message.headers.as_ref()) {
                            acked = acked.max(seq + 1);
                            last_ack = Instant::now();
                        }
                    }
                    Some(kind::CANCEL) => return,
                    _ => {}
                }
            }
            item = stream.next(), if sent - acked < window => match item {
                None => {
                    answer.send(kind::END, None, Bytes::new()).await;
                    return;
                }
                Some(Ok(bytes)) => {
                    answer.send(kind::CHUNK, Some(sent), bytes).await;
                    sent += 1;
                }
                Some(Err(error)) => {
                    answer.failed(&error).await;
                    return;
                }
            },
            _ = beat.tick() => {
                // An asking replica that stopped acknowledging (gone, or its app stopped
                // reading) holds the connector no longer than a silent connector would.
                if sent - acked >= window && last_ack.elapsed() > query_timeout {
                    tracing::debug!(connector = %connector_id, "the asking replica stopped acknowledging; the query is cancelled");
                    return;
                }
                answer.send(kind::BEAT, None, Bytes::new()).await;
            }
        }
    }
}

/// Where one answer goes.
struct Answer<'a> {
    client: &'a Client,
    to: String,
    from: String,
}

impl Answer<'_> {
    async fn send(&self, what: &str, seq: Option<u64>, payload: Bytes) {
        let mut headers = wire::headers(what);
        headers.insert(wire::CONTROL, self.from.as_str());
        if let Some(seq) = seq {
            headers.insert(wire::SEQ, seq.to_string().as_str());
        }
        // A lost message shows on the asking side as a gap or silence, which cuts the body.
        let _ = self
            .client
            .publish_with_headers(self.to.clone(), headers, payload)
            .await;
    }

    async fn failed(&self, error: &RelayError) {
        let json = serde_json::to_vec(error).unwrap_or_default();
        self.send(kind::FAILED, None, json.into()).await;
    }
}
