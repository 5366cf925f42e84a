//! The one tray loop every platform runs: the status becomes a [`TrayView`] (drawn only when it
//! changes) and the [`Alert`]s it calls for; a click becomes a [`TrayAction`] carried out on the
//! [`Control`]. What differs between platforms — how a view is drawn, how a notification shows,
//! how the window opens, how start at login is kept — is behind [`TrayHost`]: the
//! StatusNotifierItem host on Linux, Tauri's tray elsewhere, a fake one in the tests.

// Each function here stays simple enough to read at a glance (clippy's default bound, 25).
#![warn(clippy::cognitive_complexity)]

use std::future::Future;

use tokio::sync::{mpsc, watch};
use uplink_control::{Alert, Alerts, Control, ControlError, ControlStatus};

use crate::view::{AGE_REFRESH, TrayAction, TrayView, connector_id, hub_page, tray_view};

/// What a platform's tray does for the loop.
pub trait TrayHost: Send {
    /// Shows `view` (called only when it differs from the last one drawn).
    fn draw(&mut self, view: &TrayView) -> impl Future<Output = ()> + Send;
    /// Shows a desktop notification.
    fn notify(&mut self, alert: &Alert) -> impl Future<Output = ()> + Send;
    /// Opens the window, or brings the open one forward.
    fn open_window(&mut self);
    /// Opens `url` (a web address) in the system browser.
    fn open_in_browser(&mut self, url: &str);
    /// Puts `text` on the clipboard.
    fn copy_to_clipboard(&mut self, text: &str);
    /// Whether the app starts at login, as the system says.
    fn starts_at_login(&self) -> bool;
    /// Turns starting at login on if it is off, and off if it is on.
    fn toggle_start_at_login(&mut self);
}

/// What the loop waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrayEvent {
    /// The control status changed, or time passed for a menu that says how long ago.
    Status,
    /// The owner chose something in the tray (or a second launch asked for the window).
    Action(TrayAction),
    /// The process was told to stop.
    Stop,
    /// The control surface stopped, or nothing can send actions any more.
    Closed,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayEnd {
    /// The owner chose Quit.
    Quit,
    /// The process was told to stop.
    Stopped,
    /// The control surface stopped, or nothing can send actions any more.
    Closed,
}

/// The tray loop's state: the host, what it last drew, and what has been announced.
#[derive(Debug)]
pub struct TrayLoop<H> {
    control: Control,
    host: H,
    alerts: Alerts,
    drawn: Option<TrayView>,
    /// Read once, and again only when the owner toggles it: not on every status change.
    start_at_login: bool,
}

impl<H: TrayHost> TrayLoop<H> {
    /// A loop carrying out actions on `control` and showing them through `host`.
    pub fn new(control: Control, host: H) -> Self {
        let start_at_login = host.starts_at_login();
        Self {
            control,
            host,
            alerts: Alerts::default(),
            drawn: None,
            start_at_login,
        }
    }

    /// The host, e.g. to take the tray down once the loop has ended.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// Runs until Quit, `stop`, or the end of `statuses` or of `actions`: waits for the next
    /// event, handles it, and so on. Shows the current status first.
    pub async fn run(
        &mut self,
        mut statuses: watch::Receiver<ControlStatus>,
        mut actions: mpsc::UnboundedReceiver<TrayAction>,
        stop: impl Future<Output = ()>,
    ) -> TrayEnd {
        let mut stop = std::pin::pin!(stop);
        let mut event = TrayEvent::Status;
        loop {
            if let Some(end) = self.handle(event, &mut statuses).await {
                tracing::info!(?end, "the tray loop ends");
                return end;
            }
            // A menu saying "2 min ago" is worked out again as time passes; any other waits
            // for the status.
            let aging = self.drawn.as_ref().is_some_and(|view| view.shows_age);
            // Biased: the latest status is shown before the next click is carried out.
            event = tokio::select! {
                biased;
                changed = statuses.changed() => match changed {
                    Ok(()) => TrayEvent::Status,
                    Err(_) => TrayEvent::Closed,
                },
                action = actions.recv() => action.map_or(TrayEvent::Closed, TrayEvent::Action),
                () = &mut stop => TrayEvent::Stop,
                () = tokio::time::sleep(AGE_REFRESH), if aging => TrayEvent::Status,
            };
        }
    }

    /// Handles one event; `Some` when the loop ends.
    async fn handle(
        &mut self,
        event: TrayEvent,
        statuses: &mut watch::Receiver<ControlStatus>,
    ) -> Option<TrayEnd> {
        match event {
            TrayEvent::Status => {
                let status = statuses.borrow_and_update().clone();
                self.show(&status).await;
                None
            }
            TrayEvent::Action(TrayAction::Quit) => Some(TrayEnd::Quit),
            TrayEvent::Action(action) => {
                self.act(action, statuses).await;
                None
            }
            TrayEvent::Stop => Some(TrayEnd::Stopped),
            TrayEvent::Closed => Some(TrayEnd::Closed),
        }
    }

    /// Draws the view of `status` if it changed, and raises the notifications it calls for.
    async fn show(&mut self, status: &ControlStatus) {
        self.redraw(status).await;
        for alert in self.alerts.observe(status) {
            tracing::info!(alert = alert.id(), "notifying");
            self.host.notify(&alert).await;
        }
    }

    /// Draws the view of `status` if it differs from the one drawn last.
    async fn redraw(&mut self, status: &ControlStatus) {
        let view = tray_view(status, self.start_at_login, chrono::Utc::now());
        if self.drawn.as_ref() != Some(&view) {
            tracing::debug!(tooltip = %view.tooltip, "tray updated");
            self.host.draw(&view).await;
            self.drawn = Some(view);
        }
    }

    /// Carries out a menu item (Quit aside): each one goes to the control surface or the host.
    async fn act(&mut self, action: TrayAction, statuses: &mut watch::Receiver<ControlStatus>) {
        let control = self.control.clone();
        match action {
            // Signing in happens in the system browser, started from the window's Account page.
            TrayAction::Open | TrayAction::SignIn => self.host.open_window(),
            TrayAction::OpenHub => self.open_hub(&statuses.borrow().clone()),
            TrayAction::CopyConnectorId => self.copy_connector_id(&statuses.borrow().clone()),
            TrayAction::Reconnect => {
                in_background("reconnect", async move { control.reconnect().await })
            }
            TrayAction::Pause => {
                in_background("pause", async move { control.set_paused(true).await })
            }
            TrayAction::Resume => {
                in_background("resume", async move { control.set_paused(false).await })
            }
            TrayAction::StartAtLogin => {
                self.host.toggle_start_at_login();
                self.start_at_login = self.host.starts_at_login();
                // A menu may have toggled its check mark by itself: draw it again from what
                // the system says, even if that did not change.
                self.drawn = None;
                let status = statuses.borrow().clone();
                self.redraw(&status).await;
            }
            TrayAction::Quit => {}
        }
    }
}

impl<H: TrayHost> TrayLoop<H> {
    /// Opens the hub of `status` (the status as it is at the click: the menu may be older).
    fn open_hub(&mut self, status: &ControlStatus) {
        match hub_page(status) {
            Some(url) => self.host.open_in_browser(url),
            None => tracing::info!("tray: no hub to open yet"),
        }
    }

    /// Copies the connector id of `status` (as it is at the click).
    fn copy_connector_id(&mut self, status: &ControlStatus) {
        match connector_id(status) {
            Some(id) => self.host.copy_to_clipboard(id),
            None => tracing::info!("tray: no connector id to copy yet"),
        }
    }
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

#[cfg(test)]
mod tests;
