//! Serving live values (`Subscribe`, docs/protocol.md §3): the site's veto first, then the
//! current snapshot as update 0, then the tags' changes as `SubscriptionUpdate`s with at most
//! one awaiting its completion. While one is on its way, newer values replace older ones of
//! the same tag (counted as `dropped`), so a slow hub or app never makes the connector buffer
//! more than one value per tag.
//!
//! A data source sees one `DataSource::subscribe` per (source, tag set) however many
//! subscriptions (apps) share it: the [`Feed`] keeps only the latest item in a watch channel,
//! and each subscription reads it at its own pace.

use std::sync::{Arc, Weak};

use futures::StreamExt as _;
use tokio::sync::{oneshot, watch};
use uplink_link::{
    QueryFailure, QueryOutcome, SubscribeRequest, SubscriptionKind, SubscriptionUpdate, TagUpdate,
    failure, to_hub,
};
use uplink_model::TagValue;
use uplink_signalr::client::HubConnection;
use uplink_source::DataSource;

use super::query::Stop;
use super::{Inner, lock};
use crate::answer::failure_of;

/// A subscription being served: whose it is, and how to stop it.
#[derive(Debug)]
pub(super) struct Running {
    pub(super) app_id: String,
    pub(super) source: String,
    stop: oneshot::Sender<Stop>,
}

impl Running {
    pub(super) fn stop(self, why: Stop) {
        let _ = self.stop.send(why);
    }
}

/// The latest item a source pushed for one tag set, numbered from 1; `None` before the first.
type Latest = Option<(u64, Arc<Vec<TagValue>>)>;

/// One `DataSource::subscribe`, shared by every subscription of the same source and tags.
pub(super) struct Feed {
    latest: watch::Receiver<Latest>,
    /// The reason the source's stream failed, if it did.
    failed: watch::Receiver<Option<QueryFailure>>,
    task: tokio::task::AbortHandle,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feed")
    }
}

/// The shared feed of `tags` on `source`: the running one, or a new `subscribe` on the source.
pub(super) async fn feed(
    inner: &Inner,
    name: &str,
    source: &Arc<dyn DataSource>,
    tags: &[String],
) -> Result<Arc<Feed>, QueryFailure> {
    let key = (name.to_owned(), tags.to_vec());
    if let Some(feed) = lock(&inner.feeds).get(&key).and_then(Weak::upgrade) {
        return Ok(feed);
    }
    let mut stream = source.subscribe(tags).await.map_err(|e| failure_of(&e))?;
    inner.metrics.source_subscribed(name);
    let (latest_tx, latest) = watch::channel(None);
    let (failed_tx, failed) = watch::channel(None);
    let task = tokio::spawn(async move {
        let mut number = 0;
        while let Some(values) = stream.next().await {
            if let Some(first) = values.first() {
                tracing::trace!(target: uplink_link::LATENCY_TARGET, hop = "source", stamp = first.time.timestamp_micros());
            }
            number += 1;
            latest_tx.send_replace(Some((number, Arc::new(values))));
        }
        failed_tx.send_replace(Some(stream_ended()));
    })
    .abort_handle();
    let feed = Arc::new(Feed {
        latest,
        failed,
        task,
    });
    let mut feeds = lock(&inner.feeds);
    // Another subscription may have opened the same feed meanwhile: keep one.
    if let Some(existing) = feeds.get(&key).and_then(Weak::upgrade) {
        return Ok(existing);
    }
    feeds.retain(|_, f| f.strong_count() > 0);
    feeds.insert(key, Arc::downgrade(&feed));
    Ok(feed)
}

