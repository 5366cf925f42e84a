//! OPC UA Alarms & Conditions and events as Uplink's events: the event filter Uplink asks the
//! server for, each event's fields mapped to an [`EventMessage`], the bounded queue between the
//! client's notification callback and an events stream, and the walk through HistoryRead event
//! pages behind a time-range read's cursor.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use opcua::types::{
    AttributeId, ContentFilter, EventFilter, NodeId, NumericRange, ObjectTypeId, QualifiedName,
    SimpleAttributeOperand, Variant,
};
use sha2::Digest;
use uplink_model::time_expr::to_micros;
use uplink_model::{EventMessage, EventPage, EventPriority, EventsRequest, ModelError};

/// The events an events stream may have waiting; beyond it the oldest is dropped and counted.
pub(crate) const EVENT_QUEUE: usize = 1_024;

/// The most events one item of the events stream carries.
pub(crate) const EVENTS_PER_ITEM: usize = 500;

/// The most events one HistoryRead request asks for while skipping events that share one
/// instant (a server that stops pages without a continuation point is read again from there).
const MAX_REQUEST: u32 = 100_000;

/// The longest event id kept as it is (in hex); a longer EventId is shortened to its SHA-256.
const MAX_ID_BYTES: usize = 64;

/// The fields Uplink selects from every event, in the order of the filter's select clauses.
#[derive(Debug, Clone, Copy)]
enum Field {
    EventId,
    EventType,
    SourceName,
    SourceNode,
    Time,
    Message,
    Severity,
    ConditionName,
    ConditionId,
    ActiveState,
    AckedState,
}

/// Each field: the type that defines it, its browse path from the event, and the attribute.
const SELECTED: [(Field, ObjectTypeId, &[&str]); 11] = [
    (Field::EventId, ObjectTypeId::BaseEventType, &["EventId"]),
    (
        Field::EventType,
        ObjectTypeId::BaseEventType,
        &["EventType"],
    ),
    (
        Field::SourceName,
        ObjectTypeId::BaseEventType,
        &["SourceName"],
    ),
    (
        Field::SourceNode,
        ObjectTypeId::BaseEventType,
        &["SourceNode"],
    ),
    (Field::Time, ObjectTypeId::BaseEventType, &["Time"]),
    (Field::Message, ObjectTypeId::BaseEventType, &["Message"]),
    (Field::Severity, ObjectTypeId::BaseEventType, &["Severity"]),
    (
        Field::ConditionName,
        ObjectTypeId::ConditionType,
        &["ConditionName"],
    ),
    // The condition's own node id: the NodeId attribute of the condition, no browse path.
    (Field::ConditionId, ObjectTypeId::ConditionType, &[]),
    (
        Field::ActiveState,
        ObjectTypeId::AlarmConditionType,
        &["ActiveState", "Id"],
    ),
    (
        Field::AckedState,
        ObjectTypeId::AcknowledgeableConditionType,
        &["AckedState", "Id"],
    ),
];

/// The filter of the events monitored item and of HistoryRead: the fields above, every event.
pub(crate) fn filter() -> EventFilter {
    EventFilter {
        select_clauses: Some(
            SELECTED
                .iter()
                .map(|(field, type_definition, path)| SimpleAttributeOperand {
                    type_definition_id: (*type_definition).into(),
                    browse_path: Some(
                        path.iter()
                            .map(|name| QualifiedName::new(0, *name))
                            .collect(),
                    ),
                    attribute_id: if matches!(field, Field::ConditionId) {
                        AttributeId::NodeId as u32
                    } else {
                        AttributeId::Value as u32
                    },
                    index_range: NumericRange::None,
                })
                .collect(),
        ),
        where_clause: ContentFilter::default(),
    }
}

fn field(fields: &[Variant], which: Field) -> Option<&Variant> {
    fields
        .get(which as usize)
        .filter(|v| !matches!(v, Variant::Empty))
}

