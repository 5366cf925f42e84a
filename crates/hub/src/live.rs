//! Live values on the hub: one [`Live`] per connector subscription (app, data source, tag
//! set), fanned out to every app stream that shares it. The hub keeps only the latest value of
//! each tag (a slow app is never given a queue: it reads the latest values when it is ready,
//! and the values it missed are counted as `dropped`), so its memory per subscription is one
//! value per tag whatever the apps' pace.
//!
//! Each applied update gets the next `seq`; an app stream's [`Cursor`] remembers the last `seq`
//! it was sent, which is what a reconnect's `Last-Event-ID` names (with the subscription's
//! generation, so an id from an earlier subscription is never mistaken for this one's).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, watch};
use uplink_link::{SubscriptionUpdate, TagUpdate};
use uplink_model::TagValue;

/// Why a subscription ended, as its app streams say it (`event: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEnd {
    /// The connector's link went away.
    Offline,
    /// The site's policy blocks the app or the data source.
    Blocked(String),
    /// The data source was removed on site.
    Removed(String),
    /// The connector ended it with another failure (code, message).
    Failed(String, String),
    /// No app stream used it for the linger time.
    Closed,
}

impl LiveEnd {
    /// The end of a subscription the connector ended with `code`.
    pub fn of_failure(code: &str, message: String) -> Self {
        match code {
            uplink_link::failure::VETOED => Self::Blocked(message),
            uplink_link::failure::UNKNOWN_SOURCE => Self::Removed(message),
            _ => Self::Failed(code.to_owned(), message),
        }
    }

    /// The SSE event name and `{code, message}` an app stream ends with.
    pub fn event(&self) -> (&'static str, &str, String) {
        match self {
            Self::Offline => (
                "offline",
                "connector_offline",
                "the connector serving this data source went offline; subscribe again when it is back".into(),
            ),
            Self::Blocked(m) => ("blocked", "vetoed", m.clone()),
            Self::Removed(m) => ("removed", "unknown_source", m.clone()),
            Self::Failed(code, m) => ("failed", code.as_str(), m.clone()),
            Self::Closed => ("closed", "closed", "the subscription closed".into()),
        }
    }
}

#[derive(Debug)]
struct Slot {
    value: TagValue,
    /// The `seq` of the update that brought it.
    seq: u64,
    /// How many values of this tag arrived so far.
    changes: u64,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    slots: HashMap<String, Slot>,
    /// Values the connector coalesced away, in total.
    dropped: u64,
    ended: Option<LiveEnd>,
}

/// One connector subscription's latest values, shared by its app streams.
#[derive(Debug)]
pub struct Live {
    generation: String,
    tags: Vec<String>,
    state: Mutex<State>,
    version: watch::Sender<u64>,
    subscribers: AtomicUsize,
    /// Wakes the keeper when the last app stream left.
    pub(crate) idle: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// A subscription to `tags` (sorted, without repeats) that has no value yet.
    pub fn new(tags: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            generation: crate::secret::public_id("g"),
            tags,
            state: Mutex::default(),
            version: watch::channel(0).0,
            subscribers: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// This subscription's generation: the first part of its event ids.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The tags, sorted.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Takes in the connector's next update: each subscribed tag's value replaces the last.
    pub fn apply(&self, update: SubscriptionUpdate) {
        let mut state = lock(&self.state);
        if state.ended.is_some() {
            return;
        }
        state.seq += 1;
        let seq = state.seq;
        state.dropped += update.dropped;
        for TagUpdate { tag, value } in update.values {
            if self.tags.binary_search(&tag).is_err() {
                continue;
            }
            let slot = state.slots.entry(tag).or_insert(Slot {
                value: value.clone(),
                seq,
                changes: 0,
            });
            slot.value = value;
            slot.seq = seq;
            slot.changes += 1;
        }
        drop(state);
        self.version.send_replace(seq);
    }

    /// Ends it (the first reason stays).
    pub fn end(&self, why: LiveEnd) {
        let mut state = lock(&self.state);
        if state.ended.is_none() {
            state.ended = Some(why);
        }
        drop(state);
        self.version.send_modify(|_| {});
    }

    /// Why it ended, if it did.
    pub fn ended(&self) -> Option<LiveEnd> {
        lock(&self.state).ended.clone()
    }

    /// Whether the first update (the snapshot) arrived.
    pub fn ready(&self) -> bool {
        lock(&self.state).seq > 0
    }

    /// Wakes on every update and on the end.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// How many values the hub holds for it (one per tag at most).
    pub fn held_values(&self) -> usize {
        lock(&self.state).slots.len()
    }

    /// How many app streams use it.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
    }

    /// A new app stream's handle.
    pub fn join(self: &Arc<Self>) -> LiveHandle {
        self.subscribers.fetch_add(1, Ordering::AcqRel);
        LiveHandle { live: self.clone() }
    }

    /// Waits for the snapshot or the end; the end when it came first.
    pub async fn first(&self) -> Result<(), LiveEnd> {
        let mut changes = self.changes();
        loop {
            if let Some(end) = self.ended() {
                return Err(end);
            }
            if self.ready() {
                return Ok(());
            }
            if changes.changed().await.is_err() {
                return Err(LiveEnd::Closed);
            }
        }
    }