/// Starts serving `request` in its own task.
pub(super) fn accept(inner: &Arc<Inner>, request: SubscribeRequest) {
    let Some(connection) = lock(&inner.current).clone() else {
        return;
    };
    inner.metrics.subscription(&request.source);
    let (stop, stopped) = oneshot::channel();
    {
        let mut running = lock(&inner.subscriptions);
        let max = inner.options.max_subscriptions;
        if running.len() >= max {
            drop(running);
            tracing::warn!(subscription = %request.subscription_id, app = %request.app_id, source = %request.source, max, "subscription refused: the connector serves as many as it may");
            let busy = QueryFailure {
                code: failure::BUSY.to_owned(),
                message: format!(
                    "the connector already serves {max} live-value subscriptions, the most it may; try again later"
                ),
            };
            tokio::spawn(
                async move { end(&connection, &request.subscription_id, Some(busy)).await },
            );
            return;
        }
        running.insert(
            request.subscription_id.clone(),
            Running {
                app_id: request.app_id.clone(),
                source: request.source.clone(),
                stop,
            },
        );
    }
    inner.query_started.notify_one();
    let inner = inner.clone();
    tokio::spawn(async move {
        let outcome = match request.kind {
            SubscriptionKind::Values => serve(&inner, &connection, &request, stopped).await,
            SubscriptionKind::Events => {
                super::event_subscription::serve(&inner, &connection, &request, stopped).await
            }
        };
        lock(&inner.subscriptions).remove(&request.subscription_id);
        tracing::debug!(subscription = %request.subscription_id, app = %request.app_id, source = %request.source, %outcome, "subscription ended");
        inner.publish();
    });
}

/// Stops a subscription the hub no longer wants; unknown ids are ignored.
pub(super) fn cancel(inner: &Inner, subscription_id: &str, reason: &str) {
    if let Some(running) = lock(&inner.subscriptions).remove(subscription_id) {
        tracing::debug!(subscription = %subscription_id, %reason, "subscription ended by the hub");
        running.stop(Stop::Cancelled);
    }
}

/// Ends subscriptions the site's policy, its sources or the hub's grant list no longer allow.
pub(super) fn reapply(inner: &Inner) {
    let running: Vec<(String, String, String)> = lock(&inner.subscriptions)
        .iter()
        .map(|(id, r)| (id.clone(), r.app_id.clone(), r.source.clone()))
        .collect();
    for (id, app_id, source) in running {
        let Err(refusal) = allowed(inner, &app_id, &source) else {
            continue;
        };
        if let Some(running) = lock(&inner.subscriptions).remove(&id) {
            tracing::info!(subscription = %id, app = %app_id, %source, code = %refusal.code, "the site no longer allows a subscription; ending it");
            running.stop(Stop::Refused(refusal));
        }
    }
}

/// The site's veto, then whether the source is still there.
pub(super) fn allowed(inner: &Inner, app_id: &str, source: &str) -> Result<(), QueryFailure> {
    inner.veto(app_id, source)?;
    if inner.source(source).is_none() {
        return Err(QueryFailure {
            code: failure::UNKNOWN_SOURCE.to_owned(),
            message: format!("the data source '{source}' was removed from this connector"),
        });
    }
    Ok(())
}

/// Ends subscriptions whose app lost its grant on their source: held in `before`, gone from
/// the hub's new `Grants` list.
pub(super) fn apply_grants(
    inner: &Inner,
    before: &[uplink_link::Grant],
    grants: &[uplink_link::Grant],
) {
    let holds = |list: &[uplink_link::Grant], app_id: &str, source: &str| {
        list.iter()
            .any(|g| g.app_id == app_id && g.source == source)
    };
    let running: Vec<(String, String, String)> = lock(&inner.subscriptions)
        .iter()
        .map(|(id, r)| (id.clone(), r.app_id.clone(), r.source.clone()))
        .collect();
    for (id, app_id, source) in running {
        if holds(grants, &app_id, &source) || !holds(before, &app_id, &source) {
            continue;
        }
        if let Some(running) = lock(&inner.subscriptions).remove(&id) {
            tracing::info!(subscription = %id, app = %app_id, %source, "the app no longer holds a grant; ending its subscription");
            // Said to the hub, so that a later subscription starts afresh rather than joining
            // this ended one.
            running.stop(Stop::Refused(QueryFailure {
                code: failure::CANCELLED.to_owned(),
                message: format!("the app '{app_id}' no longer holds a grant on '{source}'"),
            }));
        }
    }
}

