//! Live values on the hub: one [`Live`] per connector subscription (app, data source, tag
//! set), fanned out to every app stream that shares it. The hub keeps only the latest value of
//! each tag (a slow app is never given a queue: it reads the latest values when it is ready,
//! and the values it missed are counted as `dropped`), so its memory per subscription is one
//! value per tag whatever the apps' pace.
//!
//! Each applied update gets the next `seq`; an app stream's [`Cursor`] remembers the last `seq`
//! it was sent, which is what a reconnect's `Last-Event-ID` names (with the subscription's
//! generation, so an id from an earlier subscription is never mistaken for this one's, and
//! the subscription's counts at that update, so that the resumed stream's `dropped` counts
//! what was coalesced away while the app was gone).
//!
//! An events subscription (alarms) holds no values but the latest events in a bounded queue
//! ([`uplink_link::MAX_QUEUED_EVENTS`]): events are never coalesced, and an app stream that
//! falls behind the queue's end is told how many it missed (`dropped`).
//!
//! In a cluster the replica holding the connector's link forwards a subscription's state to
//! the replicas with streams on it ([`LiveDelta`], `crate::backplane::live`): each keeps a
//! mirror ([`Live::mirror`]) with the holder's generation, `seq` numbers and counts, so an event
//! id means the same on every replica and a stream reads a mirror exactly as it reads a `Live`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::{Notify, watch};
use uplink_link::{SubscriptionUpdate, TagUpdate};
use uplink_model::{EventMessage, TagValue};

/// Why a subscription ended, as its app streams say it (`event: …`). Serializable: the holding
/// replica tells the others why a forwarded subscription ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "end", content = "detail", rename_all = "camelCase")]
pub enum LiveEnd {
    /// The connector's link went away.
    Offline,
    /// The site's policy blocks the app or the data source.
    Blocked(String),
    /// The data source was removed on site.
    Removed(String),
    /// The app no longer holds a grant on the data source: the connector ended the
    /// subscription on the grant list the hub pushed. A replica that streams another replica's
    /// subscription may hear of it before its own revocation notice, so it reads as `revoked`
    /// there too.
    Revoked(String),
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
            // A connector ends a subscription `cancelled` only when the app lost its grant.
            uplink_link::failure::CANCELLED => Self::Revoked(message),
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
            Self::Revoked(m) => ("revoked", "no_grant", m.clone()),
            Self::Failed(code, m) => ("failed", code.as_str(), m.clone()),
            Self::Closed => ("closed", "closed", "the subscription closed".into()),
        }
    }
}

/// One tag's latest value. Shared with the app streams that read it (each takes a reference,
/// not a copy of the tag's name and value), and replaced, never changed, by the next value.
#[derive(Debug)]
struct Slot {
    update: Arc<TagUpdate>,
    /// The `seq` of the update that brought it.
    seq: u64,
    /// How many values of this tag arrived so far.
    changes: u64,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    /// Each subscribed tag's latest value, by the tag's position in [`Live::tags`].
    slots: Vec<Option<Slot>>,
    /// Values the connector coalesced away, in total.
    dropped: u64,
    /// Values of the subscribed tags that arrived, in total (the sum of every slot's
    /// `changes`): what an event id carries so that a resume can count what it missed.
    arrivals: u64,
    ended: Option<LiveEnd>,
    /// The latest events: (`seq` of the update that brought it, its number from 1, the event).
    events: VecDeque<(u64, u64, EventMessage)>,
    /// How many events arrived in all.
    event_count: u64,
}

