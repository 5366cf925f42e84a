//! Revoke means stop, for answers already flowing: the app's endless answer — streamed by a
//! connector on our SignalR client over the real link, as fast as the hub takes it — is cut the
//! moment the access ends (the user revokes on the settings page, the app revokes its token,
//! the token expires), the connector is told to cancel, and the hub takes nothing more from
//! it. `crates/cli/tests/connector_hub/answers_in_flight.rs` runs the same cases with the real
//! connector runtime and measures the cut-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::mpsc;
use uplink_link::{Registration, RelayedQuery, to_connector, to_hub};
use uplink_model::{Capabilities, DataSourceDescriptor};
use uplink_signalr::client::HubConnection;
use uplink_signalr::{HubError, Transport};

use crate::harness::*;

/// The generous bound from the access's end to the app's last byte (the goal is ≤ 100 ms).
const BOUND: Duration = Duration::from_secs(2);

/// A connector that answers every query with chunks for ever, until the hub cancels it or
/// refuses a chunk.
struct EndlessConnector {
    _connection: HubConnection,
    cancelled: Arc<AtomicBool>,
    /// Chunks the hub acknowledged.
    taken: Arc<AtomicU64>,
    /// Chunks the hub refused (a query it no longer runs).
    refused: Arc<AtomicU64>,
}

