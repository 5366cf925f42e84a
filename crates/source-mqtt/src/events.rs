//! Alarms and events from topics whose subscription line has the `event` rule: a JSON payload
//! mapped to an [`EventMessage`], and the bounded log of recent events that time-range reads
//! page through.

use std::collections::{BTreeMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uplink_model::time_expr::to_micros;
use uplink_model::{EventMessage, EventPage, EventPriority, EventsRequest, ModelError};

use crate::subscriptions::JsonPath;

/// The most recent events a source keeps for time-range reads; older ones are forgotten.
pub const LOG_CAPACITY: usize = 10_000;

/// The most bytes of text the log holds (messages, topics, properties…); the earliest events
/// are forgotten first beyond it, so large payloads cannot grow memory without bound.
pub const LOG_BYTES: usize = 32 << 20;

/// The largest payload an event line reads; a larger one is counted in health, not logged.
pub const MAX_EVENT_PAYLOAD: usize = 64 << 10;

/// The type of an event whose payload names none.
pub const DEFAULT_TYPE: &str = "alarm";

/// Where an event's fields are in its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    /// What happened, for people (required in the payload).
    pub message: JsonPath,
    /// `low`/`medium`/`high`/`critical` or a severity from 0 to 1000 ([`priority_of`]).
    pub priority: JsonPath,
    /// When it happened (arrival when absent).
    pub time: JsonPath,
    /// The family of event.
    pub category: JsonPath,
    /// What happened (`alarm` when absent).
    pub event_type: JsonPath,
    /// Microseconds per unit of a numeric time.
    pub time_unit_us: i64,
}

impl EventRule {
    /// Maps one payload. The event's `id` and `source` are left empty for the [`EventLog`] and
    /// the source to fill in.
    ///
    /// # Errors
    /// Words naming the topic and what is wrong: not a JSON object, no message, a priority or
    /// time that does not read.
    pub fn read(
        &self,
        topic: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<EventMessage, String> {
        self.read_timed(topic, payload, now).map(|(event, _)| event)
    }

    /// As [`EventRule::read`], and whether the payload gave the event's time (else it is `now`).
    ///
    /// # Errors
    /// As [`EventRule::read`].
    pub fn read_timed(
        &self,
        topic: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(EventMessage, bool), String> {
        if payload.len() > MAX_EVENT_PAYLOAD {
            return Err(format!(
                "the event payload on '{topic}' has {} bytes; at most {MAX_EVENT_PAYLOAD} are read",
                payload.len()
            ));
        }
        let document: Value = serde_json::from_slice(payload)
            .map_err(|err| format!("the event payload on '{topic}' is not JSON: {err}"))?;
        let Value::Object(fields) = &document else {
            return Err(format!(
                "the event payload on '{topic}' is not a JSON object"
            ));
        };
        let message = match self.message.get(&document) {
            None | Some(Value::Null) => {
                return Err(format!(
                    "the event on '{topic}' has no message at {}",
                    self.message
                ));
            }
            Some(value) => text_of(value),
        };
        let priority = match self.priority.get(&document) {
            None | Some(Value::Null) => EventPriority::Medium,
            Some(value) => priority_of(value)
                .map_err(|why| format!("the event priority on '{topic}' {why}"))?,
        };
        let timed = !matches!(self.time.get(&document), None | Some(Value::Null));
        let time = crate::state::time_of(topic, self.time.get(&document), now, self.time_unit_us)?;
        let text_at = |path: &JsonPath| match path.get(&document) {
            None | Some(Value::Null) => None,
            Some(value) => Some(text_of(value)),
        };
        let category = text_at(&self.category).unwrap_or_default();
        let event_type = text_at(&self.event_type).unwrap_or_else(|| DEFAULT_TYPE.to_owned());
        let mapped: Vec<&str> = [
            &self.message,
            &self.priority,
            &self.time,
            &self.category,
            &self.event_type,
        ]
        .into_iter()
        .filter_map(JsonPath::first_key)
        .collect();
        let properties: BTreeMap<String, String> = fields
            .iter()
            .filter(|(key, _)| !mapped.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), text_of(value)))
            .collect();
        Ok((
            EventMessage {
                id: String::new(),
                source: String::new(),
                time,
                topic: topic.to_owned(),
                priority,
                category,
                event_type,
                message,
                properties,
            },
            timed,
        ))
    }
}

