//! The `opcua` data source kind: the variables of an OPC UA server, browsed under a root and
//! named by browse path or node id; current values by the Read service in batches; stored values
//! by HistoryRead (raw, paged with continuation points and streamed in chunks; processed and
//! at-time pushed down when the server answers them, else computed by Uplink from raw); live
//! values by a subscription with monitored items; writes by the Write service. Alarms,
//! conditions and events come from an event notifier (the Server object by default): live
//! through a monitored item with an event filter, by time range through HistoryRead where the
//! server keeps their history.
//!
//! The connector's own application certificate is created on first use in its data folder
//! (`opcua/pki/own`); a server certificate is used only once it is on the trust list
//! (`opcua/pki/trusted`), put there by the owner through the form's thumbprint field or
//! `uplink sources trust`. A certificate seen for the first time is refused with its
//! thumbprints, never accepted silently.

#![warn(missing_docs)]

mod connection;
mod events;
mod settings;
mod tags;
mod values;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use opcua::client::HistoryReadAction;
use opcua::client::{DataChangeCallback, EventCallback, MonitoredItem};
use opcua::types::{
    AttributeId, ByteString, CallMethodRequest, ContentFilter, DataValue, EventFilter,
    ExtensionObject, HistoryData, HistoryEvent, HistoryReadResult, HistoryReadValueId, MethodId,
    MonitoredItemCreateRequest, NodeId, NumericRange, ObjectId, ObjectTypeId, QualifiedName,
    ReadAtTimeDetails, ReadEventDetails, ReadProcessedDetails, ReadRawModifiedDetails, ReadValueId,
    SimpleAttributeOperand, TimestampsToReturn, Variant,
};
use uplink_model::time_expr::from_micros;
use uplink_model::{
    AtTimesRequest, Boundary, Capabilities, Computed, ComputedBy, DataSourceDescriptor,
    EventMessage, EventPage, EventsRequest, Function, ProcessedRequest, RawRequest, Sample,
    TagPage, TagSearch, TagValue, aggregate,
};
use uplink_source::{
    DataSource, EventStream, Health, HealthIssue, ProcessedSeriesList, RawStream, SnapshotStream,
    SourceConfig, SourceContext, SourceError, WriteValue,
};

pub use connection::Thumbprints;
pub use settings::{KIND, schema};

use connection::{Connection, LinkState};
use settings::Settings;
use tags::TagCache;

/// Nodes per Read request.
const READ_BATCH: usize = 500;
/// The first client handle Uplink gives a monitored item (the client library numbers its own
/// from 1 000).
const FIRST_HANDLE: u32 = 0x4000_0000;
/// The client handle of the monitored item that watches the server's model change events.
const MODEL_HANDLE: u32 = FIRST_HANDLE - 1;
/// Values asked for per HistoryRead request (well within any server's message size).
const HISTORY_PAGE: u64 = 1_000;
/// The EventNotifier attribute's bit saying the object keeps its events' history.
const HISTORY_READ_BIT: u8 = 0x04;
/// The most event type names kept (read once per type from the server).
const MAX_TYPE_NAMES: usize = 1_000;

/// An OPC UA data source.
#[derive(Debug, Clone)]
pub struct OpcUaSource {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    description: String,
    settings: Settings,
    data_dir: PathBuf,
    /// The session, once one was opened.
    connection: std::sync::RwLock<Option<Arc<Connection>>>,
    /// Why there is no session yet (a server unreachable when the connector started).
    pending: std::sync::Mutex<Option<String>>,
    tags: tokio::sync::RwLock<Option<Arc<TagCache>>>,
    refreshed: std::sync::Mutex<Option<std::time::Instant>>,
    /// Client handles for monitored items: each subscription's items get their own range, so a
    /// subscription is found again after a reconnect re-created it under a new id.
    next_handle: AtomicU32,
    /// Set by the server's model change events: the tag list is browsed again before its next use.
    model_changed: Arc<AtomicBool>,
    /// Events that events streams dropped because their reader fell behind.
    events_lost: Arc<AtomicU64>,
    /// The browse names of event types from other namespaces than OPC UA's, once read.
    event_type_names: std::sync::Mutex<HashMap<NodeId, String>>,
    /// Why the server's last answer to ConditionRefresh was a refusal (its status name).
    refresh_refused: std::sync::Mutex<Option<String>>,
}

fn data_dir(context: &SourceContext) -> Result<PathBuf, SourceError> {
    context.data_dir.clone().ok_or_else(|| SourceError::Unavailable {
        source_name: String::new(),
        message: "an OPC UA source needs the connector's data folder (for its certificate and trust list); open it through a connector or pass --data-dir".into(),
    })
}

/// Puts the server certificate of the configured source on the trust list, after checking it
/// against `expected` (a SHA-1 or SHA-256 thumbprint) when given; returns its thumbprints.
///
/// # Errors
/// Field errors for bad settings, an unreachable server, a None policy (nothing to trust) or a
/// thumbprint that does not match.
pub async fn trust_server(
    config: &SourceConfig,
    context: &SourceContext,
    expected: Option<&str>,
) -> Result<Thumbprints, SourceError> {
    let settings = Settings::read(config)?;
    connection::trust_server(&settings, &data_dir(context)?, expected).await
}

