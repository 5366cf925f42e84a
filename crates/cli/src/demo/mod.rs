//! `uplink demo`: a hub, a connector with a simulated data source, a demo user, app and
//! connector, all on loopback with a self-signed certificate, in one process. The demo app's
//! access token comes from the real consent flow, so everything it shows is the product working.

// The demo's one job is to print what to try next.
#![allow(clippy::print_stdout)]

mod consent;
pub mod stage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use uplink_signalr::Transport;

use self::stage::{
    DEMO_APP, DEMO_REDIRECT, DEMO_RETURNED_PATH, DEMO_SCOPE, DEMO_USER, Stage, StageOptions,
    random_secret,
};

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
    let stage = Stage::start(StageOptions {
        data_dir: args.data_dir.clone(),
        listen: args.listen,
        transports: Transport::ALL.to_vec(),
        // An hour-long access token, so the printed curl command keeps working while you explore.
        access_token_ttl: 3600,
    })
    .await?;
    let info = DemoInfo {
        hub_url: stage.issuer.clone(),
        ca_cert: stage.ca_cert.clone(),
        user: UserInfo {
            username: DEMO_USER.into(),
            password: stage.password.clone(),
        },
        app: AppInfo {
            client_id: DEMO_APP.into(),
            client_secret: stage.client_secret.clone(),
            redirect_uri: DEMO_REDIRECT.into(),
        },
        connector: ConnectorInfo {
            id: stage.connector_id.clone(),
            name: stage.connector_name.clone(),
        },
        data_sources: stage
            .sources
            .iter()
            .map(|s| SourceInfo {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind.clone(),
            })
            .collect(),
        access_token: stage.tokens.access_token.clone(),
        refresh_token: stage.tokens.refresh_token.clone(),
        access_token_expires_in: stage.tokens.expires_in,
    };
    let info_path = args.data_dir.join("demo.json");
    write_private(&info_path, &serde_json::to_vec_pretty(&info)?)?;
    print_welcome(&info, &info_path);

    let mut stage = stage;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping the demo"),
        outcome = &mut stage.serving => {
            outcome.context("the demo hub failed")?.context("the demo hub stopped")?;
        }
    }
    stage.stop().await;
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
        format!("  consent page   {}", consent_url(&info.hub_url)),
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

/// An authorization request of the demo app that a person can open in a browser: signed in as
/// the demo user, Allow or Deny lands on the hub's page that says what happened. Its PKCE
/// challenge is of a verifier nobody keeps: the demo app never redeems the code.
fn consent_url(hub_url: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", DEMO_APP)
        .append_pair("redirect_uri", &format!("{hub_url}{DEMO_RETURNED_PATH}"))
        .append_pair("scope", DEMO_SCOPE)
        .append_pair("state", "demo")
        .append_pair("code_challenge", &random_secret(32))
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{hub_url}/oauth/authorize?{query}")
}

/// Writes `bytes` to `path` atomically, readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(uplink_files::write_atomically(
        path,
        bytes,
        uplink_files::Access::OwnerOnly,
    )?)
}
