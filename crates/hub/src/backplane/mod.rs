//! The backplane of a hub cluster: several hub replicas behind a load balancer, joined by NATS
//! (`uplink hub serve --backplane nats://…`; docs/cluster.md). Without it a hub is one process
//! with its in-process router, exactly as before.
//!
//! - [`router`]: [`ClusterRouter`], the [`crate::relay::ConnectorRouter`] that serves the
//!   links held here in-process and asks the holding replica for any other (request/reply on
//!   the connector's subject; "no responders" means offline, at once).
//! - `holder`: serving another replica's query on a link held here, chunk by chunk with the
//!   link's window, an explicit end and beats.
//! - `live`: live values and events across replicas — the holder keeps the one connector
//!   subscription and forwards its news (coalesced, windowed, beating both ways) to mirrors on
//!   the replicas with app streams on it.
//! - [`wire`]: subjects and headers.
//!
//! Besides queries it carries two kinds of news: "the change feed has news" right after a
//! revoke, removal or consent is committed (every replica then reads the store's feed, which
//! stays the authority and the backstop when NATS is away), and which replica holds which
//! connector's link (a newer link anywhere evicts the older one, cluster-wide).

mod holder;
mod live;
pub mod router;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_nats::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use router::ClusterRouter;

use crate::hub::Hub;
use crate::link::{LinkEvent, LocalRouter};

/// Why the backplane could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum BackplaneError {
    /// The NATS URL or options are unusable.
    #[error("the backplane URL '{url}' cannot be used: {reason}")]
    Url {
        /// The URL as given (without credentials).
        url: String,
        /// Why.
        reason: String,
    },
    /// A subscription could not be made.
    #[error("the backplane refused a subscription: {0}")]
    Subscribe(String),
    /// This hub already joined a backplane.
    #[error("this hub already joined a backplane")]
    AlreadyJoined,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Which replica holds which connector's link, as the replicas said on [`wire::HELD`].
/// Only for telling apps whether a connector is online: a query always asks NATS, whose
/// "no responders" is the truth.
#[derive(Debug, Default)]
pub struct Presence {
    held: Mutex<HashMap<String, (String, i64)>>,
}

impl Presence {
    /// Whether another replica said it holds `connector_id`'s link.
    pub fn holds(&self, connector_id: &str) -> bool {
        lock(&self.held).contains_key(connector_id)
    }

    fn forget(&self, connector_id: &str) {
        lock(&self.held).remove(connector_id);
    }

    /// Takes in what a replica said; the newest link of a connector wins.
    fn hear(&self, held: &wire::Held) {
        let mut all = lock(&self.held);
        match held.since {
            Some(since) => {
                if all.get(&held.connector_id).is_none_or(|(_, s)| *s <= since) {
                    all.insert(held.connector_id.clone(), (held.node.clone(), since));
                }
            }
            None => {
                if all
                    .get(&held.connector_id)
                    .is_some_and(|(node, _)| *node == held.node)
                {
                    all.remove(&held.connector_id);
                }
            }
        }
    }
}

