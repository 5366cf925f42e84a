//! [`LocalRouter`]: the connector router of a single hub node — a map of this node's live
//! links, each query sent down its connector's link and its answer streamed back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use uplink_link::{RelayedQuery, SubscribeRequest, WriteAnswer, WriteRequest, to_connector};
use uplink_model::DataSourceDescriptor;
use uplink_signalr::Transport;
use uplink_signalr::server::ConnectionHandle;

use super::answer::{ANSWER_BUFFER, Answer, Cancel, Item, QuerySlot};
use super::identity::LinkIdentity;
use super::session::{LinkRegistration, LinkSession};
use crate::live::{Live, LiveEnd, LiveHandle};
use crate::relay::{ConnectorRouter, RelayError, RelayStream};
use crate::store::Store;

/// A live link as operators and status pages see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    /// The connector's id.
    pub connector_id: String,
    /// Its display name.
    pub name: String,
    /// Its software, as announced.
    pub software: String,
    /// The transport the link uses.
    pub transport: Option<Transport>,
    /// When the link connected.
    pub connected_since: DateTime<Utc>,
    /// The data sources it announced.
    pub sources: Vec<DataSourceDescriptor>,
    /// Queries running on it now.
    pub running_queries: usize,
}

/// The in-process [`ConnectorRouter`]: relays to connectors linked to this hub node.
///
/// A connector with no registered link is offline; one that links again replaces its older
/// link, whose running queries end with [`RelayError::LinkLost`].
pub struct LocalRouter {
    store: Arc<dyn Store>,
    query_timeout: Duration,
    max_answer_bytes: Option<u64>,
    /// Every connection on the link endpoint, by SignalR connection id.
    sessions: Mutex<HashMap<String, Arc<LinkSession>>>,
    /// The registered link of each connector, by connector id.
    links: Mutex<HashMap<String, Arc<LinkSession>>>,
    next_query: AtomicU64,
    /// The live-value and events subscriptions, one per (connector, app, source, kind, tags).
    live: Arc<Mutex<HashMap<LiveKey, Arc<Live>>>>,
    /// How long a subscription no app stream uses stays, so a reconnect can resume it.
    linger: Duration,
    /// Told when a connector's link starts or stops being held here (a backplane follows).
    link_events: OnceLock<mpsc::UnboundedSender<LinkEvent>>,
}

/// A connector's link starting or stopping being held by this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The connector's registered link is here now, connected since `since`.
    Held {
        /// The connector.
        connector_id: String,
        /// When the link connected (the newest link of a connector wins).
        since: DateTime<Utc>,
    },
    /// The connector's link here ended.
    Released {
        /// The connector.
        connector_id: String,
    },
}

/// What one connector subscription is shared by: connector, app, source, what it streams and
/// its tags.
type LiveKey = (
    String,
    String,
    String,
    uplink_link::SubscriptionKind,
    Vec<String>,
);

/// How long a subscription outlives its last app stream by default.
pub const LINGER: Duration = Duration::from_secs(30);

