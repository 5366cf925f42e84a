//! Keeps the window current where the app is one process: every change of the control status
//! is pushed to the webview as the `status` event (the tray loop draws the tray and raises the
//! notifications). Driven by the status watch, so an idle app does no work.

use tauri::{AppHandle, Emitter, Runtime};
use uplink_control::Control;

/// The event the UI listens to; its payload is a `ControlStatus`.
pub const STATUS_EVENT: &str = "status";

/// Spawns the task that forwards every status change until the control surface stops.
pub(crate) fn forward_status<R: Runtime>(app: AppHandle<R>, control: &Control) {
    let mut statuses = control.watch();
    tauri::async_runtime::spawn(async move {
        loop {
            let status = statuses.borrow_and_update().clone();
            if let Err(error) = app.emit(STATUS_EVENT, &status) {
                tracing::warn!(%error, "the status did not reach the window");
            }
            if statuses.changed().await.is_err() {
                tracing::debug!("the control surface stopped: no more status changes");
                break;
            }
        }
    });
}

/// Spawns the task that forwards the tag watches' values (the data source page's live values)
/// as the `tag-values` event, on every change, until the control surface stops.
pub(crate) fn forward_tag_values<R: Runtime>(app: AppHandle<R>, control: &Control) {
    let mut values = control.watched_values();
    tauri::async_runtime::spawn(async move {
        loop {
            let list: Vec<uplink_control::WatchedValues> =
                values.borrow_and_update().values().cloned().collect();
            if let Err(error) = app.emit(uplink_control::http::TAG_VALUES_EVENT, &list) {
                tracing::warn!(%error, "the tag values did not reach the window");
            }
            if values.changed().await.is_err() {
                break;
            }
        }
    });
}
