//! IPC commands: one per command of the control contract, each forwarding to [`Control`] and
//! returning its answer unchanged. Argument names arrive in camelCase (`appId`, `hubUrl`).

use tauri::State;
use uplink_connector::SourceConfig;
use uplink_connector::activity::ActivityRecord;
use uplink_connector::diagnostics::{DiagnosticsExport, DiagnosticsReport};
use uplink_connector::form::FormSchema;
use uplink_control::{
    AppInfo, Control, ControlError, ControlStatus, PendingSignIn, SourceTest, TransportPreference,
};

type Answer<T> = Result<T, ControlError>;

#[tauri::command]
pub fn app_info(control: State<'_, Control>) -> Answer<AppInfo> {
    Ok(control.app_info())
}

#[tauri::command]
pub fn status(control: State<'_, Control>) -> Answer<ControlStatus> {
    Ok(control.status())
}

#[tauri::command]
pub async fn reconnect(control: State<'_, Control>) -> Answer<()> {
    control.reconnect().await
}

#[tauri::command]
pub async fn set_paused(control: State<'_, Control>, paused: bool) -> Answer<()> {
    control.set_paused(paused).await
}

#[tauri::command]
pub async fn set_transport_preference(
    control: State<'_, Control>,
    preference: TransportPreference,
) -> Answer<()> {
    control.set_transport_preference(preference).await
}

#[tauri::command]
pub fn source_kinds(control: State<'_, Control>) -> Answer<Vec<FormSchema>> {
    Ok(control.source_kinds())
}

#[tauri::command]
pub fn source_settings(control: State<'_, Control>, name: String) -> Answer<SourceConfig> {
    control.source_settings(&name)
}

#[tauri::command]
pub async fn add_source(control: State<'_, Control>, source: SourceConfig) -> Answer<()> {
    control.add_source(source).await
}

#[tauri::command]
pub async fn edit_source(
    control: State<'_, Control>,
    name: String,
    source: SourceConfig,
) -> Answer<()> {
    control.edit_source(&name, source).await
}

#[tauri::command]
pub async fn remove_source(control: State<'_, Control>, name: String) -> Answer<()> {
    control.remove_source(&name).await
}

#[tauri::command]
pub async fn test_source(control: State<'_, Control>, source: SourceConfig) -> Answer<SourceTest> {
    control.test_source(source).await
}

#[tauri::command]
pub async fn revoke(
    control: State<'_, Control>,
    app_id: String,
    source: Option<String>,
) -> Answer<()> {
    control.revoke(&app_id, source.as_deref()).await
}

#[tauri::command]
pub async fn set_app_blocked(
    control: State<'_, Control>,
    app_id: String,
    blocked: bool,
) -> Answer<()> {
    control.set_app_blocked(&app_id, blocked).await
}

#[tauri::command]
pub async fn activity(control: State<'_, Control>) -> Answer<Vec<ActivityRecord>> {
    control.activity().await
}

#[tauri::command]
pub async fn sign_out(control: State<'_, Control>) -> Answer<()> {
    control.sign_out().await
}

#[tauri::command]
pub async fn use_local_hub(control: State<'_, Control>) -> Answer<()> {
    control.use_local_hub().await
}

#[tauri::command]
pub async fn run_diagnostics(control: State<'_, Control>) -> Answer<DiagnosticsReport> {
    control.run_diagnostics().await
}

#[tauri::command]
pub async fn export_diagnostics(control: State<'_, Control>) -> Answer<DiagnosticsExport> {
    control.export_diagnostics().await
}

/// Opens the system browser at the hub's sign-in page; the page is never shown in the window.
#[tauri::command]
pub async fn sign_in(
    control: State<'_, Control>,
    hub_url: String,
    ca_pem: Option<String>,
) -> Answer<PendingSignIn> {
    control.sign_in(&hub_url, ca_pem).await
}

#[tauri::command]
pub fn cancel_sign_in(control: State<'_, Control>) -> Answer<()> {
    control.cancel_sign_in();
    Ok(())
}