impl std::fmt::Debug for LocalRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRouter")
            .field("links", &lock(&self.links).len())
            .field("query_timeout", &self.query_timeout)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalRouter {
    /// A router with no links. `query_timeout` bounds the wait for a query's first chunk and
    /// between chunks; `max_answer_bytes` is the operator's limit on one answer, if any.
    pub fn new(
        store: Arc<dyn Store>,
        query_timeout: Duration,
        max_answer_bytes: Option<u64>,
    ) -> Self {
        Self {
            store,
            query_timeout,
            max_answer_bytes,
            sessions: Mutex::default(),
            links: Mutex::default(),
            next_query: AtomicU64::new(0),
            live: Arc::default(),
            linger: LINGER,
            link_events: OnceLock::new(),
        }
    }

    /// The links held here from now on, as events (one follower only: later calls get
    /// `None`).
    pub fn follow_links(&self) -> Option<mpsc::UnboundedReceiver<LinkEvent>> {
        let (sender, events) = mpsc::unbounded_channel();
        self.link_events.set(sender).ok()?;
        Some(events)
    }

    fn tell(&self, event: LinkEvent) {
        if let Some(events) = self.link_events.get() {
            let _ = events.send(event);
        }
    }

    /// The connectors whose registered link is held here, with when each connected.
    pub fn held(&self) -> Vec<(String, DateTime<Utc>)> {
        lock(&self.links)
            .iter()
            .map(|(id, session)| (id.clone(), session.connected_at))
            .collect()
    }

    /// When `connector_id`'s link held here connected, if one is.
    pub fn held_since(&self, connector_id: &str) -> Option<DateTime<Utc>> {
        lock(&self.links)
            .get(connector_id)
            .map(|session| session.connected_at)
    }

    /// Ends this node's link of `connector_id` when it connected before `newer` (a newer link
    /// of the same connector is up elsewhere); true when one was ended.
    pub fn evict_older(&self, connector_id: &str, newer: DateTime<Utc>) -> bool {
        let older = {
            let mut links = lock(&self.links);
            match links.get(connector_id) {
                Some(session) if session.connected_at < newer => links.remove(connector_id),
                _ => None,
            }
        };
        let Some(older) = older else {
            return false;
        };
        tracing::info!(connector = %connector_id, "a newer link on another hub replica replaces the connector's link here");
        older.end("the link was replaced by a newer one");
        older
            .connection
            .close(Some(uplink_link::close_reason::REPLACED.into()));
        lock(&self.sessions).remove(older.connection.id());
        self.tell(LinkEvent::Released {
            connector_id: connector_id.to_owned(),
        });
        true
    }

    /// Sets how long a subscription outlives its last app stream.
    pub fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// The connector subscriptions open now, and the values the hub holds for them (one per
    /// tag at most, whatever the apps' pace).
    pub fn live_subscriptions(&self) -> (usize, usize) {
        let live = lock(&self.live);
        (live.len(), live.values().map(|l| l.held_values()).sum())
    }

    /// The operator's limit on one answer's size.
    pub fn max_answer_bytes(&self) -> Option<u64> {
        self.max_answer_bytes
    }

    /// Every registered link, ordered by connector name.
    pub fn links(&self) -> Vec<LinkStatus> {
        let sessions: Vec<Arc<LinkSession>> = lock(&self.links).values().cloned().collect();
        let mut all: Vec<LinkStatus> = sessions
            .iter()
            .filter_map(|s| {
                let registration = s.registration()?;
                Some(LinkStatus {
                    connector_id: registration.connector.id.clone(),
                    name: registration.connector.name.clone(),
                    software: registration.software.clone(),
                    transport: s.connection.transport(),
                    connected_since: s.connected_at,
                    sources: registration.sources.clone(),
                    running_queries: s.running_queries(),
                })
            })
            .collect();
        all.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then(a.connector_id.cmp(&b.connector_id))
        });
        all
    }

    /// The session of `connection`, made on first use; `true` when it is new.
    pub(crate) fn session_for(
        &self,
        connection: &ConnectionHandle,
    ) -> Result<(Arc<LinkSession>, bool), String> {
        let mut sessions = lock(&self.sessions);
        if let Some(session) = sessions.get(connection.id()) {
            return Ok((session.clone(), false));
        }
        if !connection.is_connected() {
            return Err("the link has closed".into());
        }
        let identity = LinkIdentity::of(connection.identity())
            .ok_or_else(|| "the link was opened without a connector token".to_owned())?;
        let session = Arc::new(LinkSession::new(connection.clone(), identity));
        sessions.insert(connection.id().to_owned(), session.clone());
        Ok((session, true))
    }

    /// The session of a connection, if it has one.
    pub(crate) fn session(&self, connection_id: &str) -> Option<Arc<LinkSession>> {
        lock(&self.sessions).get(connection_id).cloned()
    }

    /// Makes `session` the link of its registered connector; an older link of the same
    /// connector is ended and closed (the newest link wins).
    pub(crate) fn install(&self, session: &Arc<LinkSession>, registration: LinkRegistration) {
        let connector_id = registration.connector.id.clone();
        session.set_registration(registration);
        let older = lock(&self.links).insert(connector_id.clone(), session.clone());
        self.tell(LinkEvent::Held {
            connector_id: connector_id.clone(),
            since: session.connected_at,
        });
        if let Some(older) = older.filter(|o| !Arc::ptr_eq(o, session)) {
            tracing::info!(connector = %connector_id, "a newer link replaces the connector's older one");
            older.end("the link was replaced by a newer one");
            older
                .connection
                .close(Some(uplink_link::close_reason::REPLACED.into()));
            lock(&self.sessions).remove(older.connection.id());
        }
    }

    /// Forgets a session whose connection ended; its queries end with `LinkLost`.
    pub(crate) fn detach(&self, session: &Arc<LinkSession>) {
        lock(&self.sessions).remove(session.connection.id());
        if let Some(registration) = session.registration() {
            let mut links = lock(&self.links);
            if links
                .get(&registration.connector.id)
                .is_some_and(|current| Arc::ptr_eq(current, session))
            {
                links.remove(&registration.connector.id);
                self.tell(LinkEvent::Released {
                    connector_id: registration.connector.id.clone(),
                });
            }
        }
        session.end("the link closed");
    }

    fn live(&self, connector_id: &str) -> Option<Arc<LinkSession>> {
        lock(&self.links)
            .get(connector_id)
            .filter(|s| s.connection.is_connected())
            .cloned()
    }

    /// The error for a connector with no link, naming it.
    pub(crate) async fn offline(&self, connector_id: &str) -> RelayError {
        let name = match self.store.connector(connector_id).await {
            Ok(Some(connector)) => connector.name,
            _ => connector_id.to_owned(),
        };
        RelayError::Offline { connector: name }
    }

    /// How long a query may go without its first chunk, and between chunks.
    pub fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    fn timeout(&self) -> RelayError {
        RelayError::Timeout {
            seconds: self.query_timeout.as_secs(),
        }
    }
}

