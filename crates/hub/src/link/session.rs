//! One link connection: who opened it, what it registered, its running queries, and the task
//! that closes it when its token expires unrenewed and pushes grant changes to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};
use uplink_link::{Grant, GrantList, RevokedApp, close_reason, to_connector};
use uplink_model::DataSourceDescriptor;
use uplink_signalr::server::ConnectionHandle;

use super::answer::{Item, QuerySlot};
use super::identity::{LinkCredential, LinkIdentity};
use crate::hub::Hub;
use crate::live::{Live, LiveEnd};
use crate::relay::RelayError;
use crate::revocation::Revocation;
use crate::store::Connector;

/// What a link registered as.
#[derive(Debug, Clone)]
pub struct LinkRegistration {
    /// The connector, as stored.
    pub connector: Connector,
    /// Its software, as announced.
    pub software: String,
    /// Its data sources, as announced.
    pub sources: Vec<DataSourceDescriptor>,
}

/// One connection on the link endpoint: a connector's link session (the browser's login
/// session is [`crate::store::LoginSession`]).
#[derive(Debug)]
pub struct LinkSession {
    /// The SignalR connection.
    pub connection: ConnectionHandle,
    /// Who opened it (shared with the connection).
    pub identity: Arc<LinkIdentity>,
    /// When it connected.
    pub connected_at: DateTime<Utc>,
    /// When its token expires (Unix seconds); renewals move it.
    expires_at: AtomicI64,
    closed: AtomicBool,
    /// Wakes the session's watcher when the deadline moves or the session ends. An atomic and
    /// one notifier per link, rather than two watch channels of eight notifiers each.
    changed: Notify,
    registration: Mutex<Option<Arc<LinkRegistration>>>,
    queries: Mutex<HashMap<String, QuerySlot>>,
    /// Live-value subscriptions on this link, by subscription id.
    subscriptions: Mutex<HashMap<String, Arc<Live>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Short critical sections that leave consistent data even if one panicked.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LinkSession {
    /// A session for a connection opened as `identity`.
    pub fn new(connection: ConnectionHandle, identity: Arc<LinkIdentity>) -> Self {
        Self {
            connection,
            expires_at: AtomicI64::new(identity.expires_at),
            identity,
            connected_at: Utc::now(),
            closed: AtomicBool::new(false),
            changed: Notify::new(),
            registration: Mutex::default(),
            queries: Mutex::default(),
            subscriptions: Mutex::default(),
        }
    }

    /// What it registered as, once `Register` succeeded.
    pub fn registration(&self) -> Option<Arc<LinkRegistration>> {
        lock(&self.registration).clone()
    }

    /// Records a (re-)registration.
    pub fn set_registration(&self, registration: LinkRegistration) {
        *lock(&self.registration) = Some(Arc::new(registration));
    }

    /// A renewed token moves the deadline.
    pub fn extend(&self, expires_at: i64) {
        self.expires_at.store(expires_at, Ordering::Release);
        // One waiter (the watcher); a permit is kept if it is not waiting yet.
        self.changed.notify_one();
    }

    /// Starts tracking a query.
    pub fn add_query(&self, query_id: String, slot: QuerySlot) {
        lock(&self.queries).insert(query_id, slot);
    }

    /// Stops tracking a query, returning its slot.
    pub fn take_query(&self, query_id: &str) -> Option<QuerySlot> {
        lock(&self.queries).remove(query_id)
    }

    /// Runs `f` on a running query's slot.
    pub fn with_query<R>(&self, query_id: &str, f: impl FnOnce(&mut QuerySlot) -> R) -> Option<R> {
        lock(&self.queries).get_mut(query_id).map(f)
    }

    /// Starts routing a subscription's updates.
    pub fn add_subscription(&self, id: String, live: Arc<Live>) {
        lock(&self.subscriptions).insert(id, live);
    }

    /// A subscription of this link.
    pub fn subscription(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.subscriptions).get(id).cloned()
    }

    /// Stops routing a subscription's updates.
    pub fn take_subscription(&self, id: &str) -> Option<Arc<Live>> {
        lock(&self.subscriptions).remove(id)
    }