impl OpcUaSource {
    /// Connects (a session, with the configured security and identity) and browses the tags.
    ///
    /// # Errors
    /// Field errors naming what to fix: an endpoint that does not answer, a security policy the
    /// server does not offer, an untrusted server certificate (with its thumbprints), a refused
    /// identity.
    pub async fn open(config: &SourceConfig, context: &SourceContext) -> Result<Self, SourceError> {
        let settings = Settings::read(config)?;
        let dir = data_dir(context)?;
        let connected = connection::connect(&settings, &dir, &config.name).await;
        let (connection, pending) = match connected {
            Ok(connection) => (Some(Arc::new(connection)), None),
            // A connector starting while the server is away keeps trying in the background;
            // a form being tested says what is wrong at once.
            Err(err) if context.retry_unreachable && unreachable(&err) => {
                tracing::warn!(source = %config.name, error = %err, "OPC UA server unreachable; retrying in the background");
                (None, Some(err.to_string()))
            }
            Err(SourceError::Unavailable { message, .. }) => {
                return Err(SourceError::Unavailable {
                    source_name: config.name.clone(),
                    message,
                });
            }
            Err(other) => return Err(other),
        };
        let retrying = pending.is_some();
        let source = Self {
            shared: Arc::new(Shared {
                name: config.name.clone(),
                description: config.description.clone(),
                settings,
                data_dir: dir,
                connection: std::sync::RwLock::new(connection),
                pending: std::sync::Mutex::new(pending),
                tags: tokio::sync::RwLock::new(None),
                refreshed: std::sync::Mutex::new(None),
                next_handle: AtomicU32::new(FIRST_HANDLE),
                model_changed: Arc::new(AtomicBool::new(false)),
                events_lost: Arc::new(AtomicU64::new(0)),
                event_type_names: std::sync::Mutex::new(HashMap::new()),
                refresh_refused: std::sync::Mutex::new(None),
            }),
        };
        if retrying {
            tokio::spawn(keep_connecting(Arc::downgrade(&source.shared)));
        } else {
            source.watch_model_changes().await;
            source.refresh_tags().await?;
        }
        Ok(source)
    }

    /// Whether a session is open (false while a server unreachable at start-up is retried).
    pub fn is_connected(&self) -> bool {
        self.connection().is_some()
    }

    fn connection(&self) -> Option<Arc<Connection>> {
        self.shared
            .connection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The session, or why there is none.
    fn session(&self) -> Result<Arc<opcua::client::Session>, SourceError> {
        match self.connection() {
            Some(connection) => Ok(connection.session.clone()),
            None => Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_else(|| "not connected".into()),
            }),
        }
    }

    /// Browses the address space again (new variables appear, removed ones go).
    ///
    /// # Errors
    /// When the server does not answer the browse.
    pub async fn refresh_tags(&self) -> Result<usize, SourceError> {
        let session = self.session()?;
        let cache = self
            .timed("browsing", tags::browse(&session, &self.shared.settings))
            .await?
            .map_err(|code| self.server_error("browsing", code))?;
        let count = cache.tags.len();
        if cache.truncated {
            tracing::warn!(source = %self.shared.name, count, "browsing stopped at the most tags allowed");
        }
        *self.shared.tags.write().await = Some(Arc::new(cache));
        *self
            .shared
            .refreshed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
        Ok(count)
    }

    /// How many times the session was re-established after a loss.
    pub fn reconnects(&self) -> u64 {
        self.connection()
            .map_or(0, |c| c.reconnects.load(Ordering::Relaxed))
    }

    async fn timed<T>(
        &self,
        what: &'static str,
        future: impl Future<Output = T>,
    ) -> Result<T, SourceError> {
        tokio::time::timeout(self.shared.settings.timeout, future)
            .await
            .map_err(|_| SourceError::Timeout {
                source_name: self.shared.name.clone(),
                what,
                seconds: self.shared.settings.timeout.as_secs().max(1),
            })
    }

    fn server_error(&self, what: &str, error: opcua::types::Error) -> SourceError {
        SourceError::Unavailable {
            source_name: self.shared.name.clone(),
            message: format!("{what}: {}", connection::plain(error.status())),
        }
    }

    async fn cache(&self) -> Result<Arc<TagCache>, SourceError> {
        if self.shared.model_changed.swap(false, Ordering::Relaxed)
            && let Err(err) = self.refresh_tags().await
        {
            self.shared.model_changed.store(true, Ordering::Relaxed);
            return Err(err);
        }
        if let Some(cache) = self.shared.tags.read().await.clone() {
            return Ok(cache);
        }
        self.refresh_tags().await?;
        Ok(self.shared.tags.read().await.clone().unwrap_or_default())
    }

    /// The node of each tag; an unknown name browses again (at most every 10 s) before failing.
    async fn nodes(&self, names: &[String]) -> Result<Vec<(NodeId, Option<String>)>, SourceError> {
        let mut cache = self.cache().await?;
        if names.iter().any(|n| cache.get(n).is_none()) {
            let stale = self
                .shared
                .refreshed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|at| at.elapsed() > Duration::from_secs(10));
            if stale {
                self.refresh_tags().await?;
                cache = self.cache().await?;
            }
        }
        names
            .iter()
            .map(|name| {
                cache
                    .get(name)
                    .map(|entry| (entry.node.clone(), nonempty(&entry.tag.units)))
                    .ok_or_else(|| SourceError::UnknownTag {
                        source_name: self.shared.name.clone(),
                        tag: name.clone(),
                    })
            })
            .collect()
    }

    async fn node(&self, name: &str) -> Result<NodeId, SourceError> {
        Ok(self.nodes(&[name.to_owned()]).await?.remove(0).0)
    }

    async fn history_page(
        &self,
        details: HistoryReadAction,
        node: &NodeId,
        continuation: ByteString,
    ) -> Result<HistoryReadResult, SourceError> {
        let request = HistoryReadValueId {
            node_id: node.clone(),
            index_range: NumericRange::None,
            data_encoding: QualifiedName::null(),
            continuation_point: continuation,
        };
        let mut results = self
            .timed(
                "a history read",
                self.session()?.history_read(
                    details,
                    TimestampsToReturn::Source,
                    false,
                    &[request],
                ),
            )
            .await?
            .map_err(|e| self.server_error("history read", e))?;
        if results.is_empty() {
            return Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: "the server answered a history read with no result".into(),
            });
        }
        Ok(results.remove(0))
    }
}

/// An error that may pass once the server is back (it did not answer), as opposed to settings
/// the server refused.
fn unreachable(err: &SourceError) -> bool {
    match err {
        SourceError::Unavailable { .. } | SourceError::Timeout { .. } => true,
        SourceError::InvalidSettings(fields) => fields.iter().all(|f| f.field == "endpointUrl"),
        _ => false,
    }
}