#[async_trait]
impl ConnectorRouter for LocalRouter {
    /// Sends `query` down the connector's link under a query id of the router's own (whatever
    /// `query.query_id` held is replaced) and waits for its first chunk or end.
    async fn relay(
        &self,
        connector_id: &str,
        mut query: RelayedQuery,
    ) -> Result<RelayStream, RelayError> {
        let Some(session) = self.live(connector_id) else {
            return Err(self.offline(connector_id).await);
        };
        let query_id = format!("q{}", self.next_query.fetch_add(1, Ordering::Relaxed));
        query.query_id.clone_from(&query_id);
        let (sender, mut items) = mpsc::channel(ANSWER_BUFFER);
        let slot = QuerySlot::new(sender);
        let mut cancel = Cancel::new(
            Arc::downgrade(&session),
            query_id.clone(),
            slot.turn.clone(),
        );
        session.add_query(query_id.clone(), slot);
        if let Err(e) = session.connection.send(to_connector::QUERY, (&query,)) {
            tracing::debug!(connector = connector_id, error = %e, "query not sent");
            cancel.disarm();
            session.take_query(&query_id);
            return Err(self.offline(connector_id).await);
        }
        drop(session);
        let deadline = tokio::time::Instant::now() + self.query_timeout;
        let mut info = uplink_link::QueryInfo::default();
        let first = loop {
            match tokio::time::timeout_at(deadline, items.recv()).await {
                Err(_) => {
                    cancel.fire("the connector did not answer in time");
                    return Err(self.timeout());
                }
                Ok(None) => {
                    cancel.disarm();
                    return Err(RelayError::LinkLost);
                }
                Ok(Some(Item::Failed(error))) => {
                    cancel.disarm();
                    return Err(error);
                }
                Ok(Some(Item::Info(said))) => info = said,
                Ok(Some(Item::End)) => {
                    cancel.disarm();
                    return Ok(RelayStream::new(futures::stream::empty().boxed())
                        .computed_by(info.computed_by));
                }
                Ok(Some(Item::Chunk(first))) => break first,
            }
        };
        let answer = Answer::new(first, items, cancel, self.query_timeout);
        Ok(RelayStream::new(answer.boxed()).computed_by(info.computed_by))
    }

    async fn subscribe(
        &self,
        connector_id: &str,
        mut request: SubscribeRequest,
    ) -> Result<LiveHandle, RelayError> {
        let Some(session) = self.live(connector_id) else {
            return Err(self.offline(connector_id).await);
        };
        let key: LiveKey = (
            connector_id.to_owned(),
            request.app_id.clone(),
            request.source.clone(),
            request.kind,
            request.tags.clone(),
        );
        let handle = {
            let mut live = lock(&self.live);
            match live.get(&key).filter(|l| l.ended().is_none()) {
                Some(shared) => shared.join(),
                None => {
                    let id = format!("s{}", self.next_query.fetch_add(1, Ordering::Relaxed));
                    request.subscription_id.clone_from(&id);
                    let shared = Live::new(request.tags.clone());
                    let handle = shared.join();
                    live.insert(key.clone(), shared.clone());
                    session.add_subscription(id.clone(), shared.clone());
                    if let Err(e) = session.connection.send(to_connector::SUBSCRIBE, (&request,)) {
                        tracing::debug!(connector = connector_id, error = %e, "subscribe not sent");
                        live.remove(&key);
                        session.take_subscription(&id);
                        shared.end(LiveEnd::Offline);
                    } else {
                        tokio::spawn(keep(
                            shared,
                            Arc::downgrade(&self.live),
                            key,
                            Arc::downgrade(&session),
                            id,
                            self.linger,
                        ));
                    }
                    handle
                }
            }
        };
        drop(session);
        match tokio::time::timeout(self.query_timeout, handle.first()).await {
            Err(_) => Err(self.timeout()),
            Ok(Ok(())) => Ok(handle),
            Ok(Err(end)) => Err(refusal_of(end)),
        }
    }