fn text(fields: &[Variant], which: Field) -> Option<String> {
    let text = match field(fields, which)? {
        Variant::String(s) => s.value().clone()?,
        Variant::LocalizedText(t) => t.text.value().clone()?,
        Variant::QualifiedName(q) => q.name.value().clone()?,
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn node(fields: &[Variant], which: Field) -> Option<NodeId> {
    match field(fields, which)? {
        Variant::NodeId(id) if !id.is_null() => Some((**id).clone()),
        Variant::ExpandedNodeId(id) if !id.node_id.is_null() => Some(id.node_id.clone()),
        _ => None,
    }
}

fn flag(fields: &[Variant], which: Field) -> Option<bool> {
    match field(fields, which)? {
        Variant::Boolean(b) => Some(*b),
        _ => None,
    }
}

fn severity(fields: &[Variant]) -> Option<f64> {
    let (number, _) = crate::values::number_or_text(field(fields, Field::Severity)?);
    number
}

/// The event's type, to be named by [`type_name`] or the server before [`to_event`].
pub(crate) fn event_type(fields: &[Variant]) -> Option<NodeId> {
    node(fields, Field::EventType)
}

/// The browse name of a standard event type (namespace 0), known without asking the server.
pub(crate) fn standard_type_name(id: &NodeId) -> Option<String> {
    match (id.namespace, &id.identifier) {
        (0, opcua::types::Identifier::Numeric(n)) => {
            ObjectTypeId::try_from(*n).ok().map(|t| format!("{t:?}"))
        }
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The event's id: its EventId in hex (a long one as its SHA-256), or for an event without one
/// a digest of what it says, so that reading it twice gives the same id.
fn event_id(fields: &[Variant], time: DateTime<Utc>) -> String {
    match field(fields, Field::EventId) {
        Some(Variant::ByteString(id)) if !id.is_null_or_empty() => {
            let bytes = id.value.as_deref().unwrap_or_default();
            if bytes.len() <= MAX_ID_BYTES {
                hex(bytes)
            } else {
                hex(&sha2::Sha256::digest(bytes))
            }
        }
        _ => {
            let mut digest = sha2::Sha256::new();
            for part in [
                to_micros(time).to_string(),
                event_type(fields)
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                node(fields, Field::SourceNode)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                text(fields, Field::Message).unwrap_or_default(),
            ] {
                digest.update(part.as_bytes());
                digest.update([0]);
            }
            hex(&digest.finalize()[..16])
        }
    }
}

/// What happened, from a condition's states: `alarm` (active, not acknowledged),
/// `acknowledged`, `returnToNormal` (inactive), `condition` for another condition's change, and
/// `event` for an event that is no condition.
fn what_happened(active: Option<bool>, acked: Option<bool>, condition: bool) -> &'static str {
    match (active, acked) {
        (Some(false), _) => "returnToNormal",
        (Some(true), Some(true)) | (None, Some(true)) => "acknowledged",
        (Some(true), _) => "alarm",
        (None, Some(false)) => "condition",
        (None, None) if condition => "condition",
        (None, None) => "event",
    }
}

/// One event's fields (in [`filter`]'s order) as Uplink's event. `type_name` is the browse name
/// of its event type; `notifier` the topic of an event that names no source.
pub(crate) fn to_event(
    fields: &[Variant],
    source: &str,
    type_name: &str,
    notifier: &NodeId,
    now: DateTime<Utc>,
) -> EventMessage {
    let time = match field(fields, Field::Time) {
        Some(Variant::DateTime(t)) if !t.is_null() => t.as_chrono(),
        _ => now,
    };
    let source_node = node(fields, Field::SourceNode);
    let topic = text(fields, Field::SourceName)
        .or_else(|| source_node.as_ref().map(ToString::to_string))
        .unwrap_or_else(|| notifier.to_string());
    let condition_name = text(fields, Field::ConditionName);
    let active = flag(fields, Field::ActiveState);
    let acked = flag(fields, Field::AckedState);
    let severity = severity(fields);
    // OPC UA severities run from 1 to 1000; a server sending more means the most urgent.
    let priority = severity.map_or(EventPriority::Medium, |s| {
        EventPriority::from_severity(s.clamp(0.0, 1000.0)).unwrap_or(EventPriority::Medium)
    });
    let message = text(fields, Field::Message)
        .or_else(|| condition_name.clone())
        .unwrap_or_else(|| type_name.to_owned());
    let mut properties = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            properties.insert(key.to_owned(), value);
        }
    };
    put("severity", severity.map(|s| s.to_string()));
    put("eventType", event_type(fields).map(|t| t.to_string()));
    put("sourceNode", source_node.map(|n| n.to_string()));
    put("conditionName", condition_name.clone());
    put(
        "conditionId",
        node(fields, Field::ConditionId).map(|n| n.to_string()),
    );
    put("activeState", active.map(|b| b.to_string()));
    put("ackedState", acked.map(|b| b.to_string()));
    EventMessage {
        id: event_id(fields, time),
        source: source.to_owned(),
        time,
        topic,
        priority,
        category: type_name.to_owned(),
        event_type: what_happened(active, acked, condition_name.is_some()).to_owned(),
        message,
        properties,
    }
}

/// The cursor after `event`: its time and id, and with several event notifiers the index of
/// the one it came from (`TIME_US.ID.N`).
pub(crate) fn cursor_of(event: &EventMessage, notifier: Option<usize>) -> String {
    match notifier {
        Some(index) => format!("{}.{}.{index}", to_micros(event.time), event.id),
        None => format!("{}.{}", to_micros(event.time), event.id),
    }
}

/// A cursor's time, event id and notifier index (0 when it names none).
fn parse_cursor(cursor: &str) -> Result<(i64, String, usize), ModelError> {
    let bad = || ModelError::BadCursor {
        cursor: cursor.to_owned(),
    };
    let mut parts = cursor.split('.');
    let time = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let id = parts.next().ok_or_else(bad)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let index = match parts.next() {
        Some(index) => index.parse().map_err(|_| bad())?,
        None => 0,
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok((time, id.to_owned(), index))
}

/// What the history walk needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The page is complete.
    Done,
    /// Read on with the server's continuation point.
    Continue,
    /// Read again from [`Walk::start_us`] (the server stopped a full page without a
    /// continuation point).
    ReadAgain,
}

/// A time-range read through HistoryRead event pages: oldest first, starting after the
/// cursor's event, one event more than the page holds (to know whether there is a next page).
///
/// Cursors are `TIME_US.ID`, independent of the session (a continuation point dies with it):
/// the read starts at the cursor's time and skips the events up to its id. Events that repeat
/// (a server resuming a page at a time shared by events already read) are skipped by id.
#[derive(Debug)]
pub(crate) struct Walk {
    limit: usize,
    from_us: i64,
    end_us: i64,
    /// Skip events at `from_us` up to and including this one.
    after: Option<String>,
    /// The time of the last event taken, and the ids taken at it.
    last_us: i64,
    seen_at_last: HashSet<String>,
    per_request: u32,
    taken: Vec<EventMessage>,
}

impl Walk {
    /// The walk `request` asks for, of a source with one event notifier.
    ///
    /// # Errors
    /// [`ModelError::BadCursor`] for a cursor that is not `TIME_US.HEX_ID`.
    #[cfg(test)]
    pub(crate) fn new(request: &EventsRequest) -> Result<Self, ModelError> {
        Self::for_notifier(request, 0, 1)
    }

    /// The walk through the history of notifier `index` of `count`. Pages of several notifiers
    /// are merged in the order (time, notifier, the server's order): after a cursor at time T
    /// from notifier K, notifiers before K go on after T, K after the cursor's event, and those
    /// after K from T itself.
    ///
    /// # Errors
    /// [`ModelError::BadCursor`] for a cursor that is not `TIME_US.HEX_ID[.N]` with N < `count`.
    pub(crate) fn for_notifier(
        request: &EventsRequest,
        index: usize,
        count: usize,
    ) -> Result<Self, ModelError> {
        let (start, end) = (request.range.start_us(), request.range.end_us());
        let (from_us, after) = match &request.cursor {
            Some(cursor) => match parse_cursor(cursor)? {
                (_, _, of) if of >= count => {
                    return Err(ModelError::BadCursor {
                        cursor: cursor.clone(),
                    });
                }
                (time, id, of) if time >= start => match index.cmp(&of) {
                    std::cmp::Ordering::Less => (time.saturating_add(1), None),
                    std::cmp::Ordering::Equal => (time, Some(id)),
                    std::cmp::Ordering::Greater => (time, None),
                },
                _ => (start, None),
            },
            None => (start, None),
        };
        let limit = request.limit as usize;
        Ok(Self {
            limit,
            from_us,
            end_us: end,
            after,
            last_us: i64::MIN,
            seen_at_last: HashSet::new(),
            per_request: u32::try_from(limit + 1)
                .unwrap_or(u32::MAX)
                .min(MAX_REQUEST),
            taken: Vec::new(),
        })
    }

    /// Where the next read starts.
    pub(crate) fn start_us(&self) -> i64 {
        self.from_us
    }

    /// Where every read ends.
    pub(crate) fn end_us(&self) -> i64 {
        self.end_us
    }

    /// Whether there is nothing to read (the cursor is past the range).
    pub(crate) fn is_past_the_end(&self) -> bool {
        self.from_us > self.end_us
    }

    /// How many events the next read asks for.
    pub(crate) fn request_size(&self) -> u32 {
        self.per_request
    }

    /// Takes a page of events in the server's order: `asked` is how many the read asked for,
    /// `continued` whether the server gave a continuation point.
    pub(crate) fn take(&mut self, page: Vec<EventMessage>, asked: u32, continued: bool) -> Next {
        let full = page.len() >= asked as usize;
        let mut progressed = false;
        let mut last = None;
        for event in page {
            let time = to_micros(event.time);
            last = Some((time, event.id.clone()));
            if time > self.end_us {
                return Next::Done;
            }
            if time < self.from_us {
                continue;
            }
            if let Some(after) = &self.after {
                if time == self.from_us {
                    if *after == event.id {
                        self.after = None;
                    }
                    continue;
                }
                // The cursor's event is gone (the server forgot it): go on after its time.
                self.after = None;
            }
            if time < self.last_us
                || (time == self.last_us && self.seen_at_last.contains(&event.id))
            {
                continue;
            }
            if time > self.last_us {
                self.last_us = time;
                self.seen_at_last.clear();
            }
            self.seen_at_last.insert(event.id.clone());
            self.taken.push(event);
            progressed = true;
            if self.taken.len() > self.limit {
                return Next::Done;
            }
        }
        if continued {
            return Next::Continue;
        }
        let Some((time, id)) = last.filter(|_| full) else {
            return Next::Done;
        };
        if time < self.from_us {
            // A server answering with events before the start it was given: no way on.
            return Next::Done;
        }
        // A whole page at one instant without reaching anything new (or the cursor's event):
        // ask for more at once, up to a bound.
        if self.after.is_some() || (!progressed && time == self.from_us) {
            if self.per_request >= MAX_REQUEST {
                tracing::warn!(
                    events = self.per_request,
                    "more events at one instant than one history read answers; the page ends there"
                );
                return Next::Done;
            }
            self.per_request = self.per_request.saturating_mul(2).min(MAX_REQUEST);
        }
        if self.after.is_none() {
            self.from_us = time;
            self.after = Some(id);
        }
        Next::ReadAgain
    }

    /// The page: at most the limit, and the cursor of the next when there is more.
    pub(crate) fn finish(mut self) -> EventPage {
        let next = if self.taken.len() > self.limit {
            self.taken.truncate(self.limit);
            self.taken.last().map(|event| cursor_of(event, None))
        } else {
            None
        };
        EventPage {
            events: self.taken,
            next,
        }
    }
}

/// One page of events from the pages of several notifiers' walks (given in notifier order):
/// merged by time, then notifier, then the server's order; at most `limit`, with the cursor of
/// the next page (naming the notifier of its last event) when any walk had more. An event two
/// notifiers both report (an area and the Server object above it) is kept once per page (it
/// may come again on the next page when the page ends at its instant).
pub(crate) fn merge(pages: Vec<EventPage>, limit: usize) -> EventPage {
    let mut more = pages.iter().any(|page| page.next.is_some());
    let mut all: Vec<(i64, usize, usize, EventMessage)> = pages
        .into_iter()
        .enumerate()
        .flat_map(|(notifier, page)| {
            page.events
                .into_iter()
                .enumerate()
                .map(move |(position, event)| (to_micros(event.time), notifier, position, event))
        })
        .collect();
    all.sort_by_key(|(time, notifier, position, _)| (*time, *notifier, *position));
    let mut seen = HashSet::new();
    all.retain(|(time, _, _, event)| seen.insert((*time, event.id.clone())));
    more |= all.len() > limit;
    all.truncate(limit);
    let next = all
        .last()
        .filter(|_| more)
        .map(|(_, notifier, _, event)| cursor_of(event, Some(*notifier)));
    EventPage {
        events: all.into_iter().map(|(_, _, _, event)| event).collect(),
        next,
    }
}

/// What an event of a live stream is, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A ConditionRefresh begins: the conditions that follow are sent again, not new.
    RefreshStart,
    /// A ConditionRefresh ends.
    RefreshEnd,
    /// The server lost events and asks the client to call ConditionRefresh.
    RefreshRequired,
    /// Anything else: forwarded.
    Event,
}