/// A hash of a message's topic and payload that every run computes alike (64-bit FNV-1a), so
/// that the same message sent again is known as the same event, across restarts too.
pub fn content_hash(topic: &str, payload: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes().chain([0]).chain(payload.iter().copied()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A priority from its name (any case) or an OPC UA–style severity from 0 to 1000, mapped by
/// [`EventPriority::from_severity`] (up to 250 low, up to 500 medium, up to 750 high, above
/// critical).
///
/// # Errors
/// Words saying what the value is not.
pub fn priority_of(value: &Value) -> Result<EventPriority, String> {
    let severity = match value {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "low" => return Ok(EventPriority::Low),
            "medium" => return Ok(EventPriority::Medium),
            "high" => return Ok(EventPriority::High),
            "critical" => return Ok(EventPriority::Critical),
            other => other.parse().map_err(|_| {
                format!("'{text}' is not low, medium, high, critical or a number from 0 to 1000")
            })?,
        },
        other => {
            return Err(format!(
                "{other} is not low, medium, high, critical or a number from 0 to 1000"
            ));
        }
    };
    EventPriority::from_severity(severity)
        .ok_or_else(|| format!("{value} is outside the severities 0 to 1000"))
}

/// Where an event stands in the log's order: its time, then its arrival number. A page's
/// cursor is this key written `TIME_US.NUMBER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(i64, u64);

impl Key {
    fn parse(cursor: &str) -> Option<Self> {
        let (time, number) = cursor.split_once('.')?;
        Some(Key(time.parse().ok()?, number.parse().ok()?))
    }
}

/// The bytes an event holds, roughly: its texts and a fixed overhead.
fn size_of(event: &EventMessage) -> usize {
    const OVERHEAD: usize = 160;
    OVERHEAD
        + event.id.len()
        + event.source.len()
        + event.topic.len()
        + event.category.len()
        + event.event_type.len()
        + event.message.len()
        + event
            .properties
            .iter()
            .map(|(key, value)| key.len() + value.len() + 48)
            .sum::<usize>()
}

/// The most recent events, in time order, at most `capacity` of them and about
/// [`LOG_BYTES`] of text, each id once.
#[derive(Debug)]
pub struct EventLog {
    events: VecDeque<(Key, EventMessage)>,
    /// The ids of `events`.
    ids: HashSet<String>,
    capacity: usize,
    bytes: usize,
    byte_budget: usize,
    /// The numbers this log handed out: `first_number..next_number`.
    first_number: u64,
    next_number: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new(LOG_CAPACITY)
    }
}

