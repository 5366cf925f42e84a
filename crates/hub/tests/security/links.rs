//! Connector links for the attack suite: a connector sign-in made the way the desktop app makes
//! it (the built-in connector client through the hub's real sign-in and consent pages, PKCE, a
//! loopback redirect), an administrator-provisioned connector's client-credentials token, and
//! a link on our SignalR client that reports when the hub closes it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::sync::broadcast;
use uplink_link::{Registered, Registration, to_hub};
use uplink_model::{Capabilities, DataSourceDescriptor};
use uplink_signalr::Transport;
use uplink_signalr::client::{ClientEvent, HubConnection};

use crate::harness::*;

/// The connector's loopback listener.
pub const LOOPBACK: &str = "http://127.0.0.1:51873/callback";

/// How long a revoked link may take to close: generous, the machine is loaded; the measured
/// figure is in docs/hardening.md.
pub const CLOSE_BOUND: Duration = Duration::from_secs(10);

impl TestHub {
    /// A connector sign-in of Ada through the browser: a new token family of the built-in
    /// connector client with scope `connector`.
    pub async fn connector_sign_in(&self) -> Tokens {
        let params: Vec<(String, String)> =
            TestHub::authorize_params(uplink_link::CONNECTOR_CLIENT_ID, LOOPBACK)
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == "scope" { "connector".into() } else { v };
                    (k, v)
                })
                .collect();
        let cookie = self.sign_in().await;
        let request = self.start_authorization(&cookie, &params).await;
        let csrf = self.consent_token(&cookie, &request).await;
        let r = self
            .post_consent(
                self.same_origin(Some(&cookie)),
                &[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", "approve"),
                    ("scope", "connector"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let code = Code {
            code: query_param(&location(&r), "code").expect("a code"),
            redirect_uri: LOOPBACK.into(),
        };
        TestHub::tokens(self.exchange(uplink_link::CONNECTOR_CLIENT_ID, &code).await).await
    }

    /// The connector client's refresh: a newer access token of the same sign-in.
    pub async fn refresh_connector(&self, refresh: &str) -> reqwest::Response {
        self.token_request(
            uplink_link::CONNECTOR_CLIENT_ID,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await
    }

    /// A client-credentials token of an administrator-provisioned connector.
    pub async fn credential_token(&self, connector_id: &str, credential: &str) -> String {
        let r = self
            .client
            .post(self.url("/oauth/token"))
            .basic_auth(connector_id, Some(credential))
            .form(&[("grant_type", "client_credentials"), ("scope", "connector")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: serde_json::Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Whether `token` still opens a link (negotiate's status).
    pub async fn negotiate(&self, token: &str) -> StatusCode {
        self.client
            .post(self.url("/hubs/connector/negotiate?negotiateVersion=1"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// A connector link on our SignalR client (WebSockets).
pub struct Link {
    pub connection: HubConnection,
    events: broadcast::Receiver<ClientEvent>,
}

impl Link {
    pub async fn open(hub: &TestHub, token: String) -> Self {
        let tls = hub.tls.clone();
        let connection = HubConnection::builder(hub.url(uplink_link::HUB_PATH))
            .tls(tls)
            .force_transport(Transport::WebSockets)
            .access_token(move || {
                let token = token.clone();
                async move { Ok::<_, String>(token) }
            })
            .start()
            .unwrap();
        let events = connection.events();
        assert_eq!(connection.wait_connected().await, Transport::WebSockets);
        Self { connection, events }
    }

    pub async fn register(&self, connector_id: &str) -> uplink_signalr::Result<Registered> {
        let registration = Registration {
            connector_id: connector_id.into(),
            name: "press-shop-pc".into(),
            software: "test-connector 1.0".into(),
            source_keys: Default::default(),
            sources: vec![DataSourceDescriptor {
                name: "line-1".into(),
                kind: "simulated".into(),
                description: String::new(),
                capabilities: Capabilities::all_from_raw(),
            }],
        };
        self.connection
            .invoke(to_hub::REGISTER, (registration,))
            .await
    }

    /// Whether the hub still answers this link's heartbeat.
    pub async fn alive(&self) -> bool {
        self.connection
            .invoke::<serde_json::Value>(to_hub::HEARTBEAT, ())
            .await
            .is_ok()
    }

    /// Waits (within [`CLOSE_BOUND`]) until the hub closes the link; the hub's reason and how
    /// long it took.
    pub async fn closed(&mut self) -> (String, Duration) {
        let started = Instant::now();
        let reason = tokio::time::timeout(CLOSE_BOUND, async {
            loop {
                match self.events.recv().await {
                    Ok(ClientEvent::Reconnecting { last_error, .. }) => return last_error,
                    Ok(ClientEvent::Disconnected { error }) => return error.unwrap_or_default(),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return String::new(),
                }
            }
        })
        .await
        .expect("the hub closes the link");
        (reason, started.elapsed())
    }

    /// Whether the hub has closed the link since the last look (no waiting).
    pub fn was_closed(&mut self) -> bool {
        while let Ok(event) = self.events.try_recv() {
            if matches!(
                event,
                ClientEvent::Reconnecting { .. } | ClientEvent::Disconnected { .. }
            ) {
                return true;
            }
        }
        false
    }

    pub async fn stop(self) {
        self.connection.stop().await;
    }
}
