//! IPC commands: one per command of the control contract, each forwarding its arguments to the
//! [`Backend`] and returning its answer unchanged. Argument names arrive in camelCase (`appId`,
//! `hubUrl`); the control surface checks them and names any that are wrong.

use serde_json::Value;
use tauri::State;
use tauri::ipc::{InvokeBody, Request};
use uplink_control::ControlError;

use crate::backend::Backend;

async fn forward(
    backend: &Backend,
    command: &str,
    request: &Request<'_>,
) -> Result<Value, ControlError> {
    let arguments = match request.body() {
        InvokeBody::Json(Value::Null) => Value::Object(Default::default()),
        InvokeBody::Json(arguments) => arguments.clone(),
        InvokeBody::Raw(_) => {
            return Err(ControlError::new(
                "invalid_arguments",
                format!("bad arguments for '{command}': expected a JSON object"),
            ));
        }
    };
    backend.call(command, arguments).await
}

#[tauri::command]
pub async fn app_info(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "app_info", &request).await
}

#[tauri::command]
pub async fn status(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "status", &request).await
}

#[tauri::command]
pub async fn reconnect(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "reconnect", &request).await
}

#[tauri::command]
pub async fn set_paused(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "set_paused", &request).await
}

#[tauri::command]
pub async fn set_transport_preference(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "set_transport_preference", &request).await
}

#[tauri::command]
pub async fn source_kinds(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "source_kinds", &request).await
}

#[tauri::command]
pub async fn source_settings(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "source_settings", &request).await
}

#[tauri::command]
pub async fn add_source(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "add_source", &request).await
}

#[tauri::command]
pub async fn edit_source(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "edit_source", &request).await
}

#[tauri::command]
pub async fn remove_source(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "remove_source", &request).await
}

#[tauri::command]
pub async fn test_source(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "test_source", &request).await
}

#[tauri::command]
pub async fn revoke(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "revoke", &request).await
}

#[tauri::command]
pub async fn set_app_blocked(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "set_app_blocked", &request).await
}

#[tauri::command]
pub async fn activity(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "activity", &request).await
}

#[tauri::command]
pub async fn run_diagnostics(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "run_diagnostics", &request).await
}

#[tauri::command]
pub async fn export_diagnostics(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "export_diagnostics", &request).await
}

/// Opens the system browser at the hub's sign-in page; the page is never shown in the window.
#[tauri::command]
pub async fn sign_in(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "sign_in", &request).await
}

#[tauri::command]
pub async fn cancel_sign_in(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "cancel_sign_in", &request).await
}

#[tauri::command]
pub async fn sign_out(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "sign_out", &request).await
}

#[tauri::command]
pub async fn use_local_hub(
    backend: State<'_, Backend>,
    request: Request<'_>,
) -> Result<Value, ControlError> {
    forward(&backend, "use_local_hub", &request).await
}
