//! The simulated source's alarms: each sinusoid, ramp and square tag has a high limit (80 % of
//! the amplitude above the offset, priority high) and a low limit (as far below, priority
//! medium). Crossing one raises an alarm, going back within both ends it (`returnToNormal`), and
//! a simulated operator acknowledges every alarm a few samples after it was raised.
//!
//! Like the values, the alarms follow from the signal alone: one period's events are found once
//! on the sample grid, and the events of any range are that pattern repeated, so a time-range
//! read of any length costs what it returns, history needs no memory, and tests know exactly
//! which events to expect. An event's id (`time.tag.n`: microseconds, the tag's position, its
//! order among the tag's events at that instant) orders events and is the cursor of the page
//! that follows it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use uplink_model::time_expr::from_micros;
use uplink_model::{EventMessage, EventPage, EventPriority, EventsRequest, ModelError};

use super::{Cycle, Signal};
use crate::SourceError;

/// How far from the offset, as a share of the amplitude, the limits sit.
const LIMIT_SHARE: f64 = 0.8;
/// The most samples between an alarm and its acknowledgement.
const MAX_ACK_DELAY: i64 = 60;

/// Where a value stands against the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Normal,
    High,
    Low,
}

/// What happens at one point of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    /// The value went back within the limits from `High` or `Low`.
    Cleared(Condition),
    /// The value crossed a limit.
    Raised(Condition),
    /// The operator acknowledged the alarm.
    Acknowledged(Condition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Condition {
    High,
    Low,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Condition::High => "HI",
            Condition::Low => "LO",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Condition::High => "high",
            Condition::Low => "low",
        }
    }

    fn priority(self) -> EventPriority {
        match self {
            Condition::High => EventPriority::High,
            Condition::Low => EventPriority::Medium,
        }
    }
}

/// One tag's events over one period.
#[derive(Debug)]
pub(super) struct TagAlarms {
    position: usize,
    tag: Arc<str>,
    signal: Signal,
    steps: i64,
    /// The sample index where a period starts.
    first: i64,
    high: f64,
    low: f64,
    /// (offset in the period, what happens), in the order they happen.
    pattern: Vec<(i64, Happening)>,
}

impl TagAlarms {
    /// The events of a tag whose signal repeats as `cycle`; `None` for a tag without alarms.
    pub(super) fn build(
        position: usize,
        tag: &str,
        signal: &Signal,
        cycle: Option<&Cycle>,
    ) -> Option<Self> {
        let cycle = cycle?;
        let steps = cycle.values.len() as i64;
        let high = signal.offset + LIMIT_SHARE * signal.amplitude;
        let low = signal.offset - LIMIT_SHARE * signal.amplitude;
        let level = |v: f64| {
            if v >= high {
                Level::High
            } else if v <= low {
                Level::Low
            } else {
                Level::Normal
            }
        };
        let ack_delay = (steps / 20).clamp(1, MAX_ACK_DELAY);
        let mut pattern = Vec::new();
        let mut before = level(cycle.values[cycle.values.len() - 1]);
        for (j, &value) in cycle.values.iter().enumerate() {
            let now = level(value);
            let j = j as i64;
            if now != before {
                match before {
                    Level::High => pattern.push((j, Happening::Cleared(Condition::High))),
                    Level::Low => pattern.push((j, Happening::Cleared(Condition::Low))),
                    Level::Normal => {}
                }
                let raised = match now {
                    Level::High => Some(Condition::High),
                    Level::Low => Some(Condition::Low),
                    Level::Normal => None,
                };
                if let Some(condition) = raised {
                    pattern.push((j, Happening::Raised(condition)));
                    pattern.push((
                        (j + ack_delay).rem_euclid(steps),
                        Happening::Acknowledged(condition),
                    ));
                }
            }
            before = now;
        }
        if pattern.is_empty() {
            return None;
        }
        pattern.sort();
        Some(Self {
            position,
            tag: Arc::from(tag),
            signal: *signal,
            steps,
            first: cycle.first,
            high,
            low,
            pattern,
        })
    }

    /// The first event at or after sample `index`: (sample index, position in the pattern).
    fn first_at(&self, index: i64) -> (i64, usize) {
        let relative = index - self.first;
        let period = relative.div_euclid(self.steps);
        let within = relative.rem_euclid(self.steps);
        let at = self.pattern.partition_point(|(offset, _)| *offset < within);
        if at == self.pattern.len() {
            (self.index_of(period + 1, 0), 0)
        } else {
            (self.index_of(period, at), at)
        }
    }

