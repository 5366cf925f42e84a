//! The tray process: starts the connector and its bridge, puts the tray on the session bus and
//! carries out what the tray and a second launch ask for, until Quit.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc;
use uplink_control::http::{AccessToken, commands_router};
use uplink_control::{Alerts, Control, ControlError, HostKind};

use crate::bridge::{self, BridgeAddress};
use crate::instance::{self, Claim};
use crate::sni::{self, Pictures, UplinkTray};
use crate::view::{TrayAction, tray_view};
use crate::windows::Windows;
use crate::{Options, autostart, notify};

/// How long Quit waits for the connector to close its link before the process ends anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Runs the desktop app until the user quits from the tray (or the process is told to stop).
/// `started` is when the process began, for the start-up time in the log.
pub fn run(options: Options, started: Instant) -> anyhow::Result<()> {
    crate::init_logging();
    // Two workers: the tray, the bridge and an idle link need little, and each worker's stack
    // and arena count against the memory of a process that sits in the tray all day.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(options, started))
}

async fn serve(options: Options, started: Instant) -> anyhow::Result<()> {
    let data_dir = match options.data_dir {
        Some(dir) => dir,
        None => crate::default_data_dir().context("no home folder to keep Uplink's data in")?,
    };
    let (actions, mut requested) = mpsc::unbounded_channel();

    // A second launch hands over to the first before anything else starts.
    let _instance = match instance::claim(actions.clone()).await {
        Ok(Claim::First(connection)) => Some(connection),
        Ok(Claim::Running) => {
            tracing::info!("Uplink is running already: asked it to show its window");
            return Ok(());
        }
        Err(error) => {
            tracing::warn!(%error, "no session bus: a second launch will not find this one");
            None
        }
    };

    tracing::info!(data_dir = %data_dir.display(), "starting the connector");
    let control = Control::start(HostKind::Desktop, data_dir.clone());
    if options.local_hub {
        tokio::spawn(crate::link_local_hub(control.clone()));
    }

    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .context("cannot open the loopback bridge for the window")?;
    let token = AccessToken::generate();
    let address = BridgeAddress {
        url: format!("http://{}", listener.local_addr()?),
        token: token.expose().to_owned(),
    };
    bridge::publish(&data_dir, &address)?;
    let bridge = commands_router(control.clone(), token);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, bridge).await {
            tracing::error!(%error, "the window bridge stopped");
        }
    });

    let pictures = Pictures::decode()?;
    let view = tray_view(&control.status(), autostart::enabled());
    let tray = match sni::spawn(UplinkTray::new(view, pictures, actions.clone())).await {
        Ok(tray) => {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "tray ready"
            );
            Some(tray)
        }
        Err(error) => {
            tracing::warn!(%error, "no tray icon: the session has no bus to put it on");
            None
        }
    };
    let redraw = mpsc::unbounded_channel::<()>();
    tokio::spawn(follow_status(control.clone(), tray.clone(), redraw.1));

    let windows = Windows::new(data_dir.clone()).context("cannot locate the window program")?;
    if options.show_window {
        windows.open();
    }

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for termination")?;
    loop {
        let action = tokio::select! {
            action = requested.recv() => action,
            _ = terminate.recv() => None,
            _ = tokio::signal::ctrl_c() => None,
        };
        match action {
            // Signing in happens in the system browser, started from the window's Account page.
            Some(TrayAction::Open | TrayAction::SignIn) => windows.open(),
            Some(TrayAction::Reconnect) => in_background("reconnect", {
                let control = control.clone();
                async move { control.reconnect().await }
            }),
            Some(TrayAction::Pause) => in_background("pause", {
                let control = control.clone();
                async move { control.set_paused(true).await }
            }),
            Some(TrayAction::Resume) => in_background("resume", {
                let control = control.clone();
                async move { control.set_paused(false).await }
            }),
            Some(TrayAction::StartAtLogin) => {
                autostart::toggle();
                let _ = redraw.0.send(());
            }
            Some(TrayAction::Quit) => {
                tracing::info!("quit from the tray");
                break;
            }
            None => {
                tracing::info!("told to stop");
                break;
            }
        }
    }

    bridge::withdraw(&data_dir, &address);
    if tokio::time::timeout(SHUTDOWN_GRACE, control.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the connector did not stop in time; exiting anyway");
    }
    // The tray goes last: the click on Quit gets its reply on the bus before the item leaves.
    if let Some(tray) = &tray {
        tray.shutdown().await;
    }
    Ok(())
}

/// Runs a control command in the background; the tray has no one to show an error to but the
/// log (the status change it causes, or not, reaches the tray and the window anyway).
fn in_background<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, ControlError>> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Err(error) = call.await {
            tracing::warn!(code = %error.code, %error, "tray: {what} failed");
        }
    });
}

/// Keeps the tray current and raises the notifications each status change calls for. Driven by
/// the status watch (and a nudge when start at login changes), so an idle app does no work.
async fn follow_status(
    control: Control,
    tray: Option<ksni::Handle<UplinkTray>>,
    mut nudged: mpsc::UnboundedReceiver<()>,
) {
    let mut statuses = control.watch();
    let mut alerts = Alerts::default();
    let mut drawn = None;
    // Read once, and again only when the owner toggles it: not on every status change.
    let mut start_at_login = autostart::enabled();
    loop {
        let status = statuses.borrow_and_update().clone();
        if let Some(tray) = &tray {
            // Only a change the tray shows is sent over the bus.
            let view = tray_view(&status, start_at_login);
            if drawn.as_ref() != Some(&view) {
                tracing::debug!(tooltip = %view.tooltip, "tray updated");
                drawn = Some(view.clone());
                tray.update(|tray| tray.view = view).await;
            }
        }
        for alert in alerts.observe(&status) {
            notify::show(&alert).await;
        }
        tokio::select! {
            changed = statuses.changed() => if changed.is_err() { break },
            Some(()) = nudged.recv() => start_at_login = autostart::enabled(),
        }
    }
    tracing::debug!("the control surface stopped: no more status changes");
}
