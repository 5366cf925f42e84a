//! The embedded default: a hub inside the app, on loopback, over TLS with its own certificate
//! authority, with this connector registered and a demo app that holds a grant on its sources.
//! A first-time user sees the whole product working with nothing else installed. Its state
//! lives in `<data dir>/local-hub/` and survives restarts; the port is kept when it is free.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uplink_hub::relay::ConnectorRouter;
use uplink_hub::{Hub, HubConfig, NewApp};

use crate::{ControlError, ControlErrorCode};

/// The folder, inside the connector's data dir.
pub const LOCAL_HUB_DIR: &str = "local-hub";
/// The demo app's client id.
pub const DEMO_APP: &str = "demo-app";
const DEMO_APP_NAME: &str = "Uplink demo app";
const DEMO_SCOPES: [&str; 2] = ["data.read", "tags.read"];
const OWNER: &str = "owner";
/// The hub's page an app without pages of its own returns the browser to after consent.
const RETURNED_PATH: &str = "/account/returned";
const STATE_FILE: &str = "local-hub.json";

/// What is remembered between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalHubState {
    port: u16,
    owner_id: String,
    connector_id: String,
    demo_granted: bool,
}

/// A connector registered on a fresh local hub: what the runtime signs in with.
pub(crate) struct Enrolment {
    pub connector_id: String,
    pub credential: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrolment")
            .field("connector_id", &self.connector_id)
            .finish_non_exhaustive()
    }
}

/// The running local hub.
#[derive(Debug)]
pub(crate) struct RunningHub {
    hub: Arc<Hub>,
    dir: PathBuf,
    state: LocalHubState,
    pub url: String,
    pub ca_pem: String,
    stop: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<uplink_hub::Result<()>>>,
}

fn failed(what: &str, error: impl std::fmt::Display) -> ControlError {
    ControlError::new(
        ControlErrorCode::LocalHub,
        format!("the local hub {what}: {error}"),
    )
}

