//! The MQTT data source (`mqtt` kind): topics from a broker read by a payload rule per
//! subscription line — plain numbers and texts, JSON documents, or Sparkplug B — served as
//! snapshot (the last message per tag; retained messages seed it), live values, and writes
//! published to a command topic (Sparkplug NCMD/DCMD); topics of `event` lines carry alarms and
//! events, kept in a bounded log for time-range reads and streamed as they arrive. Stored values
//! (raw, plot, processed) wait for the edge historian.
//!
//! The client is `rumqttc` (MQTT 3.1.1 or 5) over TCP or rustls with the *ring* provider; it
//! reconnects with backoff for as long as the source is open.

#![warn(missing_docs)]

mod connection;
pub mod events;
mod session;
pub mod sparkplug;
mod state;
pub mod subscriptions;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use prost::Message;
use rumqttc::QoS;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use uplink_model::time_expr::Span;
use uplink_model::{
    Capabilities, DataSourceDescriptor, EventMessage, EventPage, EventsRequest, RawRequest,
    TagPage, TagSearch, TagValue,
};
use uplink_source::form::{FieldError, FieldSchema, FieldType, FormSchema};
use uplink_source::{
    ChangeStream, DataSource, EventStream, Health, HealthIssue, RawStream, SnapshotStream,
    SourceConfig, SourceError, WriteValue,
};

pub use state::{Connection, MAX_TAGS};
pub use subscriptions::{Rule, Subscription};

use crate::state::{Origin, State};

/// The kind's identifier.
pub const KIND: &str = "mqtt";

/// The events an events-stream reader may have waiting; a reader further behind gets those it
/// missed from the log, and loses only what the log no longer holds
/// ([`MqttSource::events_lost`] counts them).
pub const EVENT_QUEUE: usize = 1_024;

/// The most events one item of the events stream carries.
const EVENTS_PER_ITEM: usize = 500;

/// The longest subscriptions text the form accepts.
const MAX_SUBSCRIPTIONS_LENGTH: usize = 256 * 1024;

/// The form of an MQTT source.
pub fn schema() -> FormSchema {
    let mut subscriptions = FieldSchema::new(
        subscriptions::FIELD,
        "Subscriptions",
        FieldType::Lines,
        true,
        "One per line: a topic filter, a payload rule (plain, json, sparkplug, or event for alarms and events) and options, such as `plant/+/temp json value=$.v time=$.ts name={2}.temp`, `spBv1.0/# sparkplug` or `plant/+/alarms event`. Options: name=, value=, time=, quality=, unit=ms|s|us, qos=0|1|2, command=; for event, message=, priority=, category=, type= (JSON paths).",
    );
    subscriptions.constraints.max_length = Some(MAX_SUBSCRIPTIONS_LENGTH);
    FormSchema {
        kind: KIND.into(),
        title: "MQTT broker".into(),
        description: "Topics from an MQTT broker: plain values, JSON documents or Sparkplug B, as current values and live updates; writes publish to a command topic.".into(),
        fields: vec![
            FieldSchema::new("brokerUrl", "Broker URL", FieldType::Text, true, "mqtt://host:port for plain TCP (port 1883 by default) or mqtts://host:port for TLS (port 8883 by default)."),
            FieldSchema::new("clientId", "Client id", FieldType::Text, false, "The id the broker knows this connector by; one is made up when left empty. Needed to keep a session (clean session off)."),
            FieldSchema::new("username", "User name", FieldType::Text, false, "When the broker asks for one."),
            FieldSchema::new("password", "Password", FieldType::Text, false, "The user name's password.").secret(),
            FieldSchema::new("caFile", "CA certificate", FieldType::Path, false, "A PEM file with the CA that signed the broker's certificate (mqtts); the system's trust store when left empty."),
            FieldSchema::new("clientCertFile", "Client certificate", FieldType::Path, false, "A PEM certificate chain for brokers that ask for client certificates (mqtts)."),
            FieldSchema::new("clientKeyFile", "Client key", FieldType::Path, false, "The PEM private key of the client certificate."),
            FieldSchema::new("keepAlive", "Keep-alive", FieldType::Duration, true, "How often the connection is checked when idle, such as 30s (at least 1s).")
                .default_value("30s"),
            FieldSchema::new("cleanSession", "Clean session", FieldType::Boolean, true, "Start with no session on the broker; off keeps subscriptions and queued QoS 1/2 messages across reconnects and restarts (needs a client id), so events published meanwhile are not lost.")
                .default_value(true),
            FieldSchema::new("sparkplugRebirth", "Ask Sparkplug nodes for rebirth", FieldType::Boolean, true, "When data arrives from a Sparkplug edge node whose birth certificate was missed (the connector started after it), publish an NCMD Node Control/Rebirth so the node sends its birth again. Off: such nodes' tags appear at their next birth.")
                .default_value(false),
            FieldSchema::new("mqttVersion", "MQTT version", FieldType::Select, true, "The protocol version the broker is spoken to in: 3.1.1 or 5.")
                .options(&["3.1.1", "5"])
                .default_value("3.1.1"),
            subscriptions,
        ]
        .into_iter()
        .chain(uplink_source::recording::fields())
        .chain(uplink_source::writing::fields())
        .collect(),
    }
}

