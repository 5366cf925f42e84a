//! Serving one relayed query: the local policy first, then the answer streamed as `QueryChunk`s
//! with at most [`CHUNK_WINDOW`] unacknowledged, then `QueryEnd`; a `CancelQuery` or a refused
//! chunk drops the query (and so stops reading its source) and sends nothing more.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uplink_link::{
    CHUNK_WINDOW, ChunkData, QueryFailure, QueryOutcome, RelayedQuery, failure, to_hub,
};
use uplink_signalr::client::HubConnection;

use super::{Inner, lock};
use crate::activity::ActivityRecord;
use crate::answer;

/// Starts serving `relayed` in its own task (called in order of arrival).
pub(super) fn accept(inner: &Arc<Inner>, relayed: RelayedQuery) {
    let Some(connection) = lock(&inner.current).clone() else {
        return;
    };
    let arrived = Instant::now();
    let (cancel, cancelled) = oneshot::channel();
    let permit = inner.permits.clone().try_acquire_owned().ok();
    if permit.is_some() {
        lock(&inner.queries).insert(relayed.query_id.clone(), cancel);
        inner.publish();
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        let (outcome, bytes) = match permit {
            Some(_permit) => serve(&inner, &connection, &relayed, cancelled).await,
            None => {
                let busy = QueryFailure {
                    code: failure::BUSY.to_owned(),
                    message: format!(
                        "the connector is already answering {} queries; try again shortly",
                        inner.options.max_concurrent_queries
                    ),
                };
                end(&connection, &relayed.query_id, Some(busy.clone())).await;
                (busy.code, 0)
            }
        };
        lock(&inner.queries).remove(&relayed.query_id);
        tracing::debug!(query = %relayed.query_id, app = %relayed.app_id, source = %relayed.source, %outcome, bytes, "relayed query");
        inner.activity.record(ActivityRecord {
            time: Utc::now(),
            app_id: relayed.app_id.clone(),
            user_id: relayed.user_id.clone(),
            source: relayed.source.clone(),
            operation: relayed.operation().as_str().to_owned(),
            outcome,
            duration_ms: arrived.elapsed().as_secs_f64() * 1000.0,
            bytes,
        });
        inner.publish();
    });
}

/// Cancels a running query; unknown ids (already finished) are ignored.
pub(super) fn cancel(inner: &Inner, query_id: &str, reason: &str) {
    if let Some(cancel) = lock(&inner.queries).remove(query_id) {
        tracing::debug!(query = %query_id, %reason, "query cancelled by the hub");
        let _ = cancel.send(());
    }
}

/// Runs the query to its end; the outcome code for the trail and the body bytes sent.
async fn serve(
    inner: &Inner,
    connection: &HubConnection,
    relayed: &RelayedQuery,
    mut cancelled: oneshot::Receiver<()>,
) -> (String, u64) {
    if let Err(veto) = inner.policy.check(&relayed.app_id, &relayed.source) {
        end(connection, &relayed.query_id, Some(veto.clone())).await;
        return (veto.code, 0);
    }
    let Some(source) = inner.source(&relayed.source) else {
        let unknown = QueryFailure {
            code: failure::UNKNOWN_SOURCE.to_owned(),
            message: format!(
                "no data source named '{}' on this connector",
                relayed.source
            ),
        };
        end(connection, &relayed.query_id, Some(unknown.clone())).await;
        return (unknown.code, 0);
    };
    let mut body = answer::answer(source, relayed.query.clone(), relayed.format);
    let mut in_flight = FuturesUnordered::new();
    let mut seq: u64 = 0;
    let mut bytes: u64 = 0;
    let mut finished = false;
    let mut failed: Option<QueryFailure> = None;
    loop {
        if finished && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => return (failure::CANCELLED.to_owned(), bytes),
            acknowledged = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(Err(error)) = acknowledged {
                    // The app went away or the hub's limit was reached: stop, send no end.
                    tracing::debug!(query = %relayed.query_id, %error, "chunk refused; dropping the query");
                    return (failure::CANCELLED.to_owned(), bytes);
                }
            }
            next = body.next(), if !finished && in_flight.len() < CHUNK_WINDOW => match next {
                Some(Ok(chunk)) => {
                    bytes += chunk.len() as u64;
                    let connection = connection.clone();
                    let id = relayed.query_id.clone();
                    let at = seq;
                    seq += 1;
                    // A string in JSON, `bin` in MessagePack: never escaped on a binary link.
                    let chunk = ChunkData::from(chunk);
                    in_flight.push(async move {
                        connection
                            .invoke::<serde_json::Value>(to_hub::QUERY_CHUNK, (id, at, chunk))
                            .await
                    });
                }
                Some(Err(failure)) => {
                    failed = Some(failure);
                    finished = true;
                }
                None => finished = true,
            },
        }
    }
    let code = failed
        .as_ref()
        .map_or_else(|| "ok".to_owned(), |f| f.code.clone());
    end(connection, &relayed.query_id, failed).await;
    (code, bytes)
}

async fn end(connection: &HubConnection, query_id: &str, error: Option<QueryFailure>) {
    let outcome = QueryOutcome { error };
    if let Err(error) = connection
        .invoke::<serde_json::Value>(to_hub::QUERY_END, (query_id, outcome))
        .await
    {
        tracing::debug!(query = %query_id, %error, "QueryEnd not delivered");
    }
}
