//! What the source knows: the tags seen so far with their last values, the Sparkplug edge
//! nodes with their births, aliases and sequence numbers, the recent alarms and events of
//! `event` lines, the connection, and the problems met.
//! The connection task feeds every message through [`State::ingest`]; the data source reads.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use prost::Message;
use serde_json::Value;
use uplink_model::time_expr::from_micros;
use uplink_model::{DataType, EventMessage, Status, Tag, TagValue};
use uplink_source::{Health, HealthIssue};

use crate::events::EventLog;
use crate::sparkplug::{self, MessageType, Payload, Reading};
use crate::subscriptions::{Rule, Subscription};

/// The shortest time between two rebirth requests to one edge node.
pub const REBIRTH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The most tags one source keeps; messages that would add more are counted and dropped.
pub const MAX_TAGS: usize = 100_000;

/// One tag: its description, last value, and where it comes from.
#[derive(Debug)]
pub struct Entry {
    pub tag: Tag,
    pub value: TagValue,
    /// The [`State::version`] of the last change.
    pub version: u64,
    pub origin: Origin,
}

/// Where a tag's values come from, and so where its writes go.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A plain or JSON topic, with the subscription line it matched.
    Topic { sub: usize, topic: String },
    /// A Sparkplug metric.
    Metric {
        group: String,
        node: String,
        device: Option<String>,
        metric: String,
        datatype: u32,
        alias: Option<u64>,
    },
}

/// How the broker connection is.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// Not connected yet.
    Connecting,
    /// Connected and subscribed.
    Up,
    /// Down, with why in plain words.
    Down(String),
}

#[derive(Debug, Default)]
struct Problem {
    count: u64,
    last: String,
}

#[derive(Debug, Default)]
struct Node {
    online: bool,
    bd_seq: Option<u64>,
    next_seq: Option<u64>,
    seq_gaps: u64,
    last_gap: Option<(u64, u64)>,
    bd_seq_gaps: u64,
    stale_deaths: u64,
    aliases: HashMap<u64, usize>,
}

/// Which subscription a topic goes to, remembered per topic.
#[derive(Debug, Clone, Copy)]
enum Route {
    Tag(usize),
    Sparkplug,
    /// A line with the event rule.
    Event(usize),
    Dropped,
}

/// Everything the source knows.
#[derive(Debug)]
pub struct State {
    subs: Vec<Subscription>,
    pub entries: Vec<Entry>,
    index: HashMap<String, usize>,
    routes: HashMap<String, Route>,
    nodes: BTreeMap<String, Node>,
    problems: BTreeMap<&'static str, Problem>,
    pub connection: Connection,
    /// Counts changes; each entry remembers the count of its last change.
    pub version: u64,
    /// Messages received, read or not.
    pub messages: u64,
    /// Whether to list changed tags in [`State::changed`] (someone reads the change stream).
    pub track_changes: bool,
    /// The tags set since the connection task last took them, in order (each value once).
    pub changed: Vec<(usize, TagValue)>,
    /// Whether to ask edge nodes whose birth was missed for a rebirth.
    pub rebirth: bool,
    /// When each edge node (`group/node`) was last asked for a rebirth.
    rebirths_asked: HashMap<String, std::time::Instant>,
    /// Messages to publish (rebirth requests), taken by the connection task.
    pub outbox: Vec<(String, Vec<u8>)>,
    /// The data source's name, which events carry.
    pub source: String,
    /// Recent alarms and events, for time-range reads.
    pub events: EventLog,
    /// The events logged since the connection task last took them, for the events stream,
    /// each with its arrival number in `events`.
    pub new_events: Vec<(u64, EventMessage)>,
    /// The last time an event was stamped with on arrival: each is later than the last, so
    /// two equal time-less messages stay two events.
    last_arrival: DateTime<Utc>,
    opened: DateTime<Utc>,
}

