//! `uplink connector`: run the site connector headless (a service on a server), sign it in to
//! a hub, show what the running connector is doing, and edit its local veto.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use uplink_connector::credentials::{
    CredentialStore, LinkCredentials, LinkSecret, generate_connector_id,
};
use uplink_connector::oauth::OAuthClient;
use uplink_connector::policy::PolicyStore;
use uplink_connector::runtime::{
    self, ConnectorRuntime, ConnectorStatus, LinkState, RuntimeOptions,
};
use uplink_connector::{ConfigStore, ConnectorConfig};

/// Writes one line to standard output (what the command reports), failing the command when
/// standard output is gone.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*)?
    };
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connector's data dir (configuration, credentials, policy, activity trail, status).
    #[arg(long, env = "UPLINK_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the connector until Ctrl-C (the default): link to the hub and serve its queries.
    Run {
        /// Use only this transport instead of the fastest that works (for sites whose proxies
        /// misbehave with the others).
        #[arg(long, value_enum)]
        transport: Option<TransportChoice>,
        /// Address of the Prometheus metrics listener (plain HTTP, `GET /metrics`), or `off`.
        #[arg(long, value_name = "ADDR|off", default_value = DEFAULT_METRICS)]
        metrics_listen: crate::service::MetricsListen,
    },
    /// Sign this connector in to a hub with the device flow: approve the printed code on the
    /// hub in a browser, from any machine.
    Login {
        /// The hub's address, e.g. https://hub.example.
        #[arg(long)]
        hub: String,
        /// A PEM file with the CA certificate to trust for this hub (default: the system's).
        #[arg(long, value_name = "PEM")]
        ca_cert: Option<PathBuf>,
    },
    /// Use a connector an administrator registered on the hub (`uplink hub connector add`).
    Register {
        /// The hub's address, e.g. https://hub.example.
        #[arg(long)]
        hub: String,
        /// The connector id the administrator was given (con_…).
        #[arg(long)]
        id: String,
        /// A file holding the connector's credential (never pass a secret as an argument).
        #[arg(long, value_name = "FILE")]
        credential_file: PathBuf,
        /// A PEM file with the CA certificate to trust for this hub (default: the system's).
        #[arg(long, value_name = "PEM")]
        ca_cert: Option<PathBuf>,
    },
    /// Show what the running connector is doing.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show or change the local veto: apps and data sources refused on site, whatever the hub
    /// granted.
    Policy {
        #[command(subcommand)]
        change: PolicyChange,
    },
}

#[derive(Debug, clap::Subcommand)]
enum PolicyChange {
    /// Print the policy.
    Show,
    /// Refuse an app (by client id) on every data source.
    BlockApp {
        /// The app's client id.
        app_id: String,
    },
    /// Lift the block on an app.
    UnblockApp {
        /// The app's client id.
        app_id: String,
    },
    /// Refuse every app on a data source (it stays refused when renamed).
    BlockSource {
        /// The data source's name.
        name: String,
    },
    /// Lift the block on a data source.
    UnblockSource {
        /// The data source's name.
        name: String,
    },
}

