//! Desktop notifications (the freedesktop notification service on the session bus) for the
//! alerts the control surface raises: one per incident, never one per retry.

use uplink_control::Alert;

/// Shows `alert`; a desktop with no notification service gets a log line instead.
pub(crate) async fn show(alert: &Alert) {
    let shown = notify_rust::Notification::new()
        .appname("Uplink")
        .summary(alert.title())
        .body(&alert.body())
        .show_async()
        .await;
    if let Err(error) = shown {
        tracing::warn!(%error, alert = alert.id(), "the notification could not be shown");
    }
}