/// Opens the session of a source whose server was unreachable at start-up, with backoff
/// (1 s doubling to 30 s), until it opens or the source is dropped.
async fn keep_connecting(shared: std::sync::Weak<Shared>) {
    let mut wait = Duration::from_secs(1);
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let attempt = connection::connect(&strong.settings, &strong.data_dir, &strong.name).await;
        match attempt {
            Ok(connection) => {
                *strong.connection.write().unwrap_or_else(|p| p.into_inner()) =
                    Some(Arc::new(connection));
                *strong.pending.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(source = %strong.name, "connected to the OPC UA server");
                let source = OpcUaSource { shared: strong };
                source.watch_model_changes().await;
                if let Err(err) = source.refresh_tags().await {
                    tracing::warn!(source = %source.shared.name, error = %err, "browsing after connecting failed");
                }
                return;
            }
            Err(err) => {
                *strong.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
            }
        }
    }
}

/// GeneralModelChangeEventType or BaseModelChangeEventType.
fn is_model_change(event_type: &NodeId) -> bool {
    event_type.namespace == 0
        && matches!(event_type.identifier, opcua::types::Identifier::Numeric(n)
            if n == ObjectTypeId::GeneralModelChangeEventType as u32
                || n == ObjectTypeId::BaseModelChangeEventType as u32)
}

fn nonempty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn history_values(result: HistoryReadResult) -> Vec<DataValue> {
    result
        .history_data
        .into_inner_as::<HistoryData>()
        .and_then(|data| data.data_values)
        .unwrap_or_default()
}

fn ua_time(micros: i64) -> opcua::types::DateTime {
    opcua::types::DateTime::from(from_micros(micros))
}

/// The OPC UA aggregate that computes `function` as Uplink's model defines it, if one does.
fn aggregate_of(function: Function) -> Option<opcua::types::ObjectId> {
    use opcua::types::ObjectId;
    match function {
        Function::Avg => Some(ObjectId::AggregateFunction_Average),
        Function::Min => Some(ObjectId::AggregateFunction_Minimum),
        Function::Max => Some(ObjectId::AggregateFunction_Maximum),
        _ => None,
    }
}

/// A status that says the server does not do this kind of history read (so Uplink does).
fn not_offered(code: opcua::types::StatusCode) -> bool {
    matches!(
        code.sub_code().name(),
        "BadAggregateNotSupported"
            | "BadNotImplemented"
            | "BadHistoryOperationUnsupported"
            | "BadHistoryOperationInvalid"
            | "BadServiceUnsupported"
            | "BadNotSupported"
            | "BadAggregateListMismatch"
    )
}

#[async_trait]
impl DataSource for OpcUaSource {
    fn descriptor(&self) -> DataSourceDescriptor {
        DataSourceDescriptor {
            name: self.shared.name.clone(),
            kind: KIND.into(),
            description: self.shared.description.clone(),
            capabilities: Capabilities {
                subscribe: true,
                write: true,
                events: !self.shared.settings.event_notifiers.is_empty(),
                ..Capabilities::all_from_raw()
            },
        }
    }

    fn health(&self) -> Health {
        let mut health = Health::ok();
        let problem = match self.connection() {
            Some(connection) => {
                match &*connection.state.lock().unwrap_or_else(|p| p.into_inner()) {
                    LinkState::Down(message) => Some(message.clone()),
                    LinkState::Connected => None,
                }
            }
            None => Some(format!(
                "not connected yet, retrying: {}",
                self.shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .unwrap_or_default()
            )),
        };
        if let Some(message) = problem {
            health.fail(HealthIssue {
                message,
                file: None,
                line: None,
            });
        }
        let lost = self.events_lost();
        if lost > 0 {
            health.report(HealthIssue {
                message: format!(
                    "{lost} events were dropped by an events stream whose reader was more than {} behind",
                    events::EVENT_QUEUE
                ),
                file: None,
                line: None,
            });
        }
        let refused = self
            .shared
            .refresh_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(status) = refused {
            health.report(HealthIssue {
                message: format!(
                    "the server refused ConditionRefresh ({status}): alarms already active when an events stream starts show only when they next change"
                ),
                file: None,
                line: None,
            });
        }
        health
    }