    fn index_of(&self, period: i64, at: usize) -> i64 {
        self.first + period * self.steps + self.pattern[at].0
    }

    /// The event after the one at (`index`, `at`).
    fn after(&self, index: i64, at: usize) -> (i64, usize) {
        let period = (index - self.first - self.pattern[at].0).div_euclid(self.steps);
        if at + 1 == self.pattern.len() {
            (self.index_of(period + 1, 0), 0)
        } else {
            (self.index_of(period, at + 1), at + 1)
        }
    }

    /// The number of an event among this tag's events at its instant (0 for the first).
    fn order_at(&self, at: usize) -> usize {
        let offset = self.pattern[at].0;
        at - self.pattern.partition_point(|(o, _)| *o < offset)
    }

    fn message(&self, source: &str, index: i64, at: usize, interval: i64) -> EventMessage {
        let time_us = index * interval;
        let happening = self.pattern[at].1;
        let value = self.signal.value(time_us, index);
        let tag = &*self.tag;
        let (condition, event_type, priority, message) = match happening {
            Happening::Raised(c) => {
                let limit = if c == Condition::High {
                    self.high
                } else {
                    self.low
                };
                let side = if c == Condition::High {
                    "above"
                } else {
                    "below"
                };
                (
                    c,
                    "alarm",
                    c.priority(),
                    format!("{tag} is {side} its {} limit {limit} ({value})", c.words()),
                )
            }
            Happening::Cleared(c) => (
                c,
                "returnToNormal",
                EventPriority::Low,
                format!("{tag} is back within its limits ({value})"),
            ),
            Happening::Acknowledged(c) => (
                c,
                "acknowledged",
                EventPriority::Low,
                format!(
                    "{tag} {} alarm acknowledged by the simulated operator",
                    c.words()
                ),
            ),
        };
        let limit = if condition == Condition::High {
            self.high
        } else {
            self.low
        };
        EventMessage {
            id: Key(time_us, self.position, self.order_at(at)).to_string(),
            source: source.to_owned(),
            time: from_micros(time_us),
            topic: tag.to_owned(),
            priority,
            category: "process".to_owned(),
            event_type: event_type.to_owned(),
            message,
            properties: BTreeMap::from([
                ("tag".to_owned(), tag.to_owned()),
                ("condition".to_owned(), condition.name().to_owned()),
                ("limit".to_owned(), limit.to_string()),
                ("value".to_owned(), value.to_string()),
            ]),
        }
    }
}

/// Where an event stands in the source's order: time, tag position, order at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(i64, usize, usize);

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Key {
    fn parse(cursor: &str) -> Option<Self> {
        let mut parts = cursor.split('.');
        let key = Key(
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        );
        parts.next().is_none().then_some(key)
    }
}

/// The page of events `request` asks for, none later than `now_us`.
pub(super) fn page(
    source: &str,
    tags: &[TagAlarms],
    interval: i64,
    request: &EventsRequest,
    now_us: i64,
) -> Result<EventPage, SourceError> {
    let after = match &request.cursor {
        None => None,
        Some(cursor) => Some(Key::parse(cursor).ok_or_else(|| {
            SourceError::Query(ModelError::BadCursor {
                cursor: cursor.clone(),
            })
        })?),
    };
    let end = request.range.end_us().min(now_us);
    let mut start = request.range.start_us();
    if let Some(Key(time, ..)) = after {
        start = start.max(time);
    }
    // The first sample at or after the start.
    let first_index = start.div_euclid(interval) + i64::from(start.rem_euclid(interval) != 0);
    let mut heap = BinaryHeap::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let (index, at) = tag.first_at(first_index);
        heap.push(Reverse((
            Key(index * interval, tag.position, tag.order_at(at)),
            i,
            index,
            at,
        )));
    }
    let limit = request.limit as usize;
    let mut events = Vec::new();
    let mut next = None;
    while let Some(Reverse((key, i, index, at))) = heap.pop() {
        if key.0 > end {
            break;
        }
        let tag = &tags[i];
        let (following, following_at) = tag.after(index, at);
        heap.push(Reverse((
            Key(
                following * interval,
                tag.position,
                tag.order_at(following_at),
            ),
            i,
            following,
            following_at,
        )));
        if after.is_some_and(|after| key <= after) {
            continue;
        }
        if events.len() == limit {
            next = events.last().map(|last: &EventMessage| last.id.clone());
            break;
        }
        events.push(tag.message(source, index, at, interval));
    }
    Ok(EventPage { events, next })
}