impl RunningHub {
    /// Starts the local hub in `dir`, creating it on first use (then with an [`Enrolment`]).
    pub async fn start(dir: &Path) -> Result<(Self, Option<Enrolment>), ControlError> {
        uplink_tls::install_crypto_provider();
        std::fs::create_dir_all(dir).map_err(|e| failed("cannot create its folder", e))?;
        let ca = uplink_tls::LoopbackCa::load_or_generate(
            &dir.join("tls"),
            &["localhost", "127.0.0.1", "::1"],
        )
        .map_err(|e| failed("cannot prepare its certificate", e))?;
        let saved = load_state(dir);
        if saved.is_none() {
            // A store without its state file cannot be matched to this connector: start afresh.
            match std::fs::remove_dir_all(dir.join("hub")) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed("cannot reset its store", e)),
            }
        }
        let listener = bind(saved.as_ref().map_or(0, |s| s.port)).await?;
        let port = listener
            .local_addr()
            .map_err(|e| failed("cannot listen", e))?
            .port();
        let url = format!("https://127.0.0.1:{port}");
        // The local hub's folder is this app's alone: a looser one (made by an older version)
        // is tightened rather than refused.
        uplink_hub::data_dir::tighten(&dir.join("hub"))
            .map_err(|e| failed("cannot make its store private", e))?;
        let hub = Arc::new(
            Hub::open(&dir.join("hub"), HubConfig::new(url.clone()))
                .await
                .map_err(|e| failed("cannot open its store", e))?,
        );
        let (state, enrolment) = match saved {
            Some(mut state) => {
                state.port = port;
                (state, None)
            }
            None => {
                let (state, enrolment) = enrol(&hub, port).await?;
                (state, Some(enrolment))
            }
        };
        save_state(dir, &state)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = {
            let (chain, key) = (ca.cert_chain_pem(), ca.key_pem().to_owned());
            let hub = hub.clone();
            tokio::spawn(async move {
                uplink_hub::serve(hub, listener, &chain, &key, async {
                    let _ = stopped.await;
                })
                .await
            })
        };
        tracing::info!(%url, "local hub started");
        Ok((
            Self {
                hub,
                dir: dir.to_owned(),
                state,
                url,
                ca_pem: ca.ca_pem().to_owned(),
                stop: Some(stop),
                serving: Some(serving),
            },
            enrolment,
        ))
    }

    /// A one-time link (spent on first use, valid for a minute) that opens the demo app's
    /// consent page already signed in as the local hub's owner, where the owner ticks the data
    /// sources the demo app may read. The owner's password is random and never shown, so this
    /// is the only way into the local hub's pages; the link is minted in process, never over
    /// HTTP, and leads only where it was minted to lead.
    pub async fn demo_consent_link(&self) -> Result<String, ControlError> {
        // Allow and Deny land on the hub's page saying what happened; the port may have
        // changed since the demo app was registered, so its return address is renewed.
        let returned = format!("{}{RETURNED_PATH}", self.url);
        self.hub
            .store
            .set_app_redirect_uris(DEMO_APP, &[DEMO_CALLBACK.to_owned(), returned.clone()])
            .await
            .map_err(|e| failed("cannot update the demo app", e))?;
        let state = uplink_hub::secret::Secret::generate();
        // The demo app never exchanges the code: the owner's Allow records the grant, which
        // is what the demo reads with. A challenge whose verifier nobody holds leaves the code
        // useless to anyone who sees it.
        let challenge = uplink_hub::secret::Secret::generate();
        let next = format!(
            "/oauth/authorize?response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope={}&state={}&code_challenge={}&code_challenge_method=S256",
            query_escape(&returned),
            query_escape(&DEMO_SCOPES.join(" ")),
            state.expose(),
            challenge.expose(),
        );
        self.hub
            .mint_sign_in_link(&self.state.owner_id, &next)
            .map_err(|e| failed("cannot open its consent page", e))
    }

    /// The connector this app registered on the local hub.
    pub fn connector_id(&self) -> &str {
        &self.state.connector_id
    }

    /// Once the connector has linked and announced its sources, grants the demo app on all of
    /// them (once: a revoke by the owner stays revoked).
    pub async fn grant_demo_app(&mut self) -> Result<(), ControlError> {
        if self.state.demo_granted {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let sources = loop {
            let sources = self
                .hub
                .store
                .sources_owned_by(&self.state.owner_id)
                .await
                .map_err(|e| failed("cannot list its data sources", e))?;
            if self.hub.links.is_online(&self.state.connector_id) && !sources.is_empty() {
                break sources;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(failed(
                    "did not see this connector link within a minute",
                    "no data sources were announced",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let ids: Vec<String> = sources.into_iter().map(|s| s.id).collect();
        let scopes: Vec<String> = DEMO_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        self.hub
            .grant(&self.state.owner_id, DEMO_APP, &ids, &scopes)
            .await
            .map_err(|e| failed("cannot grant the demo app", e))?;
        self.state.demo_granted = true;
        save_state(&self.dir, &self.state)
    }

    /// Stops serving.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serving) = self.serving.take() {
            match tokio::time::timeout(Duration::from_secs(5), serving).await {
                Ok(_) => {}
                Err(_) => tracing::warn!("the local hub did not stop within 5 s"),
            }
        }
    }
}

/// The demo app's first redirect URI (it has no page there; Allow from the window returns to
/// the hub's own page instead).
const DEMO_CALLBACK: &str = "http://127.0.0.1/callback";

/// Percent-encodes `value` for a URL's query (everything but unreserved characters).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The saved port when it is still free, else any free port.
async fn bind(port: u16) -> Result<tokio::net::TcpListener, ControlError> {
    let at = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    if port != 0
        && let Ok(listener) = tokio::net::TcpListener::bind(at(port)).await
    {
        return Ok(listener);
    }
    tokio::net::TcpListener::bind(at(0))
        .await
        .map_err(|e| failed("cannot listen on loopback", e))
}

/// Creates the owner, the demo app and this app's connector on a fresh hub.
async fn enrol(hub: &Hub, port: u16) -> Result<(LocalHubState, Enrolment), ControlError> {
    // Nobody signs in to the local hub's pages with this password: the owner's consent is
    // given through the app. It is random so the hub holds no known credential.
    let bytes: [u8; 24] = rand::random();
    let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let owner = hub
        .add_user(OWNER, password)
        .await
        .map_err(|e| failed("cannot create its owner", e))?;
    hub.add_app(NewApp {
        name: DEMO_APP_NAME.into(),
        client_id: Some(DEMO_APP.into()),
        confidential: true,
        redirect_uris: vec![DEMO_CALLBACK.into()],
        scopes: DEMO_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
    })
    .await
    .map_err(|e| failed("cannot register the demo app", e))?;
    let connector = hub
        .add_connector(OWNER, "This computer")
        .await
        .map_err(|e| failed("cannot register this connector", e))?;
    let state = LocalHubState {
        port,
        owner_id: owner.id,
        connector_id: connector.connector.id.clone(),
        demo_granted: false,
    };
    let enrolment = Enrolment {
        connector_id: connector.connector.id,
        credential: connector.credential.expose().to_owned(),
    };
    Ok((state, enrolment))
}

fn load_state(dir: &Path) -> Option<LocalHubState> {
    let bytes = std::fs::read(dir.join(STATE_FILE)).ok()?;
    serde_json::from_slice(&bytes)
        .inspect_err(|error| tracing::warn!(%error, "the local hub's state is unreadable; starting a new one"))
        .ok()
}

fn save_state(dir: &Path, state: &LocalHubState) -> Result<(), ControlError> {
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    uplink_connector::config::write_atomically(&dir.join(STATE_FILE), &json, true)
        .map_err(|e| failed("cannot save its state", e))
}
