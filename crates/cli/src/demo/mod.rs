//! `uplink demo`: a hub, a connector with a simulated data source, a demo user, app and
//! connector, all on loopback with a self-signed certificate, in one process. The demo app's
//! access token comes from the real consent flow, so everything it shows is the product working.

// The demo's one job is to print what to try next.
#![allow(clippy::print_stdout)]

mod consent;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use uplink_hub::{Hub, HubConfig, NewApp};

/// Where the demo keeps its state, and where it listens.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder for the demo's hub, connector and certificates. The hub and connector state is
    /// started afresh on every run; the certificate authority is kept so a browser that trusts
    /// it keeps trusting it.
    #[arg(long, env = "UPLINK_DEMO_DIR", default_value = "uplink-demo")]
    data_dir: PathBuf,
    /// Address the hub listens on (loopback). Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
}

const DEMO_USER: &str = "demo";
const DEMO_APP: &str = "demo-app";
const DEMO_REDIRECT: &str = "http://127.0.0.1/callback";
/// What the demo app may ask for and is granted: reading values and searching tags.
const DEMO_SCOPE: &str = "data.read tags.read";

/// What scripts need to drive the demo; written to `DATA_DIR/demo.json` (owner-only: it holds
/// the demo's credentials).
#[derive(Debug, Serialize)]
struct DemoInfo {
    hub_url: String,
    ca_cert: PathBuf,
    user: UserInfo,
    app: AppInfo,
    connector: ConnectorInfo,
    data_sources: Vec<SourceInfo>,
    access_token: String,
    refresh_token: Option<String>,
    access_token_expires_in: u64,
}

#[derive(Debug, Serialize)]
struct UserInfo {
    username: String,
    password: String,
}

#[derive(Debug, Serialize)]
struct AppInfo {
    client_id: String,
    client_secret: String,
    redirect_uri: String,
}

#[derive(Debug, Serialize)]
struct ConnectorInfo {
    id: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct SourceInfo {
    id: String,
    name: String,
    kind: String,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    uplink_tls::install_crypto_provider();
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "the demo listens on loopback only ({} is not); use `uplink hub serve` to serve a network",
            args.listen
        );
    }
    let dirs = DemoDirs::prepare(&args.data_dir)?;
    let ca =
        uplink_tls::LoopbackCa::load_or_generate(&dirs.tls, &["localhost", "127.0.0.1", "::1"])
            .with_context(|| format!("cannot prepare certificates in {}", dirs.tls.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another demo running?)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let issuer = format!("https://{addr}");

    // An hour-long access token, so the printed curl command keeps working while you explore.
    let mut config = HubConfig::new(issuer.clone());
    config.access_token_ttl = 3600;
    let hub = Arc::new(
        Hub::open(&dirs.hub, config)
            .await
            .context("cannot open the demo hub's store")?,
    );
    let password = random_secret(12);
    hub.add_user(DEMO_USER, password.clone()).await?;
    let app = hub
        .add_app(NewApp {
            name: "Uplink demo app".into(),
            client_id: Some(DEMO_APP.into()),
            confidential: true,
            redirect_uris: vec![DEMO_REDIRECT.into()],
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

    let link = site::start_connector(site::Site {
        hub_url: issuer.clone(),
        ca_pem: ca.ca_pem().to_owned(),
        data_dir: dirs.connector.clone(),
        connector_id: connector.connector.id.clone(),
        credential: connector.credential.expose().to_owned(),
    })
    .await?;
    wait_online(&hub, &connector.connector.id).await?;

    let sources = hub
        .store
        .sources_owned_by(&hub_user_id(&hub).await?)
        .await?;
    let tls = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))?;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let source_ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
    let tokens = consent::ConsentFlow {
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

    let ca_cert = dirs.tls.join("ca.pem");
    let info = DemoInfo {
        hub_url: issuer.clone(),
        ca_cert: ca_cert.clone(),
        user: UserInfo {
            username: DEMO_USER.into(),
            password,
        },
        app: AppInfo {
            client_id: DEMO_APP.into(),
            client_secret,
            redirect_uri: DEMO_REDIRECT.into(),
        },
        connector: ConnectorInfo {
            id: connector.connector.id.clone(),
            name: connector.connector.name.clone(),
        },
        data_sources: sources
            .iter()
            .map(|s| SourceInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind.clone(),
            })
            .collect(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_token_expires_in: tokens.expires_in,
    };
    let info_path = args.data_dir.join("demo.json");
    write_private(&info_path, &serde_json::to_vec_pretty(&info)?)?;
    print_welcome(&info, &info_path);

    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping the demo"),
        outcome = serving => {
            outcome.context("the demo hub failed")?.context("the demo hub stopped")?;
        }
    }
    link.stop().await;
    let _ = stop_hub.send(());
    Ok(())
}