impl State {
    /// Nothing known yet but the tags whose names are fixed by a line without wildcards.
    pub fn new(subs: Vec<Subscription>) -> Self {
        let opened = Utc::now();
        let mut state = Self {
            subs,
            entries: Vec::new(),
            index: HashMap::new(),
            routes: HashMap::new(),
            nodes: BTreeMap::new(),
            problems: BTreeMap::new(),
            connection: Connection::Connecting,
            version: 0,
            messages: 0,
            track_changes: false,
            changed: Vec::new(),
            rebirth: false,
            rebirths_asked: HashMap::new(),
            outbox: Vec::new(),
            source: String::new(),
            events: EventLog::default(),
            new_events: Vec::new(),
            last_arrival: DateTime::<Utc>::MIN_UTC,
            opened,
        };
        for i in 0..state.subs.len() {
            let sub = &state.subs[i];
            if matches!(sub.rule, Rule::Sparkplug | Rule::Event(_))
                || sub.filter.contains(['+', '#'])
            {
                continue;
            }
            let topic = sub.filter.clone();
            let Some(name) = sub.name.render(&topic) else {
                continue;
            };
            if !state.index.contains_key(&name) {
                let entry = state.topic_entry(i, &topic, name, DataType::Float);
                state.routes.insert(topic, Route::Tag(entry));
            }
        }
        state
    }

