//! Serving alarms and events (`Subscribe` with `kind: "events"`, docs/protocol.md §6): the
//! site's veto first, then an empty update 0 (the subscription is open), then each batch of new
//! events as a `SubscriptionUpdate` with at most one awaiting its completion.
//!
//! Events are never coalesced: while an update is on its way new events wait in a queue of at
//! most [`MAX_QUEUED_EVENTS`]; when a slow hub or app lets it fill, the oldest are dropped and
//! counted in the next update's `dropped`. A data source sees one `subscribe_events` per source
//! however many subscriptions (apps) share it: the [`EventFeed`] broadcasts its events, and
//! each subscription reads them at its own pace.

use std::sync::{Arc, Weak};

use futures::StreamExt as _;
use tokio::sync::{broadcast, oneshot};
use uplink_link::{
    MAX_EVENTS_PER_UPDATE, MAX_QUEUED_EVENTS, QueryFailure, SubscribeRequest, SubscriptionUpdate,
    to_hub,
};
use uplink_model::EventMessage;
use uplink_signalr::client::HubConnection;
use uplink_source::DataSource;

use super::query::Stop;
use super::subscription::{allowed, end, stop_outcome};
use super::{Inner, lock};
use crate::answer::failure_of;

/// One `DataSource::subscribe_events`, shared by every events subscription on the source.
pub(super) struct EventFeed {
    /// What new readers are made from; only the feed's task sends, so its end closes them.
    template: std::sync::Mutex<broadcast::Receiver<Arc<EventMessage>>>,
    task: tokio::task::AbortHandle,
}

impl Drop for EventFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for EventFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventFeed")
    }
}

/// The shared event feed of `source`: the running one, or a new `subscribe_events`.
async fn feed(
    inner: &Inner,
    name: &str,
    source: &Arc<dyn DataSource>,
) -> Result<Arc<EventFeed>, QueryFailure> {
    if let Some(feed) = lock(&inner.event_feeds).get(name).and_then(Weak::upgrade) {
        return Ok(feed);
    }
    let mut stream = source
        .subscribe_events()
        .await
        .map_err(|e| failure_of(&e))?;
    // A queue of MAX_QUEUED_EVENTS per reader: a reader that falls further behind loses the
    // oldest and learns how many.
    let (sender, template) = broadcast::channel(MAX_QUEUED_EVENTS);
    let task = tokio::spawn(async move {
        while let Some(batch) = stream.next().await {
            for event in batch {
                // No reader now: nobody to deliver to.
                let _ = sender.send(Arc::new(event));
            }
        }
        // Dropping the last sender ends every reader: the source stopped sending.
    })
    .abort_handle();
    let feed = Arc::new(EventFeed {
        template: std::sync::Mutex::new(template),
        task,
    });
    let mut feeds = lock(&inner.event_feeds);
    if let Some(existing) = feeds.get(name).and_then(Weak::upgrade) {
        return Ok(existing);
    }
    feeds.retain(|_, f| f.strong_count() > 0);
    feeds.insert(name.to_owned(), Arc::downgrade(&feed));
    Ok(feed)
}

/// The events waiting to go, and how many were lost since the last update.
struct Pending {
    events: Vec<EventMessage>,
    dropped: u64,
    /// The source's stream ended.
    closed: bool,
}