/// Runs a subscription to its end; the outcome code for the log.
async fn serve(
    inner: &Inner,
    connection: &HubConnection,
    request: &SubscribeRequest,
    mut stopped: oneshot::Receiver<Stop>,
) -> String {
    let id = request.subscription_id.as_str();
    let opened = async {
        allowed(inner, &request.app_id, &request.source)?;
        let source = inner.source(&request.source).ok_or_else(|| QueryFailure {
            code: failure::UNKNOWN_SOURCE.to_owned(),
            message: format!(
                "no data source named '{}' on this connector",
                request.source
            ),
        })?;
        // Subscribed before the snapshot is read: no change between the two is missed.
        let feed = feed(inner, &request.source, &source, &request.tags).await?;
        let snapshot = source
            .snapshot(&request.tags)
            .await
            .map_err(|e| failure_of(&e))?;
        Ok::<_, QueryFailure>((feed, snapshot))
    };
    let (feed, snapshot) = tokio::select! {
        biased;
        stop = &mut stopped => return stop_outcome(connection, id, stop).await,
        opened = opened => match opened {
            Ok(opened) => opened,
            Err(refusal) => {
                end(connection, id, Some(refusal.clone())).await;
                return refusal.code;
            }
        },
    };
    let mut latest = feed.latest.clone();
    // What the feed held before the snapshot is older than it.
    latest.borrow_and_update();
    let mut failed = feed.failed.clone();
    let mut coalescer = Coalescer::new(&request.tags);
    coalescer.offer(0, &snapshot);
    loop {
        // Waits for the hub to take the previous update; newer values replace older meanwhile.
        if let Some(update) = coalescer.take() {
            if let Some(first) = update.values.first() {
                tracing::trace!(target: uplink_link::LATENCY_TARGET, hop = "sent", stamp = first.value.time.timestamp_micros());
            }
            let send =
                connection.invoke::<serde_json::Value>(to_hub::SUBSCRIPTION_UPDATE, (id, update));
            tokio::pin!(send);
            loop {
                tokio::select! {
                    biased;
                    stop = &mut stopped => return stop_outcome(connection, id, stop).await,
                    sent = &mut send => match sent {
                        Ok(_) => break,
                        Err(error) => {
                            tracing::debug!(subscription = %id, %error, "update refused; ending the subscription");
                            return failure::CANCELLED.to_owned();
                        }
                    },
                    changed = latest.changed() => {
                        if changed.is_err() { break; }
                        coalescer.offer_latest(&latest);
                    }
                }
            }
            continue;
        }
        tokio::select! {
            biased;
            stop = &mut stopped => return stop_outcome(connection, id, stop).await,
            changed = failed.changed() => {
                let failure = failed.borrow().clone();
                if changed.is_err() || failure.is_some() {
                    let failure = failure.unwrap_or_else(stream_ended);
                    end(connection, id, Some(failure.clone())).await;
                    return failure.code;
                }
            }
            changed = latest.changed() => {
                if changed.is_err() {
                    let failure = stream_ended();
                    end(connection, id, Some(failure.clone())).await;
                    return failure.code;
                }
                coalescer.offer_latest(&latest);
            }
        }
    }
}

/// The failure of a subscription whose source stopped sending.
fn stream_ended() -> QueryFailure {
    QueryFailure {
        code: failure::SOURCE_ERROR.to_owned(),
        message: "the data source stopped sending values".to_owned(),
    }
}

pub(super) async fn stop_outcome(
    connection: &HubConnection,
    id: &str,
    stop: Result<Stop, oneshot::error::RecvError>,
) -> String {
    match stop {
        Ok(Stop::Refused(refusal)) => {
            end(connection, id, Some(refusal.clone())).await;
            refusal.code
        }
        Ok(Stop::Cancelled) | Err(_) => failure::CANCELLED.to_owned(),
    }
}

pub(super) async fn end(connection: &HubConnection, id: &str, error: Option<QueryFailure>) {
    if let Err(error) = connection
        .invoke::<serde_json::Value>(to_hub::SUBSCRIPTION_END, (id, QueryOutcome { error }))
        .await
    {
        tracing::debug!(subscription = %id, %error, "SubscriptionEnd not delivered");
    }
}

/// The values not yet sent: at most one per tag, and how many were replaced before they went.
///
/// Tags are addressed by their position in the subscription (the feed's items have one value
/// per tag in that order), so taking in a thousand values touches no map and copies no name.
#[derive(Debug)]
pub(crate) struct Coalescer {
    tags: Vec<String>,
    /// The last value sent per tag (what a change is measured against).
    sent: Vec<Option<TagValue>>,
    /// The value awaiting the next update per tag.
    pending: Vec<Option<TagValue>>,
    /// How many tags have a value in `pending`.
    waiting: usize,
    dropped: u64,
    /// The feed's number of the last item read.
    seen: u64,
    next_seq: u64,
}