/// The form's values. No `Debug`: it holds the password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    broker_url: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    client_cert_file: Option<String>,
    #[serde(default)]
    client_key_file: Option<String>,
    keep_alive: Span,
    clean_session: bool,
    mqtt_version: String,
    sparkplug_rebirth: bool,
    subscriptions: String,
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS (`mqtts://`).
    pub tls: bool,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// Reads a broker URL as the form does.
///
/// # Errors
/// A sentence for the `brokerUrl` field.
pub fn parse_broker_url(text: &str) -> Result<Broker, String> {
    let url = url::Url::parse(text.trim()).map_err(|err| {
        format!(
            "'{}' is not a URL ({err}); write mqtt://host:port or mqtts://host:port",
            text.trim()
        )
    })?;
    let (tls, default_port) = match url.scheme() {
        "mqtt" | "tcp" => (false, 1883),
        "mqtts" | "ssl" => (true, 8883),
        other => return Err(format!("the scheme '{other}' is not mqtt:// or mqtts://")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put the user name and password in their own fields, not in the URL".into());
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("the URL is only mqtt(s)://host:port, without a path or query".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err("the URL needs a host: mqtt://host:port".into()),
    };
    Ok(Broker {
        host,
        port: url.port().unwrap_or(default_port),
        tls,
    })
}

/// An MQTT data source; clones share the connection.
#[derive(Debug, Clone)]
pub struct MqttSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    description: String,
    shared: Arc<Shared>,
    /// Whether a subscription line has the event rule.
    has_events: bool,
    client: connection::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One reader of the events stream: what the broadcast hands it and, after it fell behind,
/// what it missed, read back from the log.
struct EventsReader {
    receiver: broadcast::Receiver<(u64, EventMessage)>,
    shared: std::sync::Weak<Shared>,
    /// The arrival number of the last event queued for the reader.
    last: u64,
    /// Whether the broadcast dropped events for this reader since `last`.
    behind: bool,
    /// Events to hand over, oldest first.
    pending: VecDeque<EventMessage>,
}

impl EventsReader {
    /// Queues one received event; when the reader fell behind, first those it missed.
    fn take(&mut self, (number, event): (u64, EventMessage)) {
        // Events arrive in order, but for one logged before the subscribe and sent after it.
        if number > self.last {
            if std::mem::take(&mut self.behind) {
                self.fill(number);
            }
            self.last = number;
        }
        self.pending.push_back(event);
    }

    /// Queues what the log still holds of the events numbered after `last` and before
    /// `before`; counts the rest, which the log forgot meanwhile, as lost.
    fn fill(&mut self, before: u64) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let missed = shared.lock().events.arrived_between(self.last, before);
        let lost = (before - self.last - 1).saturating_sub(missed.len() as u64);
        if lost > 0 {
            shared.events_lost.fetch_add(lost, Ordering::Relaxed);
            tracing::warn!(
                lost,
                "an events stream reader fell further behind than the source holds events"
            );
        }
        tracing::debug!(
            caught_up = missed.len(),
            "an events stream reader fell behind; caught up from the log"
        );
        self.pending
            .extend(missed.into_iter().map(|(_, event)| event));
    }

    /// The next item of the stream: at most [`EVENTS_PER_ITEM`] events; `None` once the source
    /// closed.
    async fn next_item(&mut self) -> Option<Vec<EventMessage>> {
        while self.pending.is_empty() {
            match self.receiver.recv().await {
                Ok(received) => self.take(received),
                Err(broadcast::error::RecvError::Lagged(_)) => self.behind = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
        while self.pending.len() < EVENTS_PER_ITEM {
            match self.receiver.try_recv() {
                Ok(received) => self.take(received),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.behind = true,
                Err(_) => break,
            }
        }
        let count = self.pending.len().min(EVENTS_PER_ITEM);
        Some(self.pending.drain(..count).collect())
    }
}

/// What the connection task and the source share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    /// Every value as it arrives, for the edge historian.
    feed: uplink_source::ChangeFeed,
    /// Every event as it arrives with its arrival number in the log, for the events streams.
    events: broadcast::Sender<(u64, EventMessage)>,
    /// Events the events streams' readers lost by falling behind further than the log holds.
    events_lost: AtomicU64,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads one message (`retained`: sent as the retained message on a subscribe) and wakes
    /// subscribers when a tag changed; returns what the source has to publish in answer
    /// (rebirth requests), usually nothing.
    pub(crate) fn ingest(
        &self,
        topic: &str,
        payload: &[u8],
        retained: bool,
    ) -> Vec<(String, Vec<u8>)> {
        let mut state = self.lock();
        state.track_changes = self.feed.has_readers();
        let changed = state.ingest_message(topic, payload, retained);
        let outbox = std::mem::take(&mut state.outbox);
        let events = std::mem::take(&mut state.new_events);
        if !state.changed.is_empty() {
            let values: Vec<(Arc<str>, TagValue)> = std::mem::take(&mut state.changed)
                .into_iter()
                .map(|(p, value)| (Arc::from(state.entries[p].tag.name.as_str()), value))
                .collect();
            drop(state);
            self.feed
                .publish_all(values.iter().map(|(tag, value)| (tag, value)));
        } else {
            drop(state);
        }
        for event in events {
            // Without a reader the event is only logged.
            let _ = self.events.send(event);
        }
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
        outbox
    }

    pub(crate) fn set_connection(&self, connection: Connection) {
        let mut state = self.lock();
        if state.connection != connection {
            match &connection {
                Connection::Up => tracing::info!("mqtt broker connected"),
                Connection::Down(why) => {
                    tracing::warn!(reason = %why, "mqtt broker connection down")
                }
                Connection::Connecting => {}
            }
            state.connection = connection;
        }
        drop(state);
        self.changes.send_modify(|n| *n += 1);
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl MqttSource {
    /// Checks the settings, connects, and returns once the first connection attempt has an
    /// outcome (or after the keep-alive, at most 10 s), so health says at once whether the
    /// broker answers. A broker that is down is not an error here: the source opens, its
    /// health says so, and it reconnects with backoff.
    ///
    /// # Errors
    /// [`SourceError::InvalidSettings`] naming the field (every bad subscription line by number),
    /// or an unreadable certificate file.
    pub async fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        Self::open_in(config, None).await
    }

    /// As [`open`](Self::open), remembering in `sessions_dir` which topic filters a kept
    /// session (clean session off) is subscribed to, so that lines removed from the
    /// subscriptions are unsubscribed when the broker resumes the session. Without it they
    /// stay subscribed on the broker for as long as the session lives.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub async fn open_in(
        config: &SourceConfig,
        sessions_dir: Option<&std::path::Path>,
    ) -> Result<Self, SourceError> {
        let settings: Settings = uplink_source::typed_settings(&schema(), &config.settings)?;
        let mut errors = Vec::new();
        let broker = parse_broker_url(&settings.broker_url)
            .map_err(|e| errors.push(FieldError::new("brokerUrl", e)))
            .ok();
        let subs = subscriptions::parse(&settings.subscriptions)
            .map_err(|e| errors.extend(e))
            .ok();
        let client_id = non_empty(settings.client_id);
        if !settings.clean_session && client_id.is_none() {
            errors.push(FieldError::new(
                "clientId",
                "is needed when clean session is off (the broker keeps the session under it)",
            ));
        }
        if let Some(id) = &client_id
            && (id.len() > 23 * 8 || id.contains(char::is_whitespace))
        {
            errors.push(FieldError::new(
                "clientId",
                "must be at most 184 characters, without spaces",
            ));
        }
        let keep_alive = settings.keep_alive.as_micros();
        if !(1_000_000..=65_535_000_000).contains(&keep_alive) {
            errors.push(FieldError::new("keepAlive", "must be between 1s and 18h"));
        }
        let username = non_empty(settings.username);
        let password = non_empty(settings.password);
        if password.is_some() && username.is_none() {
            errors.push(FieldError::new("username", "is needed with a password"));
        }
        let tls_files = [
            ("caFile", &settings.ca_file),
            ("clientCertFile", &settings.client_cert_file),
            ("clientKeyFile", &settings.client_key_file),
        ];
        if let Some(broker) = &broker
            && !broker.tls
        {
            for (field, value) in tls_files {
                if non_empty(value.clone()).is_some() {
                    errors.push(FieldError::new(field, "applies to mqtts:// brokers only"));
                }
            }
        }
        let cert = non_empty(settings.client_cert_file);
        let key = non_empty(settings.client_key_file);
        if cert.is_some() != key.is_some() {
            let field = if cert.is_some() {
                "clientKeyFile"
            } else {
                "clientCertFile"
            };
            errors.push(FieldError::new(
                field,
                "a client certificate needs both the certificate and its key",
            ));
        }
        let (Some(broker), Some(subs)) = (broker, subs) else {
            return Err(SourceError::InvalidSettings(errors));
        };
        if !errors.is_empty() {
            return Err(SourceError::InvalidSettings(errors));
        }
        let tls = if broker.tls {
            Some(connection::tls_config(
                non_empty(settings.ca_file).as_deref(),
                cert.as_deref().zip(key.as_deref()),
            )?)
        } else {
            None
        };
        let client_id = client_id.unwrap_or_else(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            format!("uplink-{:x}-{nanos:x}", std::process::id())
        });
        let session = sessions_dir.map(|dir| session::SessionFile::new(dir, &broker, &client_id));
        let options = connection::Options {
            version: if settings.mqtt_version == "5" {
                connection::Version::V5
            } else {
                connection::Version::V311
            },
            broker: broker.clone(),
            client_id,
            credentials: username.map(|u| (u, password.unwrap_or_default())),
            tls,
            keep_alive: Duration::from_micros(keep_alive as u64),
            clean_session: settings.clean_session,
            session,
        };
        let filters: Vec<(String, QoS)> = subs.iter().map(|s| (s.filter.clone(), s.qos)).collect();
        let has_events = subs.iter().any(|s| matches!(s.rule, Rule::Event(_)));
        let shared = Arc::new(Shared {
            state: Mutex::new({
                let mut state = State::new(subs);
                state.rebirth = settings.sparkplug_rebirth;
                state.source.clone_from(&config.name);
                state
            }),
            changes: watch::channel(0).0,
            feed: uplink_source::ChangeFeed::default(),
            events: broadcast::channel(EVENT_QUEUE).0,
            events_lost: AtomicU64::new(0),
        });
        let mut first = shared.changes.subscribe();
        let (client, task) = connection::start(&options, shared.clone(), filters);
        let wait = options.keep_alive.min(Duration::from_secs(10));
        let _ = tokio::time::timeout(
            wait,
            first.wait_for(|_| shared.lock().connection != Connection::Connecting),
        )
        .await;
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.name.clone(),
                description: config.description.clone(),
                shared,
                has_events,
                client,
                task,
            }),
        })
    }

    /// How the broker connection is.
    pub fn connection(&self) -> Connection {
        self.inner.shared.lock().connection.clone()
    }

    /// How many messages the broker delivered since the source opened, read or not.
    pub fn messages(&self) -> u64 {
        self.inner.shared.lock().messages
    }

    /// Events that readers of the events stream lost because they fell more than
    /// [`EVENT_QUEUE`] behind and the log had forgotten them by then.
    pub fn events_lost(&self) -> u64 {
        self.inner.shared.events_lost.load(Ordering::Relaxed)
    }

    /// Sparkplug counters of an edge node (`group/node`): sequence gaps, bdSeq gaps, and
    /// deaths ignored as stale (an earlier session's).
    pub fn sparkplug_gaps(&self, node: &str) -> Option<(u64, u64, u64)> {
        self.inner.shared.lock().seq_gaps(node)
    }

    /// Waits until the connection is `Up` (after a reconnect, say), at most `limit`.
    pub async fn wait_connected(&self, limit: Duration) -> bool {
        let mut changes = self.inner.shared.changes.subscribe();
        tokio::time::timeout(
            limit,
            changes.wait_for(|_| self.inner.shared.lock().connection == Connection::Up),
        )
        .await
        .is_ok()
    }

    fn positions(&self, state: &State, tags: &[String]) -> Result<Vec<usize>, SourceError> {
        tags.iter()
            .map(|tag| {
                state.position(tag).ok_or_else(|| SourceError::UnknownTag {
                    source_name: self.inner.name.clone(),
                    tag: tag.clone(),
                })
            })
            .collect()
    }
}

