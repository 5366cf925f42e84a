//! Keeps the window and the tray current: every change of the control status is pushed to the
//! webview as the `status` event, redrawn in the tray, and turned into the notifications it
//! calls for. Driven by the status watch, so an idle app does no work.

use tauri::{AppHandle, Emitter, Runtime};
use tauri_plugin_notification::NotificationExt as _;
use uplink_control::{Alert, Alerts, Control};

/// The event the UI listens to; its payload is a `ControlStatus`.
pub const STATUS_EVENT: &str = "status";

/// Spawns the task that forwards every status change until the control surface stops.
pub(crate) fn forward_status<R: Runtime>(app: AppHandle<R>, control: &Control) {
    let mut statuses = control.watch();
    tauri::async_runtime::spawn(async move {
        let mut alerts = Alerts::default();
        loop {
            let status = statuses.borrow_and_update().clone();
            if let Err(error) = app.emit(STATUS_EVENT, &status) {
                tracing::warn!(%error, "the status did not reach the window");
            }
            crate::tray::show_status(&app, &status);
            for alert in alerts.observe(&status) {
                notify(&app, &alert);
            }
            if statuses.changed().await.is_err() {
                tracing::debug!("the control surface stopped: no more status changes");
                break;
            }
        }
    });
}

fn notify<R: Runtime>(app: &AppHandle<R>, alert: &Alert) {
    tracing::info!(alert = alert.id(), "notifying");
    let shown = app
        .notification()
        .builder()
        .title(alert.title())
        .body(alert.body())
        .show();
    if let Err(error) = shown {
        tracing::warn!(%error, alert = alert.id(), "the notification could not be shown");
    }
}
