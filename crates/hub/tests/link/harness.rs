//! The test kit's real hub serving the connector link over real TLS on loopback, and a test connector built
//! on our SignalR client (`uplink_signalr::client::HubConnection`) that records what the hub
//! sends it.

use std::ops::Deref;

use tokio::sync::mpsc;
use uplink_hub::HubConfig;
use uplink_hub::store::{DeviceAuthorization, DevicePoll, User};
use uplink_hub::token::TokenSubject;
use uplink_link::{GrantList, Registered, Registration, RelayedQuery, to_connector, to_hub};
use uplink_model::{Capabilities, DataSourceDescriptor};
use uplink_signalr::client::HubConnection;
use uplink_signalr::{HubError, Transport};
use uplink_testkit::TestHub;

pub use uplink_testkit::APP;

/// The test kit's hub (Ada, her connector "Plant A", the dashboard app), with the link's
/// token helpers.
pub struct LinkHub {
    kit: TestHub,
    pub ada: User,
}

impl Deref for LinkHub {
    type Target = TestHub;

    fn deref(&self) -> &TestHub {
        &self.kit
    }
}

impl LinkHub {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut HubConfig)) -> Self {
        if std::env::var_os("LINK_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_test_writer()
                .try_init();
        }
        let kit = TestHub::start_with(configure).await;
        let ada = kit.user.clone();
        Self { kit, ada }
    }

    /// A connector sign-in of `user` as the device flow leaves it in the store: a live token
    /// family of the built-in connector client, and an access token of it.
    pub async fn signed_in_token(&self, user: &User) -> String {
        let store = &self.hub.store;
        let now = uplink_hub::clock::now();
        let device = format!("device-{}", user.id);
        let code = format!("code-{}", user.id);
        store
            .create_device_authorization(
                device.as_bytes(),
                code.as_bytes(),
                &DeviceAuthorization {
                    app_id: uplink_link::CONNECTOR_CLIENT_ID.into(),
                    scopes: vec!["connector".into()],
                    created_at: now,
                    expires_at: now + 600,
                    interval_secs: 0,
                    requested_from: "127.0.0.1".into(),
                },
            )
            .await
            .unwrap();
        assert!(
            store
                .decide_device_authorization(code.as_bytes(), Some(&user.id), now)
                .await
                .unwrap()
        );
        let DevicePoll::Approved(family) = store
            .poll_device_authorization(device.as_bytes(), uplink_link::CONNECTOR_CLIENT_ID, now)
            .await
            .unwrap()
        else {
            panic!("device authorization not approved")
        };
        self.issue(&TokenSubject {
            user_id: user.id.clone(),
            app_id: family.app_id,
            scopes: family.scopes,
            family_id: family.id,
        })
    }

    /// An app's access token for `source_id`, after `user` consented (a live family and grant).
    pub async fn app_token(&self, user: &User, source_id: &str) -> String {
        self.kit
            .mint_app_token(&user.id, APP, &[source_id.to_owned()], 600)
            .await
    }

    pub fn issue(&self, subject: &TokenSubject) -> String {
        self.kit.issue(subject, 600)
    }

    /// POST negotiate with `token`; the status.
    pub async fn negotiate(&self, token: Option<&str>) -> reqwest::StatusCode {
        let request = self
            .client
            .post(self.url("/hubs/connector/negotiate?negotiateVersion=1"));
        let request = match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        request.send().await.unwrap().status()
    }
}

/// A connector on our SignalR client, recording the hub's calls.
pub struct TestConnector {
    pub connection: HubConnection,
    pub queries: mpsc::UnboundedReceiver<RelayedQuery>,
    pub cancels: mpsc::UnboundedReceiver<(String, String)>,
    pub grants: mpsc::UnboundedReceiver<GrantList>,
}

impl TestConnector {
    pub async fn connect(hub: &LinkHub, transport: Transport, token: String) -> Self {
        let (query_tx, queries) = mpsc::unbounded_channel();
        let (cancel_tx, cancels) = mpsc::unbounded_channel();
        let (grant_tx, grants) = mpsc::unbounded_channel();
        let connection = HubConnection::builder(hub.url(uplink_link::HUB_PATH))
            .tls(hub.tls.clone())
            .force_transport(transport)
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
                move |(id, reason): (String, String)| {
                    let _ = cancel_tx.send((id, reason));
                    async { Ok::<_, HubError>(()) }
                },
            )
            .on(to_connector::GRANTS, move |(list,): (GrantList,)| {
                let _ = grant_tx.send(list);
                async { Ok::<_, HubError>(()) }
            })
            .start()
            .unwrap();
        assert_eq!(connection.wait_connected().await, transport);
        Self {
            connection,
            queries,
            cancels,
            grants,
        }
    }

    pub async fn register(
        &self,
        connector_id: &str,
        sources: &[&str],
    ) -> uplink_signalr::Result<Registered> {
        let registration = Registration {
            connector_id: connector_id.into(),
            name: "press-shop-pc".into(),
            software: "test-connector 1.0".into(),
            source_keys: Default::default(),
            sources: sources
                .iter()
                .map(|name| DataSourceDescriptor {
                    name: (*name).into(),
                    kind: "simulated".into(),
                    description: format!("{name} of the press shop"),
                    capabilities: Capabilities::all_from_raw(),
                })
                .collect(),
        };
        self.connection
            .invoke(to_hub::REGISTER, (registration,))
            .await
    }

    pub async fn chunk(&self, query_id: &str, seq: u64, data: &str) -> uplink_signalr::Result<()> {
        self.connection
            .invoke::<()>(to_hub::QUERY_CHUNK, (query_id, seq, data))
            .await
    }

    pub async fn end(&self, query_id: &str) -> uplink_signalr::Result<()> {
        self.connection
            .invoke::<()>(to_hub::QUERY_END, (query_id, serde_json::json!({})))
            .await
    }
}

/// A snapshot query for the app `APP` of `user` on `source`.
pub fn snapshot(user: &User, source: &str) -> RelayedQuery {
    RelayedQuery {
        query_id: "set-by-the-router".into(),
        app_id: APP.into(),
        user_id: user.id.clone(),
        source: source.into(),
        format: uplink_link::ResultFormat::Json,
        query: serde_json::from_str(r#"{"type":"snapshot","tags":["FIC101.PV"]}"#).unwrap(),
    }
}