    /// Invokes `Write` on the connector's link with a client result, under a write id of the
    /// router's own, bounded by the query timeout.
    async fn write(
        &self,
        connector_id: &str,
        mut request: WriteRequest,
    ) -> Result<WriteAnswer, RelayError> {
        let Some(session) = self.live(connector_id) else {
            return Err(self.offline(connector_id).await);
        };
        request.write_id = format!("w{}", self.next_query.fetch_add(1, Ordering::Relaxed));
        let connection = session.connection.clone();
        drop(session);
        let invoked = tokio::time::timeout(
            self.query_timeout,
            connection.invoke::<_, WriteAnswer>(to_connector::WRITE, (&request,)),
        )
        .await;
        match invoked {
            Err(_) | Ok(Err(uplink_signalr::Error::Timeout { .. })) => Err(self.timeout()),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(uplink_signalr::Error::Invocation(message))) => Err(RelayError::Connector {
                code: uplink_link::failure::SOURCE_ERROR.to_owned(),
                message: format!("the connector could not apply the write: {message}"),
            }),
            Ok(Err(error)) => {
                tracing::debug!(connector = connector_id, %error, "write not answered");
                Err(RelayError::LinkLost)
            }
        }
    }

    fn is_online(&self, connector_id: &str) -> bool {
        self.live(connector_id)
            .is_some_and(|s| s.registration().is_some())
    }

    fn describe(&self, connector_id: &str) -> Option<Vec<DataSourceDescriptor>> {
        self.live(connector_id)?
            .registration()
            .map(|r| r.sources.clone())
    }
}

/// The error a subscription that ended before its first values answers with.
pub(crate) fn refusal_of(end: LiveEnd) -> RelayError {
    match end {
        LiveEnd::Offline | LiveEnd::Closed => RelayError::LinkLost,
        LiveEnd::Blocked(message) => RelayError::Connector {
            code: uplink_link::failure::VETOED.to_owned(),
            message,
        },
        LiveEnd::Removed(message) => RelayError::Connector {
            code: uplink_link::failure::UNKNOWN_SOURCE.to_owned(),
            message,
        },
        LiveEnd::Revoked(_) => RelayError::Revoked,
        LiveEnd::Failed(code, message) => RelayError::Connector { code, message },
    }
}

/// Keeps one subscription: when no app stream has used it for `linger`, it is ended on the
/// connector (`Unsubscribe`); once ended for any reason it leaves the router and its link.
async fn keep(
    live: Arc<Live>,
    all: std::sync::Weak<Mutex<HashMap<LiveKey, Arc<Live>>>>,
    key: LiveKey,
    session: std::sync::Weak<LinkSession>,
    id: String,
    linger: Duration,
) {
    let mut changes = live.changes();
    let mut idle_since: Option<tokio::time::Instant> = None;
    loop {
        if live.ended().is_some() {
            break;
        }
        if live.subscribers() > 0 {
            idle_since = None;
            tokio::select! {
                () = live.idle.notified() => {}
                changed = changes.changed() => if changed.is_err() { break },
            }
            continue;
        }
        let deadline = *idle_since.get_or_insert_with(tokio::time::Instant::now) + linger;
        if tokio::time::Instant::now() >= deadline {
            // Under the router's lock, so no app stream joins what is ending.
            let guard = all.upgrade();
            let _held = guard.as_ref().map(|all| lock(all));
            if live.subscribers() == 0 {
                live.end(LiveEnd::Closed);
                if let Some(session) = session.upgrade() {
                    let _ = session.connection.send(
                        to_connector::UNSUBSCRIBE,
                        (id.as_str(), "no app reads this subscription any more"),
                    );
                }
            }
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = live.idle.notified() => {}
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    if let Some(all) = all.upgrade() {
        let mut all = lock(&all);
        if all.get(&key).is_some_and(|l| Arc::ptr_eq(l, &live)) {
            all.remove(&key);
        }
    }
    if let Some(session) = session.upgrade() {
        session.take_subscription(&id);
    }
}