    /// The events in the range from the event notifiers' history (HistoryRead with
    /// ReadEventDetails), oldest first; a cursor is a page's last event's time and id (and,
    /// with several notifiers, the index of its notifier). A server that keeps no event history
    /// for any of them answers `unsupported`.
    async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
        let notifiers = self.event_notifiers()?;
        let walks = (0..notifiers.len())
            .map(|index| events::Walk::for_notifier(request, index, notifiers.len()))
            .collect::<Result<Vec<_>, _>>()?;
        if let [notifier] = &notifiers[..] {
            self.check_event_history(notifier).await?;
            let walk = walks.into_iter().next().expect("one walk per notifier");
            return self.event_history(walk, notifier).await;
        }
        let mut pages = Vec::with_capacity(notifiers.len());
        let mut kept = 0;
        for (walk, notifier) in walks.into_iter().zip(&notifiers) {
            match self.check_event_history(notifier).await {
                Ok(()) => {
                    kept += 1;
                    pages.push(self.event_history(walk, notifier).await?);
                }
                // The others' history is still read.
                Err(SourceError::Unsupported { .. }) => pages.push(EventPage::default()),
                Err(other) => return Err(other),
            }
        }
        if kept == 0 {
            return Err(no_event_history(&self.shared.name));
        }
        Ok(events::merge(pages, request.limit as usize))
    }

    /// The event notifiers' events from now on, through a subscription of its own with one
    /// monitored item per notifier and Uplink's event filter; the client library creates it
    /// again after a reconnect. ConditionRefresh is called when it starts, after each reconnect
    /// and when the server asks for it, so that conditions already active are sent (marked
    /// `refresh`). A reader more than [`events::EVENT_QUEUE`] events behind loses the oldest,
    /// counted in health.
    async fn subscribe_events(&self) -> Result<EventStream, SourceError> {
        let notifiers = self.event_notifiers()?;
        let session = self.session()?;
        let reconnected = self.connection().map(|c| {
            let mut reconnected = c.reconnected.clone();
            // Reconnects before the stream began need no refresh of their own.
            reconnected.borrow_and_update();
            reconnected
        });
        let queue = Arc::new(events::EventQueue::new(self.shared.events_lost.clone()));
        let count = u32::try_from(notifiers.len()).unwrap_or(u32::MAX);
        let first = self.shared.next_handle.fetch_add(count, Ordering::Relaxed);
        let callback = {
            let queue = queue.clone();
            EventCallback::new(move |fields: Option<Vec<Variant>>, item: &MonitoredItem| {
                if let Some(fields) = fields {
                    queue.push(item.client_handle().wrapping_sub(first) as usize, fields);
                }
            })
        };
        let interval = self.shared.settings.publishing_interval;
        let id = self
            .timed(
                "creating an events subscription",
                session.create_subscription(interval, 30, 10, 0, 0, true, callback),
            )
            .await?
            .map_err(|e| self.server_error("creating an events subscription", e))?;
        let items = notifiers
            .iter()
            .zip(first..)
            .map(|(notifier, handle)| {
                let mut item = MonitoredItemCreateRequest::from(notifier.clone());
                item.item_to_monitor.attribute_id = AttributeId::EventNotifier as u32;
                item.requested_parameters.client_handle = handle;
                item.requested_parameters.sampling_interval = 0.0;
                item.requested_parameters.filter = ExtensionObject::from_message(events::filter());
                item.requested_parameters.queue_size = events::EVENT_QUEUE as u32;
                item.requested_parameters.discard_oldest = true;
                item
            })
            .collect();
        let created = self
            .timed(
                "monitoring events",
                session.create_monitored_items(id, TimestampsToReturn::Neither, items),
            )
            .await;
        let refusal = match &created {
            Ok(Ok(items)) => items
                .iter()
                .zip(&notifiers)
                .find(|(c, _)| c.result.status_code.is_bad())
                .map(|(c, notifier)| (notifier, connection::plain(c.result.status_code))),
            Ok(Err(err)) => Some((&notifiers[0], connection::plain(err.status()))),
            Err(_) => Some((
                &notifiers[0],
                "the server did not answer in time".to_owned(),
            )),
        };
        if let Some((notifier, why)) = refusal {
            let _ = tokio::time::timeout(
                self.shared.settings.timeout,
                session.delete_subscription(id),
            )
            .await;
            return Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!("the server refused to send the events of {notifier}: {why}"),
            });
        }
        let guard = SubscriptionGuard {
            session: session.clone(),
            first_handle: first,
        };
        self.refresh_conditions(&guard).await;
        let live = LiveEvents {
            queue,
            guard,
            shared: Arc::downgrade(&self.shared),
            notifiers,
            refresh: events::Refresh::default(),
            reconnected,
        };
        Ok(futures::stream::unfold(live, |mut live| async move {
            loop {
                let waiting = live.queue.take(events::EVENTS_PER_ITEM);
                if !waiting.is_empty() {
                    // The stream ends when the source is closed.
                    let source = OpcUaSource {
                        shared: live.shared.upgrade()?,
                    };
                    let events = source.live_events(waiting, &mut live).await;
                    if !events.is_empty() {
                        return Some((events, live));
                    }
                    continue;
                }
                let queue = &live.queue;
                let reconnected = &mut live.reconnected;
                let reconnect = async {
                    match reconnected {
                        Some(receiver) => receiver.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = queue.wait() => {}
                    changed = reconnect => {
                        if !changed {
                            // The session is gone with its source: no more reconnects.
                            live.reconnected = None;
                        } else if let Some(shared) = live.shared.upgrade() {
                            OpcUaSource { shared }.refresh_conditions(&live.guard).await;
                        }
                    }
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                if live.shared.strong_count() == 0 {
                    return None;
                }
            }
        })
        .boxed())
    }

    async fn search(&self, search: &TagSearch) -> Result<TagPage, SourceError> {
        search.validate()?;
        let cache = self.cache().await?;
        Ok(search.page(cache.tags.iter().map(|e| &e.tag))?)
    }

    async fn snapshot(&self, tags: &[String]) -> Result<Vec<TagValue>, SourceError> {
        let nodes = self.nodes(tags).await?;
        let session = self.session()?;
        let mut values = Vec::with_capacity(tags.len());
        for batch in nodes.chunks(READ_BATCH) {
            let read: Vec<ReadValueId> = batch
                .iter()
                .map(|(node, _)| ReadValueId::from(node.clone()))
                .collect();
            let answer = self
                .timed(
                    "a snapshot read",
                    session.read(&read, TimestampsToReturn::Both, 0.0),
                )
                .await?
                .map_err(|e| self.server_error("reading current values", e))?;
            if answer.len() != batch.len() {
                return Err(SourceError::Unavailable {
                    source_name: self.shared.name.clone(),
                    message: format!(
                        "the server answered {} of {} values",
                        answer.len(),
                        batch.len()
                    ),
                });
            }
            for (value, (_, units)) in answer.iter().zip(batch) {
                let mut tag_value = values::tag_value(value);
                tag_value.units = units.clone();
                values.push(tag_value);
            }
        }
        Ok(values)
    }

    async fn raw(&self, request: &RawRequest) -> Result<RawStream, SourceError> {
        let node = self.node(&request.tag).await?;
        let source = self.clone();
        let request = request.clone();
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            if let Err(err) = source.read_raw(&node, &request, &sender).await {
                let _ = sender.send(Err(err)).await;
            }
        });
        Ok(
            futures::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            })
            .boxed(),
        )
    }

    async fn processed(
        &self,
        request: &ProcessedRequest,
    ) -> Result<Computed<ProcessedSeriesList>, SourceError> {
        let node = self.node(&request.tag).await?;
        let intervals = request.intervals();
        let mut answers = Vec::with_capacity(request.functions.len());
        let mut raw: Option<Vec<Sample>> = None;
        let mut by = ComputedBy::Source;
        for &function in &request.functions {
            let pushed = match aggregate_of(function) {
                Some(aggregate) => {
                    self.processed_on_server(request, &node, aggregate, intervals.count())
                        .await?
                }
                None => None,
            };
            let samples = match pushed {
                Some(samples) => samples,
                None => {
                    by = ComputedBy::Uplink;
                    if raw.is_none() {
                        raw = Some(
                            self.collect_raw(&request.tag, request.range, Boundary::Outside)
                                .await?,
                        );
                    }
                    aggregate::processed(raw.as_deref().unwrap_or(&[]), &intervals, function)
                }
            };
            answers.push((function, samples));
        }
        Ok(Computed {
            values: answers,
            by,
        })
    }

    async fn at_times(
        &self,
        request: &AtTimesRequest,
    ) -> Result<Computed<Vec<Sample>>, SourceError> {
        let node = self.node(&request.tag).await?;
        let times = request.times_us();
        let details = HistoryReadAction::ReadAtTimeDetails(ReadAtTimeDetails {
            req_times: Some(times.iter().map(|&t| ua_time(t)).collect()),
            use_simple_bounds: true,
        });
        let result = self
            .history_page(details, &node, ByteString::null())
            .await?;
        if !result.status_code.is_bad() {
            let answer: Vec<Sample> = history_values(result).iter().map(values::sample).collect();
            if answer.len() == times.len() {
                return Ok(Computed::by_source(answer));
            }
        } else if !not_offered(result.status_code) {
            return Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!(
                    "the server refused values at times of '{}': {}",
                    request.tag,
                    connection::plain(result.status_code)
                ),
            });
        }
        let (Some(&first), Some(&last)) = (times.iter().min(), times.iter().max()) else {
            return Ok(Computed::by_uplink(Vec::new()));
        };
        let range = uplink_model::TimeRange::new(from_micros(first), from_micros(last))?;
        let samples = self
            .collect_raw(&request.tag, range, Boundary::Outside)
            .await?;
        Ok(Computed::by_uplink(aggregate::at_times(&samples, &times)))
    }

    async fn subscribe(&self, tags: &[String]) -> Result<SnapshotStream, SourceError> {
        let nodes = self.nodes(tags).await?;
        let current = self.snapshot(tags).await?;
        let interval = self.shared.settings.publishing_interval;
        let mut positions: HashMap<NodeId, Vec<usize>> = HashMap::new();
        for (at, (node, _)) in nodes.iter().enumerate() {
            positions.entry(node.clone()).or_default().push(at);
        }
        let units: Vec<Option<String>> = nodes.iter().map(|(_, u)| u.clone()).collect();
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<TagValue>>();
        let state = Arc::new(std::sync::Mutex::new(current.clone()));
        let callback = {
            let state = state.clone();
            DataChangeCallback::new(move |value: DataValue, item: &MonitoredItem| {
                let Some(at) = positions.get(&item.item_to_monitor().node_id) else {
                    return;
                };
                let mut values = state.lock().unwrap_or_else(|p| p.into_inner());
                for &i in at {
                    let mut tag_value = values::tag_value(&value);
                    tag_value.units = units[i].clone();
                    values[i] = tag_value;
                }
                let _ = sender.send(values.clone());
            })
        };
        let session = &self.session()?;
        let id = self
            .timed(
                "creating a subscription",
                session.create_subscription(interval, 30, 10, 0, 0, true, callback),
            )
            .await?
            .map_err(|e| self.server_error("creating a subscription", e))?;
        let count = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
        let first_handle = self.shared.next_handle.fetch_add(count, Ordering::Relaxed);
        let items: Vec<MonitoredItemCreateRequest> = nodes
            .iter()
            .zip(first_handle..)
            .map(|((node, _), handle)| {
                let mut item = MonitoredItemCreateRequest::from(node.clone());
                item.requested_parameters.client_handle = handle;
                item.requested_parameters.sampling_interval = interval.as_secs_f64() * 1_000.0;
                item.requested_parameters.queue_size = 1;
                item
            })
            .collect();
        let created = self
            .timed(
                "creating monitored items",
                session.create_monitored_items(id, TimestampsToReturn::Both, items),
            )
            .await?
            .map_err(|e| self.server_error("creating monitored items", e))?;
        if let Some((bad, tag)) = created
            .iter()
            .zip(tags)
            .find(|(c, _)| c.result.status_code.is_bad())
        {
            let _ = session.delete_subscription(id).await;
            return Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!(
                    "the server refused to monitor '{tag}': {}",
                    connection::plain(bad.result.status_code)
                ),
            });
        }
        let guard = SubscriptionGuard {
            session: session.clone(),
            first_handle,
        };
        let first = futures::stream::once(async move { current });
        let updates =
            futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
                receiver
                    .recv()
                    .await
                    .map(|values| (values, (receiver, guard)))
            });
        Ok(first.chain(updates).boxed())
    }

    async fn write(&self, tag: &str, value: &WriteValue) -> Result<(), SourceError> {
        let node = self.node(tag).await?;
        let session = &self.session()?;
        let read = self
            .timed(
                "reading the tag's type",
                session.read(
                    &[ReadValueId {
                        node_id: node.clone(),
                        attribute_id: AttributeId::DataType as u32,
                        ..Default::default()
                    }],
                    TimestampsToReturn::Neither,
                    0.0,
                ),
            )
            .await?
            .map_err(|e| self.server_error("reading the tag's type", e))?;
        let data_type = read.first().and_then(|v| match &v.value {
            Some(opcua::types::Variant::NodeId(id)) => Some((**id).clone()),
            _ => None,
        });
        let variant = values::to_variant(value, data_type.as_ref()).map_err(|message| {
            SourceError::InvalidSettings(vec![uplink_source::form::FieldError::new(
                "value",
                format!("cannot write to '{tag}': {message}"),
            )])
        })?;
        let codes = self
            .timed(
                "a write",
                session.write(&[opcua::types::WriteValue {
                    node_id: node,
                    attribute_id: AttributeId::Value as u32,
                    index_range: NumericRange::None,
                    value: DataValue::value_only(variant),
                }]),
            )
            .await?
            .map_err(|e| self.server_error("writing", e))?;
        match codes.first() {
            Some(code) if code.is_good() => Ok(()),
            Some(code) => Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!(
                    "the server refused the write to '{tag}': {}",
                    connection::plain(*code)
                ),
            }),
            None => Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: "the server answered the write with no result".into(),
            }),
        }
    }
}

