//! A site for the fault scenarios: the test kit's hub over loopback TLS, the real connector runtime
//! linked to it through a fault proxy, and an app holding an access token from the real
//! consent flow. The app reaches the hub directly; only the link crosses the proxy.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use uplink_connector::credentials::{LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, ConnectorStatus, LinkState, RuntimeOptions};
use uplink_connector::{ConnectorConfig, answer, kinds};
use uplink_faults::{FaultProxy, Faults, HttpFaults, InterceptProxy};
use uplink_hub::relay::ConnectorRouter as _;
use uplink_hub::{Hub, NewApp};
use uplink_link::ResultFormat;
use uplink_model::Query;
use uplink_signalr::Transport;
use uplink_signalr::client::Backoff;
use uplink_testkit::{PASSWORD, TestHub, USER};

use crate::consent::ConsentFlow;
use crate::stage::{DEMO_APP, DEMO_REDIRECT, DEMO_SCOPE, http_client};

/// Which proxy the link crosses.
pub enum Via {
    /// Plain TCP: the link's TLS passes through.
    Tcp,
    /// TLS ended and re-opened: the proxy sees HTTP.
    Intercept,
}

/// The proxy in place, with its switches.
pub enum Proxy {
    Tcp(FaultProxy),
    Intercept(InterceptProxy),
}

impl Proxy {
    pub fn tcp(&self) -> Faults {
        match self {
            Proxy::Tcp(proxy) => proxy.faults(),
            Proxy::Intercept(_) => panic!("this site's proxy intercepts TLS"),
        }
    }

    pub fn http(&self) -> HttpFaults {
        match self {
            Proxy::Intercept(proxy) => proxy.faults(),
            Proxy::Tcp(_) => panic!("this site's proxy passes TLS through"),
        }
    }
}

/// How to set the site up.
pub struct SiteOptions {
    pub via: Via,
    pub transports: Vec<Transport>,
    /// Tunes the connector's options after the test defaults are set.
    pub tune: fn(&mut RuntimeOptions),
    /// The intercepting proxy answers 403 to WebSocket upgrades from the first attempt on.
    pub refuse_websockets: bool,
    /// The intercepting proxy holds event-stream bodies back from the first attempt on.
    pub buffer_event_streams: bool,
    /// The intercepting proxy holds WebSocket upgrades unanswered from the first attempt on.
    pub hang_websockets: bool,
}

impl SiteOptions {
    /// A link through the TCP fault proxy with the connector's default transports.
    pub fn tcp() -> Self {
        Self {
            via: Via::Tcp,
            transports: Transport::ALL.to_vec(),
            tune: |_| {},
            refuse_websockets: false,
            buffer_event_streams: false,
            hang_websockets: false,
        }
    }
}

/// Reconnect delays of the test connector: short, so a minute sees many outages.
pub const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(2),
};

/// How long the hub waits for a relayed answer's first chunk.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Site {
    pub hub: Arc<Hub>,
    pub issuer: String,
    pub runtime: ConnectorRuntime,
    /// What the connector runtime was started with (for [`Site::restart_connector`]).
    runtime_options: RuntimeOptions,
    pub connector_id: String,
    pub source_id: String,
    pub token: String,
    /// The app's HTTPS client (trusts the hub's CA).
    pub app: reqwest::Client,
    pub proxy: Proxy,
    /// From the connector's sign-in (its first attempt) to the hub seeing it linked.
    pub linked_after: Duration,
    /// Every change of the connector's link state, as it happened.
    pub history: Arc<std::sync::Mutex<Vec<(Instant, LinkState)>>>,
    /// The hub's own handle (dropping it kills the hub).
    kit: TestHub,
    _dir: tempfile::TempDir,
}

