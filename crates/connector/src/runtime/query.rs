//! Serving one relayed query: the local policy first, then the answer streamed as `QueryChunk`s
//! with at most [`CHUNK_WINDOW`] unacknowledged, then `QueryEnd`; a `CancelQuery` or a refused
//! chunk drops the query (and so stops reading its source) and sends nothing more. When the
//! site's policy or its sources change, [`reapply`] ends the running queries they no longer
//! allow — `QueryEnd` with the same failure a new query would get — and stops reading them.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use uplink_link::{
    CHUNK_WINDOW, ChunkData, QueryFailure, QueryInfo, QueryOutcome, RelayedQuery, failure, to_hub,
};
use uplink_model::ComputedBy;
use uplink_signalr::client::HubConnection;

use super::{Inner, lock};
use crate::activity::ActivityRecord;
use crate::answer;
use crate::policy::POLICY_FILE;

/// Why a running query must stop.
#[derive(Debug)]
pub(super) enum Stop {
    /// The hub cancelled it (the app went away, or its access ended there), or the runtime
    /// stops: nothing more is sent.
    Cancelled,
    /// The site's policy or sources no longer allow it: it ends with this failure.
    Refused(QueryFailure),
}

/// A query being served: whose it is, and how to stop it.
#[derive(Debug)]
pub(super) struct Running {
    app_id: String,
    source: String,
    stop: oneshot::Sender<Stop>,
}

impl Running {
    /// Stops the query.
    pub(super) fn stop(self, why: Stop) {
        let _ = self.stop.send(why);
    }
}

/// Starts serving `relayed` in its own task (called in order of arrival).
pub(super) fn accept(inner: &Arc<Inner>, relayed: RelayedQuery) {
    let Some(connection) = lock(&inner.current).clone() else {
        return;
    };
    let arrived = Instant::now();
    let (stop, cancelled) = oneshot::channel();
    let permit = inner.permits.clone().try_acquire_owned().ok();
    if permit.is_some() {
        lock(&inner.queries).insert(
            relayed.query_id.clone(),
            Running {
                app_id: relayed.app_id.clone(),
                source: relayed.source.clone(),
                stop,
            },
        );
        inner.query_started.notify_one();
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
        let took = arrived.elapsed();
        inner.metrics.query(
            &relayed.source,
            relayed.operation().as_str(),
            &outcome,
            took,
            bytes,
        );
        inner.activity.record(ActivityRecord {
            time: Utc::now(),
            app_id: relayed.app_id.clone(),
            user_id: relayed.user_id.clone(),
            source: relayed.source.clone(),
            operation: relayed.operation().as_str().to_owned(),
            outcome,
            duration_ms: took.as_secs_f64() * 1000.0,
            bytes,
            tag: None,
            old_value: None,
            new_value: None,
        });
        inner.publish();
    });
}

/// Cancels a running query; unknown ids (already finished) are ignored.
pub(super) fn cancel(inner: &Inner, query_id: &str, reason: &str) {
    if let Some(running) = lock(&inner.queries).remove(query_id) {
        tracing::debug!(query = %query_id, %reason, "query cancelled by the hub");
        running.stop(Stop::Cancelled);
    }
}

/// Re-applies the site's policy and sources to every running query: those they no longer
/// allow (an app or source blocked, a source removed, a policy that cannot be read) stop now.
pub(super) fn reapply(inner: &Inner) {
    super::subscription::reapply(inner);
    let running: Vec<(String, String, String)> = lock(&inner.queries)
        .iter()
        .map(|(id, r)| (id.clone(), r.app_id.clone(), r.source.clone()))
        .collect();
    let mut stopped = 0;
    for (query_id, app_id, source) in running {
        let verdict = inner.veto(&app_id, &source).and_then(|()| {
            if inner.source(&source).is_some() {
                Ok(())
            } else {
                Err(QueryFailure {
                    code: failure::UNKNOWN_SOURCE.to_owned(),
                    message: format!("the data source '{source}' was removed from this connector"),
                })
            }
        });
        let Err(refusal) = verdict else { continue };
        if let Some(running) = lock(&inner.queries).remove(&query_id) {
            tracing::info!(query = %query_id, app = %app_id, %source, code = %refusal.code, "the site no longer allows a running query; stopping it");
            running.stop(Stop::Refused(refusal));
            stopped += 1;
        }
    }
    if stopped > 0 {
        inner.publish();
    }
}

