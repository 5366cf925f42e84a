//! IPC commands: each one forwards to the control surface and returns its answer unchanged.

use tauri::State;
use uplink_control::{AppInfo, Control, ControlError};

/// Which product, version and host the UI is talking to.
#[tauri::command]
pub fn app_info(control: State<'_, Control>) -> Result<AppInfo, ControlError> {
    Ok(control.app_info())
}
