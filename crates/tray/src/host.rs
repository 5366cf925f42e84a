//! The tray process: starts the connector and its bridge, puts the tray on the session bus and
//! runs the tray loop ([`TrayLoop`]) with the StatusNotifierItem host until Quit.

// Each function here stays simple enough to read at a glance (clippy's default bound, 25).
#![warn(clippy::cognitive_complexity)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use uplink_control::http::{AccessToken, commands_router};
use uplink_control::{Control, HostKind};

use crate::bridge::{self, BridgeAddress};
use crate::instance::{self, Claim};
use crate::sni::SniHost;
use crate::tray_loop::{TrayHost as _, TrayLoop};
use crate::view::TrayAction;
use crate::{Options, TRAY_PROGRAM};

/// How long Quit waits for the connector to close its link before the process ends anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the desktop app until the user quits from the tray (or the process is told to stop).
/// `started` is when the process began, for the start-up time in the log.
pub fn run(options: Options, started: Instant) -> anyhow::Result<()> {
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => crate::default_data_dir().context("no home folder to keep Uplink's data in")?,
    };
    crate::init_logging(TRAY_PROGRAM, Some(&data_dir));
    // Two workers: the tray, the bridge and an idle link need little, and each worker's stack
    // and arena count against the memory of a process that sits in the tray all day.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(options, data_dir, started))
}

/// Starts everything, runs the tray loop (wait for the next event, handle it) until it ends,
/// and stops everything.
async fn serve(options: Options, data_dir: PathBuf, started: Instant) -> anyhow::Result<()> {
    let (actions, requested) = mpsc::unbounded_channel();
    // A second launch hands over to the first before anything else starts.
    let Some(_instance) = claim_instance(actions.clone()).await else {
        return Ok(());
    };
    let stop = stop_signal()?;
    let control = start_control(&options, &data_dir);
    let bridge = open_bridge(&control, &data_dir).await?;
    let host = start_tray(&options, &control, &data_dir, actions, started).await?;

    let mut tray = TrayLoop::new(control.clone(), host);
    tray.run(control.watch(), requested, stop).await;

    bridge::withdraw(&data_dir, &bridge);
    stop_connector(&control).await;
    // The tray goes last: the click on Quit gets its reply on the bus before the item leaves.
    tray.host().shutdown().await;
    Ok(())
}

/// Starts the connector's control surface (and the local hub when asked).
fn start_control(options: &Options, data_dir: &Path) -> Control {
    tracing::info!(data_dir = %data_dir.display(), "starting the connector");
    let control = Control::start(HostKind::Desktop, data_dir.to_owned());
    if options.local_hub {
        tokio::spawn(crate::link_local_hub(control.clone()));
    }
    control
}

/// Puts the tray up, and opens the window if asked to at start.
async fn start_tray(
    options: &Options,
    control: &Control,
    data_dir: &Path,
    actions: mpsc::UnboundedSender<TrayAction>,
    started: Instant,
) -> anyhow::Result<SniHost> {
    let mut host = SniHost::start(control, data_dir, actions)
        .await
        .context("cannot start the tray")?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "tray ready"
    );
    if options.show_window {
        host.open_window();
    }
    Ok(host)
}

/// Claims the session's one instance: `None` when another process holds it (and was asked to
/// show its window); else the bus connection holding the name, if there is a bus.
async fn claim_instance(
    actions: mpsc::UnboundedSender<TrayAction>,
) -> Option<Option<zbus::Connection>> {
    match instance::claim(actions).await {
        Ok(Claim::First(connection)) => Some(Some(connection)),
        Ok(Claim::Running) => {
            tracing::info!("Uplink is running already: asked it to show its window");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "no session bus: a second launch will not find this one");
            Some(None)
        }
    }
}

/// Resolves when the process is told to stop (SIGTERM, or Ctrl-C).
fn stop_signal() -> anyhow::Result<impl Future<Output = ()>> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for termination")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    })
}

/// Serves the control commands on a loopback bridge for the window and publishes its address.
async fn open_bridge(control: &Control, data_dir: &Path) -> anyhow::Result<BridgeAddress> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot open the loopback bridge for the window")?;
    let token = AccessToken::generate();
    let address = BridgeAddress {
        url: format!("http://{}", listener.local_addr()?),
        token: token.expose().to_owned(),
    };
    bridge::publish(data_dir, &address)?;
    let bridge = commands_router(control.clone(), token);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, bridge).await {
            tracing::error!(%error, "the window bridge stopped");
        }
    });
    Ok(address)
}

async fn stop_connector(control: &Control) {
    if tokio::time::timeout(SHUTDOWN_GRACE, control.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the connector did not stop in time; exiting anyway");
    }
}