    /// The subscription lines.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subs
    }

    /// The position of a tag.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn problem(&mut self, kind: &'static str, message: String) {
        tracing::debug!(kind, %message, "mqtt message not read");
        let problem = self.problems.entry(kind).or_default();
        problem.count += 1;
        problem.last = message;
    }

    fn add(&mut self, tag: Tag, origin: Origin) -> Option<usize> {
        if self.entries.len() >= MAX_TAGS {
            self.problem(
                "tags",
                format!("more than {MAX_TAGS} tags: '{}' was not added", tag.name),
            );
            return None;
        }
        let position = self.entries.len();
        self.index.insert(tag.name.clone(), position);
        self.entries.push(Entry {
            tag,
            value: TagValue::event(self.opened, Status::Bad),
            version: 0,
            origin,
        });
        Some(position)
    }

    fn topic_entry(&mut self, sub: usize, topic: &str, name: String, data_type: DataType) -> usize {
        let line = &self.subs[sub];
        let tag = Tag::new(name, data_type)
            .with_description(format!("MQTT topic {topic}"))
            .with_property("topic", topic)
            .with_property("writable", line.command.is_some().to_string());
        self.add(
            tag,
            Origin::Topic {
                sub,
                topic: topic.to_owned(),
            },
        )
        .unwrap_or(usize::MAX)
    }

    fn set(&mut self, position: usize, value: TagValue) {
        self.version += 1;
        if self.track_changes {
            self.changed.push((position, value.clone()));
        }
        let entry = &mut self.entries[position];
        entry.value = value;
        entry.version = self.version;
    }

    /// Reads one message as published. Returns whether any tag changed.
    #[cfg(test)]
    pub fn ingest(&mut self, topic: &str, payload: &[u8]) -> bool {
        self.ingest_message(topic, payload, false)
    }

    /// Reads one message; `retained` when the broker sent it as its retained message on a
    /// subscribe (not as it was published). Returns whether any tag changed.
    pub fn ingest_message(&mut self, topic: &str, payload: &[u8], retained: bool) -> bool {
        self.messages += 1;
        let route = match self.routes.get(topic) {
            Some(route) => *route,
            None => self.route(topic),
        };
        match route {
            Route::Tag(position) => self.ingest_topic(position, topic, payload),
            Route::Sparkplug => self.ingest_sparkplug(topic, payload),
            Route::Event(sub) => {
                self.ingest_event(sub, topic, payload, retained);
                false
            }
            Route::Dropped => false,
        }
    }

    fn route(&mut self, topic: &str) -> Route {
        let Some(sub) = self.subs.iter().position(|s| s.matches(topic)) else {
            // A topic no line matches (a broker that sends more than asked): not cached, so
            // unexpected topics cannot grow memory.
            self.problem(
                "unmatched",
                format!("a message on '{topic}', which no subscription line matches"),
            );
            return Route::Dropped;
        };
        let route = match &self.subs[sub].rule {
            Rule::Sparkplug => return Route::Sparkplug,
            Rule::Event(_) => Route::Event(sub),
            Rule::Plain | Rule::Json { .. } => self.tag_route(sub, topic),
        };
        if self.routes.len() < 2 * MAX_TAGS {
            self.routes.insert(topic.to_owned(), route);
        }
        route
    }

    /// The tag a plain or JSON topic sets, added on its first message.
    fn tag_route(&mut self, sub: usize, topic: &str) -> Route {
        match self.subs[sub].name.render(topic) {
            None => {
                let line = self.subs[sub].line;
                self.problem(
                    "name",
                    format!(
                        "topic '{topic}' has too few levels for the name template of line {line}"
                    ),
                );
                Route::Dropped
            }
            Some(name) => match self.index.get(&name) {
                Some(&position) => Route::Tag(position),
                None if self.entries.len() >= MAX_TAGS => {
                    self.problem(
                        "tags",
                        format!("more than {MAX_TAGS} tags: '{name}' was not added"),
                    );
                    Route::Dropped
                }
                None => Route::Tag(self.topic_entry(sub, topic, name, DataType::Float)),
            },
        }
    }

    /// Logs the event a message on an event line carries; a payload that does not map is
    /// counted as a problem, not an event. The same message sent again (a QoS 1 redelivery, a
    /// retained message re-sent on subscribe) has the same id and is logged once, when its
    /// payload gives its time; a retained message without a time is no event at all: when it
    /// happened is unknown, and every subscribe would send it again as new.
    fn ingest_event(&mut self, sub: usize, topic: &str, payload: &[u8], retained: bool) {
        let Rule::Event(rule) = &self.subs[sub].rule else {
            return;
        };
        let now = Utc::now().max(self.last_arrival + chrono::TimeDelta::microseconds(1));
        match rule.read_timed(topic, payload, now) {
            Ok((_, false)) if retained => self.problem(
                "retained",
                format!(
                    "the retained message on '{topic}' gives no time, so it is not taken as an event (put the time in the payload)"
                ),
            ),
            Ok((mut event, timed)) => {
                if !timed {
                    self.last_arrival = now;
                }
                event.source.clone_from(&self.source);
                let content = crate::events::content_hash(topic, payload);
                match self.events.push(event, content) {
                    Some(event) => self.new_events.push((self.events.last_number(), event)),
                    None => tracing::debug!(topic, "mqtt event sent again: logged once"),
                }
            }
            Err(message) => self.problem("payload", message),
        }
    }

    fn ingest_topic(&mut self, position: usize, topic: &str, payload: &[u8]) -> bool {
        let Origin::Topic { sub, .. } = self.entries[position].origin else {
            return false;
        };
        // Values stamped on arrival: a burst of messages within one microsecond keeps its
        // order, each later than the last, so a recording keeps every one.
        let now =
            Utc::now().max(self.entries[position].value.time + chrono::TimeDelta::microseconds(1));
        let value = match &self.subs[sub].rule {
            Rule::Plain => match std::str::from_utf8(payload) {
                Ok(text) => Ok(plain_value(text.trim(), now)),
                Err(_) => Err(format!("the payload on '{topic}' is not UTF-8 text")),
            },
            Rule::Json {
                value,
                time,
                quality,
                time_unit_us,
            } => json_value(
                topic,
                payload,
                now,
                value,
                time.as_ref(),
                quality.as_ref(),
                *time_unit_us,
            ),
            Rule::Sparkplug | Rule::Event(_) => return false,
        };
        match value {
            Ok(value) => {
                if value.value.is_none() && value.text.is_some() {
                    self.entries[position].tag.data_type = DataType::Text;
                }
                self.set(position, value);
                true
            }
            Err(message) => {
                self.problem("payload", message);
                false
            }
        }
    }

    fn ingest_sparkplug(&mut self, topic: &str, payload: &[u8]) -> bool {
        let Some(parsed) = sparkplug::parse_topic(topic) else {
            if !topic.starts_with("spBv1.0/STATE/") {
                self.problem("sparkplug", format!("'{topic}' is not a Sparkplug B topic"));
            }
            return false;
        };
        if matches!(parsed.kind, MessageType::NCmd | MessageType::DCmd) {
            return false;
        }
        let payload = match Payload::decode(payload) {
            Ok(payload) => payload,
            Err(err) => {
                self.problem(
                    "sparkplug",
                    format!("the Sparkplug payload on '{topic}' does not decode: {err}"),
                );
                return false;
            }
        };
        let (group, node_id, device) = (parsed.group, parsed.node, parsed.device);
        let key = format!("{group}/{node_id}");
        let now = Utc::now();
        let at = |ms: Option<u64>| {
            ms.and_then(|ms| i64::try_from(ms).ok())
                .map(|ms| from_micros(ms.saturating_mul(1_000)))
                .unwrap_or(now)
        };
        let sent = payload.timestamp;
        match parsed.kind {
            MessageType::NBirth => {
                let bd_seq = bd_seq_of(&payload);
                let node = self.nodes.entry(key.clone()).or_default();
                if let (Some(previous), Some(new)) = (node.bd_seq, bd_seq)
                    && new != (previous + 1) % 256
                    && new != previous
                {
                    node.bd_seq_gaps += 1;
                }
                node.online = true;
                node.bd_seq = bd_seq.or(node.bd_seq);
                node.next_seq = payload.seq.map(|s| (s + 1) % 256);
                node.aliases.clear();
                self.births(&key, group, node_id, None, &payload, now)
            }
            MessageType::DBirth => {
                self.ask_rebirth_unless_born(group, node_id);
                self.check_seq(&key, topic, payload.seq);
                if !self.nodes.get(&key).is_some_and(|n| n.online) {
                    self.problem(
                        "sparkplug",
                        format!("DBIRTH on '{topic}' before its edge node's NBIRTH"),
                    );
                }
                self.births(&key, group, node_id, device, &payload, now)
            }
            MessageType::NData | MessageType::DData => {
                self.ask_rebirth_unless_born(group, node_id);
                self.check_seq(&key, topic, payload.seq);
                let mut changed = false;
                for metric in &payload.metrics {
                    if metric.is_historical == Some(true) {
                        continue;
                    }
                    let position = match (&metric.name, metric.alias) {
                        (Some(name), _) => self
                            .index
                            .get(&metric_tag(group, node_id, device, name))
                            .copied(),
                        (None, Some(alias)) => self
                            .nodes
                            .get(&key)
                            .and_then(|n| n.aliases.get(&alias).copied()),
                        (None, None) => None,
                    };
                    let Some(position) = position else {
                        let what = metric
                            .name
                            .clone()
                            .or_else(|| metric.alias.map(|a| format!("alias {a}")))
                            .unwrap_or_else(|| "a metric without name or alias".into());
                        self.ask_rebirth(group, node_id);
                        self.problem(
                            "sparkplug",
                            format!("{what} on '{topic}' is not in a birth certificate"),
                        );
                        continue;
                    };
                    let Origin::Metric { datatype, .. } = self.entries[position].origin else {
                        continue;
                    };
                    let value = metric_value(
                        metric,
                        metric.datatype.unwrap_or(datatype),
                        at(metric.timestamp.or(sent)),
                    );
                    self.set(position, value);
                    changed = true;
                }
                changed
            }
            MessageType::NDeath => {
                let bd_seq = bd_seq_of(&payload);
                let Some(node) = self.nodes.get_mut(&key) else {
                    return false;
                };
                if let (Some(birth), Some(death)) = (node.bd_seq, bd_seq)
                    && birth != death
                {
                    // The will of an earlier session, delivered late: the node is alive.
                    node.stale_deaths += 1;
                    return false;
                }
                node.online = false;
                node.next_seq = None;
                self.mark_bad(at(sent), |g, n, _| g == group && n == node_id)
            }
            MessageType::DDeath => {
                self.check_seq(&key, topic, payload.seq);
                self.mark_bad(at(sent), |g, n, d| {
                    g == group && n == node_id && d == device
                })
            }
            MessageType::NCmd | MessageType::DCmd => false,
        }
    }

    fn ask_rebirth_unless_born(&mut self, group: &str, node: &str) {
        if !self
            .nodes
            .get(&format!("{group}/{node}"))
            .is_some_and(|n| n.online)
        {
            self.ask_rebirth(group, node);
        }
    }

    /// Queues an NCMD `Node Control/Rebirth` for an edge node whose birth certificate the
    /// source missed (it connected after the birth, or a birth was lost), at most once per
    /// [`REBIRTH_EVERY`] per node, when the form allows it.
    fn ask_rebirth(&mut self, group: &str, node: &str) {
        if !self.rebirth {
            return;
        }
        let key = format!("{group}/{node}");
        let now = std::time::Instant::now();
        if self
            .rebirths_asked
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < REBIRTH_EVERY)
        {
            return;
        }
        self.rebirths_asked.insert(key.clone(), now);
        tracing::info!(node = %key, "asking a Sparkplug edge node for a rebirth");
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let payload = Payload {
            timestamp: Some(now_ms),
            metrics: vec![sparkplug::Metric {
                name: Some("Node Control/Rebirth".into()),
                timestamp: Some(now_ms),
                datatype: Some(sparkplug::code::BOOLEAN),
                value: Some(sparkplug::MetricValue::BooleanValue(true)),
                ..Default::default()
            }],
            ..Default::default()
        };
        self.outbox.push((
            format!("{}/{group}/NCMD/{node}", sparkplug::NAMESPACE),
            payload.encode_to_vec(),
        ));
    }

    fn check_seq(&mut self, key: &str, topic: &str, seq: Option<u64>) {
        let Some(node) = self.nodes.get_mut(key) else {
            self.problem(
                "sparkplug",
                format!("a message on '{topic}' before its edge node's NBIRTH"),
            );
            return;
        };
        let Some(seq) = seq else {
            self.problem(
                "sparkplug",
                format!("a message on '{topic}' without a sequence number"),
            );
            return;
        };
        if let Some(expected) = node.next_seq
            && seq != expected
        {
            node.seq_gaps += 1;
            node.last_gap = Some((expected, seq));
        }
        node.next_seq = Some((seq + 1) % 256);
    }

    fn births(
        &mut self,
        key: &str,
        group: &str,
        node_id: &str,
        device: Option<&str>,
        payload: &Payload,
        now: DateTime<Utc>,
    ) -> bool {
        let mut changed = false;
        for metric in &payload.metrics {
            let Some(name) = &metric.name else {
                self.problem(
                    "sparkplug",
                    format!("a metric without a name in the birth of {key}"),
                );
                continue;
            };
            let datatype = metric.datatype.unwrap_or(0);
            let tag_name = metric_tag(group, node_id, device, name);
            let mut tag = Tag::new(tag_name.clone(), sparkplug::data_type(datatype))
                .with_description(format!("Sparkplug B metric {name}"))
                .with_property("sparkplugType", sparkplug::type_name(datatype))
                .with_property("writable", "true");
            if let Some(units) = metric.properties.as_ref().and_then(units_of) {
                tag = tag.with_units(units);
            }
            let origin = Origin::Metric {
                group: group.to_owned(),
                node: node_id.to_owned(),
                device: device.map(str::to_owned),
                metric: name.clone(),
                datatype,
                alias: metric.alias,
            };
            let position = match self.index.get(&tag_name) {
                Some(&position) => {
                    let entry = &mut self.entries[position];
                    entry.tag = tag;
                    entry.origin = origin;
                    Some(position)
                }
                None => self.add(tag, origin),
            };
            let Some(position) = position else { continue };
            if let Some(alias) = metric.alias {
                self.nodes
                    .entry(key.to_owned())
                    .or_default()
                    .aliases
                    .insert(alias, position);
            }
            let timestamp = metric.timestamp.or(payload.timestamp);
            let at = timestamp
                .and_then(|ms| i64::try_from(ms).ok())
                .map(|ms| from_micros(ms.saturating_mul(1_000)))
                .unwrap_or(now);
            let value = metric_value(metric, datatype, at);
            self.set(position, value);
            changed = true;
        }
        changed
    }

    fn mark_bad(
        &mut self,
        at: DateTime<Utc>,
        which: impl Fn(&str, &str, Option<&str>) -> bool,
    ) -> bool {
        let hit: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(&e.origin, Origin::Metric { group, node, device, .. } if which(group, node, device.as_deref())))
            .map(|(i, _)| i)
            .collect();
        for &position in &hit {
            let mut value = self.entries[position].value.clone();
            value.status = Status::Bad;
            value.time = at.max(value.time);
            self.set(position, value);
        }
        !hit.is_empty()
    }

    /// Health in plain words: the connection, what could not be read, Sparkplug sequence gaps
    /// and nodes that are offline.
    pub fn health(&self) -> Health {
        let mut health = Health::ok();
        let issue = |message: String| HealthIssue {
            message,
            file: None,
            line: None,
        };
        match &self.connection {
            Connection::Up => {}
            Connection::Connecting => health.fail(issue("not connected to the broker yet".into())),
            Connection::Down(why) => health.fail(issue(why.clone())),
        }
        for (kind, problem) in &self.problems {
            let what = match *kind {
                "payload" => "messages could not be read",
                "name" => "messages had no tag name",
                "sparkplug" => "Sparkplug B messages could not be used",
                "tags" => "tags were not added (too many)",
                "subscription" => "subscriptions were refused by the broker",
                "retained" => "retained messages on event lines were not taken as events",
                _ => "messages matched no subscription line",
            };
            health.report(issue(format!(
                "{} {what}; the last: {}",
                problem.count, problem.last
            )));
        }
        for (key, node) in &self.nodes {
            if node.seq_gaps > 0 {
                let last = node
                    .last_gap
                    .map(|(expected, got)| {
                        format!(" (the last: expected seq {expected}, got {got})")
                    })
                    .unwrap_or_default();
                health.report(issue(format!(
                    "Sparkplug edge node {key}: {} sequence gaps, messages were lost{last}",
                    node.seq_gaps
                )));
            }
            if node.bd_seq_gaps > 0 {
                health.report(issue(format!(
                    "Sparkplug edge node {key}: {} bdSeq gaps, births or deaths were missed",
                    node.bd_seq_gaps
                )));
            }
            if !node.online {
                health.report(issue(format!(
                    "Sparkplug edge node {key} is offline (its death certificate arrived); its tags are bad"
                )));
            }
        }
        health
    }

    /// Sequence gaps seen from a Sparkplug edge node (`group/node`), for tests and tools.
    pub fn seq_gaps(&self, key: &str) -> Option<(u64, u64, u64)> {
        self.nodes
            .get(key)
            .map(|n| (n.seq_gaps, n.bd_seq_gaps, n.stale_deaths))
    }

    /// Counts a SUBACK refusal.
    pub fn refused_subscription(&mut self, filter: &str) {
        self.problem(
            "subscription",
            format!("the broker refused the subscription to '{filter}'"),
        );
    }
}