impl OpcUaSource {
    /// Streams a raw read to `sender` page by page; returns early when the reader has gone.
    /// Bounding values (`Boundary::Outside`) are read separately, one value before and one
    /// after, so they come whether or not the server honours `returnBounds`.
    async fn read_raw(
        &self,
        node: &NodeId,
        request: &RawRequest,
        sender: &tokio::sync::mpsc::Sender<Result<Vec<Sample>, SourceError>>,
    ) -> Result<(), SourceError> {
        let (start, end) = (request.range.start_us(), request.range.end_us());
        let outside = request.boundary == Boundary::Outside;
        let mut remaining = request.max_count.unwrap_or(u64::MAX);
        let mut pending = Vec::new();
        if outside {
            // Reading backwards (start after end) from just before the start gives the last
            // value before it.
            pending.extend(self.one_value(node, start - 1, 0, &request.tag).await?);
            remaining = remaining.saturating_sub(pending.len() as u64);
        }
        let mut from = start;
        let mut continuation = ByteString::null();
        let mut last_time = None;
        while remaining > 0 {
            let page = remaining.min(HISTORY_PAGE) as u32;
            let details = HistoryReadAction::ReadRawModifiedDetails(ReadRawModifiedDetails {
                is_read_modified: false,
                start_time: ua_time(from),
                end_time: ua_time(end),
                num_values_per_node: page,
                return_bounds: false,
            });
            let result = self.history_page(details, node, continuation).await?;
            self.check_history(&result, &request.tag, "the history read")?;
            continuation = result.continuation_point.clone();
            let mut samples: Vec<Sample> =
                history_values(result).iter().map(values::sample).collect();
            let full = samples.len() as u64 >= u64::from(page);
            samples.truncate(remaining.min(usize::MAX as u64) as usize);
            remaining -= samples.len() as u64;
            if let Some(last) = samples.last() {
                last_time = Some(last.time_us);
            }
            pending.extend(samples);
            if !pending.is_empty() && sender.send(Ok(std::mem::take(&mut pending))).await.is_err() {
                self.release(node, continuation).await;
                return Ok(());
            }
            if continuation.is_null_or_empty() {
                // Some servers stop at the page size without a continuation point: go on from
                // just after the last value until a page comes back short.
                match last_time {
                    Some(last) if full && last < end => from = last + 1,
                    _ => break,
                }
            }
        }
        if remaining == 0 {
            self.release(node, continuation).await;
            return Ok(());
        }
        if outside && last_time != Some(end) {
            const TEN_YEARS_US: i64 = 10 * 366 * 86_400 * 1_000_000;
            pending.extend(
                self.one_value(
                    node,
                    end + 1,
                    end.saturating_add(TEN_YEARS_US),
                    &request.tag,
                )
                .await?,
            );
        }
        if !pending.is_empty() {
            let _ = sender.send(Ok(pending)).await;
        }
        Ok(())
    }