struct DemoDirs {
    hub: PathBuf,
    connector: PathBuf,
    tls: PathBuf,
}

impl DemoDirs {
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
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(dirs)
    }
}

async fn hub_user_id(hub: &Hub) -> anyhow::Result<String> {
    hub.store
        .users()
        .await?
        .into_iter()
        .find(|u| u.username == DEMO_USER)
        .map(|u| u.id)
        .context("the demo user vanished")
}

/// Waits until the demo connector's link is up and registered.
async fn wait_online(hub: &Hub, connector_id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !site::is_online(hub, connector_id) {
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the demo connector did not link to the demo hub within a minute");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn print_welcome(info: &DemoInfo, info_path: &Path) {
    let source = &info.data_sources[0];
    let ca = info.ca_cert.display();
    let lines = [
        String::new(),
        "Uplink demo — hub, connector and a simulated data source, linked over TLS on loopback"
            .into(),
        String::new(),
        format!("  hub            {}", info.hub_url),
        format!("  CA certificate {ca}"),
        format!(
            "  sign in as     {} / {}",
            info.user.username, info.user.password
        ),
        format!(
            "  demo app       client_id {}  client_secret {}",
            info.app.client_id, info.app.client_secret
        ),
        format!("  data source    {} ({})", source.name, source.id),
        format!("  details        {}", info_path.display()),
        String::new(),
        "The demo app holds an access token from the real consent flow. Read the data source:"
            .into(),
        String::new(),
        format!(
            "  curl --cacert {ca} -H 'Authorization: Bearer {}' \\\n    '{}/api/v1/sources/{}/snapshot?tags=sim.sinusoid.1'",
            info.access_token, info.hub_url, source.id
        ),
        String::new(),
        format!(
            "Revoke it at {}/account/settings and the next request is refused. Ctrl-C stops the demo.",
            info.hub_url
        ),
    ];
    for line in lines {
        println!("{line}");
    }
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(".demo.json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn random_secret(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

mod site {
    //! The demo's connector: the real runtime with its embedded simulated data source, linked
    //! with an administrator-issued credential.

    use anyhow::Context;
    use uplink_connector::credentials::{LinkCredentials, LinkSecret};
    use uplink_connector::runtime::{ConnectorRuntime, RuntimeOptions};
    use uplink_hub::Hub;
    use uplink_hub::relay::ConnectorRouter;

    pub struct Site {
        pub hub_url: String,
        pub ca_pem: String,
        pub data_dir: std::path::PathBuf,
        pub connector_id: String,
        pub credential: String,
    }

    pub async fn start_connector(site: Site) -> anyhow::Result<ConnectorRuntime> {
        let runtime = ConnectorRuntime::start(RuntimeOptions::new(&site.data_dir))
            .await
            .context("the demo connector did not start")?;
        runtime
            .sign_in(LinkCredentials {
                hub_url: site.hub_url,
                connector_id: site.connector_id,
                ca_pem: Some(site.ca_pem),
                secret: LinkSecret::ClientCredential {
                    credential: site.credential,
                },
            })
            .await
            .context("the demo connector could not sign in")?;
        Ok(runtime)
    }

    pub fn is_online(hub: &Hub, connector_id: &str) -> bool {
        hub.links.is_online(connector_id)
    }
}