/// `group/node/metric` or `group/node/device/metric`.
pub fn metric_tag(group: &str, node: &str, device: Option<&str>, metric: &str) -> String {
    match device {
        Some(device) => format!("{group}/{node}/{device}/{metric}"),
        None => format!("{group}/{node}/{metric}"),
    }
}

fn bd_seq_of(payload: &Payload) -> Option<u64> {
    payload
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| {
            match sparkplug::read(
                m.value.as_ref(),
                m.datatype.unwrap_or(sparkplug::code::UINT64),
                false,
            ) {
                Reading::Number(n) if n >= 0.0 => Some(n as u64),
                _ => None,
            }
        })
}

fn property<'a>(
    set: &'a sparkplug::PropertySet,
    names: &[&str],
) -> Option<&'a sparkplug::PropertyValueKind> {
    set.keys
        .iter()
        .position(|k| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .and_then(|i| set.values.get(i))
        .and_then(|v| v.value.as_ref())
}

fn units_of(set: &sparkplug::PropertySet) -> Option<String> {
    match property(set, &["engUnit", "engUnits", "units", "unit"])? {
        sparkplug::PropertyValueKind::StringValue(units) => Some(units.clone()),
        _ => None,
    }
}

fn metric_value(metric: &sparkplug::Metric, datatype: u32, at: DateTime<Utc>) -> TagValue {
    let mut value = match sparkplug::read(
        metric.value.as_ref(),
        datatype,
        metric.is_null == Some(true),
    ) {
        Reading::Number(n) => TagValue::number(at, n),
        Reading::Text(text) => TagValue::text(at, text),
        Reading::Nothing => TagValue::event(at, Status::Bad),
    };
    if let Some(quality) = metric
        .properties
        .as_ref()
        .and_then(|p| property(p, &["Quality"]))
    {
        let code = match quality {
            sparkplug::PropertyValueKind::IntValue(q) => i64::from(*q as i32),
            sparkplug::PropertyValueKind::LongValue(q) => *q as i64,
            _ => 192,
        };
        value.status = match code {
            192 => Status::Good,
            500 => Status::Uncertain,
            0..=255 => Status::from_code(code as u8),
            _ => Status::Bad,
        };
    }
    value
}