impl Pending {
    /// Takes in what the feed holds now (without waiting).
    fn drain(&mut self, receiver: &mut broadcast::Receiver<Arc<EventMessage>>) {
        loop {
            match receiver.try_recv() {
                Ok(event) => self.events.push((*event).clone()),
                Err(broadcast::error::TryRecvError::Lagged(lost)) => self.dropped += lost,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.closed = true;
                    return;
                }
                Err(broadcast::error::TryRecvError::Empty) => return,
            }
        }
        // Unreachable: the loop returns.
    }

    /// Keeps at most `MAX_QUEUED_EVENTS`, dropping the oldest.
    fn bound(&mut self) {
        if self.events.len() > MAX_QUEUED_EVENTS {
            let excess = self.events.len() - MAX_QUEUED_EVENTS;
            self.events.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn take(&mut self, seq: u64) -> SubscriptionUpdate {
        let count = self.events.len().min(MAX_EVENTS_PER_UPDATE);
        SubscriptionUpdate {
            seq,
            values: Vec::new(),
            events: self.events.drain(..count).collect(),
            dropped: std::mem::take(&mut self.dropped),
        }
    }
}

/// Runs an events subscription to its end; the outcome code for the log.
pub(super) async fn serve(
    inner: &Inner,
    connection: &HubConnection,
    request: &SubscribeRequest,
    mut stopped: oneshot::Receiver<Stop>,
) -> String {
    let id = request.subscription_id.as_str();
    let opened = async {
        allowed(inner, &request.app_id, &request.source)?;
        let source = inner.source(&request.source).ok_or_else(|| QueryFailure {
            code: uplink_link::failure::UNKNOWN_SOURCE.to_owned(),
            message: format!(
                "no data source named '{}' on this connector",
                request.source
            ),
        })?;
        feed(inner, &request.source, &source).await
    };
    let feed = tokio::select! {
        biased;
        stop = &mut stopped => return stop_outcome(connection, id, stop).await,
        opened = opened => match opened {
            Ok(feed) => feed,
            Err(refusal) => {
                end(connection, id, Some(refusal.clone())).await;
                return refusal.code;
            }
        },
    };
    let mut receiver = lock(&feed.template).resubscribe();
    let mut pending = Pending {
        events: Vec::new(),
        dropped: 0,
        closed: false,
    };
    let mut seq = 0;
    // Update 0 says the subscription is open, with no event.
    let mut due = true;
    loop {
        if due {
            let update = pending.take(seq);
            seq += 1;
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
                            return uplink_link::failure::CANCELLED.to_owned();
                        }
                    },
                    received = receiver.recv() => match received {
                        Ok(event) => {
                            pending.events.push((*event).clone());
                            pending.bound();
                        }
                        Err(broadcast::error::RecvError::Lagged(lost)) => pending.dropped += lost,
                        Err(broadcast::error::RecvError::Closed) => pending.closed = true,
                    },
                }
                if pending.closed {
                    // Finish the send first; the end follows.
                    let sent = tokio::select! {
                        biased;
                        stop = &mut stopped => return stop_outcome(connection, id, stop).await,
                        sent = &mut send => sent,
                    };
                    if sent.is_err() {
                        return uplink_link::failure::CANCELLED.to_owned();
                    }
                    break;
                }
            }
            due = false;
        }
        pending.drain(&mut receiver);
        pending.bound();
        if !pending.events.is_empty() || pending.dropped > 0 {
            due = true;
            continue;
        }
        if pending.closed {
            let failure = QueryFailure {
                code: uplink_link::failure::SOURCE_ERROR.to_owned(),
                message: "the data source stopped sending events".to_owned(),
            };
            end(connection, id, Some(failure.clone())).await;
            return failure.code;
        }
        tokio::select! {
            biased;
            stop = &mut stopped => return stop_outcome(connection, id, stop).await,
            received = receiver.recv() => match received {
                Ok(event) => pending.events.push((*event).clone()),
                Err(broadcast::error::RecvError::Lagged(lost)) => pending.dropped += lost,
                Err(broadcast::error::RecvError::Closed) => pending.closed = true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn event(n: usize) -> EventMessage {
        EventMessage {
            id: n.to_string(),
            source: "sim".into(),
            time: chrono::Utc::now(),
            topic: "T".into(),
            priority: uplink_model::EventPriority::High,
            category: "process".into(),
            event_type: "alarm".into(),
            message: format!("event {n}"),
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_them() {
        let (sender, mut receiver) = broadcast::channel(MAX_QUEUED_EVENTS);
        let mut pending = Pending {
            events: Vec::new(),
            dropped: 0,
            closed: false,
        };
        let sent = MAX_QUEUED_EVENTS + 250;
        for n in 0..sent {
            sender.send(Arc::new(event(n))).unwrap();
        }
        pending.drain(&mut receiver);
        pending.bound();
        assert_eq!(pending.events.len(), MAX_QUEUED_EVENTS);
        assert_eq!(pending.dropped, 250);
        assert_eq!(pending.events[0].id, "250", "the oldest went");
        let first = pending.take(1);
        assert_eq!(first.events.len(), MAX_EVENTS_PER_UPDATE);
        assert_eq!(first.dropped, 250);
        assert_eq!(first.events[0].id, "250");
        let second = pending.take(2);
        assert_eq!(second.dropped, 0, "counted once");
        assert_eq!(
            second.events[0].id,
            (250 + MAX_EVENTS_PER_UPDATE).to_string()
        );
        assert!(second.values.is_empty());
    }
}