impl Site {
    pub async fn start(options: SiteOptions) -> Self {
        uplink_tls::install_crypto_provider();
        if std::env::var_os("FAULTS_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(std::env::var("FAULTS_TEST_LOG").unwrap_or_default())
                .with_test_writer()
                .try_init();
        }
        // The test kit's hub (Ada and her connector), answering a relayed query's first chunk
        // within `QUERY_TIMEOUT`, with the demo's confidential app for the consent flow.
        let kit = TestHub::start_with(|config| config.query_timeout = QUERY_TIMEOUT).await;
        let (hub, issuer, ca) = (kit.hub.clone(), kit.issuer.clone(), &kit.ca);
        let hub_addr = std::net::SocketAddr::from(([127, 0, 0, 1], kit.port));
        let user = kit.user.clone();
        let app = hub
            .add_app(NewApp {
                name: "Fault scenario app".into(),
                client_id: Some(DEMO_APP.into()),
                confidential: true,
                redirect_uris: vec![DEMO_REDIRECT.into()],
                scopes: DEMO_SCOPE.split(' ').map(str::to_owned).collect(),
            })
            .await
            .unwrap();
        let connector = &kit.plant;
        let dir = tempfile::tempdir().unwrap();

        let (proxy, link_ca) = match options.via {
            Via::Tcp => (
                Proxy::Tcp(FaultProxy::start(hub_addr).await.unwrap()),
                ca.ca_pem().to_owned(),
            ),
            Via::Intercept => {
                let proxy = InterceptProxy::start(hub_addr, ca.ca_pem()).await.unwrap();
                proxy.faults().refuse_websockets(options.refuse_websockets);
                proxy.faults().hang_websockets(options.hang_websockets);
                proxy
                    .faults()
                    .buffer_event_streams(options.buffer_event_streams);
                let trust = proxy.ca_pem().to_owned();
                (Proxy::Intercept(proxy), trust)
            }
        };
        let proxy_addr = match &proxy {
            Proxy::Tcp(p) => p.addr(),
            Proxy::Intercept(p) => p.addr(),
        };

        let mut runtime_options = RuntimeOptions::new(dir.path().join("connector"));
        runtime_options.transports = options.transports;
        runtime_options.backoff = BACKOFF;
        runtime_options.write_status_file = false;
        (options.tune)(&mut runtime_options);
        let runtime = ConnectorRuntime::start(runtime_options.clone())
            .await
            .unwrap();
        let signed_in = Instant::now();
        runtime
            .sign_in(LinkCredentials {
                hub_url: format!("https://{proxy_addr}"),
                connector_id: connector.connector.id.clone(),
                ca_pem: Some(link_ca),
                secret: LinkSecret::ClientCredential {
                    credential: connector.credential.expose().to_owned(),
                },
            })
            .await
            .unwrap();
        let connector_id = connector.connector.id.clone();
        let history = Arc::new(std::sync::Mutex::new(Vec::new()));
        tokio::spawn({
            let (history, mut status) = (history.clone(), runtime.status());
            async move {
                loop {
                    let link = status.borrow_and_update().link;
                    {
                        let mut seen = history.lock().unwrap();
                        if seen.last().is_none_or(|(_, last)| *last != link) {
                            seen.push((Instant::now(), link));
                        }
                    }
                    if status.changed().await.is_err() {
                        return;
                    }
                }
            }
        });
        // Registration creates the hub's records of the connector's data sources.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !hub.links.is_online(&connector_id) {
            assert!(Instant::now() < deadline, "the connector did not link");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let linked_after = signed_in.elapsed();
        let source_id = hub.store.sources_owned_by(&user.id).await.unwrap()[0]
            .id
            .clone();
        let app_client = http_client(ca.ca_pem()).unwrap();
        let tokens = ConsentFlow {
            client: &app_client,
            issuer: &issuer,
            username: USER,
            password: PASSWORD,
            client_id: DEMO_APP,
            client_secret: app.secret.as_ref().unwrap().expose(),
            redirect_uri: DEMO_REDIRECT,
            scope: DEMO_SCOPE,
            source_ids: std::slice::from_ref(&source_id),
        }
        .run()
        .await
        .unwrap();
        let site = Self {
            linked_after,
            history,
            hub,
            issuer,
            runtime,
            runtime_options,
            connector_id,
            source_id,
            token: tokens.access_token,
            app: app_client,
            proxy,
            kit,
            _dir: dir,
        };
        site.wait_status("connected", Duration::from_secs(30), |s| {
            s.link == LinkState::Connected
        })
        .await;
        site
    }

    /// Whether the hub has the connector's link registered.
    pub fn online(&self) -> bool {
        self.hub.links.is_online(&self.connector_id)
    }