/// The kind of the event with `fields`.
pub(crate) fn kind(fields: &[Variant]) -> Kind {
    let is = |id: &NodeId, of: ObjectTypeId| {
        id.namespace == 0
            && matches!(id.identifier, opcua::types::Identifier::Numeric(n) if n == of as u32)
    };
    match event_type(fields) {
        Some(id) if is(&id, ObjectTypeId::RefreshStartEventType) => Kind::RefreshStart,
        Some(id) if is(&id, ObjectTypeId::RefreshEndEventType) => Kind::RefreshEnd,
        Some(id) if is(&id, ObjectTypeId::RefreshRequiredEventType) => Kind::RefreshRequired,
        _ => Kind::Event,
    }
}

/// The event ids a live stream forwarded lately (at most [`EVENT_QUEUE`]), so that an event
/// reported by two of its notifiers is forwarded once; a refresh is remembered apart, since it
/// sends again what was forwarded before.
#[derive(Debug, Default)]
pub(crate) struct Refresh {
    /// RefreshStart events not yet ended (a server sends one per monitored item).
    open: usize,
    recent: VecDeque<(String, bool)>,
    seen: HashSet<(String, bool)>,
}

impl Refresh {
    /// Takes one event's kind; true when it is to be forwarded.
    pub(crate) fn take(&mut self, kind: Kind) -> bool {
        match kind {
            Kind::RefreshStart => {
                if self.open == 0 {
                    self.recent.retain(|(_, refresh)| !refresh);
                    self.seen.retain(|(_, refresh)| !refresh);
                }
                self.open += 1;
                false
            }
            Kind::RefreshEnd => {
                self.open = self.open.saturating_sub(1);
                false
            }
            Kind::RefreshRequired => false,
            Kind::Event => true,
        }
    }