    /// The first stored value from `from` towards `to` (backwards when `to` is earlier).
    async fn one_value(
        &self,
        node: &NodeId,
        from: i64,
        to: i64,
        tag: &str,
    ) -> Result<Option<Sample>, SourceError> {
        let details = HistoryReadAction::ReadRawModifiedDetails(ReadRawModifiedDetails {
            is_read_modified: false,
            start_time: ua_time(from),
            end_time: ua_time(to),
            num_values_per_node: 1,
            return_bounds: false,
        });
        let result = self.history_page(details, node, ByteString::null()).await?;
        self.check_history(&result, tag, "a bounding value")?;
        let continuation = result.continuation_point.clone();
        let value = history_values(result).first().map(values::sample);
        self.release(node, continuation).await;
        Ok(value)
    }

    /// A history result the server refused, as an error; "no data" is not an error.
    fn check_history(
        &self,
        result: &HistoryReadResult,
        tag: &str,
        what: &str,
    ) -> Result<(), SourceError> {
        if result.status_code.is_bad() && result.status_code.sub_code().name() != "BadNoData" {
            return Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!(
                    "the server refused {what} of '{tag}': {}",
                    connection::plain(result.status_code)
                ),
            });
        }
        Ok(())
    }

    /// One function over the intervals from HistoryRead processed; `None` when the server does
    /// not offer it.
    async fn processed_on_server(
        &self,
        request: &ProcessedRequest,
        node: &NodeId,
        aggregate: opcua::types::ObjectId,
        intervals: usize,
    ) -> Result<Option<Vec<Sample>>, SourceError> {
        let mut continuation = ByteString::null();
        let mut samples = Vec::with_capacity(intervals);
        loop {
            let details = HistoryReadAction::ReadProcessedDetails(ReadProcessedDetails {
                start_time: ua_time(request.range.start_us()),
                end_time: ua_time(request.range.end_us()),
                processing_interval: request.interval.as_micros() as f64 / 1_000.0,
                aggregate_type: Some(vec![aggregate.into()]),
                aggregate_configuration: opcua::types::AggregateConfiguration {
                    use_server_capabilities_defaults: true,
                    ..Default::default()
                },
            });
            let result = self.history_page(details, node, continuation).await?;
            if result.status_code.is_bad() {
                if not_offered(result.status_code) {
                    return Ok(None);
                }
                return Err(SourceError::Unavailable {
                    source_name: self.shared.name.clone(),
                    message: format!(
                        "the server refused a processed read of '{}': {}",
                        request.tag,
                        connection::plain(result.status_code)
                    ),
                });
            }
            continuation = result.continuation_point.clone();
            samples.extend(history_values(result).iter().map(values::sample));
            if continuation.is_null_or_empty() || samples.len() >= intervals {
                break;
            }
        }
        Ok(Some(samples))
    }

    async fn release(&self, node: &NodeId, continuation: ByteString) {
        let details = HistoryReadAction::ReadRawModifiedDetails(ReadRawModifiedDetails::default());
        self.release_with(details, node, continuation).await;
    }

    /// Frees a continuation point the read did not follow to its end.
    async fn release_with(
        &self,
        details: HistoryReadAction,
        node: &NodeId,
        continuation: ByteString,
    ) {
        if continuation.is_null_or_empty() {
            return;
        }
        let request = HistoryReadValueId {
            node_id: node.clone(),
            index_range: NumericRange::None,
            data_encoding: QualifiedName::null(),
            continuation_point: continuation,
        };
        let Ok(session) = self.session() else { return };
        let _ = tokio::time::timeout(
            self.shared.settings.timeout,
            session.history_read(details, TimestampsToReturn::Source, true, &[request]),
        )
        .await;
    }
}

/// The subscription holding the monitored item with `handle`, by its current id (a reconnect
/// may have re-created it under another).
fn subscription_with(session: &opcua::client::Session, handle: u32) -> Option<u32> {
    let state = session.subscription_state.lock();
    state.subscription_ids()?.into_iter().find(|&id| {
        state
            .get(id)
            .is_some_and(|s| s.monitored_items().any(|m| m.client_handle() == handle))
    })
}

