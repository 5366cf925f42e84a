//! The backplane of a hub cluster: several hub replicas behind a load balancer, joined by NATS
//! (`uplink hub serve --backplane nats://…`; docs/cluster.md). Without it a hub is one process
//! with its in-process router, exactly as before.
//!
//! - [`router`]: [`ClusterRouter`], the [`crate::relay::ConnectorRouter`] that serves the
//!   links held here in-process and asks the holding replica for any other (request/reply on
//!   that replica's subject for the connector; "no responders" or its `not-held` means
//!   offline, at once).
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
//! connector's link ([`Presence`]: where queries are sent, and a newer link anywhere evicts the
//! older one, cluster-wide).
//!
//! A replica subscribes to one subject of its own for all the links it holds
//! (`uplink.node.<node>.*`), never one per link: each NATS subscription costs its replica a
//! channel of its own (about 6 KiB), a large share of what an idle link may cost.

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
use crate::relay::ConnectorRouter as _;

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

/// Which replica holds which connector's link, as the replicas said on [`wire::HELD`]: where a
/// query or subscription for a link held elsewhere is sent. The replica it names has the last
/// word: gone, NATS says "no responders"; no longer holding the link, it answers `not-held`;
/// either way the entry is forgotten and the app is answered offline at once.
#[derive(Debug, Default)]
pub struct Presence {
    held: Mutex<HashMap<String, (String, i64)>>,
}

impl Presence {
    /// Whether another replica said it holds `connector_id`'s link.
    pub fn holds(&self, connector_id: &str) -> bool {
        lock(&self.held).contains_key(connector_id)
    }

    /// The replica that said it holds `connector_id`'s link (the newest link's).
    pub fn holder(&self, connector_id: &str) -> Option<String> {
        lock(&self.held)
            .get(connector_id)
            .map(|(node, _)| node.clone())
    }

