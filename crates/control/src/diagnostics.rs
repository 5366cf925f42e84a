//! Diagnostics for site IT: the connectivity test and the export archive, from the UI.

use uplink_connector::diagnostics::{DiagnosticsExport, DiagnosticsReport, export_diagnostics};

use crate::{Control, ControlError, ControlErrorCode};

/// Where exports are written, inside the data dir.
pub const DIAGNOSTICS_DIR: &str = "diagnostics";

impl Control {
    /// Walks the way to the hub step by step and says what failed and why.
    pub async fn run_diagnostics(
        &self,
        run_id: Option<String>,
    ) -> Result<DiagnosticsReport, ControlError> {
        let runtime = self.runtime().await?;
        self.cancellable(run_id, "connectivity test", async {
            Ok(runtime.check_connectivity().await?)
        })
        .await
    }

    /// Writes a zip of the status, configuration, policy, activity and logs with every secret
    /// removed, and says where.
    pub async fn export_diagnostics(&self) -> Result<DiagnosticsExport, ControlError> {
        let status = serde_json::to_vec_pretty(&self.status()).expect("the status serialises");
        let settings = serde_json::to_vec_pretty(&self.settings()).expect("the settings serialise");
        let data_dir = self.inner.data_dir.clone();
        tokio::task::spawn_blocking(move || {
            export_diagnostics(
                &data_dir,
                &data_dir.join(DIAGNOSTICS_DIR),
                &[
                    ("status.json", status),
                    (crate::settings::SETTINGS_FILE, settings),
                ],
            )
        })
        .await
        .map_err(|e| {
            ControlError::new(
                ControlErrorCode::Internal,
                format!("the export did not finish: {e}"),
            )
        })?
        .map_err(|e| {
            ControlError::new(
                ControlErrorCode::Io,
                format!("cannot write the export: {e}"),
            )
        })
    }
}