/// A plain payload: a number, `true`/`false` as 1/0, or else text.
fn plain_value(text: &str, now: DateTime<Utc>) -> TagValue {
    if let Ok(number) = text.parse::<f64>()
        && number.is_finite()
    {
        return TagValue::number(now, number);
    }
    match text {
        "true" | "TRUE" | "True" => TagValue::number(now, 1.0),
        "false" | "FALSE" | "False" => TagValue::number(now, 0.0),
        _ => TagValue::text(now, text),
    }
}

/// A time read from a JSON value: a number of `time_unit_us` microseconds since the Unix epoch
/// or an RFC 3339 text; `now` when absent or null.
pub(crate) fn time_of(
    topic: &str,
    value: Option<&Value>,
    now: DateTime<Utc>,
    time_unit_us: i64,
) -> Result<DateTime<Utc>, String> {
    Ok(match value {
        None | Some(Value::Null) => now,
        Some(Value::Number(n)) => {
            let micros = n
                .as_i64()
                .map(|t| t.saturating_mul(time_unit_us))
                .or_else(|| n.as_f64().map(|t| (t * time_unit_us as f64) as i64))
                .ok_or_else(|| format!("the time on '{topic}' is not a number of the unit"))?;
            from_micros(micros)
        }
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| format!("the time '{text}' on '{topic}' is not RFC 3339"))?
            .with_timezone(&Utc),
        Some(other) => {
            return Err(format!(
                "the time on '{topic}' is neither a number nor a text: {other}"
            ));
        }
    })
}