/// One connector subscription's latest values, shared by its app streams.
#[derive(Debug)]
pub struct Live {
    /// Set at creation, or (for a mirror) by the holder's first delta.
    generation: OnceLock<String>,
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
        let live = Self::mirror(tags);
        let _ = live.generation.set(crate::secret::public_id("g"));
        live
    }

    /// A mirror of a subscription another replica holds: it takes the holder's generation,
    /// `seq` numbers and counts from [`Live::import`], and is ready at the first delta.
    pub fn mirror(tags: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            generation: OnceLock::new(),
            tags,
            state: Mutex::default(),
            version: watch::channel(0).0,
            subscribers: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// This subscription's generation: the first part of its event ids.
    pub fn generation(&self) -> &str {
        self.generation.get().map_or("", String::as_str)
    }

    /// The tags, sorted.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The position of `tag` in [`Live::tags`], looked for at `hint` first: a connector sends
    /// an update's values in the subscription's tag order, so the next one is usually there.
    fn position(&self, tag: &str, hint: usize) -> Option<usize> {
        if self.tags.get(hint).is_some_and(|t| t == tag) {
            return Some(hint);
        }
        self.tags.binary_search_by(|t| t.as_str().cmp(tag)).ok()
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
        if state.slots.len() != self.tags.len() {
            state.slots.resize_with(self.tags.len(), || None);
        }
        let mut hint = 0;
        for value in update.values {
            let Some(position) = self.position(&value.tag, hint) else {
                continue;
            };
            hint = position + 1;
            let changes = state.slots[position].as_ref().map_or(0, |s| s.changes) + 1;
            state.slots[position] = Some(Slot {
                update: Arc::new(value),
                seq,
                changes,
            });
            state.arrivals += 1;
        }
        for event in update.events {
            state.event_count += 1;
            let number = state.event_count;
            state.events.push_back((seq, number, event));
            if state.events.len() > uplink_link::MAX_QUEUED_EVENTS {
                state.events.pop_front();
            }
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

    /// How many values and events the hub holds for it (one value per tag, at most
    /// [`uplink_link::MAX_QUEUED_EVENTS`] events).
    pub fn held_values(&self) -> usize {
        let state = lock(&self.state);
        state.slots.iter().flatten().count() + state.events.len()
    }

    /// Puts a new events reader's cursor at the latest event: it gets only what comes next.
    pub fn events_from_now(&self, cursor: &mut Cursor) {
        let state = lock(&self.state);
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        cursor.arrivals = state.arrivals;
        cursor.events = state.event_count;
    }

    /// Whether `id` ([`Live::event_id`]) names an update of this events subscription that the
    /// hub still holds every later event of: the cursor then stands there.
    pub fn resume_events(&self, id: &str, cursor: &mut Cursor) -> bool {
        let Some(mark) = self.parse_id(id) else {
            return false;
        };
        let seq = mark.seq;
        let state = lock(&self.state);
        if seq > state.seq {
            return false;
        }
        // Events after the id that the queue no longer holds cannot be sent again.
        if state
            .events
            .front()
            .is_some_and(|(s, number, _)| *s > seq && *number > 1)
        {
            return false;
        }
        cursor.seq = seq;
        // Events the connector dropped after the id are this reader's loss too, where the id
        // says how many it had dropped by then.
        cursor.dropped = mark
            .counts(&state)
            .map_or(state.dropped, |(_, dropped)| dropped);
        cursor.arrivals = state.arrivals;
        // Just before the first event held after the id (all of them read when none is).
        cursor.events = state
            .events
            .iter()
            .find(|(s, ..)| *s > seq)
            .map_or(state.event_count, |(_, number, _)| number - 1);
        true
    }

    /// The events after the cursor, oldest first, and how many this reader missed meanwhile
    /// (dropped by the connector, or gone from the queue before it read them); `None` when
    /// nothing arrived.
    pub fn events_since(&self, cursor: &mut Cursor) -> Option<(u64, Vec<EventMessage>, u64)> {
        let state = lock(&self.state);
        if state.seq <= cursor.seq {
            return None;
        }
        let events: Vec<EventMessage> = state
            .events
            .iter()
            .filter(|(_, number, _)| *number > cursor.events)
            .map(|(_, _, event)| event.clone())
            .collect();
        // Every event numbered after the cursor that is not in the queue was lost for this
        // reader: gone from the queue's front, or (on a mirror) never forwarded.
        let missed = (state.event_count - cursor.events).saturating_sub(events.len() as u64);
        let dropped = state.dropped.saturating_sub(cursor.dropped) + missed;
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        cursor.arrivals = state.arrivals;
        cursor.events = state.event_count;
        Some((state.seq, events, dropped))
    }

    /// What changed after `cursor`, in absolute terms (the `seq`, counts and numbers a
    /// mirror takes over as they are); the whole state when the cursor is new. `None` when
    /// nothing changed.
    pub fn export(&self, cursor: &mut ExportCursor) -> Option<LiveDelta> {
        let state = lock(&self.state);
        if state.seq <= cursor.seq {
            return None;
        }
        let slots = state
            .slots
            .iter()
            .flatten()
            .filter(|slot| slot.seq > cursor.seq)
            .map(|slot| SlotDelta {
                tag: slot.update.tag.clone(),
                value: slot.update.value.clone(),
                seq: slot.seq,
                changes: slot.changes,
            })
            .collect();
        let events = state
            .events
            .iter()
            .filter(|(_, number, _)| *number > cursor.events)
            .map(|(seq, number, event)| EventDelta {
                seq: *seq,
                number: *number,
                event: event.clone(),
            })
            .collect();
        cursor.seq = state.seq;
        cursor.events = state.event_count;
        Some(LiveDelta {
            generation: self.generation().to_owned(),
            seq: state.seq,
            dropped: state.dropped,
            event_count: state.event_count,
            slots,
            events,
        })
    }

    /// Takes in what the holding replica's [`Live::export`] gave: this mirror then stands
    /// where the holder stood (its generation, `seq`, counts and event numbers).
    pub fn import(&self, delta: LiveDelta) {
        let _ = self.generation.set(delta.generation);
        let mut state = lock(&self.state);
        if state.ended.is_some() || delta.seq < state.seq {
            return;
        }
        state.seq = delta.seq;
        state.dropped = delta.dropped;
        if state.slots.len() != self.tags.len() {
            state.slots.resize_with(self.tags.len(), || None);
        }
        let mut hint = 0;
        for slot in delta.slots {
            let Some(position) = self.position(&slot.tag, hint) else {
                continue;
            };
            hint = position + 1;
            // The holder's `changes` are absolute, so the mirror's arrivals stay the holder's.
            let before = state.slots[position].as_ref().map_or(0, |s| s.changes);
            state.arrivals += slot.changes.saturating_sub(before);
            state.slots[position] = Some(Slot {
                update: Arc::new(TagUpdate {
                    tag: slot.tag,
                    value: slot.value,
                }),
                seq: slot.seq,
                changes: slot.changes,
            });
        }
        for event in delta.events {
            if state
                .events
                .back()
                .is_some_and(|(_, n, _)| *n >= event.number)
            {
                continue;
            }
            state
                .events
                .push_back((event.seq, event.number, event.event));
            if state.events.len() > uplink_link::MAX_QUEUED_EVENTS {
                state.events.pop_front();
            }
        }
        state.event_count = state.event_count.max(delta.event_count);
        drop(state);
        self.version.send_replace(delta.seq);
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
    pub fn snapshot(&self, cursor: &mut Cursor) -> (u64, Vec<Arc<TagUpdate>>) {
        let state = lock(&self.state);
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        cursor.arrivals = state.arrivals;
        cursor.changes.clear();
        cursor.changes.resize(self.tags.len(), 0);
        let mut values = Vec::with_capacity(self.tags.len());
        for (slot, seen) in state.slots.iter().zip(&mut cursor.changes) {
            if let Some(slot) = slot {
                *seen = slot.changes;
                values.push(slot.update.clone());
            }
        }
        (state.seq, values)
    }

    /// Whether `id` ([`Live::event_id`]) names an update of this subscription that it can
    /// resume after: the cursor then stands there.
    ///
    /// The values that arrived after the id and were coalesced away before the resume are
    /// counted in the first `dropped` when the id carries the counts at its update (every id
    /// this hub gives does); an id without them counts from the values resumed.
    pub fn resume(&self, id: &str, cursor: &mut Cursor) -> bool {
        let Some(mark) = self.parse_id(id) else {
            return false;
        };
        let seq = mark.seq;
        let state = lock(&self.state);
        if seq > state.seq {
            return false;
        }
        cursor.seq = seq;
        cursor.dropped = state.dropped;
        cursor.arrivals = state.arrivals;
        cursor.changes.clear();
        cursor.changes.resize(self.tags.len(), 0);
        let mut changed = 0;
        for (slot, seen) in state.slots.iter().zip(&mut cursor.changes) {
            let Some(slot) = slot else { continue };
            // Changes after the id count from the first one resumed.
            *seen = if slot.seq > seq {
                changed += 1;
                slot.changes - 1
            } else {
                slot.changes
            };
        }
        if let Some((arrivals, dropped)) = mark.counts(&state) {
            // Every value that arrived after the id but the latest of each changed tag (the
            // one resumed) was coalesced away, and the connector's drops since then too.
            cursor.owed = (state.arrivals - arrivals).saturating_sub(changed);
            cursor.dropped = dropped;
        }
        true
    }

    /// The event id of where `cursor` stands: `generation-seq-arrivals-dropped`, the update's
    /// number with the subscription's counts at it, so that a resume knows what it missed.
    pub fn event_id(&self, cursor: &Cursor) -> String {
        format!(
            "{}-{}-{}-{}",
            self.generation(),
            cursor.seq,
            cursor.arrivals,
            cursor.dropped
        )
    }

    /// Reads an event id of this subscription: `generation-seq`, with `-arrivals-dropped`
    /// where given. `None` for another subscription's id or a malformed one.
    fn parse_id(&self, id: &str) -> Option<Mark> {
        // A generation has no '-' (`g_` and hex digits).
        let mut parts = id.split('-');
        if self.generation().is_empty() || parts.next()? != self.generation() {
            return None;
        }
        let numbers: Vec<u64> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
        match numbers[..] {
            [seq] => Some(Mark { seq, counts: None }),
            [seq, arrivals, dropped] => Some(Mark {
                seq,
                counts: Some((arrivals, dropped)),
            }),
            _ => None,
        }
    }

    /// The latest value of every tag that changed after the cursor, and how many values were
    /// coalesced away for this reader meanwhile; `None` when nothing changed.
    pub fn changes_since(&self, cursor: &mut Cursor) -> Option<(u64, Vec<Arc<TagUpdate>>, u64)> {
        let state = lock(&self.state);
        if state.seq <= cursor.seq {
            return None;
        }
        let mut dropped =
            state.dropped.saturating_sub(cursor.dropped) + std::mem::take(&mut cursor.owed);
        if cursor.changes.len() != self.tags.len() {
            cursor.changes.resize(self.tags.len(), 0);
        }
        let mut values = Vec::new();
        for (slot, seen) in state.slots.iter().zip(&mut cursor.changes) {
            let Some(slot) = slot else {
                continue;
            };
            if slot.seq <= cursor.seq {
                continue;
            }
            dropped += slot.changes.saturating_sub(*seen).saturating_sub(1);
            *seen = slot.changes;
            values.push(slot.update.clone());
        }
        cursor.seq = state.seq;
        cursor.dropped = state.dropped;
        cursor.arrivals = state.arrivals;
        Some((state.seq, values, dropped))
    }
}

/// Where a forwarder of a [`Live`] to another replica stands ([`Live::export`]).
#[derive(Debug, Default)]
pub struct ExportCursor {
    seq: u64,
    events: u64,
}

/// A subscription's news since an [`ExportCursor`], as the holding replica forwards it: the
/// changed tags' latest values and the new events, with the holder's absolute `seq`, counts
/// and event numbers. docs/protocol.md, "Live values across replicas".
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveDelta {
    /// The holder's subscription generation (the first part of event ids).
    pub generation: String,
    /// The `seq` of the holder's latest update.
    pub seq: u64,
    /// Values the connector coalesced away, in total.
    pub dropped: u64,
    /// Events that arrived, in total.
    pub event_count: u64,
    /// Each tag that changed: its latest value, the `seq` that brought it, how many it had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<SlotDelta>,
    /// The events not forwarded yet, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventDelta>,
}

/// One tag's latest value in a [`LiveDelta`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotDelta {
    /// The tag.
    pub tag: String,
    /// Its latest value.
    pub value: TagValue,
    /// The `seq` of the update that brought it.
    pub seq: u64,
    /// How many values of this tag arrived so far.
    pub changes: u64,
}

/// One event in a [`LiveDelta`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDelta {
    /// The `seq` of the update that brought it.
    pub seq: u64,
    /// Its number, from 1.
    pub number: u64,
    /// The event.
    pub event: EventMessage,
}

/// An event id read back: the update's `seq` and, where the id carries them, the
/// subscription's `arrivals` and `dropped` at it.
#[derive(Debug)]
struct Mark {
    seq: u64,
    counts: Option<(u64, u64)>,
}

impl Mark {
    /// The id's counts where they can be true of this subscription (never above its own).
    fn counts(&self, state: &State) -> Option<(u64, u64)> {
        self.counts
            .filter(|&(arrivals, dropped)| arrivals <= state.arrivals && dropped <= state.dropped)
    }
}

/// Where one app stream stands.
#[derive(Debug, Default)]
pub struct Cursor {
    seq: u64,
    dropped: u64,
    /// The subscription's `arrivals` at `seq`.
    arrivals: u64,
    /// Values coalesced away between a resumed id and the resume, said in the next `dropped`.
    owed: u64,
    /// How many values of each tag (by position) this reader has accounted for.
    changes: Vec<u64>,
    /// The number of the last event read.
    events: u64,
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

    #[test]
    fn a_subscription_the_connector_ended_for_a_lost_grant_ends_streams_as_revoked() {
        let end = LiveEnd::of_failure(
            uplink_link::failure::CANCELLED,
            "the app 'app_1' no longer holds a grant on 'plant'".into(),
        );
        let (name, code, message) = end.event();
        assert_eq!((name, code), ("revoked", "no_grant"));
        assert!(message.contains("no longer holds a grant"), "{message}");
        let other = LiveEnd::of_failure(uplink_link::failure::SOURCE_ERROR, "down".into());
        assert_eq!(other.event().0, "failed");
    }

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
            events: Vec::new(),
            dropped,
        }
    }

    fn events(numbers: std::ops::Range<usize>, dropped: u64) -> SubscriptionUpdate {
        SubscriptionUpdate {
            seq: 0,
            values: Vec::new(),
            events: numbers
                .map(|n| EventMessage {
                    id: n.to_string(),
                    source: "sim".into(),
                    time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                    topic: "A".into(),
                    priority: uplink_model::EventPriority::High,
                    category: "process".into(),
                    event_type: "alarm".into(),
                    message: format!("event {n}"),
                    properties: Default::default(),
                })
                .collect(),
            dropped,
        }
    }

    #[test]
    fn events_are_queued_not_coalesced_and_a_slow_reader_learns_what_it_missed() {
        let live = Live::new(Vec::new());
        live.apply(events(0..0, 0));
        let mut fast = Cursor::default();
        let mut slow = Cursor::default();
        live.events_from_now(&mut fast);
        live.events_from_now(&mut slow);
        live.apply(events(0..3, 0));
        let (_, got, dropped) = live.events_since(&mut fast).unwrap();
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            (ids, dropped),
            (vec!["0", "1", "2"], 0),
            "every event, in order"
        );
        let queue = uplink_link::MAX_QUEUED_EVENTS;
        live.apply(events(3..3 + queue, 4));
        assert_eq!(live.held_values(), queue, "the queue is bounded");
        let (_, got, dropped) = live.events_since(&mut fast).unwrap();
        assert_eq!(got.len(), queue);
        assert_eq!(dropped, 4, "what the connector dropped");
        // The slow reader missed the 3 oldest events (gone from the queue) and the 4.
        let (_, got, dropped) = live.events_since(&mut slow).unwrap();
        assert_eq!(got[0].id, "3");
        assert_eq!(dropped, 3 + 4);
        assert!(live.events_since(&mut slow).is_none());
    }

    #[test]
    fn an_events_reader_resumes_after_its_last_id() {
        let live = Live::new(Vec::new());
        live.apply(events(0..0, 0));
        live.apply(events(0..2, 0));
        let id = format!("{}-2", live.generation());
        live.apply(events(2..5, 0));
        let mut cursor = Cursor::default();
        assert!(live.resume_events(&id, &mut cursor));
        let (_, got, dropped) = live.events_since(&mut cursor).unwrap();
        let ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
        assert_eq!((ids, dropped), (vec!["2", "3", "4"], 0));
        assert!(!live.resume_events("g_other-2", &mut Cursor::default()));
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

    #[test]
    fn a_resume_counts_what_was_coalesced_away_since_its_id() {
        let live = Live::new(vec!["A".into(), "B".into(), "C".into()]);
        live.apply(update(&[("A", 0.0), ("B", 0.0), ("C", 0.0)], 0));
        let mut reader = Cursor::default();
        live.snapshot(&mut reader);
        live.apply(update(&[("A", 1.0)], 1));
        live.changes_since(&mut reader).unwrap();
        let id = live.event_id(&reader);
        // The app is away: A changes 5 times, B twice, C not at all, and the connector
        // coalesces 3 values away.
        for n in 2..=6 {
            live.apply(update(&[("A", f64::from(n))], 0));
        }
        live.apply(update(&[("B", 1.0)], 2));
        live.apply(update(&[("B", 2.0)], 1));
        let mut resumed = Cursor::default();
        assert!(live.resume(&id, &mut resumed));
        let (_, values, dropped) = live.changes_since(&mut resumed).unwrap();
        let tags: Vec<&str> = values.iter().map(|v| v.tag.as_str()).collect();
        assert_eq!(tags, ["A", "B"], "the latest of each tag that changed");
        assert_eq!(
            dropped,
            4 + 1 + 3,
            "A's 4 older values, B's 1, the connector's 3"
        );
        // Later updates count as for any reader, the resumed ones not again.
        live.apply(update(&[("A", 7.0)], 0));
        live.apply(update(&[("A", 8.0)], 0));
        let (_, _, dropped) = live.changes_since(&mut resumed).unwrap();
        assert_eq!(dropped, 1);
        // Every reader at the same update gets the same id.
        let mut other = Cursor::default();
        live.snapshot(&mut other);
        assert_eq!(live.event_id(&other), live.event_id(&resumed));
        // An id without the counts (or with counts this subscription never reached) counts
        // from the values resumed, as it cannot know more.
        for id in [
            format!("{}-2", live.generation()),
            format!("{}-2-999999-0", live.generation()),
        ] {
            let mut cursor = Cursor::default();
            assert!(live.resume(&id, &mut cursor));
            let (_, values, dropped) = live.changes_since(&mut cursor).unwrap();
            assert_eq!((values.len(), dropped), (2, 0), "{id}");
        }
        assert!(!live.resume(
            &format!("{}-2-x-0", live.generation()),
            &mut Cursor::default()
        ));
    }

    #[test]
    fn an_id_from_the_holder_counts_what_was_missed_on_a_mirror() {
        let holder = Live::new(vec!["A".into()]);
        holder.apply(update(&[("A", 0.0)], 0));
        let mut reader = Cursor::default();
        holder.snapshot(&mut reader);
        let id = holder.event_id(&reader);
        for n in 1..=4 {
            holder.apply(update(&[("A", f64::from(n))], 1));
        }
        let mirror = Live::mirror(holder.tags().to_vec());
        mirror.import(holder.export(&mut ExportCursor::default()).unwrap());
        let mut resumed = Cursor::default();
        assert!(mirror.resume(&id, &mut resumed));
        let (_, values, dropped) = mirror.changes_since(&mut resumed).unwrap();
        assert_eq!((values.len(), dropped), (1, 3 + 4));
        let mut at_holder = Cursor::default();
        holder.snapshot(&mut at_holder);
        assert_eq!(mirror.event_id(&resumed), holder.event_id(&at_holder));
    }

    #[test]
    fn a_mirror_fed_by_deltas_reads_like_the_holder_and_resumes_its_ids() {
        let holder = Live::new(vec!["A".into(), "B".into()]);
        holder.apply(update(&[("A", 0.0), ("B", 0.0)], 0));
        let mirror = Live::mirror(holder.tags().to_vec());
        assert!(!mirror.ready());
        let mut forwarded = ExportCursor::default();
        mirror.import(holder.export(&mut forwarded).unwrap());
        assert!(holder.export(&mut forwarded).is_none(), "nothing new");
        assert_eq!(mirror.generation(), holder.generation());
        let mut reader = Cursor::default();
        assert_eq!(mirror.snapshot(&mut reader).0, 1);
        // The holder coalesces while the forward waits: the mirror's reader still learns
        // how many values it missed.
        for n in 1..=10 {
            holder.apply(update(&[("A", f64::from(n))], 0));
        }
        holder.apply(update(&[("B", 1.0)], 2));
        let id = format!("{}-12", holder.generation());
        holder.apply(update(&[("B", 2.0)], 0));
        mirror.import(holder.export(&mut forwarded).unwrap());
        let (seq, values, dropped) = mirror.changes_since(&mut reader).unwrap();
        assert_eq!((seq, values.len(), dropped), (13, 2, 9 + 1 + 2));
        // An id the holder gave resumes on a fresh mirror of another replica.
        let other = Live::mirror(holder.tags().to_vec());
        other.import(holder.export(&mut ExportCursor::default()).unwrap());
        let mut resumed = Cursor::default();
        assert!(other.resume(&id, &mut resumed));
        let (_, values, dropped) = other.changes_since(&mut resumed).unwrap();
        assert_eq!((values.len(), values[0].tag.as_str(), dropped), (1, "B", 0));
    }

    #[test]
    fn events_a_forward_skipped_are_counted_on_the_mirror() {
        let holder = Live::new(Vec::new());
        holder.apply(events(0..0, 0));
        let mirror = Live::mirror(Vec::new());
        let mut forwarded = ExportCursor::default();
        mirror.import(holder.export(&mut forwarded).unwrap());
        let mut reader = Cursor::default();
        mirror.events_from_now(&mut reader);
        holder.apply(events(0..2, 0));
        mirror.import(holder.export(&mut forwarded).unwrap());
        // More than the holder's queue arrives before the next forward.
        let queue = uplink_link::MAX_QUEUED_EVENTS;
        holder.apply(events(2..2 + queue + 5, 0));
        mirror.import(holder.export(&mut forwarded).unwrap());
        let (_, got, dropped) = mirror.events_since(&mut reader).unwrap();
        assert_eq!(got.len(), queue, "the mirror's queue is bounded too");
        assert_eq!(
            got.len() as u64 + dropped,
            2 + queue as u64 + 5,
            "every event read or counted"
        );
        assert_eq!(mirror.held_values(), queue);
    }
}