impl Coalescer {
    pub(crate) fn new(tags: &[String]) -> Self {
        Self {
            tags: tags.to_vec(),
            sent: vec![None; tags.len()],
            pending: vec![None; tags.len()],
            waiting: 0,
            dropped: 0,
            seen: 0,
            next_seq: 0,
        }
    }

    fn offer_latest(&mut self, latest: &watch::Receiver<Latest>) {
        let item = latest.borrow().clone();
        if let Some((number, values)) = item {
            self.offer(number, &values);
        }
    }

    /// Takes in item `number` of the feed (0: the snapshot) with one value per tag in order;
    /// items the feed replaced before they were read count as dropped, one per tag.
    pub(crate) fn offer(&mut self, number: u64, values: &[TagValue]) {
        if number != 0 {
            if number <= self.seen {
                return;
            }
            let missed = number - self.seen - 1;
            if self.seen != 0 {
                self.dropped += missed * self.tags.len() as u64;
            }
            self.seen = number;
        }
        for ((value, pending), sent) in values.iter().zip(&mut self.pending).zip(&self.sent) {
            let newest = pending.as_ref().or(sent.as_ref());
            // Per tag, values only move forward: an item older than what was read is skipped.
            if newest.is_some_and(|n| n.time > value.time || n == value) {
                continue;
            }
            if pending.replace(value.clone()).is_some() {
                self.dropped += 1;
            } else {
                self.waiting += 1;
            }
        }
    }

    /// The next update, if anything changed.
    pub(crate) fn take(&mut self) -> Option<SubscriptionUpdate> {
        if self.waiting == 0 && (self.next_seq != 0 || self.tags.is_empty()) {
            return None;
        }
        let mut values = Vec::with_capacity(self.waiting);
        for ((tag, pending), sent) in self.tags.iter().zip(&mut self.pending).zip(&mut self.sent) {
            if let Some(value) = pending.take() {
                *sent = Some(value.clone());
                values.push(TagUpdate {
                    tag: tag.clone(),
                    value,
                });
            }
        }
        self.waiting = 0;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(SubscriptionUpdate {
            seq,
            values,
            events: Vec::new(),
            dropped: std::mem::take(&mut self.dropped),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn value(second: u32, v: f64) -> TagValue {
        TagValue::number(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second).unwrap(), v)
    }

    #[test]
    fn the_snapshot_goes_first_then_only_changes() {
        let tags = vec!["A".to_owned(), "B".to_owned()];
        let mut c = Coalescer::new(&tags);
        c.offer(0, &[value(0, 1.0), value(0, 2.0)]);
        let first = c.take().unwrap();
        assert_eq!((first.seq, first.values.len(), first.dropped), (0, 2, 0));
        assert!(c.take().is_none());
        // An older item than the snapshot (a shared feed's last one) changes nothing.
        c.offer(1, &[value(0, 1.0), value(0, 2.0)]);
        assert!(c.take().is_none());
        // B unchanged: only A goes.
        c.offer(2, &[value(1, 1.5), value(0, 2.0)]);
        let next = c.take().unwrap();
        assert_eq!(next.seq, 1);
        assert_eq!(next.values.len(), 1);
        assert_eq!(next.values[0].tag, "A");
    }

    #[test]
    fn a_slow_reader_gets_the_latest_value_per_tag_and_a_drop_count() {
        let tags = vec!["A".to_owned()];
        let mut c = Coalescer::new(&tags);
        c.offer(0, &[value(0, 0.0)]);
        c.take().unwrap();
        for n in 1..=10 {
            c.offer(n, &[value(n as u32, n as f64)]);
        }
        // Items 11..=19 were replaced in the feed before they were read.
        c.offer(20, &[value(20, 20.0)]);
        let update = c.take().unwrap();
        assert_eq!(update.values.len(), 1, "one value per tag, never more");
        assert_eq!(update.values[0].value.value, Some(20.0));
        // 2..=10 replaced 1 in waiting (9), 11..=19 never read (9), 20 replaced 10 (1).
        assert_eq!(update.dropped, 9 + 9 + 1);
        assert_eq!(c.waiting, 0);
        assert!(c.take().is_none());
    }
}