    /// `node` turned out not to hold `connector_id`'s link; a newer holder heard meanwhile
    /// stays.
    fn forget(&self, connector_id: &str, node: &str) {
        let mut all = lock(&self.held);
        if all.get(connector_id).is_some_and(|(n, _)| n == node) {
            all.remove(connector_id);
        }
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
        let requests = backplane
            .client
            .subscribe(wire::node_requests(&backplane.node))
            .await
            .map_err(|e| BackplaneError::Subscribe(e.to_string()))?;
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
            tokio::spawn(serve_requests(
                requests,
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
                        // Empty: say every link held here; else only the connector it names.
                        let asked = tokio::select! {
                            asked = sync.next() => match asked {
                                Some(asked) => asked.payload,
                                None => break,
                            },
                            reconnected = reconnects.recv() => {
                                if reconnected.is_none() { break }
                                // Back on NATS: ask the others what they hold.
                                if let Some(b) = backplane.upgrade() {
                                    let _ = b.client.publish(wire::HELD_SYNC, Bytes::new()).await;
                                }
                                Bytes::new()
                            }
                        };
                        let Some(backplane) = backplane.upgrade() else {
                            break;
                        };
                        if asked.is_empty() {
                            for (connector_id, since) in links.held() {
                                backplane.say_held(&connector_id, Some(since)).await;
                            }
                        } else if let Ok(connector_id) = std::str::from_utf8(&asked)
                            && let Some(since) = links.held_since(connector_id)
                        {
                            backplane.say_held(connector_id, Some(since)).await;
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

/// Tells the other replicas of each link held here, and of its end. Holding a link subscribes
/// to nothing: the replica's one subscription ([`serve_requests`]) takes every request.
async fn hold_links(
    mut events: mpsc::UnboundedReceiver<LinkEvent>,
    client: Client,
    node: String,
    links: Arc<LocalRouter>,
) {
    // Links that were up before the hub joined are held as well.
    for (connector_id, since) in links.held() {
        say_held(&client, &node, &connector_id, Some(since)).await;
    }
    while let Some(event) = events.recv().await {
        match event {
            LinkEvent::Held {
                connector_id,
                since,
            } => say_held(&client, &node, &connector_id, Some(since)).await,
            LinkEvent::Released { connector_id } => {
                say_held(&client, &node, &connector_id, None).await;
            }
        }
    }
}

/// Takes every query and subscription asked of this replica (`uplink.node.<node>.<connector>`):
/// for a link held here each is served on a task of its own; for any other the asking replica
/// hears `not-held` at once.
async fn serve_requests(
    mut requests: async_nats::Subscriber,
    client: Client,
    node: String,
    links: Arc<LocalRouter>,
) {
    while let Some(request) = requests.next().await {
        let Some(connector_id) = wire::connector_of(&request.subject, &node) else {
            continue;
        };
        if !links.is_online(connector_id) {
            if let Some(reply) = request.reply {
                let _ = client
                    .publish_with_headers(reply, wire::headers(wire::kind::NOT_HELD), Bytes::new())
                    .await;
            }
            continue;
        }
        let (client, links, connector_id) =
            (client.clone(), links.clone(), connector_id.to_owned());
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

/// `nats-server` for the backplane's tests.
#[cfg(test)]
mod test_nats {
    use std::time::Duration;

    /// `nats-server` on a free loopback port, killed when dropped.
    pub struct Nats {
        child: std::process::Child,
        pub url: String,
    }

    impl Nats {
        pub fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new("/usr/sbin/nats-server")
                .args(["-a", "127.0.0.1", "-p", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("nats-server is missing: install the Debian package nats-server");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nats-server did not start"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Self {
                child,
                url: format!("nats://127.0.0.1:{port}"),
            }
        }
    }

    impl Drop for Nats {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
    fn presence_names_the_holder_and_forgets_it_only_for_the_replica_that_did_not_answer() {
        let presence = Presence::default();
        assert_eq!(presence.holder("c1"), None);
        presence.hear(&held("c1", "a", Some(10)));
        presence.hear(&held("c1", "b", Some(20)));
        assert_eq!(presence.holder("c1").as_deref(), Some("b"));
        presence.forget("c1", "a");
        assert_eq!(
            presence.holder("c1").as_deref(),
            Some("b"),
            "a newer holder heard meanwhile stays"
        );
        presence.forget("c1", "b");
        assert_eq!(presence.holder("c1"), None);
    }

    async fn replica(dir: &std::path::Path, name: &str) -> Arc<Hub> {
        let store = crate::hub::open_store(&dir.join(name)).await.unwrap();
        Arc::new(
            Hub::new(
                Arc::new(store),
                crate::HubConfig::new("https://hub.test/"),
                crate::password::Passwords::with_cost(1, 64, 1),
            )
            .await
            .unwrap(),
        )
    }

    fn snapshot_query() -> uplink_link::RelayedQuery {
        uplink_link::RelayedQuery {
            query_id: "q1".into(),
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
            source: "plant".into(),
            format: uplink_link::ResultFormat::default(),
            query: serde_json::from_str(r#"{"type":"snapshot","tags":["T1"]}"#).unwrap(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connector_its_holder_does_not_hold_or_whose_holder_is_gone_is_offline_at_once() {
        use crate::relay::{ConnectorRouter as _, RelayError};
        let nats = test_nats::Nats::start();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            replica(dir.path(), "a").await,
            replica(dir.path(), "b").await,
        );
        let asking = Backplane::join(&nats.url, &a).await.unwrap();
        let asked = Backplane::join(&nats.url, &b).await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !(asking.connected() && asked.connected()) {
            assert!(tokio::time::Instant::now() < deadline, "never joined NATS");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let router = asking.router(a.links.clone());
        let offline = |outcome: Result<crate::relay::RelayStream, RelayError>| match outcome {
            Err(RelayError::Offline { .. }) => true,
            Err(other) => panic!("expected offline, got {other:?}"),
            Ok(_) => panic!("expected offline, got an answer"),
        };
        // No replica said it holds the link: offline without asking anyone.
        assert!(offline(router.relay("con_nowhere", snapshot_query()).await));
        // Presence names a live replica that does not hold the link: it says so, and the
        // asking replica forgets what it heard.
        asking
            .presence
            .hear(&held("con_moved", asked.node.as_str(), Some(1)));
        assert!(router.is_online("con_moved"));
        assert!(offline(router.relay("con_moved", snapshot_query()).await));
        assert!(
            !router.is_online("con_moved"),
            "forgotten once it said not-held"
        );
        // Presence names a replica that is gone: "no responders", forgotten as well.
        asking
            .presence
            .hear(&held("con_orphan", "00000000deadbeef", Some(1)));
        assert!(offline(router.relay("con_orphan", snapshot_query()).await));
        assert!(!router.is_online("con_orphan"));
        // The same for a live-values subscription asked across replicas.
        asking
            .presence
            .hear(&held("con_moved", asked.node.as_str(), Some(2)));
        let request = uplink_link::SubscribeRequest {
            subscription_id: String::new(),
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
            source: "plant".into(),
            kind: uplink_link::SubscriptionKind::Values,
            tags: vec!["T1".into()],
        };
        match router.subscribe("con_moved", request).await {
            Err(RelayError::Offline { .. }) => {}
            Err(other) => panic!("expected offline, got {other:?}"),
            Ok(_) => panic!("expected offline, got a subscription"),
        }
        assert!(!router.is_online("con_moved"));
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