impl Args {
    /// The data dir of a connector this command runs (its log files go there); `None` for the
    /// other subcommands, whose few lines go to standard error only.
    pub fn serving_data_dir(&self) -> Option<&Path> {
        match self.command {
            None | Some(Command::Run { .. }) => self.data_dir.as_deref(),
            Some(_) => None,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .context("the connector needs a data dir: pass --data-dir DIR or set UPLINK_DATA_DIR")?;
    let default_run = || Command::Run {
        transport: None,
        metrics_listen: DEFAULT_METRICS.parse().expect("a valid default"),
    };
    match args.command.unwrap_or_else(default_run) {
        Command::Run {
            transport,
            metrics_listen,
        } => run_connector(&data_dir, transport, metrics_listen).await,
        Command::Login { hub, ca_cert } => login(&data_dir, &hub, ca_cert.as_deref()).await,
        Command::Register {
            hub,
            id,
            credential_file,
            ca_cert,
        } => register(&data_dir, &hub, &id, &credential_file, ca_cert.as_deref()).await,
        Command::Status { json } => status(&data_dir, json),
        Command::Policy { change } => policy(&data_dir, change),
    }
}

/// The transports a user can pin the link to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TransportChoice {
    Websockets,
    ServerSentEvents,
    LongPolling,
}

impl From<TransportChoice> for uplink_signalr::Transport {
    fn from(choice: TransportChoice) -> Self {
        match choice {
            TransportChoice::Websockets => Self::WebSockets,
            TransportChoice::ServerSentEvents => Self::ServerSentEvents,
            TransportChoice::LongPolling => Self::LongPolling,
        }
    }
}

/// On SIGHUP, or when the `--config` file changes, applies the log level and names what changed
/// that needs a restart (the transport, the metrics listener).
async fn reload_when_asked(
    mut requests: crate::service::ReloadRequests,
    transport: Option<TransportChoice>,
    metrics_listen: crate::service::MetricsListen,
) {
    while let Some((cause, cli)) = requests.next_settings().await {
        let crate::Command::Connector(args) = cli.command else {
            continue;
        };
        if let Some(Command::Run {
            transport: now_transport,
            metrics_listen: now_metrics,
        }) = args.command
        {
            let mut changed = Vec::new();
            if format!("{now_transport:?}") != format!("{transport:?}") {
                changed.push("transport");
            }
            if format!("{now_metrics:?}") != format!("{metrics_listen:?}") {
                changed.push("metrics-listen");
            }
            if !changed.is_empty() {
                tracing::warn!(cause, changed = %changed.join(", "), "reload: these settings changed and take effect at the next restart");
            }
        }
    }
}

/// Where a connector serves its metrics unless told otherwise: loopback, beside a hub's 9464.
const DEFAULT_METRICS: &str = "127.0.0.1:9465";

async fn run_connector(
    data_dir: &Path,
    transport: Option<TransportChoice>,
    metrics_listen: crate::service::MetricsListen,
) -> anyhow::Result<()> {
    // A service that cannot link would idle forever: say so at once instead.
    if CredentialStore::new(data_dir).load()?.is_none() {
        return Err(uplink_connector::LinkError::SignedOut.into());
    }
    let mut options = RuntimeOptions::new(data_dir);
    if let Some(only) = transport {
        options.transports = vec![only.into()];
    }
    let runtime = ConnectorRuntime::start(options)
        .await
        .with_context(|| format!("cannot start the connector in {}", data_dir.display()))?;
    let mut status = runtime.status();
    let mut shown = Shown::default();
    let _watchdog = crate::service::watchdog();
    let runtime = std::sync::Arc::new(runtime);
    let _metrics = {
        let runtime = runtime.clone();
        crate::service::serve_metrics(metrics_listen, move || {
            (
                uplink_connector::runtime::metrics::CONTENT_TYPE,
                runtime.metrics_text(),
            )
        })
        .await
    };
    let config = crate::service::reread().ok().and_then(|cli| cli.config);
    let requests = crate::service::ReloadRequests::listen(config.as_deref());
    let _reloads = tokio::spawn(reload_when_asked(requests, transport, metrics_listen));
    let mut ready = false;
    shown.log(&status.borrow_and_update());
    announce(&status.borrow(), &mut ready);
    // One listener for the whole run: a signal that arrives while a status change is being
    // logged must not be missed.
    let stop = crate::service::stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            changed = status.changed() => {
                if changed.is_err() { break; }
                shown.log(&status.borrow_and_update());
                announce(&status.borrow(), &mut ready);
            }
            () = &mut stop => {
                tracing::info!("stopping the connector");
                break;
            }
        }
    }
    crate::service::stopping();
    // A second Ctrl-C does not wait for the link to close.
    tokio::select! {
        () = runtime.stop() => {}
        () = crate::service::stop_requested() => tracing::warn!("stopped without waiting for the link to close"),
    }
    Ok(())
}

/// Tells a service manager how the link is: ready the first time it is up (so `systemctl start`
/// returns once the connector serves), and the link's state as the status line ever after.
fn announce(status: &ConnectorStatus, ready: &mut bool) {
    let line = match (&status.transport, &status.last_error) {
        (Some(transport), _) if status.link == LinkState::Connected => {
            format!("linked to the hub over {transport}")
        }
        (_, Some(error)) => format!("{}: {error}", status.link),
        _ => status.link.to_string(),
    };
    if !*ready && status.link == LinkState::Connected {
        *ready = true;
        crate::service::ready(&line);
    } else {
        crate::service::status(&line);
    }
}

/// What was last logged, so only changes of the link are logged.
#[derive(Default, PartialEq)]
struct Shown {
    link: Option<String>,
    transport: Option<String>,
    error: Option<String>,
    sources: usize,
}

impl Shown {
    fn log(&mut self, status: &ConnectorStatus) {
        let now = Shown {
            link: Some(status.link.to_string()),
            transport: status.transport.clone(),
            error: status.last_error.clone(),
            sources: status.sources.len(),
        };
        if now == *self {
            return;
        }
        let skipped: Vec<String> = status
            .skipped_transports
            .iter()
            .map(|s| format!("{}: {}", s.transport, s.reason))
            .collect();
        tracing::info!(
            link = %status.link,
            hub = status.hub_url.as_deref().unwrap_or("-"),
            connector = status.connector_id.as_deref().unwrap_or("-"),
            transport = status.transport.as_deref().unwrap_or("-"),
            skipped = ?skipped,
            sources = status.sources.len(),
            reconnects = status.reconnects,
            last_error = status.last_error.as_deref().unwrap_or("-"),
            "connector"
        );
        *self = now;
    }
}