impl EndlessConnector {
    async fn link(hub: &TestHub) -> Self {
        let connector = hub
            .hub
            .store
            .connector(&hub.historian.connector_id)
            .await
            .unwrap()
            .unwrap();
        let token = hub
            .hub
            .keys
            .issue(&uplink_hub::link::connector_token_subject(&connector), 600)
            .unwrap()
            .expose()
            .to_owned();
        let tls = hub.tls.clone();
        let (query_tx, mut queries) = mpsc::unbounded_channel::<RelayedQuery>();
        let cancelled = Arc::new(AtomicBool::new(false));
        let on_cancel = cancelled.clone();
        let connection = HubConnection::builder(hub.url(uplink_link::HUB_PATH))
            .tls(tls)
            .force_transport(Transport::WebSockets)
            .access_token(move || {
                let token = token.clone();
                async move { Ok::<_, String>(token) }
            })
            .on(to_connector::QUERY, move |(query,): (RelayedQuery,)| {
                let _ = query_tx.send(query);
                async { Ok::<_, HubError>(()) }
            })
            .on(
                to_connector::CANCEL_QUERY,
                move |(_id, _reason): (String, String)| {
                    on_cancel.store(true, Ordering::SeqCst);
                    async { Ok::<_, HubError>(()) }
                },
            )
            .on(
                to_connector::GRANTS,
                move |(_,): (serde_json::Value,)| async { Ok::<_, HubError>(()) },
            )
            .start()
            .unwrap();
        connection.wait_connected().await;
        let descriptor = |name: &str| DataSourceDescriptor {
            name: name.into(),
            kind: "simulated".into(),
            description: String::new(),
            capabilities: Capabilities::all_from_raw(),
        };
        connection
            .invoke::<serde_json::Value>(
                to_hub::REGISTER,
                (Registration {
                    connector_id: connector.id.clone(),
                    name: "endless".into(),
                    software: "endless 1.0".into(),
                    source_keys: Default::default(),
                    sources: vec![descriptor("historian"), descriptor("lab")],
                },),
            )
            .await
            .unwrap();
        let (taken, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (sender, stop, took, lost) = (
            connection.clone(),
            cancelled.clone(),
            taken.clone(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let chunk = format!("[{}]", "7,".repeat(16 * 1024));
            while let Some(query) = queries.recv().await {
                for seq in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let sent = sender
                        .invoke::<serde_json::Value>(
                            to_hub::QUERY_CHUNK,
                            (query.query_id.as_str(), seq, chunk.as_str()),
                        )
                        .await;
                    if sent.is_err() {
                        lost.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    took.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self {
            _connection: connection,
            cancelled,
            taken,
            refused,
        }
    }
}

/// The app reads an endless answer; returns it once the first bytes came.
async fn start_reading(hub: &TestHub, token: &str) -> reqwest::Response {
    let mut response = hub
        .client
        .get(hub.url(&format!(
            "/api/v1/sources/{}/raw?tag=T&start=*-30d&end=*",
            hub.historian.id
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut read = 0;
    while read < 256 * 1024 {
        read += response.chunk().await.unwrap().unwrap().len();
    }
    response
}

/// Reads on (pacing like a slow app before `ended`) until the body breaks off; fails if it
/// completes or still flows past the bound. The time from `ended` to the last byte.
async fn until_cut(mut response: reqwest::Response, ended: Instant) -> Duration {
    let mut last = Instant::now();
    loop {
        if Instant::now() < ended {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let give_up = (ended + BOUND + Duration::from_secs(1)).into();
        match tokio::time::timeout_at(give_up, response.chunk()).await {
            Ok(Ok(Some(_))) => {
                last = Instant::now();
                assert!(
                    last < ended + BOUND,
                    "bytes still arrive {:?} after the access ended",
                    last - ended
                );
            }
            Ok(Ok(None)) => panic!("the body ended normally: a cut answer must never look whole"),
            Ok(Err(_)) => return last.saturating_duration_since(ended),
            Err(_) => panic!("the body neither ended nor broke off after the access ended"),
        }
    }
}

/// The connector was told to cancel, and the hub takes no more of its chunks.
async fn connector_stopped(connector: &EndlessConnector) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(connector.cancelled.load(Ordering::SeqCst)
        || connector.refused.load(Ordering::SeqCst) > 0)
    {
        assert!(Instant::now() < deadline, "the connector was never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let taken = connector.taken.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        connector.taken.load(Ordering::SeqCst) <= taken + 1,
        "the hub kept taking chunks after the answer was cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_flight_is_cut_when_the_user_revokes_the_grant() {
    let hub = TestHub::start().await;
    let connector = EndlessConnector::link(&hub).await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let cookie = hub.sign_in().await;
    let csrf = hub.page_csrf(&cookie, "/account/settings").await;
    let response = start_reading(&hub, &tokens.access).await;
    let r = hub
        .settings_revoke(
            hub.same_origin(Some(&cookie)),
            &csrf,
            PUBLIC_APP,
            Some(&hub.historian.id),
        )
        .await;
    let ended = Instant::now();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    until_cut(response, ended).await;
    connector_stopped(&connector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_flight_is_cut_when_the_app_revokes_its_token() {
    let hub = TestHub::start().await;
    let connector = EndlessConnector::link(&hub).await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let response = start_reading(&hub, &tokens.access).await;
    let r = hub
        .client
        .post(hub.url("/oauth/revoke"))
        .form(&[
            ("token", tokens.refresh.as_str()),
            ("client_id", PUBLIC_APP),
        ])
        .send()
        .await
        .unwrap();
    let ended = Instant::now();
    assert_eq!(r.status(), StatusCode::OK);
    until_cut(response, ended).await;
    connector_stopped(&connector).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_in_flight_is_cut_when_its_access_token_expires() {
    let hub = TestHub::start_with(|config| config.access_token_ttl = 3).await;
    let connector = EndlessConnector::link(&hub).await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let expires_at = hub.hub.keys.verify(&tokens.access).unwrap().expires_at;
    let response = start_reading(&hub, &tokens.access).await;
    let expiry = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at).unwrap());
    let ended = Instant::now()
        + expiry
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
    until_cut(response, ended).await;
    connector_stopped(&connector).await;
}

/// An app that stopped reading does not keep its query running on the connector: the revoke
/// cancels it there at once, and the app, when it reads again, gets what was already on its
/// way and then a cut body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_cancels_the_query_of_an_app_that_stopped_reading() {
    let hub = TestHub::start().await;
    let connector = EndlessConnector::link(&hub).await;
    let tokens = hub.grant_public(&[&hub.historian.id]).await;
    let mut response = start_reading(&hub, &tokens.access).await;
    // The app stops reading: the socket buffers fill and the connector waits at its window.
    let mut taken = connector.taken.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = connector.taken.load(Ordering::SeqCst);
        if now == taken {
            break;
        }
        taken = now;
    }
    let r = hub
        .client
        .post(hub.url("/oauth/revoke"))
        .form(&[
            ("token", tokens.refresh.as_str()),
            ("client_id", PUBLIC_APP),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let revoked = Instant::now();
    while !connector.cancelled.load(Ordering::SeqCst) {
        assert!(
            revoked.elapsed() < BOUND,
            "the query still runs on the connector while the app does not read"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        match tokio::time::timeout(BOUND, response.chunk()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => panic!("the body ended normally: a cut answer must never look whole"),
            Ok(Err(_)) => break,
            Err(_) => panic!("the body neither ended nor broke off"),
        }
    }
    connector_stopped(&connector).await;
}