    /// Waits until the hub has (or has lost) the connector's link; the time it took.
    pub async fn wait_online(&self, online: bool, within: Duration) -> Duration {
        let started = Instant::now();
        while self.online() != online {
            assert!(
                started.elapsed() < within,
                "the hub did not see the link {} within {within:?}",
                if online { "come back" } else { "go" }
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    }

    /// Waits until the connector's status is `what` (as `done` judges it); the time it took.
    pub async fn wait_status(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&ConnectorStatus) -> bool,
    ) -> Duration {
        let started = Instant::now();
        let mut status = self.runtime.status();
        let reached = tokio::time::timeout(within, async {
            loop {
                if done(&status.borrow_and_update()) {
                    return;
                }
                if status.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        assert!(
            reached.is_ok(),
            "the connector's link was not {what} within {within:?}: {:?}",
            self.runtime.status().borrow().link
        );
        started.elapsed()
    }

    /// How long the connector was still waiting out its backoff at `at`: until its next
    /// attempt began, or zero if it was not waiting.
    pub fn backoff_left_at(&self, at: Instant) -> Duration {
        let history = self.history.lock().unwrap();
        let waiting = history
            .iter()
            .rev()
            .find(|(when, _)| *when <= at)
            .is_some_and(|(_, state)| *state == LinkState::Reconnecting);
        if !waiting {
            return Duration::ZERO;
        }
        history
            .iter()
            .find(|(when, state)| *when > at && *state != LinkState::Reconnecting)
            .map_or(Duration::ZERO, |(when, _)| *when - at)
    }

    /// Stops the connector runtime and starts a new one on the same data dir (its options
    /// changed by `tune`), as a restart of the connector does; waits until the hub has it linked again and returns how long that
    /// took from the new runtime's start.
    pub async fn restart_connector(&mut self, tune: fn(&mut RuntimeOptions)) -> Duration {
        tune(&mut self.runtime_options);
        self.runtime.stop().await;
        self.wait_online(false, Duration::from_secs(10)).await;
        let started = Instant::now();
        self.runtime = ConnectorRuntime::start(self.runtime_options.clone())
            .await
            .unwrap();
        self.wait_online(true, Duration::from_secs(60)).await;
        let linked = started.elapsed();
        self.wait_status("connected", Duration::from_secs(30), |s| {
            s.link == LinkState::Connected
        })
        .await;
        linked
    }

    /// The data dir of the connector.
    pub fn connector_dir(&self) -> std::path::PathBuf {
        self.runtime_options.data_dir.clone()
    }

    /// The transport the connector's link uses now.
    pub fn transport(&self) -> Option<String> {
        self.runtime.status().borrow().transport.clone()
    }

    pub async fn stop(mut self) {
        self.runtime.stop().await;
        self.kit.kill();
    }
}

/// A query whose answer tells it apart from every other: raw values of one of the simulated
/// tags over a range of its own. Returns the query's JSON and its expected answer.
pub async fn distinct_query(n: u64) -> (serde_json::Value, serde_json::Value) {
    const TAGS: [&str; 4] = [
        "sim.sinusoid.1",
        "sim.ramp.1",
        "sim.square.1",
        "sim.randomWalk.1",
    ];
    let start = chrono::DateTime::from_timestamp(1_767_225_600 + 97 * n as i64, 0).unwrap();
    let end = start + chrono::Duration::seconds(40 + (n % 20) as i64);
    let query = serde_json::json!({
        "type": "raw",
        "tag": TAGS[(n % 4) as usize],
        "start": start.to_rfc3339(),
        "end": end.to_rfc3339(),
    });
    (query.clone(), local_answer(query).await)
}

/// The answer the connector's own source gives to `query`, in-process.
async fn local_answer(query: serde_json::Value) -> serde_json::Value {
    let source = kinds::open(&ConnectorConfig::default().sources[0])
        .await
        .unwrap();
    let query: Query = serde_json::from_value(query).unwrap();
    let chunks: Vec<_> = answer::answer(source, query, ResultFormat::Json)
        .collect()
        .await;
    let body: String = chunks
        .into_iter()
        .map(|chunk| chunk.map_err(|f| f.message).expect("the local answer"))
        .collect();
    serde_json::from_str(&body).expect("the local answer is JSON")
}
