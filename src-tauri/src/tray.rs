//! The tray: a pure view of the control status (icon, tooltip and menu, tested without a
//! display) and the thin code that turns it into a real tray icon and keeps it current.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_autostart::ManagerExt as _;
use uplink_control::{Control, ControlStatus};
use uplink_tray::view::{TrayAction, TrayEntry, TrayView, tray_view};

/// The tray icon's id.
const TRAY_ID: &str = "uplink";

/// The last view drawn, so a status change that the tray does not show redraws nothing.
#[derive(Debug, Default)]
struct Drawn(std::sync::Mutex<Option<TrayView>>);

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

/// Creates the tray icon showing `status`. Fails where the desktop has no tray host.
pub(crate) fn install<R: Runtime>(app: &AppHandle<R>, status: &ControlStatus) -> tauri::Result<()> {
    let view = tray_view(status, starts_at_login(app));
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(view.icon.png())?)
        .tooltip(&view.tooltip)
        .menu(&build_menu(app, &view.menu)?)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            if let Some(action) = TrayAction::from_id(event.id().as_ref()) {
                act(app, action);
            }
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                crate::show_main_window(tray.app_handle());
            }
        })
        .build(app)?;
    app.manage(Drawn(std::sync::Mutex::new(Some(view))));
    Ok(())
}

/// Redraws what changed in the tray for a new status. Does nothing without a tray.
pub(crate) fn show_status<R: Runtime>(app: &AppHandle<R>, status: &ControlStatus) {
    let (Some(tray), Some(drawn)) = (app.tray_by_id(TRAY_ID), app.try_state::<Drawn>()) else {
        return;
    };
    let view = tray_view(status, starts_at_login(app));
    let mut drawn = drawn
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if drawn.as_ref() == Some(&view) {
        return;
    }
    if let Err(error) = redraw(app, &tray, drawn.as_ref(), &view) {
        tracing::warn!(%error, "the tray could not be updated");
        return;
    }
    *drawn = Some(view);
}

fn redraw<R: Runtime>(
    app: &AppHandle<R>,
    tray: &TrayIcon<R>,
    before: Option<&TrayView>,
    view: &TrayView,
) -> tauri::Result<()> {
    if before.map(|b| b.icon) != Some(view.icon) {
        tray.set_icon(Some(Image::from_bytes(view.icon.png())?))?;
    }
    if before.map(|b| &b.tooltip) != Some(&view.tooltip) {
        tray.set_tooltip(Some(&view.tooltip))?;
    }
    if before.map(|b| &b.menu) != Some(&view.menu) {
        tray.set_menu(Some(build_menu(app, &view.menu)?))?;
    }
    tracing::debug!(tooltip = %view.tooltip, "tray updated");
    Ok(())
}

/// Runs a control command in the background; the tray has no one to show an error to but the log
/// (the status change it causes, or not, reaches the tray and the window anyway).
fn forward<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, uplink_control::ControlError>> + Send + 'static,
) {
    tauri::async_runtime::spawn(async move {
        if let Err(error) = call.await {
            tracing::warn!(code = %error.code, %error, "tray: {what} failed");
        }
    });
}

/// Carries out a menu item: each one forwards to the control surface or the window.
fn act<R: Runtime>(app: &AppHandle<R>, action: TrayAction) {
    let control = app.state::<Control>().inner().clone();
    match action {
        TrayAction::Open => crate::show_main_window(app),
        TrayAction::Reconnect => forward("reconnect", async move { control.reconnect().await }),
        TrayAction::Pause => forward("pause", async move { control.set_paused(true).await }),
        TrayAction::Resume => forward("resume", async move { control.set_paused(false).await }),
        // Signing in happens in the system browser, started from the window's Account page.
        TrayAction::SignIn => crate::show_main_window(app),
        TrayAction::StartAtLogin => {
            let autolaunch = app.autolaunch();
            let result = if starts_at_login(app) {
                autolaunch.disable()
            } else {
                autolaunch.enable()
            };
            if let Err(error) = result {
                tracing::warn!(%error, "could not change whether Uplink starts at login");
            }
            // The menu toggled its check mark by itself: redraw it from what the system says.
            if let Some(drawn) = app.try_state::<Drawn>() {
                *drawn
                    .0
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
            }
            show_status(app, &control.status());
        }
        TrayAction::Quit => {
            tracing::info!("quit from the tray");
            app.exit(0);
        }
    }
}