/// Deletes the subscription when the stream is dropped.
struct SubscriptionGuard {
    session: Arc<opcua::client::Session>,
    first_handle: u32,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        let session = self.session.clone();
        let Some(id) = subscription_with(&session, self.first_handle) else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), session.delete_subscription(id))
                        .await;
            });
        }
    }
}

/// One live events stream: its queue, its subscription, and where a refresh stands.
struct LiveEvents {
    queue: Arc<events::EventQueue>,
    guard: SubscriptionGuard,
    shared: std::sync::Weak<Shared>,
    notifiers: Vec<NodeId>,
    refresh: events::Refresh,
    /// Wakes the stream after a reconnect (absent once the session is gone).
    reconnected: Option<tokio::sync::watch::Receiver<u64>>,
}

/// The refusal of a time-range events read on a server without event history.
fn no_event_history(source_name: &str) -> SourceError {
    SourceError::Unsupported {
        source_name: source_name.to_owned(),
        what: "alarm and event history (the server keeps none for the source's event notifier; live events come through the events stream)",
    }
}

impl OpcUaSource {
    /// Events that events streams dropped because their reader fell more than
    /// [`events::EVENT_QUEUE`] events behind.
    pub fn events_lost(&self) -> u64 {
        self.shared.events_lost.load(Ordering::Relaxed)
    }

    /// The objects whose events are read, or `unsupported` when events are off.
    fn event_notifiers(&self) -> Result<Vec<NodeId>, SourceError> {
        let notifiers = self.shared.settings.event_notifiers.clone();
        if notifiers.is_empty() {
            return Err(SourceError::Unsupported {
                source_name: self.shared.name.clone(),
                what: "alarms and events (turned off in the source's settings)",
            });
        }
        Ok(notifiers)
    }

    /// One notifier's events through `walk`'s HistoryRead pages.
    async fn event_history(
        &self,
        mut walk: events::Walk,
        notifier: &NodeId,
    ) -> Result<EventPage, SourceError> {
        if walk.is_past_the_end() {
            return Ok(walk.finish());
        }
        let filter = events::filter();
        let mut continuation = ByteString::null();
        loop {
            let asked = walk.request_size();
            let details = HistoryReadAction::ReadEventDetails(ReadEventDetails {
                num_values_per_node: asked,
                start_time: ua_time(walk.start_us()),
                end_time: ua_time(walk.end_us()),
                filter: filter.clone(),
            });
            let result = self
                .history_page(details.clone(), notifier, continuation)
                .await?;
            let code = result.status_code;
            if code.is_bad() && code.sub_code().name() != "BadNoData" {
                if not_offered(code) {
                    return Err(no_event_history(&self.shared.name));
                }
                return Err(SourceError::Unavailable {
                    source_name: self.shared.name.clone(),
                    message: format!(
                        "the server refused the event history of {notifier}: {}",
                        connection::plain(code)
                    ),
                });
            }
            continuation = result.continuation_point.clone();
            let fields: Vec<Vec<Variant>> = result
                .history_data
                .into_inner_as::<HistoryEvent>()
                .and_then(|history| history.events)
                .unwrap_or_default()
                .into_iter()
                .map(|list| list.event_fields.unwrap_or_default())
                .collect();
            let page = self.to_events(fields, notifier).await;
            match walk.take(page, asked, !continuation.is_null_or_empty()) {
                events::Next::Continue => {}
                events::Next::ReadAgain => continuation = ByteString::null(),
                events::Next::Done => {
                    self.release_with(details, notifier, continuation).await;
                    break;
                }
            }
        }
        Ok(walk.finish())
    }

    /// Calls ConditionRefresh on the stream's subscription, so that the conditions already
    /// active are sent again. A server without it (or refusing it) leaves the stream as it is:
    /// the conditions show when they next change.
    async fn refresh_conditions(&self, guard: &SubscriptionGuard) {
        let Some(id) = subscription_with(&guard.session, guard.first_handle) else {
            tracing::debug!(source = %self.shared.name, "no events subscription to refresh");
            return;
        };
        let call = CallMethodRequest::from((
            NodeId::from(ObjectTypeId::ConditionType),
            NodeId::from(MethodId::ConditionType_ConditionRefresh),
            Some(vec![Variant::UInt32(id)]),
        ));
        let answer = self
            .timed("ConditionRefresh", guard.session.call_one(call))
            .await;
        let refused = match answer {
            Ok(Ok(result)) if result.status_code.is_good() => None,
            Ok(Ok(result)) => Some(result.status_code),
            Ok(Err(err)) => Some(err.status()),
            Err(_) => Some(opcua::types::StatusCode::BadTimeout),
        };
        *self
            .shared
            .refresh_refused
            .lock()
            .unwrap_or_else(|p| p.into_inner()) =
            refused.map(|code| code.sub_code().name().to_owned());
        match refused {
            None => {
                tracing::debug!(source = %self.shared.name, subscription = id, "conditions refreshed");
            }
            Some(code) => tracing::warn!(
                source = %self.shared.name,
                subscription = id,
                status = code.sub_code().name(),
                "the OPC UA server refused ConditionRefresh: alarms already active show only when they next change"
            ),
        }
    }

    /// A live stream's waiting events as Uplink's events: refresh markers taken out, the events
    /// between them marked `refresh`, an event two notifiers reported kept once. A server
    /// asking for a refresh gets one.
    async fn live_events(
        &self,
        waiting: Vec<(usize, Vec<Variant>)>,
        live: &mut LiveEvents,
    ) -> Vec<EventMessage> {
        let now = chrono::Utc::now();
        let mut mapped = Vec::with_capacity(waiting.len());
        let mut refresh_asked = false;
        for (index, fields) in waiting {
            let kind = events::kind(&fields);
            refresh_asked |= kind == events::Kind::RefreshRequired;
            if !live.refresh.take(kind) {
                continue;
            }
            let notifier = live.notifiers.get(index).unwrap_or(&live.notifiers[0]);
            let mut event = self.to_event(&fields, notifier, now).await;
            if !live.refresh.first_time(&event.id) {
                continue;
            }
            if live.refresh.refreshing() {
                event.properties.insert("refresh".into(), "true".into());
            }
            mapped.push(event);
        }
        if refresh_asked {
            tracing::info!(source = %self.shared.name, "the OPC UA server asked for a condition refresh");
            self.refresh_conditions(&live.guard).await;
        }
        mapped
    }