/// A hub replica's membership in the cluster.
#[derive(Debug)]
pub struct Backplane {
    client: Client,
    /// This replica's name on the backplane (random, per process).
    node: String,
    presence: Arc<Presence>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Backplane {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

impl Backplane {
    /// Joins the NATS server at `url` (retrying in the background while it is away) and
    /// starts following it for `hub`. Returns the router the app data API should use.
    pub async fn join(url: &str, hub: &Arc<Hub>) -> Result<Arc<Self>, BackplaneError> {
        let node = format!("{:016x}", rand::random::<u64>());
        let (events, mut reconnects) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .name(format!("uplink-hub {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            // Back soon after NATS is: at most a second between attempts.
            .reconnect_delay_callback(|attempts| {
                std::time::Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    tracing::info!(%event, "backplane");
                    if matches!(event, async_nats::Event::Connected) {
                        let _ = events.send(());
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| BackplaneError::Url {
                url: redact_url(url),
                reason: e.to_string(),
            })?;
        let backplane = Arc::new(Self {
            client,
            node,
            presence: Arc::default(),
            tasks: Mutex::default(),
        });
        let Some(links) = hub.links.follow_links() else {
            return Err(BackplaneError::AlreadyJoined);
        };
        let subscribe = |subject: &'static str| {
            let client = backplane.client.clone();
            async move {
                client
                    .subscribe(subject)
                    .await
                    .map_err(|e| BackplaneError::Subscribe(e.to_string()))
            }
        };
        let changes = subscribe(wire::CHANGES).await?;
        let held = subscribe(wire::HELD).await?;
        let sync = subscribe(wire::HELD_SYNC).await?;
        let tasks = vec![
            tokio::spawn(follow_changes(
                changes,
                backplane.node.clone(),
                Arc::downgrade(hub),
            )),
            tokio::spawn(follow_held(
                held,
                backplane.node.clone(),
                backplane.presence.clone(),
                hub.links.clone(),
            )),
            tokio::spawn(hold_links(
                links,
                backplane.client.clone(),
                backplane.node.clone(),
                hub.links.clone(),
            )),
            tokio::spawn({
                let backplane = Arc::downgrade(&backplane);
                let links = hub.links.clone();
                async move {
                    let mut sync = sync;
                    loop {
                        tokio::select! {
                            asked = sync.next() => if asked.is_none() { break },
                            reconnected = reconnects.recv() => {
                                if reconnected.is_none() { break }
                                // Back on NATS: ask the others what they hold.
                                if let Some(b) = backplane.upgrade() {
                                    let _ = b.client.publish(wire::HELD_SYNC, Bytes::new()).await;
                                }
                            }
                        }
                        let Some(backplane) = backplane.upgrade() else {
                            break;
                        };
                        for (connector_id, since) in links.held() {
                            backplane.say_held(&connector_id, Some(since)).await;
                        }
                    }
                }
            }),
        ];
        *lock(&backplane.tasks) = tasks;
        let _ = backplane
            .client
            .publish(wire::HELD_SYNC, Bytes::new())
            .await;
        tracing::info!(node = %backplane.node, url = %redact_url(url), "joined the backplane");
        Ok(backplane)
    }

    /// Whether this replica is connected to NATS now (it reconnects by itself while not).
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// The router over this replica's links and the cluster's.
    pub fn router(&self, local: Arc<LocalRouter>) -> ClusterRouter {
        ClusterRouter::new(local, self.client.clone(), self.presence.clone())
    }

    /// Tells every replica that the store's change feed has news (right after a commit), so
    /// each reads it at once instead of at its next poll.
    pub async fn changes_committed(&self) {
        let mut headers = wire::headers("changes");
        headers.insert(wire::NODE, self.node.as_str());
        if let Err(e) = self
            .client
            .publish_with_headers(wire::CHANGES, headers, Bytes::new())
            .await
        {
            // The other replicas' poll of the feed still finds it.
            tracing::warn!(error = %e, "the backplane did not take the news of a change");
        }
    }

    async fn say_held(&self, connector_id: &str, since: Option<DateTime<Utc>>) {
        say_held(&self.client, &self.node, connector_id, since).await;
    }
}

async fn say_held(client: &Client, node: &str, connector_id: &str, since: Option<DateTime<Utc>>) {
    let held = wire::Held {
        connector_id: connector_id.to_owned(),
        node: node.to_owned(),
        since: since.map(nanos),
    };
    if let Ok(json) = serde_json::to_vec(&held) {
        let _ = client.publish(wire::HELD, json.into()).await;
    }
}

fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Every other replica's news of a committed change: read the feed now.
async fn follow_changes(mut changes: async_nats::Subscriber, node: String, hub: Weak<Hub>) {
    while let Some(message) = changes.next().await {
        if wire::header(message.headers.as_ref(), wire::NODE) == Some(node.as_str()) {
            continue;
        }
        let Some(hub) = hub.upgrade() else { break };
        hub.announce_changes().await;
    }
}

/// Which replica holds which link; a newer link elsewhere evicts the one held here.
async fn follow_held(
    mut held: async_nats::Subscriber,
    node: String,
    presence: Arc<Presence>,
    links: Arc<LocalRouter>,
) {
    while let Some(message) = held.next().await {
        let Ok(said) = serde_json::from_slice::<wire::Held>(&message.payload) else {
            continue;
        };
        if said.node == node {
            continue;
        }
        presence.hear(&said);
        if let Some(since) = said.since {
            links.evict_older(&said.connector_id, DateTime::from_timestamp_nanos(since));
        }
    }
}

/// Subscribes to the query subject of each link held here, for as long as it is held, and
/// tells the others.
async fn hold_links(
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    client: Client,
    node: String,
    links: Arc<LocalRouter>,
) {
    let mut serving: HashMap<String, JoinHandle<()>> = HashMap::new();
    // Links that were up before the hub joined are held as well.
    let already: Vec<LinkEvent> = links
        .held()
        .into_iter()
        .map(|(connector_id, since)| LinkEvent::Held {
            connector_id,
            since,
        })
        .collect();
    let mut already = already.into_iter();
    while let Some(event) = match already.next() {
        Some(event) => Some(event),
        None => events.recv().await,
    } {
        match event {
            LinkEvent::Held {
                connector_id,
                since,
            } => {
                if let Some(subject) = wire::query_subject(&connector_id)
                    && serving.get(&connector_id).is_none_or(|t| t.is_finished())
                {
                    match client.subscribe(subject).await {
                        Ok(requests) => {
                            let task = tokio::spawn(serve_link(
                                requests,
                                client.clone(),
                                links.clone(),
                                connector_id.clone(),
                            ));
                            serving.insert(connector_id.clone(), task);
                        }
                        Err(e) => {
                            tracing::warn!(connector = %connector_id, error = %e, "other replicas cannot reach this link")
                        }
                    }
                }
                say_held(&client, &node, &connector_id, Some(since)).await;
            }
            LinkEvent::Released { connector_id } => {
                if let Some(task) = serving.remove(&connector_id) {
                    // Dropping the subscription ends it on NATS: no more responders here.
                    task.abort();
                }
                say_held(&client, &node, &connector_id, None).await;
            }
        }
    }
    for task in serving.into_values() {
        task.abort();
    }
}

async fn serve_link(
    mut requests: async_nats::Subscriber,
    client: Client,
    links: Arc<LocalRouter>,
    connector_id: String,
) {
    while let Some(request) = requests.next().await {
        let (client, links, connector_id) = (client.clone(), links.clone(), connector_id.clone());
        if wire::header(request.headers.as_ref(), wire::KIND) == Some(wire::kind::SUBSCRIBE) {
            tokio::spawn(live::serve(client, links, connector_id, request));
        } else {
            tokio::spawn(holder::serve(client, links, connector_id, request));
        }
    }
}

/// `url` without a password or token, for logs and errors.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() || !parsed.username().is_empty() => {
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(connector: &str, node: &str, since: Option<i64>) -> wire::Held {
        wire::Held {
            connector_id: connector.into(),
            node: node.into(),
            since,
        }
    }

    #[test]
    fn presence_keeps_the_newest_holder_and_forgets_only_its_own_release() {
        let presence = Presence::default();
        presence.hear(&held("c1", "a", Some(10)));
        presence.hear(&held("c1", "b", Some(20)));
        presence.hear(&held("c1", "a", Some(5)));
        presence.hear(&held("c1", "a", None));
        assert!(presence.holds("c1"), "a's release does not end b's link");
        presence.hear(&held("c1", "b", None));
        assert!(!presence.holds("c1"));
    }

    #[test]
    fn credentials_never_reach_a_log() {
        assert_eq!(
            redact_url("nats://user:s3cret@127.0.0.1:4222"),
            "nats://127.0.0.1:4222"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