fn trust_for(ca_cert: Option<&Path>) -> anyhow::Result<Option<String>> {
    ca_cert
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))
        })
        .transpose()
}

fn oauth_client(hub: &str, ca_pem: Option<&str>) -> anyhow::Result<OAuthClient> {
    let url = url_checked(hub)?;
    let trust = match ca_pem {
        Some(pem) => uplink_tls::Trust::CustomCa(pem.to_owned()),
        None => uplink_tls::Trust::Platform,
    };
    let tls = uplink_tls::client_config(&trust).context("the CA certificate cannot be used")?;
    Ok(OAuthClient::new(&url, tls)?)
}

fn url_checked(hub: &str) -> anyhow::Result<String> {
    let trimmed = hub.trim_end_matches('/');
    if !trimmed.starts_with("https://") {
        bail!("--hub must be an https:// address (the link is always encrypted), not '{hub}'");
    }
    Ok(trimmed.to_owned())
}

async fn login(data_dir: &Path, hub: &str, ca_cert: Option<&Path>) -> anyhow::Result<()> {
    let ca_pem = trust_for(ca_cert)?;
    let hub = url_checked(hub)?;
    let oauth = oauth_client(&hub, ca_pem.as_deref())?;
    let authorization = oauth
        .device_authorization()
        .await
        .with_context(|| format!("cannot start signing in to {hub}"))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "To sign this connector in, open")?;
    writeln!(out, "  {}", authorization.verification_uri)?;
    writeln!(out, "and enter the code")?;
    writeln!(out, "  {}", authorization.user_code)?;
    if let Some(complete) = &authorization.verification_uri_complete {
        writeln!(out, "(or open {complete})")?;
    }
    writeln!(
        out,
        "Waiting for approval (the code expires in {} minutes)…",
        authorization.expires_in.div_ceil(60)
    )?;
    out.flush()?;
    drop(out);
    let issued = oauth
        .poll_device(&authorization)
        .await
        .context("signing in did not complete")?;
    let refresh_token = issued
        .refresh_token
        .context("the hub issued no refresh token for the connector")?;
    let store = CredentialStore::new(data_dir);
    // Keep the connector's id across sign-ins to the same hub: its grants refer to it.
    let previous = store.load().ok().flatten();
    let connector_id = match &previous {
        Some(previous) if previous.hub_url == hub => previous.connector_id.clone(),
        _ => generate_connector_id(),
    };
    let credentials = LinkCredentials {
        hub_url: hub.clone(),
        connector_id: connector_id.clone(),
        ca_pem,
        secret: LinkSecret::RefreshToken { refresh_token },
    };
    // The sign-in this one replaces is ended at the hub, which then lets this one register
    // the connector.
    if let Some(previous) = &previous {
        uplink_connector::credentials::end_replaced_sign_in(previous, &credentials).await;
    }
    store.save(&credentials)?;
    say!("Signed in to {hub} as connector {connector_id}.");
    say!(
        "The refresh token is kept in {} (owner-only file, written atomically; this build uses no OS keyring).",
        store.path().display()
    );
    say!(
        "Start the connector with: uplink connector run --data-dir {}",
        data_dir.display()
    );
    Ok(())
}

async fn register(
    data_dir: &Path,
    hub: &str,
    id: &str,
    credential_file: &Path,
    ca_cert: Option<&Path>,
) -> anyhow::Result<()> {
    if !id.starts_with("con_") {
        bail!("--id must be the connector id the administrator was given (con_…), not '{id}'");
    }
    let hub = url_checked(hub)?;
    let credential = std::fs::read_to_string(credential_file)
        .with_context(|| {
            format!(
                "cannot read the credential file {}",
                credential_file.display()
            )
        })?
        .trim()
        .to_owned();
    if credential.is_empty() {
        bail!("the credential file {} is empty", credential_file.display());
    }
    let ca_pem = trust_for(ca_cert)?;
    let oauth = oauth_client(&hub, ca_pem.as_deref())?;
    oauth
        .client_credentials(id, &credential)
        .await
        .with_context(|| format!("the hub at {hub} did not accept connector {id}'s credential"))?;
    let store = CredentialStore::new(data_dir);
    store.save(&LinkCredentials {
        hub_url: hub.clone(),
        connector_id: id.to_owned(),
        ca_pem,
        secret: LinkSecret::ClientCredential { credential },
    })?;
    say!("Connector {id} is set up for {hub}; the hub accepted its credential.");
    say!(
        "The credential is kept in {} (owner-only file, written atomically; this build uses no OS keyring).",
        store.path().display()
    );
    Ok(())
}