/// How often the policy is re-read while queries run, should a change go unnoticed by the
/// file watcher (a file system that sends no events).
const POLICY_RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Follows the policy file while the runtime lives: when another process (`uplink connector
/// policy …`) replaces it, running queries are held to the new policy at once.
pub(super) async fn follow_policy(inner: Weak<Inner>, data_dir: PathBuf, started: Arc<Notify>) {
    let data_dir = data_dir.as_path();
    let changed = Arc::new(tokio::sync::Notify::new());
    // Watch the folder: the file is replaced by a rename, which a watch on the file misses.
    let _watcher = {
        let changed = changed.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| {
                !e.kind.is_access()
                    && e.paths
                        .iter()
                        .any(|p| p.file_name().is_some_and(|n| n == POLICY_FILE))
            }) {
                changed.notify_one();
            }
        })
        .and_then(|mut w| {
            notify::Watcher::watch(&mut w, data_dir, notify::RecursiveMode::NonRecursive)
                .map(|()| w)
        });
        match watcher {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "cannot watch the local policy file; running queries see policy changes within {POLICY_RECHECK_INTERVAL:?}");
                None
            }
        }
    };
    let mut seen = None;
    loop {
        let idle = match inner.upgrade() {
            Some(inner) => lock(&inner.queries).is_empty() && lock(&inner.subscriptions).is_empty(),
            None => return,
        };
        if idle {
            // Nothing runs: a query's own start checks the policy.
            tokio::select! {
                () = changed.notified() => {}
                () = started.notified() => {}
            }
        } else {
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(POLICY_RECHECK_INTERVAL) => {}
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let now = inner.policy.current().map_err(|e| e.to_string());
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            reapply(&inner);
            inner.publish();
        }
    }
}

/// Runs the query to its end; the outcome code for the trail and the body bytes sent.
async fn serve(
    inner: &Inner,
    connection: &HubConnection,
    relayed: &RelayedQuery,
    mut cancelled: oneshot::Receiver<Stop>,
) -> (String, u64) {
    if let Err(veto) = inner.veto(&relayed.app_id, &relayed.source) {
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
    inner.note_use(&relayed.app_id, &relayed.user_id, &relayed.source);
    let computed_by = Arc::new(std::sync::OnceLock::new());
    let mut body = answer::answer_noting(
        source,
        relayed.query.clone(),
        relayed.format,
        computed_by.clone(),
    );
    let mut in_flight = FuturesUnordered::new();
    let mut seq: u64 = 0;
    let mut bytes: u64 = 0;
    let failed = loop {
        tokio::select! {
            biased;
            stop = &mut cancelled => return match stop {
                Ok(Stop::Refused(refusal)) => {
                    // Nothing more is read; the hub cuts the app's body with this failure.
                    end(connection, &relayed.query_id, Some(refusal.clone())).await;
                    (refusal.code, bytes)
                }
                Ok(Stop::Cancelled) | Err(_) => (failure::CANCELLED.to_owned(), bytes),
            },
            acknowledged = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(Err(error)) = acknowledged {
                    // The app went away or the hub's limit was reached: stop, send no end.
                    tracing::debug!(query = %relayed.query_id, %error, "chunk refused; dropping the query");
                    return (failure::CANCELLED.to_owned(), bytes);
                }
            }
            next = body.next(), if in_flight.len() < CHUNK_WINDOW => match next {
                Some(Ok(chunk)) => {
                    if seq == 0 {
                        info(connection, &relayed.query_id, computed_by.get().copied()).await;
                    }
                    bytes += chunk.len() as u64;
                    let at = seq;
                    seq += 1;
                    // A string in JSON, `bin` in MessagePack: never escaped on a binary link.
                    let sent = connection
                        .invoke_queued::<serde_json::Value>(
                            to_hub::QUERY_CHUNK,
                            (&relayed.query_id, at, ChunkData::from(chunk)),
                        )
                        .await;
                    match sent {
                        Ok(acknowledgement) => in_flight.push(acknowledgement),
                        Err(error) => {
                            tracing::debug!(query = %relayed.query_id, %error, "chunk not sent; dropping the query");
                            return (failure::CANCELLED.to_owned(), bytes);
                        }
                    }
                }
                Some(Err(failure)) => break Some(failure),
                None => break None,
            },
        }
    };
    let code = failed
        .as_ref()
        .map_or_else(|| "ok".to_owned(), |f| f.code.clone());
    // The end goes now, behind the last chunk, rather than a round trip later after its
    // acknowledgement: the hub ends the app's body only once every chunk before it went.
    let ended = connection
        .invoke_queued::<serde_json::Value>(
            to_hub::QUERY_END,
            (&relayed.query_id, QueryOutcome { error: failed }),
        )
        .await;
    let mut refused = false;
    while let Some(acknowledged) = in_flight.next().await {
        if let Err(error) = acknowledged {
            tracing::debug!(query = %relayed.query_id, %error, "chunk refused after the end was sent");
            refused = true;
        }
    }
    match ended {
        Ok(ended) => {
            if let Err(error) = ended.await {
                tracing::debug!(query = %relayed.query_id, %error, "QueryEnd not delivered");
            }
        }
        Err(error) => tracing::debug!(query = %relayed.query_id, %error, "QueryEnd not sent"),
    }
    if refused {
        return (failure::CANCELLED.to_owned(), bytes);
    }
    (code, bytes)
}

/// Tells the hub who computed the answer, before its first chunk (nothing for the queries that
/// compute nothing). Sent without a completion: a hub that does not know the method ignores it.
async fn info(connection: &HubConnection, query_id: &str, computed_by: Option<ComputedBy>) {
    if computed_by.is_none() {
        return;
    }
    let info = QueryInfo { computed_by };
    if let Err(error) = connection.send(to_hub::QUERY_INFO, (query_id, info)).await {
        tracing::debug!(query = %query_id, %error, "QueryInfo not delivered");
    }
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