    /// How many queries are running.
    pub fn running_queries(&self) -> usize {
        lock(&self.queries).len()
    }

    /// Stops a query the app no longer waits for and tells the connector (if it was running).
    pub fn cancel_query(&self, query_id: &str, reason: &str) {
        if let Some(slot) = self.take_query(query_id) {
            slot.turn.finish();
            tracing::debug!(query_id, reason, "query cancelled");
            let _ = self
                .connection
                .send(to_connector::CANCEL_QUERY, (query_id, reason));
        }
    }

    /// The connection is over (or replaced): every running query ends for its app with
    /// `LinkLost`, and the connector is told to stop them if it can still hear.
    pub fn end(&self, reason: &str) {
        let queries: Vec<(String, QuerySlot)> = lock(&self.queries).drain().collect();
        for (query_id, slot) in queries {
            slot.turn.finish();
            let _ = self
                .connection
                .send(to_connector::CANCEL_QUERY, (query_id.as_str(), reason));
            // Dropping the slot's sender ends the app's stream with LinkLost once in-flight
            // chunks are delivered; try to say so first where there is room.
            let _ = slot.sender.try_send(Item::Failed(RelayError::LinkLost));
        }
        let subscriptions: Vec<(String, Arc<Live>)> =
            lock(&self.subscriptions).drain().collect();
        for (id, live) in subscriptions {
            let _ = self
                .connection
                .send(to_connector::UNSUBSCRIBE, (id.as_str(), reason));
            live.end(LiveEnd::Offline);
        }
        self.closed.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    fn is_ended(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Every live grant on `connector_id`'s data sources, in wire form, each with its user's name.
pub async fn grant_list(hub: &Hub, connector_id: &str) -> crate::Result<Vec<Grant>> {
    let time = |t: i64| DateTime::from_timestamp(t, 0).unwrap_or_default();
    let grants = hub.store.connector_grants(connector_id).await?;
    let mut names = HashMap::new();
    for grant in &grants {
        if !names.contains_key(&grant.user_id) {
            let name = hub.store.user(&grant.user_id).await?.map(|user| {
                user.display_name
                    .filter(|name| !name.trim().is_empty())
                    .unwrap_or(user.username)
            });
            names.insert(grant.user_id.clone(), name);
        }
    }
    Ok(grants
        .into_iter()
        .map(|g| Grant {
            app_id: g.app_id,
            app_name: g.app_name,
            user_name: names.get(&g.user_id).cloned().flatten(),
            user_id: g.user_id,
            source: g.source_name,
            scopes: g.scopes,
            granted_at: time(g.granted_at),
            last_used_at: g.last_used_at.map(time),
        })
        .collect())
}

/// The apps whose every grant on `connector_id`'s data sources was revoked, in wire form.
pub async fn revoked_list(hub: &Hub, connector_id: &str) -> crate::Result<Vec<RevokedApp>> {
    Ok(hub
        .store
        .connector_revoked_apps(connector_id)
        .await?
        .into_iter()
        .map(|a| RevokedApp {
            app_id: a.app_id,
            app_name: a.app_name,
            revoked_at: DateTime::from_timestamp(a.revoked_at, 0).unwrap_or_default(),
        })
        .collect())
}

/// Sends the connector its current grants.
pub async fn push_grants(hub: &Hub, session: &LinkSession, connector_id: &str) {
    let lists = async {
        Ok::<_, crate::HubError>((
            grant_list(hub, connector_id).await?,
            revoked_list(hub, connector_id).await?,
        ))
    };
    match lists.await {
        Ok((grants, revoked_apps)) => {
            if let Err(e) = session.connection.send(
                to_connector::GRANTS,
                (GrantList {
                    grants,
                    revoked_apps,
                },),
            ) {
                tracing::debug!(connector = connector_id, error = %e, "grants not sent");
            }
        }
        Err(e) => tracing::error!(connector = connector_id, error = %e, "grants not read"),
    }
}

/// What an announcement means for a registered link.
enum Effect {
    Nothing,
    PushGrants,
    Close(&'static str),
}

/// What `change` means for a link, registered or not yet: a revoked sign-in or a removed
/// connector closes the links it authenticated, whether or not they registered.
fn effect(
    change: &Revocation,
    session: &LinkSession,
    registration: Option<&LinkRegistration>,
) -> Effect {
    match change {
        Revocation::TokenFamily { family_id } => match &session.identity.credential {
            LinkCredential::SignedIn {
                family_id: mine, ..
            } if mine == family_id => Effect::Close(close_reason::SIGN_IN_REVOKED),
            _ => Effect::Nothing,
        },
        Revocation::ConnectorRemoved { connector_id } => {
            let registered_as = registration.is_some_and(|r| r.connector.id == *connector_id);
            let credential_of = matches!(
                &session.identity.credential,
                LinkCredential::Connector { connector_id: mine } if mine == connector_id
            );
            if registered_as || credential_of {
                Effect::Close(close_reason::REMOVED)
            } else {
                Effect::Nothing
            }
        }
        Revocation::Grant { user_id, .. } | Revocation::Granted { user_id, .. }
            if registration.is_some_and(|r| r.connector.owner_id == *user_id) =>
        {
            Effect::PushGrants
        }
        Revocation::AppRemoved { .. } if registration.is_some() => Effect::PushGrants,
        _ => Effect::Nothing,
    }
}

/// After missed announcements: whether the link's sign-in or connector still stands in the
/// store.
async fn still_stands(hub: &Hub, session: &LinkSession) -> bool {
    let standing = match &session.identity.credential {
        LinkCredential::SignedIn { family_id, .. } => hub
            .store
            .family(family_id)
            .await
            .map(|f| f.is_some_and(|f| f.revoked_at.is_none())),
        LinkCredential::Connector { connector_id } => {
            hub.store.connector(connector_id).await.map(|c| c.is_some())
        }
    };
    // A store that cannot answer now is not a revoke; the next transport request re-checks.
    standing.unwrap_or(true)
}

/// Watches one session until its connection ends: closes it when its token expires without
/// renewal, and pushes `Grants` whenever consent is given or revoked on its data sources.
pub async fn watch(hub: Arc<Hub>, session: Arc<LinkSession>) {
    let mut announcements = hub.announcer.subscribe();
    let register_by = tokio::time::Instant::now() + hub.limits.register_timeout();
    loop {
        if session.is_ended() || !session.connection.is_connected() {
            break;
        }
        let left = session.expires_at.load(Ordering::Acquire) - crate::clock::now();
        if left <= 0 {
            tracing::info!(
                connection = session.connection.id(),
                "link token expired without renewal"
            );
            session
                .connection
                .close(Some(close_reason::TOKEN_EXPIRED.into()));
            break;
        }
        // Wall-clock expiry, re-checked on waking: sleeps are monotonic, tokens are not.
        let wait = Duration::from_secs(u64::try_from(left).unwrap_or(0).min(60));
        tokio::select! {
            // Ended or renewed: the top of the loop tells which.
            _ = session.changed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            // A link that authenticated but never registers would hold a connector slot.
            _ = tokio::time::sleep_until(register_by), if session.registration().is_none() => {
                if session.registration().is_none() {
                    tracing::info!(
                        connection = session.connection.id(),
                        "link did not register in time"
                    );
                    session
                        .connection
                        .close(Some(close_reason::NOT_REGISTERED.into()));
                    break;
                }
            }
            change = announcements.recv() => {
                let registration = session.registration();
                let effect = match change {
                    Ok(change) => effect(&change, &session, registration.as_deref()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !still_stands(&hub, &session).await {
                            Effect::Close(close_reason::SIGN_IN_REVOKED)
                        } else if registration.is_some() {
                            Effect::PushGrants
                        } else {
                            Effect::Nothing
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        announcements = hub.announcer.subscribe();
                        Effect::Nothing
                    }
                };
                match (effect, registration) {
                    (Effect::Nothing, _) | (Effect::PushGrants, None) => {}
                    (Effect::PushGrants, Some(registration)) => {
                        push_grants(&hub, &session, &registration.connector.id).await;
                    }
                    (Effect::Close(why), _) => {
                        tracing::info!(connection = session.connection.id(), why, "link closed");
                        session.connection.close(Some(why.into()));
                        break;
                    }
                }
            }
        }
    }
    hub.links.detach(&session);
}