    /// Refuses with `unsupported` unless the notifier's EventNotifier attribute says it keeps
    /// its events' history.
    async fn check_event_history(&self, notifier: &NodeId) -> Result<(), SourceError> {
        let session = self.session()?;
        let read = self
            .timed(
                "reading the event notifier",
                session.read(
                    &[ReadValueId {
                        node_id: notifier.clone(),
                        attribute_id: AttributeId::EventNotifier as u32,
                        ..Default::default()
                    }],
                    TimestampsToReturn::Neither,
                    0.0,
                ),
            )
            .await?
            .map_err(|e| self.server_error("reading the event notifier", e))?;
        let value = read.into_iter().next().unwrap_or_default();
        match value.value {
            Some(Variant::Byte(bits)) if bits & HISTORY_READ_BIT != 0 => Ok(()),
            Some(Variant::Byte(_)) => Err(no_event_history(&self.shared.name)),
            _ => Err(SourceError::Unavailable {
                source_name: self.shared.name.clone(),
                message: format!(
                    "the event notifier {notifier} is not an object that reports events ({})",
                    value.status.map_or_else(
                        || "no EventNotifier attribute".to_owned(),
                        connection::plain
                    )
                ),
            }),
        }
    }

    /// Events' fields as Uplink's events, their types named.
    async fn to_events(&self, waiting: Vec<Vec<Variant>>, notifier: &NodeId) -> Vec<EventMessage> {
        let now = chrono::Utc::now();
        let mut mapped = Vec::with_capacity(waiting.len());
        for fields in waiting {
            mapped.push(self.to_event(&fields, notifier, now).await);
        }
        mapped
    }

    /// One event's fields as Uplink's event, its type named.
    async fn to_event(
        &self,
        fields: &[Variant],
        notifier: &NodeId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> EventMessage {
        let type_name = match events::event_type(fields) {
            Some(id) => self.event_type_name(&id).await,
            None => "BaseEventType".to_owned(),
        };
        events::to_event(fields, &self.shared.name, &type_name, notifier, now)
    }

    /// The browse name of an event type: OPC UA's own by their ids, others read once from the
    /// server (their node id when it does not answer).
    async fn event_type_name(&self, id: &NodeId) -> String {
        if let Some(name) = events::standard_type_name(id) {
            return name;
        }
        if let Some(name) = self
            .shared
            .event_type_names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return name.clone();
        }
        let Ok(session) = self.session() else {
            return id.to_string();
        };
        let read = self
            .timed(
                "reading an event type's name",
                session.read(
                    &[ReadValueId {
                        node_id: id.clone(),
                        attribute_id: AttributeId::BrowseName as u32,
                        ..Default::default()
                    }],
                    TimestampsToReturn::Neither,
                    0.0,
                ),
            )
            .await;
        let name = match read {
            Ok(Ok(values)) => match values.into_iter().next().and_then(|v| v.value) {
                Some(Variant::QualifiedName(name)) => name.name.value().clone(),
                _ => None,
            },
            _ => return id.to_string(),
        };
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| id.to_string());
        let mut names = self
            .shared
            .event_type_names
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if names.len() < MAX_TYPE_NAMES {
            names.insert(id.clone(), name.clone());
        }
        name
    }

    /// How many subscriptions the session holds (one per live `subscribe` stream).
    pub fn subscription_count(&self) -> usize {
        self.connection().map_or(0, |c| {
            let all = c.session.subscription_state.lock().len();
            all - usize::from(subscription_with(&c.session, MODEL_HANDLE).is_some())
        })
    }

    /// Subscribes to the server's model change events (on the Server object): any of them
    /// marks the tag list stale. A server without events is browsed on demand only.
    async fn watch_model_changes(&self) {
        let Ok(session) = self.session() else { return };
        let stale = self.shared.model_changed.clone();
        let callback =
            EventCallback::new(move |fields: Option<Vec<Variant>>, _: &MonitoredItem| {
                let model_change =
                    fields
                        .as_ref()
                        .and_then(|f| f.first())
                        .is_some_and(|v| match v {
                            Variant::NodeId(id) => is_model_change(id),
                            _ => false,
                        });
                if model_change {
                    stale.store(true, Ordering::Relaxed);
                }
            });
        let interval = self.shared.settings.publishing_interval;
        let created = self
            .timed(
                "watching model changes",
                session.create_subscription(interval, 30, 10, 0, 0, true, callback),
            )
            .await;
        let Ok(Ok(id)) = created else {
            tracing::debug!(source = %self.shared.name, "the server did not create a subscription for model change events");
            return;
        };
        let filter = EventFilter {
            select_clauses: Some(vec![SimpleAttributeOperand {
                type_definition_id: ObjectTypeId::BaseEventType.into(),
                browse_path: Some(vec![QualifiedName::new(0, "EventType")]),
                attribute_id: AttributeId::Value as u32,
                index_range: NumericRange::None,
            }]),
            where_clause: ContentFilter::default(),
        };
        let mut item = MonitoredItemCreateRequest::from(NodeId::from(ObjectId::Server));
        item.item_to_monitor.attribute_id = AttributeId::EventNotifier as u32;
        item.requested_parameters.client_handle = MODEL_HANDLE;
        item.requested_parameters.filter = ExtensionObject::from_message(filter);
        item.requested_parameters.queue_size = 10;
        let answer = self
            .timed(
                "watching model changes",
                session.create_monitored_items(id, TimestampsToReturn::Neither, vec![item]),
            )
            .await;
        let ok = matches!(&answer, Ok(Ok(created)) if created.iter().all(|c| c.result.status_code.is_good()));
        if !ok {
            tracing::debug!(source = %self.shared.name, "the server does not send model change events; tags are browsed on demand");
            let _ = tokio::time::timeout(
                self.shared.settings.timeout,
                session.delete_subscription(id),
            )
            .await;
        }
    }
}