    /// Every tag's latest value, in tag order; the cursor then stands at the latest `seq`.
    pub fn snapshot(&self, cursor: &mut Cursor) -> (u64, Vec<TagUpdate>) {
        let state = lock(&self.state);
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        let mut values = Vec::with_capacity(self.tags.len());
        for tag in &self.tags {
            if let Some(slot) = state.slots.get(tag) {
                cursor.changes.insert(tag.clone(), slot.changes);
                values.push(TagUpdate {
                    tag: tag.clone(),
                    value: slot.value.clone(),
                });
            }
        }
        (state.seq, values)
    }

    /// Whether `id` (`generation-seq`) names an update of this subscription that it can
    /// resume after: the cursor then stands there.
    pub fn resume(&self, id: &str, cursor: &mut Cursor) -> bool {
        let Some((generation, seq)) = id.rsplit_once('-') else {
            return false;
        };
        let Ok(seq) = seq.parse::<u64>() else {
            return false;
        };
        let state = lock(&self.state);
        if generation != self.generation || seq > state.seq {
            return false;
        }
        cursor.seq = seq;
        cursor.dropped = state.dropped;
        for (tag, slot) in &state.slots {
            // Changes after the id count from the first one resumed.
            let seen = if slot.seq > seq {
                slot.changes - 1
            } else {
                slot.changes
            };
            cursor.changes.insert(tag.clone(), seen);
        }
        true
    }

    /// The latest value of every tag that changed after the cursor, and how many values were
    /// coalesced away for this reader meanwhile; `None` when nothing changed.
    pub fn changes_since(&self, cursor: &mut Cursor) -> Option<(u64, Vec<TagUpdate>, u64)> {
        let state = lock(&self.state);
        if state.seq <= cursor.seq {
            return None;
        }
        let mut dropped = state.dropped - cursor.dropped;
        let mut values = Vec::new();
        for tag in &self.tags {
            let Some(slot) = state.slots.get(tag) else {
                continue;
            };
            if slot.seq <= cursor.seq {
                continue;
            }
            let seen = cursor.changes.get(tag).copied().unwrap_or(0);
            dropped += slot.changes.saturating_sub(seen).saturating_sub(1);
            cursor.changes.insert(tag.clone(), slot.changes);
            values.push(TagUpdate {
                tag: tag.clone(),
                value: slot.value.clone(),
            });
        }
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        Some((state.seq, values, dropped))
    }
}

/// Where one app stream stands.
#[derive(Debug, Default)]
pub struct Cursor {
    seq: u64,
    dropped: u64,
    changes: HashMap<String, u64>,
}

/// An app stream's share of a [`Live`]: the subscription stays while one is held (and for a
/// linger time after the last one goes, so a reconnect can resume).
#[derive(Debug)]
pub struct LiveHandle {
    live: Arc<Live>,
}

impl std::ops::Deref for LiveHandle {
    type Target = Live;

    fn deref(&self) -> &Live {
        &self.live
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        if self.live.subscribers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.live.idle.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn update(values: &[(&str, f64)], dropped: u64) -> SubscriptionUpdate {
        SubscriptionUpdate {
            seq: 0,
            values: values
                .iter()
                .map(|(tag, v)| TagUpdate {
                    tag: (*tag).to_owned(),
                    value: TagValue::number(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), *v),
                })
                .collect(),
            dropped,
        }
    }

    #[test]
    fn a_slow_reader_gets_the_latest_per_tag_and_the_count_of_the_rest() {
        let live = Live::new(vec!["A".into(), "B".into()]);
        live.apply(update(&[("A", 0.0), ("B", 0.0)], 0));
        let mut cursor = Cursor::default();
        let (seq, snapshot) = live.snapshot(&mut cursor);
        assert_eq!((seq, snapshot.len()), (1, 2));
        for n in 1..=100 {
            live.apply(update(&[("A", f64::from(n))], 0));
        }
        live.apply(update(&[("B", 1.0)], 5));
        assert_eq!(
            live.held_values(),
            2,
            "one value per tag, however slow the app"
        );
        let (seq, values, dropped) = live.changes_since(&mut cursor).unwrap();
        assert_eq!(seq, 102);
        assert_eq!(values.len(), 2);
        assert_eq!(values[0].value.value, Some(100.0));
        // 99 of A's 100 values never went out; the connector coalesced 5 more.
        assert_eq!(dropped, 99 + 5);
        assert!(live.changes_since(&mut cursor).is_none());
        // Unknown tags from a connector are ignored.
        live.apply(update(&[("Z", 1.0)], 0));
        assert_eq!(live.held_values(), 2);
    }

    #[test]
    fn a_reconnect_resumes_after_its_last_id_only_in_the_same_generation() {
        let live = Live::new(vec!["A".into(), "B".into()]);
        live.apply(update(&[("A", 0.0), ("B", 0.0)], 0));
        live.apply(update(&[("A", 1.0)], 0));
        let id = format!("{}-2", live.generation());
        live.apply(update(&[("B", 2.0)], 0));
        let mut cursor = Cursor::default();
        assert!(live.resume(&id, &mut cursor));
        let (_, values, dropped) = live.changes_since(&mut cursor).unwrap();
        assert_eq!(values.len(), 1);
        assert_eq!((values[0].tag.as_str(), dropped), ("B", 0));
        let mut other = Cursor::default();
        assert!(!live.resume("g_elsewhere-2", &mut other));
        assert!(!live.resume(&format!("{}-9", live.generation()), &mut other));
    }
}
