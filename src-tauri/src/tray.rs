//! The tray where the app is one process (not Linux): Tauri's tray icon as a [`TrayHost`] for
//! the one tray loop of `uplink-tray` (the same loop, tested there, that the Linux tray process
//! runs), plus Tauri's notifications, start at login and window.

use std::time::Instant;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::mpsc::{self, UnboundedSender};
use uplink_control::{Alert, Control};
use uplink_tray::shortcuts::{self, Clipboard};
use uplink_tray::view::{TrayAction, TrayEntry, TrayView, tray_view};
use uplink_tray::{TrayEnd, TrayHost, TrayLoop};

/// The tray icon's id.
const TRAY_ID: &str = "uplink";

/// Whether the app starts at login, as the system says.
fn starts_at_login<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.autolaunch().is_enabled().unwrap_or_else(|error| {
        tracing::warn!(%error, "cannot tell whether Uplink starts at login");
        false
    })
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[TrayEntry]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for entry in entries {
        match entry {
            TrayEntry::Status(text) => menu.append(&MenuItem::with_id(
                app,
                "status",
                text,
                false,
                None::<&str>,
            )?)?,
            TrayEntry::Action {
                action,
                label,
                enabled,
            } => menu.append(&MenuItem::with_id(
                app,
                action.id(),
                label,
                *enabled,
                None::<&str>,
            )?)?,
            TrayEntry::Toggle {
                action,
                label,
                checked,
            } => menu.append(&CheckMenuItem::with_id(
                app,
                action.id(),
                label,
                true,
                *checked,
                None::<&str>,
            )?)?,
            TrayEntry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

/// Puts the tray icon up (where the desktop has a tray host) and runs the tray loop over
/// `control` until Quit, which ends the app. `started` is when the process began, for the log.
pub(crate) fn start<R: Runtime>(app: &AppHandle<R>, control: &Control, started: Instant) {
    let (actions, requested) = mpsc::unbounded_channel();
    match install(app, control, actions.clone()) {
        Ok(()) => tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tray ready"
        ),
        // No tray host (a stock GNOME, a CI machine): the app still runs and notifies; a second
        // launch or --show-window opens the window.
        Err(error) => tracing::warn!(%error, "no tray icon: the desktop has no tray host"),
    }
    let host = TauriTray {
        app: app.clone(),
        clipboard: Clipboard::default(),
        _actions: actions,
    };
    let (app, control) = (app.clone(), control.clone());
    tauri::async_runtime::spawn(async move {
        let mut tray = TrayLoop::new(control.clone(), host);
        let end = tray
            .run(control.watch(), requested, std::future::pending())
            .await;
        if end == TrayEnd::Quit {
            app.exit(0);
        }
    });
}

/// Creates the tray icon; its clicks go to `actions`. Fails where the desktop has no tray host.
fn install<R: Runtime>(
    app: &AppHandle<R>,
    control: &Control,
    actions: UnboundedSender<TrayAction>,
) -> tauri::Result<()> {
    let view = tray_view(&control.status(), starts_at_login(app), chrono::Utc::now());
    let clicked = actions.clone();
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(view.icon.png())?)
        .tooltip(&view.tooltip)
        .menu(&build_menu(app, &view.menu)?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |_, event| {
            if let Some(action) = TrayAction::from_id(event.id().as_ref()) {
                let _ = actions.send(action);
            }
        })
        .on_tray_icon_event(move |_, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                let _ = clicked.send(TrayAction::Open);
            }
        })
        .build(app)?;
    Ok(())
}

/// Tauri's tray, notifications, autostart and window, for the tray loop.
struct TauriTray<R: Runtime> {
    app: AppHandle<R>,
    clipboard: Clipboard,
    /// Keeps the action channel open while the loop runs, with a tray icon or without.
    _actions: UnboundedSender<TrayAction>,
}

impl<R: Runtime> std::fmt::Debug for TauriTray<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TauriTray").finish_non_exhaustive()
    }
}

impl<R: Runtime> TrayHost for TauriTray<R> {
    async fn draw(&mut self, view: &TrayView) {
        let Some(tray) = self.app.tray_by_id(TRAY_ID) else {
            return;
        };
        let drawn = Image::from_bytes(view.icon.png())
            .and_then(|icon| tray.set_icon(Some(icon)))
            .and_then(|()| tray.set_tooltip(Some(&view.tooltip)))
            .and_then(|()| tray.set_menu(Some(build_menu(&self.app, &view.menu)?)));
        if let Err(error) = drawn {
            tracing::warn!(%error, "the tray could not be updated");
        }
    }

    async fn notify(&mut self, alert: &Alert) {
        let shown = self
            .app
            .notification()
            .builder()
            .title(alert.title())
            .body(alert.body())
            .show();
        if let Err(error) = shown {
            tracing::warn!(%error, alert = alert.id(), "the notification could not be shown");
        }
    }

    fn open_window(&mut self) {
        // Windows are made on the main thread.
        let app = self.app.clone();
        let shown = self
            .app
            .run_on_main_thread(move || crate::show_main_window(&app));
        if let Err(error) = shown {
            tracing::error!(%error, "the window could not be opened");
        }
    }

    fn open_in_browser(&mut self, url: &str) {
        shortcuts::open_in_browser(url);
    }

    fn copy_to_clipboard(&mut self, text: &str) {
        self.clipboard.copy(text);
    }

    fn starts_at_login(&self) -> bool {
        starts_at_login(&self.app)
    }

    fn toggle_start_at_login(&mut self) {
        let autolaunch = self.app.autolaunch();
        let result = if starts_at_login(&self.app) {
            autolaunch.disable()
        } else {
            autolaunch.enable()
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not change whether Uplink starts at login");
        }
    }
}
