//! The demo's stage: a hub served over loopback TLS, a demo user, app and connector, the
//! connector runtime linked to the hub, and an access token from the real consent flow. The
//! demo prints it; the relay benchmark measures it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use uplink_connector::credentials::{LinkCredentials, LinkSecret};
use uplink_connector::runtime::{ConnectorRuntime, RuntimeOptions};
use uplink_hub::relay::ConnectorRouter;
use uplink_hub::store::DataSource;
use uplink_hub::{Hub, HubConfig, NewApp};
use uplink_signalr::Transport;

use super::consent::{ConsentFlow, Tokens};

pub const DEMO_USER: &str = "demo";
pub const DEMO_APP: &str = "demo-app";
pub const DEMO_REDIRECT: &str = "http://127.0.0.1/callback";
/// The hub's page that says what happened after Allow or Deny, for a person who walks the demo
/// app's consent page in a browser (the demo app has no page of its own).
pub const DEMO_RETURNED_PATH: &str = "/account/returned";
/// What the demo app may ask for and is granted: reading values, searching tags, and the
/// alarms and events of each data source that has them.
pub const DEMO_SCOPE: &str = "data.read tags.read events.read";

/// How to set the stage.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// Holds `hub/`, `connector/` (both started afresh) and `tls/` (kept).
    pub data_dir: PathBuf,
    /// Where the hub listens (loopback).
    pub listen: SocketAddr,
    /// The transports the connector may use, in order.
    pub transports: Vec<Transport>,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: i64,
}

/// Everything running, and the secrets a user of the demo needs.
pub struct Stage {
    #[allow(dead_code)] // the relay benchmark, which shares this file, reads it
    pub hub: Arc<Hub>,
    pub issuer: String,
    #[allow(dead_code)] // the relay benchmark, which shares this file, reads it
    pub ca_pem: String,
    pub ca_cert: PathBuf,
    pub runtime: ConnectorRuntime,
    pub password: String,
    pub client_secret: String,
    pub connector_id: String,
    pub connector_name: String,
    pub sources: Vec<DataSource>,
    pub tokens: Tokens,
    stop_hub: tokio::sync::oneshot::Sender<()>,
    pub serving: tokio::task::JoinHandle<uplink_hub::Result<()>>,
}

impl Stage {
    pub async fn start(options: StageOptions) -> anyhow::Result<Self> {
        uplink_tls::install_crypto_provider();
        let dirs = Dirs::prepare(&options.data_dir)?;
        let ca =
            uplink_tls::LoopbackCa::load_or_generate(&dirs.tls, &["localhost", "127.0.0.1", "::1"])
                .with_context(|| {
                    format!("cannot prepare certificates in {}", dirs.tls.display())
                })?;
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {} (is another demo running?)",
                    options.listen
                )
            })?;
        let issuer = format!("https://{}", listener.local_addr()?);

        let mut config = HubConfig::new(issuer.clone());
        config.access_token_ttl = options.access_token_ttl;
        let hub = Arc::new(
            Hub::open(&dirs.hub, config)
                .await
                .context("cannot open the demo hub's store")?,
        );
        let password = random_secret(12);
        let user = hub.add_user(DEMO_USER, password.clone()).await?;
        let app = hub
            .add_app(NewApp {
                name: "Uplink demo app".into(),
                client_id: Some(DEMO_APP.into()),
                confidential: true,
                redirect_uris: vec![
                    DEMO_REDIRECT.into(),
                    format!("{issuer}{DEMO_RETURNED_PATH}"),
                ],
                scopes: DEMO_SCOPE.split(' ').map(str::to_owned).collect(),
            })
            .await?;
        let client_secret = app
            .secret
            .context("a confidential app has a secret")?
            .expose()
            .to_owned();
        let connector = hub.add_connector(DEMO_USER, "Demo site").await?;

        let (stop_hub, hub_stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = {
            let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
            let hub = hub.clone();
            tokio::spawn(async move {
                uplink_hub::serve(hub, listener, &chain, &key, async {
                    let _ = hub_stopped.await;
                })
                .await
            })
        };

        // The connector: the real runtime with its embedded simulated data source.
        let mut runtime_options = RuntimeOptions::new(&dirs.connector);
        runtime_options.transports = options.transports.clone();
        let runtime = ConnectorRuntime::start(runtime_options)
            .await
            .context("the demo connector did not start")?;
        runtime
            .sign_in(LinkCredentials {
                hub_url: issuer.clone(),
                connector_id: connector.connector.id.clone(),
                ca_pem: Some(ca.ca_pem().to_owned()),
                secret: LinkSecret::ClientCredential {
                    credential: connector.credential.expose().to_owned(),
                },
            })
            .await
            .context("the demo connector could not sign in")?;
        wait_online(&hub, &connector.connector.id).await?;

        let sources = hub.store.sources_owned_by(&user.id).await?;
        let source_ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
        let client = http_client(ca.ca_pem())?;
        let tokens = ConsentFlow {
            client: &client,
            issuer: &issuer,
            username: DEMO_USER,
            password: &password,
            client_id: DEMO_APP,
            client_secret: &client_secret,
            redirect_uri: DEMO_REDIRECT,
            scope: DEMO_SCOPE,
            source_ids: &source_ids,
        }
        .run()
        .await
        .context("the demo app could not obtain consent")?;

        Ok(Self {
            hub,
            issuer,
            ca_pem: ca.ca_pem().to_owned(),
            ca_cert: dirs.tls.join("ca.pem"),
            runtime,
            password,
            client_secret,
            connector_id: connector.connector.id,
            connector_name: connector.connector.name,
            sources,
            tokens,
            stop_hub,
            serving,
        })
    }

    /// Stops the connector, then the hub.
    pub async fn stop(self) {
        self.runtime.stop().await;
        let _ = self.stop_hub.send(());
        let _ = self.serving.await;
    }
}

/// An HTTPS client that trusts the stage's CA and does not follow redirects.
pub fn http_client(ca_pem: &str) -> anyhow::Result<reqwest::Client> {
    let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca_pem.to_owned()))?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

struct Dirs {
    hub: PathBuf,
    connector: PathBuf,
    tls: PathBuf,
}

impl Dirs {
    /// Fresh hub and connector folders; the certificate folder is kept.
    fn prepare(root: &Path) -> anyhow::Result<Self> {
        let dirs = Self {
            hub: root.join("hub"),
            connector: root.join("connector"),
            tls: root.join("tls"),
        };
        for dir in [&dirs.hub, &dirs.connector] {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot reset {}", dir.display()));
                }
            }
        }
        std::fs::create_dir_all(&dirs.connector)
            .with_context(|| format!("cannot create {}", dirs.connector.display()))?;
        // The hub's folder is its own (0700); the hub refuses a looser one.
        uplink_hub::data_dir::prepare(&dirs.hub)?;
        Ok(dirs)
    }
}

/// Waits until the connector's link is up and registered.
async fn wait_online(hub: &Hub, connector_id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !hub.links.is_online(connector_id) {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the demo connector did not link to the demo hub within a minute");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

pub fn random_secret(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}