fn status(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let Some(status) = runtime::read_status_file(data_dir)? else {
        if json {
            say!("{}", serde_json::json!({ "running": false }));
        } else {
            say!(
                "No connector is running with the data dir {}.",
                data_dir.display()
            );
        }
        return Ok(());
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "link:        {}", status.link)?;
    writeln!(
        out,
        "hub:         {}",
        status.hub_url.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "connector:   {}",
        status.connector_id.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "transport:   {}",
        status.transport.as_deref().unwrap_or("-")
    )?;
    for skipped in &status.skipped_transports {
        writeln!(out, "  skipped {}: {}", skipped.transport, skipped.reason)?;
    }
    if let Some(since) = status.connected_since {
        writeln!(out, "linked since {}", since.to_rfc3339())?;
    }
    if let Some(rtt) = status.round_trip_ms {
        writeln!(out, "round trip:  {rtt:.1} ms")?;
    }
    writeln!(out, "reconnects:  {}", status.reconnects)?;
    if let Some(error) = &status.last_error {
        writeln!(out, "last error:  {error}")?;
    }
    writeln!(out, "data sources:")?;
    for source in &status.sources {
        let blocked = if source.blocked_on_site {
            ", blocked on site"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} ({}, {}{blocked})",
            source.name, source.kind, source.health.state
        )?;
        for app in &source.apps {
            let blocked = if app.blocked_on_site {
                " — blocked on site"
            } else {
                ""
            };
            writeln!(out, "    app {} ({}){blocked}", app.app_name, app.app_id)?;
        }
    }
    if !status.recent_activity.is_empty() {
        writeln!(out, "recent queries:")?;
        for record in status.recent_activity.iter().take(10) {
            writeln!(
                out,
                "  {} {} {} on {}: {} ({:.1} ms, {} bytes)",
                record.time.format("%Y-%m-%d %H:%M:%S"),
                record.app_id,
                record.operation,
                record.source,
                record.outcome,
                record.duration_ms,
                record.bytes
            )?;
        }
    }
    Ok(())
}

/// The stable key of the configured data source `name` (the block follows it across a rename).
fn configured_key(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let config = ConfigStore::new(data_dir).load()?;
    if config.source(name).is_err() {
        let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!(
            "this connector has no data source named '{name}' (its data sources: {}); block a source by its current name",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(config.source_key(name))
}

/// The current name of the source whose stable key is `key`; a key no source has any more is
/// shown as it is.
fn source_name(config: &ConnectorConfig, key: &str) -> String {
    config
        .sources
        .iter()
        .find(|s| config.source_key(&s.name) == key)
        .map_or_else(|| key.to_owned(), |s| s.name.clone())
}

fn policy(data_dir: &Path, change: PolicyChange) -> anyhow::Result<()> {
    let store = PolicyStore::new(data_dir);
    let mut policy = store.load()?;
    let message = match &change {
        PolicyChange::Show => {
            // Blocked sources are kept by stable key; the names are what the owner knows.
            let config = ConfigStore::new(data_dir).load()?;
            let names: Vec<String> = policy
                .blocked_sources
                .iter()
                .map(|key| source_name(&config, key))
                .collect();
            let mut shown = serde_json::to_value(&policy)?;
            shown["blockedSourceNames"] = serde_json::json!(names);
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &shown)?;
            writeln!(out)?;
            return Ok(());
        }
        PolicyChange::BlockApp { app_id } => {
            if policy.block_app(app_id) {
                format!("App '{app_id}' is now refused on this connector.")
            } else {
                format!("App '{app_id}' was already blocked.")
            }
        }
        PolicyChange::UnblockApp { app_id } => {
            if policy.unblock_app(app_id) {
                format!("App '{app_id}' is no longer blocked on this connector.")
            } else {
                format!("App '{app_id}' was not blocked.")
            }
        }
        PolicyChange::BlockSource { name } => {
            if policy.block_source(&configured_key(data_dir, name)?) {
                format!("Data source '{name}' is now refused to every app.")
            } else {
                format!("Data source '{name}' was already blocked.")
            }
        }
        PolicyChange::UnblockSource { name } => {
            if policy.unblock_source(&configured_key(data_dir, name)?) {
                format!("Data source '{name}' is no longer blocked.")
            } else {
                format!("Data source '{name}' was not blocked.")
            }
        }
    };
    store.save(&policy)?;
    say!("{message} (a running connector applies it to its next query)");
    Ok(())
}
