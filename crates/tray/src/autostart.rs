//! Start at login, through the desktop's autostart entries (`~/.config/autostart` on Linux).

use auto_launch::{AutoLaunch, AutoLaunchBuilder};

fn launcher() -> Option<AutoLaunch> {
    let exe = std::env::current_exe().ok()?;
    AutoLaunchBuilder::new()
        .set_app_name("Uplink")
        .set_app_path(&exe.to_string_lossy())
        .build()
        .map_err(|error| tracing::warn!(%error, "start at login is not available"))
        .ok()
}

/// Whether the app starts at login, as the system says.
pub(crate) fn enabled() -> bool {
    launcher().is_some_and(|launcher| {
        launcher.is_enabled().unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot tell whether Uplink starts at login");
            false
        })
    })
}

/// Turns starting at login on if it is off, and off if it is on.
pub(crate) fn toggle() {
    let Some(launcher) = launcher() else { return };
    let result = if enabled() {
        launcher.disable()
    } else {
        launcher.enable()
    };
    match result {
        Ok(()) => tracing::info!(start_at_login = enabled(), "start at login changed"),
        Err(error) => tracing::warn!(%error, "could not change whether Uplink starts at login"),
    }
}