/// A write value as a number: a switch is 1 or 0, a text must read as a number or on/off.
fn number_of(value: &WriteValue) -> Result<f64, String> {
    match value {
        WriteValue::Bool(on) => Ok(f64::from(u8::from(*on))),
        WriteValue::Number(n) => Ok(*n),
        WriteValue::Text(text) => {
            let text = text.trim();
            match text.to_ascii_lowercase().as_str() {
                "true" | "on" => Ok(1.0),
                "false" | "off" => Ok(0.0),
                _ => text
                    .parse::<f64>()
                    .map_err(|_| format!("'{text}' is not a number or on/off")),
            }
        }
    }
}

/// A write value as JSON and as plain text.
fn json_of(value: &WriteValue) -> Value {
    match value {
        WriteValue::Bool(b) => Value::Bool(*b),
        WriteValue::Number(n) => {
            serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number)
        }
        WriteValue::Text(t) => Value::String(t.clone()),
    }
}

fn text_of(value: &WriteValue) -> String {
    match value {
        WriteValue::Bool(b) => b.to_string(),
        WriteValue::Number(n) => n.to_string(),
        WriteValue::Text(t) => t.clone(),
    }
}

#[async_trait]
impl DataSource for MqttSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.inner.name.clone(),
            kind: KIND.into(),
            description: self.inner.description.clone(),
            capabilities: Capabilities {
                write: true,
                events: self.inner.has_events,
                ..Capabilities::live_only()
            },
        }
    }

    fn health(&self) -> Health {
        let mut health = self.inner.shared.lock().health();
        let lost = self.events_lost();
        if lost > 0 {
            health.report(HealthIssue {
                message: format!(
                    "{lost} events were lost by a reader of the events stream that fell further behind than the source holds in memory"
                ),
                file: None,
                line: None,
            });
        }
        health
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        let state = self.inner.shared.lock();
        Ok(search.page(state.entries.iter().map(|e| &e.tag))?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let state = self.inner.shared.lock();
        let positions = self.positions(&state, tags)?;
        Ok(positions
            .into_iter()
            .map(|p| state.entries[p].value.clone())
            .collect())
    }

    async fn raw(&self, _request: &RawRequest) -> Result<RawStream, SourceError> {
        Err(SourceError::Unsupported {
            source_name: self.inner.name.clone(),
            what: "stored values (raw, plot and processed reads come from the edge historian: turn recording on in the source's form)",
        })
    }

    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        let positions = self.positions(&self.inner.shared.lock(), tags)?;
        let source = self.clone();
        let mut changes = self.inner.shared.changes.subscribe();
        changes.mark_changed();
        // The first item is the current values; then one item whenever a subscribed tag changed.
        Ok(futures::stream::unfold(
            (source, changes, positions, None::<u64>),
            |(source, mut changes, positions, mut seen)| async move {
                loop {
                    changes.changed().await.ok()?;
                    let values = {
                        let state = source.inner.shared.lock();
                        let newest = positions
                            .iter()
                            .map(|&p| state.entries[p].version)
                            .max()
                            .unwrap_or(0);
                        if seen.is_some_and(|s| newest <= s) {
                            None
                        } else {
                            seen = Some(state.version);
                            Some(
                                positions
                                    .iter()
                                    .map(|&p| state.entries[p].value.clone())
                                    .collect::<Vec<_>>(),
                            )
                        }
                    };
                    if let Some(values) = values {
                        return Some((values, (source, changes, positions, seen)));
                    }
                }
            },
        )
        .boxed())
    }

    /// The logged events of `event` lines (the most recent [`events::LOG_CAPACITY`]) in the
    /// range, oldest first; a cursor is a page's `next` (`TIME_US.NUMBER`).
    async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
        if !self.inner.has_events {
            return Err(SourceError::Unsupported {
                source_name: self.inner.name.clone(),
                what: "alarms and events (no subscription line has the event rule)",
            });
        }
        let now = uplink_model::time_expr::to_micros(Utc::now());
        Ok(self.inner.shared.lock().events.page(request, now)?)
    }

    /// Each event as its message arrives, from the moment of subscribing. A reader more than
    /// [`EVENT_QUEUE`] events behind gets those it missed from the log (the most recent
    /// [`events::LOG_CAPACITY`]), in the order they arrived; only what the log forgot
    /// meanwhile is lost, counted in health.
    async fn subscribe_events(&self) -> Result<EventStream, SourceError> {
        if !self.inner.has_events {
            return Err(SourceError::Unsupported {
                source_name: self.inner.name.clone(),
                what: "alarms and events (no subscription line has the event rule)",
            });
        }
        let (receiver, last) = {
            // Under the lock: every event numbered after `last` is sent after this subscribe.
            let state = self.inner.shared.lock();
            (
                self.inner.shared.events.subscribe(),
                state.events.last_number(),
            )
        };
        // Weak, so that the stream ends when the source closes.
        let reader = EventsReader {
            receiver,
            shared: Arc::downgrade(&self.inner.shared),
            last,
            behind: false,
            pending: VecDeque::new(),
        };
        Ok(futures::stream::unfold(reader, |mut reader| async move {
            let events = reader.next_item().await?;
            Some((events, reader))
        })
        .boxed())
    }

    /// Every value of every topic and metric as its message arrives, including tags first seen
    /// later; values stamped on arrival are each at least a microsecond after the last.
    async fn changes(&self) -> Result<ChangeStream, SourceError> {
        Ok(self.inner.shared.feed.subscribe())
    }

    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        let refused = |reason: String| SourceError::WriteRefused {
            source_name: self.inner.name.clone(),
            tag: tag.to_owned(),
            reason,
        };
        let (topic, payload) = {
            let state = self.inner.shared.lock();
            let position = self.positions(&state, &[tag.to_owned()])?[0];
            if let Connection::Down(why) = &state.connection {
                return Err(SourceError::Device {
                    source_name: self.inner.name.clone(),
                    message: format!("not connected to the broker: {why}"),
                });
            }
            match &state.entries[position].origin {
                Origin::Topic { sub, topic } => {
                    let line = &state.subscriptions()[*sub];
                    let command = line.command.as_ref().ok_or_else(|| {
                        refused(format!(
                            "line {} of the subscriptions has no command topic (add command=TOPIC to it)",
                            line.line
                        ))
                    })?;
                    let target = command.render(topic).ok_or_else(|| {
                        refused("the command template names a level the topic lacks".into())
                    })?;
                    let payload = match &line.rule {
                        Rule::Json { value: path, .. } => match path.build(json_of(value)) {
                            Some(document) => document.to_string(),
                            None => json_of(value).to_string(),
                        },
                        _ => text_of(value),
                    };
                    (target, payload.into_bytes())
                }
                Origin::Metric {
                    group,
                    node,
                    device,
                    metric,
                    datatype,
                    alias,
                } => {
                    let encoded = match (value, *datatype) {
                        (
                            WriteValue::Text(text),
                            sparkplug::code::STRING | sparkplug::code::TEXT | sparkplug::code::UUID,
                        ) => sparkplug::MetricValue::StringValue(text.clone()),
                        _ => {
                            let number = number_of(value).map_err(&refused)?;
                            sparkplug::encode_number(number, *datatype).map_err(&refused)?
                        }
                    };
                    let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
                    let payload = sparkplug::Payload {
                        timestamp: Some(now),
                        metrics: vec![sparkplug::Metric {
                            name: Some(metric.clone()),
                            alias: *alias,
                            timestamp: Some(now),
                            datatype: Some(*datatype),
                            value: Some(encoded),
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let topic = match device {
                        Some(device) => {
                            format!("{}/{group}/DCMD/{node}/{device}", sparkplug::NAMESPACE)
                        }
                        None => format!("{}/{group}/NCMD/{node}", sparkplug::NAMESPACE),
                    };
                    (topic, payload.encode_to_vec())
                }
            }
        };
        tracing::info!(source = %self.inner.name, tag, topic = %topic, "mqtt write");
        // Never waits: a write the connection cannot take now fails rather than going out late.
        self.inner
            .client
            .try_publish(topic, payload)
            .map_err(|err| SourceError::Device {
                source_name: self.inner.name.clone(),
                message: format!("the write could not be handed to the broker connection: {err}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_checked() {
        assert_eq!(
            parse_broker_url("mqtt://broker.local").unwrap(),
            Broker {
                host: "broker.local".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(parse_broker_url("mqtts://10.0.0.5").unwrap().port, 8883);
        assert_eq!(parse_broker_url("mqtts://[::1]:9000").unwrap().host, "::1");
        for (bad, fragment) in [
            ("http://broker", "not mqtt://"),
            ("broker:1883", "not mqtt://"),
            ("mqtt://user:secret@broker", "own fields"),
            ("mqtt://broker/topic", "without a path"),
            ("mqtt://", "needs a host"),
            ("not a url", "is not a URL"),
        ] {
            let err = parse_broker_url(bad).unwrap_err();
            assert!(err.contains(fragment), "{bad}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