    /// Whether the events forwarded now are a refresh.
    pub(crate) fn refreshing(&self) -> bool {
        self.open > 0
    }

    /// False for an event forwarded lately (the same id, in or out of a refresh alike).
    pub(crate) fn first_time(&mut self, id: &str) -> bool {
        let key = (id.to_owned(), self.refreshing());
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.recent.push_back(key);
        if self.recent.len() > EVENT_QUEUE
            && let Some(old) = self.recent.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

/// The events notified to one events stream and not yet read: at most [`EVENT_QUEUE`]; when
/// full the oldest is dropped and counted in `lost`.
#[derive(Debug)]
pub(crate) struct EventQueue {
    /// Each event's fields and the index of the notifier whose monitored item sent it.
    waiting: std::sync::Mutex<VecDeque<(usize, Vec<Variant>)>>,
    ready: tokio::sync::Notify,
    lost: Arc<AtomicU64>,
    capacity: usize,
}

impl EventQueue {
    pub(crate) fn new(lost: Arc<AtomicU64>) -> Self {
        Self::with_capacity(EVENT_QUEUE, lost)
    }

    fn with_capacity(capacity: usize, lost: Arc<AtomicU64>) -> Self {
        Self {
            waiting: std::sync::Mutex::new(VecDeque::new()),
            ready: tokio::sync::Notify::new(),
            lost,
            capacity: capacity.max(1),
        }
    }

    /// Called by the client's notification callback for each event of notifier `notifier`.
    pub(crate) fn push(&self, notifier: usize, fields: Vec<Variant>) {
        let dropped = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = waiting.len() >= self.capacity;
            if dropped {
                waiting.pop_front();
            }
            waiting.push_back((notifier, fields));
            dropped
        };
        if dropped {
            self.lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("an events stream reader fell behind; its oldest event was dropped");
        }
        self.ready.notify_one();
    }

    /// Up to `most` waiting events, oldest first.
    pub(crate) fn take(&self, most: usize) -> Vec<(usize, Vec<Variant>)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let count = waiting.len().min(most);
        waiting.drain(..count).collect()
    }