fn json_value(
    topic: &str,
    payload: &[u8],
    now: DateTime<Utc>,
    value_path: &crate::subscriptions::JsonPath,
    time_path: Option<&crate::subscriptions::JsonPath>,
    quality_path: Option<&crate::subscriptions::JsonPath>,
    time_unit_us: i64,
) -> Result<TagValue, String> {
    let document: Value = serde_json::from_slice(payload)
        .map_err(|err| format!("the payload on '{topic}' is not JSON: {err}"))?;
    let time = time_of(
        topic,
        time_path.and_then(|p| p.get(&document)),
        now,
        time_unit_us,
    )?;
    let mut value = match value_path.get(&document) {
        None => return Err(format!("the JSON on '{topic}' has nothing at {value_path}")),
        Some(Value::Null) => TagValue::event(time, Status::Bad),
        Some(Value::Number(n)) => TagValue::number(time, n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::Bool(b)) => TagValue::number(time, f64::from(u8::from(*b))),
        Some(Value::String(text)) => TagValue::text(time, text.clone()),
        Some(_) => {
            return Err(format!(
                "the value at {value_path} on '{topic}' is a list or an object, not a number or a text"
            ));
        }
    };
    if let Some(quality) = quality_path.and_then(|p| p.get(&document)) {
        value.status = match quality {
            Value::Bool(true) => Status::Good,
            Value::Bool(false) => Status::Bad,
            Value::Number(n) => match n.as_u64() {
                Some(code @ 0..=255) => Status::from_code(code as u8),
                // An OPC UA status code: its two top bits.
                Some(code) => match (code >> 30) & 0b11 {
                    0 => Status::Good,
                    1 => Status::Uncertain,
                    _ => Status::Bad,
                },
                None => Status::Bad,
            },
            Value::String(text) => match text.to_ascii_lowercase().as_str() {
                "good" | "ok" => Status::Good,
                "uncertain" | "stale" => Status::Uncertain,
                _ => Status::Bad,
            },
            _ => Status::Bad,
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriptions;

    fn state(lines: &str) -> State {
        State::new(subscriptions::parse(lines).unwrap())
    }

    fn value(state: &State, tag: &str) -> TagValue {
        state.entries[state.position(tag).unwrap()].value.clone()
    }

    #[test]
    fn json_times_and_qualities_read_in_every_documented_form() {
        let mut s = state(
            "a/s json value=$.v time=$.t quality=$.q unit=s name=s\n\
                           a/u json value=$.v time=$.t quality=$.q unit=us name=u\n\
                           a/r json value=$.v time=$.t quality=$.q name=r",
        );
        assert!(s.ingest("a/s", br#"{"v": 1, "t": 1700000000, "q": 192}"#));
        assert!(s.ingest(
            "a/u",
            br#"{"v": true, "t": 1700000000000001, "q": 1073741824}"#
        ));
        assert!(s.ingest(
            "a/r",
            br#"{"v": null, "t": "2026-12-06T10:00:00.5Z", "q": false}"#
        ));
        let v = value(&s, "s");
        assert_eq!(
            (v.value, v.status, v.time.timestamp()),
            (Some(1.0), Status::Good, 1_700_000_000)
        );
        let v = value(&s, "u");
        assert_eq!((v.value, v.status), (Some(1.0), Status::Uncertain));
        assert_eq!(v.time.timestamp_micros(), 1_700_000_000_000_001);
        let v = value(&s, "r");
        assert_eq!((v.value, v.status), (None, Status::Bad));
        assert_eq!(
            v.time,
            DateTime::parse_from_rfc3339("2026-12-06T10:00:00.5Z").unwrap()
        );
        // A 0–255 code is an OPC DA quality byte; 0x80000000 an OPC UA bad code.
        assert!(s.ingest("a/s", br#"{"v": 2, "q": 0}"#));
        assert_eq!(value(&s, "s").status, Status::Bad);
        assert!(s.ingest("a/s", br#"{"v": 2, "q": 2147483648}"#));
        assert_eq!(value(&s, "s").status, Status::Bad);
        // Unreadable documents change nothing and are counted.
        assert!(!s.ingest("a/s", br#"{"v": [1]}"#));
        assert!(!s.ingest("a/s", br#"{"v": 1, "t": "yesterday"}"#));
        assert_eq!(value(&s, "s").value, Some(2.0));
        let health = s.health();
        assert!(
            health
                .issues
                .iter()
                .any(|i| i.message.starts_with("2 messages could not be read")),
            "{health:?}"
        );
    }

    #[test]
    fn a_name_template_longer_than_the_topic_is_counted_not_guessed() {
        let mut s = state("a/# plain name={1}.{3}");
        assert!(s.ingest("a/b/c", b"1"));
        assert_eq!(value(&s, "a.c").value, Some(1.0));
        assert!(!s.ingest("a/b", b"2"));
        let health = s.health();
        assert!(
            health.issues.iter().any(|i| i
                .message
                .contains("too few levels for the name template of line 1")),
            "{health:?}"
        );
    }

    #[test]
    fn event_topics_log_events_and_make_no_tags() {
        let mut s = state("plant/+/alarms event\nplant/+/temp plain");
        s.source = "line-1".into();
        assert!(!s.ingest(
            "plant/boiler/alarms",
            br#"{"message": "hot", "priority": 900}"#
        ));
        assert!(!s.ingest("plant/boiler/alarms", b"{\"priority\": 900"));
        assert!(s.entries.is_empty(), "no tag for an event topic");
        let events: Vec<EventMessage> = std::mem::take(&mut s.new_events)
            .into_iter()
            .map(|(_, event)| event)
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].source, "line-1");
        assert_eq!(events[0].topic, "plant/boiler/alarms");
        assert_eq!(events[0].priority, uplink_model::EventPriority::Critical);
        assert_eq!(s.events.len(), 1);
        let health = s.health();
        assert!(
            health
                .issues
                .iter()
                .any(|i| i.message.starts_with("1 messages could not be read")
                    && i.message.contains("is not JSON")),
            "{health:?}"
        );
    }

    #[test]
    fn a_sparkplug_quality_property_sets_the_status() {
        let quality = |code: u32| sparkplug::PropertySet {
            keys: vec!["Quality".into()],
            values: vec![sparkplug::PropertyValue {
                r#type: Some(sparkplug::code::INT32),
                is_null: None,
                value: Some(sparkplug::PropertyValueKind::IntValue(code)),
            }],
        };
        let metric = |code: u32| sparkplug::Metric {
            name: Some("m".into()),
            datatype: Some(sparkplug::code::DOUBLE),
            value: Some(sparkplug::MetricValue::DoubleValue(1.0)),
            properties: Some(quality(code)),
            ..Default::default()
        };
        let at = Utc::now();
        assert_eq!(
            metric_value(&metric(192), sparkplug::code::DOUBLE, at).status,
            Status::Good
        );
        assert_eq!(
            metric_value(&metric(500), sparkplug::code::DOUBLE, at).status,
            Status::Uncertain
        );
        assert_eq!(
            metric_value(&metric(0), sparkplug::code::DOUBLE, at).status,
            Status::Bad
        );
    }
}