impl EventLog {
    /// An empty log keeping at most `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Self::with_budget(capacity, LOG_BYTES)
    }

    /// An empty log keeping at most `capacity` events and about `byte_budget` bytes of them.
    pub fn with_budget(capacity: usize, byte_budget: usize) -> Self {
        // Numbers start from the time the log began, so that ids stay unique across
        // restarts of the connector (its event journal keeps the earlier ones).
        let first_number = u64::try_from(to_micros(Utc::now())).unwrap_or(0);
        Self {
            events: VecDeque::new(),
            ids: HashSet::new(),
            capacity: capacity.max(1),
            bytes: 0,
            byte_budget,
            first_number,
            next_number: first_number,
        }
    }

    /// Gives the event its id, `TIME_US.HASH` (its time, and `content` — the
    /// [`content_hash`] of its message — in 16 hex digits), and keeps it, forgetting the
    /// earliest event when full; returns the event as kept, or `None` when the log holds an
    /// event of that id already (the same message sent again).
    pub fn push(&mut self, mut event: EventMessage, content: u64) -> Option<EventMessage> {
        event.id = format!("{}.{content:016x}", to_micros(event.time));
        if self.ids.contains(&event.id) {
            return None;
        }
        let key = Key(to_micros(event.time), self.next_number);
        self.next_number += 1;
        // Payload times may arrive out of order; most go at the end.
        let at = self.events.partition_point(|(k, _)| *k < key);
        self.bytes += size_of(&event);
        self.ids.insert(event.id.clone());
        self.events.insert(at, (key, event.clone()));
        while self.events.len() > self.capacity
            || (self.bytes > self.byte_budget && self.events.len() > 1)
        {
            if let Some((_, forgotten)) = self.events.pop_front() {
                self.bytes -= size_of(&forgotten);
                self.ids.remove(&forgotten.id);
            }
        }
        Some(event)
    }

    /// The arrival number of the event kept last (the one before the first when none was).
    pub fn last_number(&self) -> u64 {
        self.next_number.wrapping_sub(1)
    }

    /// The events the log still holds whose arrival numbers lie strictly between `after` and
    /// `before`, in the order they arrived: what a reader of the events stream that fell
    /// behind missed, less what the log forgot meanwhile.
    pub fn arrived_between(&self, after: u64, before: u64) -> Vec<(u64, EventMessage)> {
        let mut missed: Vec<(u64, EventMessage)> = self
            .events
            .iter()
            .filter(|(key, _)| after < key.1 && key.1 < before)
            .map(|(key, event)| (key.1, event.clone()))
            .collect();
        missed.sort_unstable_by_key(|(number, _)| *number);
        missed
    }

    /// How many events the log holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the log holds no event.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The page `request` asks for, none later than `now_us` (a payload may carry a future
    /// time; reads, as the protocol says, see none).
    ///
    /// # Errors
    /// [`ModelError::BadCursor`] for a cursor this log did not hand out.
    pub fn page(&self, request: &EventsRequest, now_us: i64) -> Result<EventPage, ModelError> {
        let after = match &request.cursor {
            None => None,
            Some(cursor) => Some(
                Key::parse(cursor)
                    .filter(|key| (self.first_number..self.next_number).contains(&key.1))
                    .ok_or_else(|| ModelError::BadCursor {
                        cursor: cursor.clone(),
                    })?,
            ),
        };
        let (start, end) = (request.range.start_us(), request.range.end_us().min(now_us));
        // Both conditions hold for a prefix of the log, since it is sorted by key.
        let first = self
            .events
            .partition_point(|(key, _)| key.0 < start || after.is_some_and(|a| *key <= a));
        let mut in_range = self
            .events
            .range(first..)
            .take_while(|(key, _)| key.0 <= end);
        let limit = request.limit as usize;
        let page: Vec<&(Key, EventMessage)> = in_range.by_ref().take(limit).collect();
        let next = match (in_range.next(), page.last()) {
            (Some(_), Some((last, _))) => Some(format!("{}.{}", last.0, last.1)),
            _ => None,
        };
        let events = page.into_iter().map(|(_, event)| event.clone()).collect();
        Ok(EventPage { events, next })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use uplink_model::TimeRange;

    use super::*;
    use crate::subscriptions::{self, Rule};

    fn rule(line: &str) -> EventRule {
        match subscriptions::parse(line).unwrap().remove(0).rule {
            Rule::Event(rule) => rule,
            other => panic!("{other:?}"),
        }
    }

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, second).unwrap()
    }

    #[test]
    fn a_payload_maps_to_an_event_with_the_rest_as_properties() {
        let payload = json!({
            "message": "TI100 high", "priority": "HIGH", "time": "2026-05-01T12:00:03Z",
            "category": "process", "type": "returnToNormal", "limit": 58, "tag": "TI100"
        });
        let event = rule("plant/+/alarms event")
            .read("plant/boiler/alarms", payload.to_string().as_bytes(), at(9))
            .unwrap();
        assert_eq!(event.message, "TI100 high");
        assert_eq!(event.priority, EventPriority::High);
        assert_eq!(event.time, at(3));
        assert_eq!(event.topic, "plant/boiler/alarms");
        assert_eq!(event.category, "process");
        assert_eq!(event.event_type, "returnToNormal");
        assert_eq!(
            event.properties,
            BTreeMap::from([
                ("limit".to_owned(), "58".to_owned()),
                ("tag".to_owned(), "TI100".to_owned())
            ])
        );
    }

    #[test]
    fn custom_paths_and_defaults_apply() {
        let rule = rule(
            "a/# event message=$.alarm.text priority=$.sev time=$.ts unit=s category=$.c type=$.t",
        );
        let event = rule
            .read(
                "a/b",
                br#"{"alarm": {"text": "door open"}, "sev": 800, "ts": 1777636800, "zone": 4}"#,
                at(9),
            )
            .unwrap();
        assert_eq!(event.message, "door open");
        assert_eq!(event.priority, EventPriority::Critical);
        assert_eq!(event.time, from_seconds(1_777_636_800));
        assert_eq!(event.category, "");
        assert_eq!(event.event_type, DEFAULT_TYPE);
        assert_eq!(
            event.properties,
            BTreeMap::from([("zone".to_owned(), "4".to_owned())])
        );
        let event = rule
            .read("a/b", br#"{"alarm": {"text": 7}}"#, at(9))
            .unwrap();
        assert_eq!(event.message, "7");
        assert_eq!(event.priority, EventPriority::Medium);
        assert_eq!(event.time, at(9));
    }

    fn from_seconds(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    #[test]
    fn severities_map_by_documented_ranges() {
        for (value, priority) in [
            (json!(0), EventPriority::Low),
            (json!(250), EventPriority::Low),
            (json!(250.5), EventPriority::Medium),
            (json!(500), EventPriority::Medium),
            (json!(501), EventPriority::High),
            (json!("750"), EventPriority::High),
            (json!(751), EventPriority::Critical),
            (json!(1000), EventPriority::Critical),
            (json!(" Critical "), EventPriority::Critical),
            (json!("low"), EventPriority::Low),
        ] {
            assert_eq!(priority_of(&value), Ok(priority), "{value}");
        }
        for bad in [
            json!(-1),
            json!(1001),
            json!("urgent"),
            json!(true),
            json!([1]),
        ] {
            assert!(priority_of(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_payloads_are_named() {
        let rule = rule("a/b event");
        for (payload, fragment) in [
            (&b"not json"[..], "is not JSON"),
            (b"[1, 2]", "is not a JSON object"),
            (br#"{"priority": "high"}"#, "has no message at $.message"),
            (br#"{"message": "m", "priority": "urgent"}"#, "'urgent'"),
            (br#"{"message": "m", "time": "yesterday"}"#, "not RFC 3339"),
        ] {
            let err = rule.read("a/b", payload, at(0)).unwrap_err();
            assert!(err.contains(fragment) && err.contains("'a/b'"), "{err}");
        }
    }

    fn event(second: u32) -> EventMessage {
        EventMessage {
            id: String::new(),
            source: "s".into(),
            time: at(second),
            topic: "a".into(),
            priority: EventPriority::Low,
            category: String::new(),
            event_type: DEFAULT_TYPE.into(),
            message: second.to_string(),
            properties: BTreeMap::new(),
        }
    }

    fn request(from: u32, to: u32, limit: u32, cursor: Option<String>) -> EventsRequest {
        EventsRequest {
            range: TimeRange::new(at(from), at(to)).unwrap(),
            limit,
            cursor,
        }
    }

    #[test]
    fn the_log_pages_in_time_order_without_duplicates_and_forgets_the_earliest() {
        let mut log = EventLog::new(5);
        // Arrival order differs from time order; two share a time (different messages).
        for (content, second) in [3, 1, 2, 2, 5, 4].into_iter().enumerate() {
            assert!(log.push(event(second), content as u64).is_some());
        }
        assert_eq!(log.len(), 5, "the earliest (second 1) is forgotten");
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = log.page(&request(0, 4, 2, cursor.take()), NOW).unwrap();
            assert!(page.events.len() <= 2);
            seen.extend(page.events.iter().map(|e| e.message.clone()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["2", "2", "3", "4"]);
        let page = log.page(&request(5, 9, 10, None), NOW).unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next, None);
    }

    const NOW: i64 = i64::MAX;

    #[test]
    fn the_log_keeps_to_its_byte_budget_and_payloads_are_bounded() {
        // Room for three events with their ids (33 bytes each: two 16-digit numbers), not four.
        let mut log = EventLog::with_budget(100, 3 * (size_of(&event(10)) + 36));
        for second in 10..20 {
            log.push(event(second), 0);
        }
        assert_eq!(log.len(), 3);
        let page = log.page(&request(0, 59, 10, None), NOW).unwrap();
        let messages: Vec<_> = page.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["17", "18", "19"]);
        let big = format!(r#"{{"message": "{}"}}"#, "x".repeat(MAX_EVENT_PAYLOAD));
        let err = rule("a event")
            .read("a", big.as_bytes(), at(0))
            .unwrap_err();
        assert!(err.contains("at most 65536 are read"), "{err}");
    }

    #[test]
    fn reads_see_no_event_later_than_now() {
        let mut log = EventLog::new(5);
        log.push(event(1), 1);
        log.push(event(8), 8);
        let page = log
            .page(&request(0, 9, 10, None), to_micros(at(5)))
            .unwrap();
        let messages: Vec<_> = page.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["1"]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn a_cursor_not_handed_out_is_refused() {
        let mut log = EventLog::new(5);
        let kept = log.push(event(1), 1).unwrap();
        log.push(event(2), 2);
        let next = log.page(&request(0, 9, 1, None), NOW).unwrap().next;
        let page = log.page(&request(0, 9, 1, next), NOW).unwrap();
        assert_eq!(page.events[0].message, "2");
        for cursor in ["x", "1.2.3", "5", "1777636800000000.1", kept.id.as_str()] {
            let err = log
                .page(&request(0, 9, 1, Some(cursor.into())), NOW)
                .unwrap_err();
            assert_eq!(err.code(), "bad_cursor", "{cursor}");
        }
    }

    #[test]
    fn the_same_message_sent_again_is_one_event_and_its_id_is_stable() {
        let payload = br#"{"message": "TI100 high", "time": "2026-05-01T12:00:03Z"}"#;
        let content = content_hash("plant/boiler/alarms", payload);
        assert_eq!(content, 0x3818_f13f_3ec2_bfb9, "the same in every run");
        assert_ne!(content, content_hash("plant/pump/alarms", payload));
        assert_ne!(
            content,
            content_hash("plant/boiler/alarm", b"splant/boiler/alarms")
        );
        let rule = rule("plant/+/alarms event");
        let (read, timed) = rule
            .read_timed("plant/boiler/alarms", payload, at(9))
            .unwrap();
        assert!(timed);
        let mut log = EventLog::new(5);
        let kept = log.push(read.clone(), content).unwrap();
        assert_eq!(kept.id, format!("{}.3818f13f3ec2bfb9", to_micros(at(3))));
        assert_eq!(
            log.push(read, content),
            None,
            "sent again: not a second event"
        );
        assert_eq!(log.len(), 1);
        // The same time-less message at another moment is another event.
        let (first, timed) = rule
            .read_timed("plant/boiler/alarms", br#"{"message": "m"}"#, at(4))
            .unwrap();
        assert!(!timed);
        let (second, _) = rule
            .read_timed("plant/boiler/alarms", br#"{"message": "m"}"#, at(5))
            .unwrap();
        assert!(log.push(first, 7).is_some());
        assert!(log.push(second, 7).is_some());
        assert_eq!(log.len(), 3);
    }
}