    /// Until an event was pushed since the last wait.
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use opcua::types::{ByteString, LocalizedText, ObjectId, UAString};
    use uplink_model::TimeRange;

    use super::*;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, second).unwrap()
    }

    fn fields(overrides: &[(Field, Variant)]) -> Vec<Variant> {
        let mut fields = vec![Variant::Empty; SELECTED.len()];
        for (which, value) in overrides {
            fields[*which as usize] = value.clone();
        }
        fields
    }

    fn alarm(active: bool, acked: bool, severity: u16) -> Vec<Variant> {
        fields(&[
            (
                Field::EventId,
                Variant::ByteString(ByteString::from(vec![0xab, 0x01])),
            ),
            (
                Field::EventType,
                Variant::NodeId(Box::new(ObjectTypeId::ExclusiveLevelAlarmType.into())),
            ),
            (
                Field::SourceName,
                Variant::String(UAString::from("Temperature")),
            ),
            (
                Field::SourceNode,
                Variant::NodeId(Box::new(NodeId::new(2, "Plant.Temperature"))),
            ),
            (Field::Time, Variant::DateTime(Box::new(at(3).into()))),
            (
                Field::Message,
                Variant::LocalizedText(Box::new(LocalizedText::new("en", "Boiler hot"))),
            ),
            (Field::Severity, Variant::UInt16(severity)),
            (
                Field::ConditionName,
                Variant::String(UAString::from("High")),
            ),
            (Field::ActiveState, Variant::Boolean(active)),
            (Field::AckedState, Variant::Boolean(acked)),
        ])
    }

    fn server() -> NodeId {
        ObjectId::Server.into()
    }

    #[test]
    fn the_filter_selects_each_field_with_its_defining_type() {
        let clauses = filter().select_clauses.unwrap();
        assert_eq!(clauses.len(), SELECTED.len());
        let active = &clauses[Field::ActiveState as usize];
        assert_eq!(
            active.type_definition_id,
            NodeId::from(ObjectTypeId::AlarmConditionType)
        );
        assert_eq!(
            active.browse_path.as_deref().unwrap(),
            [
                QualifiedName::new(0, "ActiveState"),
                QualifiedName::new(0, "Id")
            ]
        );
        let condition = &clauses[Field::ConditionId as usize];
        assert_eq!(condition.attribute_id, AttributeId::NodeId as u32);
        assert_eq!(condition.browse_path.as_deref(), Some(&[][..]));
    }

    #[test]
    fn an_alarm_maps_with_its_condition_fields_and_states() {
        let event = to_event(
            &alarm(true, false, 700),
            "plant",
            "ExclusiveLevelAlarmType",
            &server(),
            at(9),
        );
        assert_eq!(event.id, "ab01");
        assert_eq!(event.source, "plant");
        assert_eq!(event.time, at(3));
        assert_eq!(event.topic, "Temperature");
        assert_eq!(event.priority, EventPriority::High);
        assert_eq!(event.category, "ExclusiveLevelAlarmType");
        assert_eq!(event.event_type, "alarm");
        assert_eq!(event.message, "Boiler hot");
        assert_eq!(event.properties["conditionName"], "High");
        assert_eq!(event.properties["activeState"], "true");
        assert_eq!(event.properties["ackedState"], "false");
        assert_eq!(event.properties["severity"], "700");
        assert_eq!(event.properties["sourceNode"], "ns=2;s=Plant.Temperature");
        assert_eq!(event.properties["eventType"], "i=9482");
        assert!(!event.properties.contains_key("conditionId"));
        let type_of = |active, acked| {
            to_event(&alarm(active, acked, 900), "p", "T", &server(), at(9)).event_type
        };
        assert_eq!(type_of(true, true), "acknowledged");
        assert_eq!(type_of(false, true), "returnToNormal");
        assert_eq!(type_of(false, false), "returnToNormal");
        assert_eq!(
            to_event(&alarm(true, true, 1200), "p", "T", &server(), at(9)).priority,
            EventPriority::Critical,
            "a severity above 1000 is the most urgent"
        );
    }

    #[test]
    fn a_plain_event_leaves_out_what_it_lacks() {
        let plain = fields(&[
            (
                Field::EventType,
                Variant::NodeId(Box::new(ObjectTypeId::SystemEventType.into())),
            ),
            (
                Field::SourceNode,
                Variant::NodeId(Box::new(NodeId::new(2, "Pump2"))),
            ),
            (Field::Severity, Variant::UInt16(200)),
        ]);
        let event = to_event(&plain, "plant", "SystemEventType", &server(), at(9));
        assert_eq!(event.time, at(9), "no Time: when it arrived");
        assert_eq!(
            event.topic, "ns=2;s=Pump2",
            "no SourceName: the source node"
        );
        assert_eq!(event.message, "SystemEventType");
        assert_eq!(event.event_type, "event");
        assert_eq!(event.priority, EventPriority::Low);
        assert_eq!(
            event.properties.keys().collect::<Vec<_>>(),
            ["eventType", "severity", "sourceNode"]
        );
        assert_eq!(
            event.id.len(),
            32,
            "a digest stands in for a missing EventId"
        );
        assert_eq!(
            event.id,
            to_event(&plain, "plant", "SystemEventType", &server(), at(9)).id
        );
        let empty = to_event(&fields(&[]), "plant", "BaseEventType", &server(), at(9));
        assert_eq!(empty.topic, "i=2253");
        assert_eq!(empty.priority, EventPriority::Medium);
        let long = fields(&[(
            Field::EventId,
            Variant::ByteString(ByteString::from(vec![7u8; 200])),
        )]);
        assert_eq!(
            to_event(&long, "p", "T", &server(), at(9)).id.len(),
            64,
            "a long EventId is shortened"
        );
    }

    #[test]
    fn standard_event_types_are_named_without_the_server() {
        assert_eq!(
            standard_type_name(&ObjectTypeId::ExclusiveLevelAlarmType.into()).as_deref(),
            Some("ExclusiveLevelAlarmType")
        );
        assert_eq!(standard_type_name(&NodeId::new(2, 9482)), None);
    }

    fn event(second: u32, id: &str) -> EventMessage {
        EventMessage {
            id: id.to_owned(),
            source: "plant".into(),
            time: at(second),
            topic: "t".into(),
            priority: EventPriority::Low,
            category: String::new(),
            event_type: "event".into(),
            message: id.to_owned(),
            properties: BTreeMap::new(),
        }
    }

    fn request(limit: u32, cursor: Option<String>) -> EventsRequest {
        EventsRequest {
            range: TimeRange::new(at(0), at(50)).unwrap(),
            limit,
            cursor,
        }
    }

    /// A server's event history: events in time order, answering like asyncua (a page cut at
    /// the count asked, without a continuation point) or like a server with continuation points
    /// (pages of three, resumed after the last event returned).
    fn read_all(history: &[EventMessage], limit: u32, continuation_points: bool) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            pages += 1;
            assert!(
                pages < 100,
                "the pages never end: limit {limit}, continuation {continuation_points}, {seen:?}"
            );
            let mut walk = Walk::new(&request(limit, cursor.take())).unwrap();
            let mut continuation: Option<(i64, usize)> = None;
            let mut reads = 0;
            loop {
                reads += 1;
                assert!(reads < 100, "the reads of one page never end");
                let (start, skip) = continuation.take().unwrap_or((walk.start_us(), 0));
                let asked = walk.request_size();
                let matching: Vec<EventMessage> = history
                    .iter()
                    .filter(|e| (start..=walk.end_us()).contains(&to_micros(e.time)))
                    .skip(skip)
                    .cloned()
                    .collect();
                let (page, continued) = if continuation_points && matching.len() > 3 {
                    continuation = Some((start, skip + 3));
                    (matching[..3].to_vec(), true)
                } else {
                    let n = matching.len().min(asked as usize);
                    (matching[..n].to_vec(), false)
                };
                match walk.take(page, asked, continued) {
                    Next::Done => break,
                    Next::Continue => assert!(continuation.is_some()),
                    Next::ReadAgain => continuation = None,
                }
            }
            let page = walk.finish();
            assert!(page.events.len() <= limit as usize);
            seen.extend(page.events.iter().map(|e| e.id.clone()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return seen,
            }
        }
    }

    #[test]
    fn the_walk_pages_events_sharing_instants_without_losing_or_repeating_any() {
        // Pairs and a run of five share their instants.
        let seconds = [1, 1, 2, 2, 3, 4, 4, 4, 4, 4, 5, 6, 6];
        let history: Vec<EventMessage> = seconds
            .iter()
            .enumerate()
            .map(|(i, &s)| event(s, &format!("{i:02x}")))
            .collect();
        let all: Vec<String> = history.iter().map(|e| e.id.clone()).collect();
        for limit in 1..=14 {
            for continuation_points in [false, true] {
                assert_eq!(
                    read_all(&history, limit, continuation_points),
                    all,
                    "limit {limit}, continuation points {continuation_points}"
                );
            }
        }
    }

    #[test]
    fn cursors_are_checked_and_a_cursor_past_the_range_reads_nothing() {
        for bad in ["x", "12", "12.", "12.zz", "a.01"] {
            assert_eq!(
                Walk::new(&request(5, Some(bad.into()))).unwrap_err().code(),
                "bad_cursor",
                "{bad}"
            );
        }
        let past = format!("{}.01", to_micros(at(59)));
        assert!(
            Walk::new(&request(5, Some(past)))
                .unwrap()
                .is_past_the_end()
        );
        let before = format!("{}.01", to_micros(at(0)) - 1);
        let walk = Walk::new(&request(5, Some(before))).unwrap();
        assert_eq!(walk.start_us(), to_micros(at(0)));
    }

    /// Pages through several notifiers' histories as the source does: a walk per notifier,
    /// merged.
    fn read_merged(histories: &[Vec<EventMessage>], limit: u32) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..100 {
            let request = request(limit, cursor.take());
            let pages = histories
                .iter()
                .enumerate()
                .map(|(index, history)| {
                    let mut walk = Walk::for_notifier(&request, index, histories.len()).unwrap();
                    let asked = walk.request_size();
                    let matching: Vec<EventMessage> = history
                        .iter()
                        .filter(|e| (walk.start_us()..=walk.end_us()).contains(&to_micros(e.time)))
                        .take(asked as usize)
                        .cloned()
                        .collect();
                    walk.take(matching, asked, false);
                    walk.finish()
                })
                .collect();
            let page = merge(pages, limit as usize);
            assert!(page.events.len() <= limit as usize);
            seen.extend(page.events.iter().map(|e| e.id.clone()));
            match page.next {
                Some(next) => cursor = Some(next),
                None => return seen,
            }
        }
        panic!("the pages never end: limit {limit}, {seen:?}");
    }

    #[test]
    fn pages_of_several_notifiers_merge_by_time_without_losing_or_repeating_any() {
        // Both notifiers have events at seconds 2 and 4.
        let first = vec![
            event(1, "a1"),
            event(2, "a2"),
            event(4, "a4"),
            event(4, "a5"),
        ];
        let second = vec![event(2, "b2"), event(3, "b3"), event(4, "b4")];
        let all = ["a1", "a2", "b2", "b3", "a4", "a5", "b4"];
        for limit in 1..=8 {
            assert_eq!(
                read_merged(&[first.clone(), second.clone()], limit),
                all,
                "limit {limit}"
            );
        }
        let page = merge(
            vec![
                EventPage {
                    events: first[..2].to_vec(),
                    next: None,
                },
                EventPage {
                    events: second[..1].to_vec(),
                    next: None,
                },
            ],
            2,
        );
        assert_eq!(
            page.next.as_deref(),
            Some(format!("{}.a2.0", to_micros(at(2))).as_str()),
            "the cursor names the notifier of the page's last event"
        );
        let twice = merge(
            vec![
                EventPage {
                    events: first.clone(),
                    next: None,
                },
                EventPage {
                    events: vec![event(4, "a4")],
                    next: None,
                },
            ],
            10,
        );
        assert_eq!(
            twice.events.len(),
            4,
            "an event both notifiers report is kept once in a page"
        );
        let beyond = format!("{}.a2.2", to_micros(at(2)));
        assert_eq!(
            Walk::for_notifier(&request(5, Some(beyond)), 0, 2)
                .unwrap_err()
                .code(),
            "bad_cursor",
            "a notifier the source does not have"
        );
    }

    fn typed(kind: ObjectTypeId) -> Vec<Variant> {
        fields(&[(Field::EventType, Variant::NodeId(Box::new(kind.into())))])
    }

    #[test]
    fn refresh_markers_are_taken_out_and_mark_what_they_enclose() {
        assert_eq!(
            kind(&typed(ObjectTypeId::RefreshStartEventType)),
            Kind::RefreshStart
        );
        assert_eq!(
            kind(&typed(ObjectTypeId::RefreshEndEventType)),
            Kind::RefreshEnd
        );
        assert_eq!(
            kind(&typed(ObjectTypeId::RefreshRequiredEventType)),
            Kind::RefreshRequired
        );
        assert_eq!(kind(&alarm(true, false, 700)), Kind::Event);
        let mut refresh = Refresh::default();
        assert!(refresh.take(Kind::Event) && refresh.first_time("01"));
        assert!(!refresh.refreshing());
        // A server sends a start and an end per monitored item.
        assert!(!refresh.take(Kind::RefreshStart) && !refresh.take(Kind::RefreshStart));
        assert!(refresh.refreshing());
        assert!(
            refresh.first_time("01"),
            "a refresh sends again what was forwarded"
        );
        assert!(
            !refresh.first_time("01"),
            "a second notifier's copy is dropped"
        );
        assert!(!refresh.take(Kind::RefreshEnd));
        assert!(
            refresh.refreshing(),
            "one monitored item's end is not the last"
        );
        assert!(!refresh.take(Kind::RefreshEnd));
        assert!(!refresh.refreshing());
        assert!(!refresh.first_time("01"));
        assert!(!refresh.take(Kind::RefreshStart));
        assert!(refresh.first_time("01"), "each refresh sends it again");
        assert!(!refresh.take(Kind::RefreshEnd) && !refresh.take(Kind::RefreshEnd));
        assert!(!refresh.refreshing(), "an end too many does no harm");
        for n in 0..=EVENT_QUEUE {
            assert!(refresh.first_time(&format!("{n:x}")));
        }
        assert!(
            refresh.first_time("0"),
            "only the latest ids are remembered"
        );
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_counts_it() {
        let lost = Arc::new(AtomicU64::new(0));
        let queue = EventQueue::with_capacity(3, lost.clone());
        for n in 0..5u16 {
            queue.push(0, vec![Variant::UInt16(n)]);
        }
        assert_eq!(lost.load(Ordering::Relaxed), 2);
        let kept: Vec<Variant> = queue
            .take(10)
            .into_iter()
            .flat_map(|(_, fields)| fields)
            .collect();
        assert_eq!(
            kept,
            [Variant::UInt16(2), Variant::UInt16(3), Variant::UInt16(4)]
        );
        assert!(queue.take(10).is_empty());
    }
}
