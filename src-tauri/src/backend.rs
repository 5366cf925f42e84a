//! Where the window's commands go. On Linux the connector runs in the tray process and the
//! window forwards every command over its loopback bridge, and every status change back as an
//! event; elsewhere the runtime lives in this process. Either way the answer is the control
//! surface's own, unchanged.

use futures::StreamExt as _;
use serde_json::Value;
use tauri::{AppHandle, Emitter as _, Runtime};
use uplink_control::http::TAG_VALUES_EVENT;
use uplink_control::{Control, ControlError, ControlErrorCode};
use uplink_tray::bridge::BridgeAddress;

use crate::live::STATUS_EVENT;

/// The connector the window's commands reach.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The runtime in this process.
    InProcess(Control),
    /// The runtime in the tray process, over its loopback bridge.
    Bridge(BridgeClient),
}

impl Backend {
    /// Runs `command` with JSON `arguments` and answers with its JSON result.
    pub async fn call(&self, command: &str, arguments: Value) -> Result<Value, ControlError> {
        match self {
            Backend::InProcess(control) => control.dispatch(command, arguments).await,
            Backend::Bridge(bridge) => bridge.call(command, arguments).await,
        }
    }
}

/// A client of the tray process's bridge.
#[derive(Debug, Clone)]
pub struct BridgeClient {
    http: reqwest::Client,
    address: BridgeAddress,
}

/// The error a window shows when the tray process stopped answering.
fn unreachable(error: reqwest::Error) -> ControlError {
    // Without the URL: it is loopback, and the error needs no more than what failed.
    let error = error.without_url();
    ControlError::new(
        ControlErrorCode::TrayUnreachable,
        format!("the Uplink tray process did not answer: {error}"),
    )
}

impl BridgeClient {
    /// A client of the bridge at `address`.
    pub fn new(address: BridgeAddress) -> Result<Self, ControlError> {
        // The client is built with TLS support although the bridge is plain loopback HTTP.
        uplink_tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            // Loopback only: a proxy from the environment must never see these requests.
            .no_proxy()
            .build()
            .map_err(|e| {
                ControlError::new(ControlErrorCode::Internal, format!("no HTTP client: {e}"))
            })?;
        Ok(Self { http, address })
    }

    async fn call(&self, command: &str, arguments: Value) -> Result<Value, ControlError> {
        let response = self
            .http
            .post(format!("{}/ipc/{command}", self.address.url))
            .bearer_auth(&self.address.token)
            .json(&arguments)
            .send()
            .await
            .map_err(unreachable)?;
        let ok = response.status().is_success();
        let body = response.bytes().await.map_err(unreachable)?;
        if ok {
            serde_json::from_slice(&body).map_err(|e| {
                ControlError::new(
                    ControlErrorCode::Internal,
                    format!("the tray process answered badly: {e}"),
                )
            })
        } else {
            Err(serde_json::from_slice(&body).unwrap_or_else(|_| {
                ControlError::new(
                    ControlErrorCode::Internal,
                    "the tray process refused the command",
                )
            }))
        }
    }

    /// Forwards the tray process's status events to the window until the tray process stops;
    /// then the window has nothing left to show, and the app ends.
    pub fn forward_status<R: Runtime>(&self, app: AppHandle<R>) {
        let client = self.clone();
        tauri::async_runtime::spawn(async move {
            match client.follow(&app).await {
                Ok(()) => tracing::info!("the tray process stopped: closing the window"),
                Err(error) => tracing::warn!(%error, "lost the tray process: closing the window"),
            }
            app.exit(0);
        });
    }

    /// Forwards the tray process's tag-watch values (the data source page's live values) to
    /// the window; a broken stream is reopened after a pause, while the window lives.
    pub fn forward_tag_values<R: Runtime>(&self, app: AppHandle<R>) {
        let client = self.clone();
        tauri::async_runtime::spawn(async move {
            loop {
                if let Err(error) = client.follow_tag_values(&app).await {
                    tracing::debug!(%error, "the tag values stream broke; reopening");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }

    async fn follow_tag_values<R: Runtime>(&self, app: &AppHandle<R>) -> Result<(), ControlError> {
        let response = self
            .http
            .get(format!("{}/tag-values", self.address.url))
            .bearer_auth(&self.address.token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unreachable)?;
        let mut events = eventsource_stream::EventStream::new(response.bytes_stream());
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| {
                ControlError::new(
                    ControlErrorCode::TrayUnreachable,
                    format!("the tag values stream broke: {e}"),
                )
            })?;
            if event.event != TAG_VALUES_EVENT {
                continue;
            }
            let values: Value = serde_json::from_str(&event.data).map_err(|e| {
                ControlError::new(
                    ControlErrorCode::Internal,
                    format!("a tag values event did not parse: {e}"),
                )
            })?;
            if let Err(error) = app.emit(TAG_VALUES_EVENT, values) {
                tracing::warn!(%error, "the tag values did not reach the window");
            }
        }
        Ok(())
    }

    async fn follow<R: Runtime>(&self, app: &AppHandle<R>) -> Result<(), ControlError> {
        let response = self
            .http
            .get(format!("{}/events", self.address.url))
            .bearer_auth(&self.address.token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unreachable)?;
        let mut events = eventsource_stream::EventStream::new(response.bytes_stream());
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| {
                ControlError::new(
                    ControlErrorCode::TrayUnreachable,
                    format!("the status stream broke: {e}"),
                )
            })?;
            if event.event != STATUS_EVENT {
                continue;
            }
            let status: Value = serde_json::from_str(&event.data).map_err(|e| {
                ControlError::new(
                    ControlErrorCode::Internal,
                    format!("a status event did not parse: {e}"),
                )
            })?;
            if let Err(error) = app.emit(STATUS_EVENT, status) {
                tracing::warn!(%error, "the status did not reach the window");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uplink_control::HostKind;
    use uplink_control::http::{AccessToken, commands_router};

    use super::*;

    /// A control surface served over a real loopback bridge, and a client holding `token`.
    async fn bridge(data_dir: &std::path::Path, token: Option<&str>) -> (BridgeClient, Control) {
        let control = Control::start(HostKind::Desktop, data_dir.to_owned());
        let issued = AccessToken::generate();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let presented = token.unwrap_or(issued.expose()).to_owned();
        let router = commands_router(control.clone(), issued);
        tokio::spawn(async move { axum::serve(listener, router).await });
        let address = BridgeAddress {
            url,
            token: presented,
        };
        (BridgeClient::new(address).unwrap(), control)
    }

    #[tokio::test]
    async fn commands_cross_the_bridge_with_their_answers_and_errors_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (client, control) = bridge(dir.path(), None).await;
        let backend = Backend::Bridge(client);
        let status = backend.call("status", serde_json::json!({})).await.unwrap();
        assert_eq!(status["dataDir"], dir.path().display().to_string());
        assert_eq!(status["paused"], false);

        backend
            .call("set_paused", serde_json::json!({ "paused": true }))
            .await
            .unwrap();
        assert!(control.status().paused, "the command reached the runtime");

        let bad = backend
            .call("set_paused", serde_json::json!({ "paused": "yes" }))
            .await
            .unwrap_err();
        assert_eq!(bad.code, "invalid_arguments", "{bad:?}");
        assert!(bad.message.contains("set_paused"), "{bad:?}");
        let unknown = backend
            .call("no_such_command", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(unknown.code, "unknown_command", "{unknown:?}");
        // The same answers as the runtime gives in process.
        let local = Backend::InProcess(control.clone());
        assert_eq!(
            local.call("app_info", serde_json::json!({})).await.unwrap(),
            backend
                .call("app_info", serde_json::json!({}))
                .await
                .unwrap()
        );
        control.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_token_or_a_stopped_tray_process_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _control) = bridge(dir.path(), Some("not-the-token")).await;
        let refused = client
            .call("status", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(refused.code, "unauthorized", "{refused:?}");

        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gone = BridgeClient::new(BridgeAddress {
            url: format!("http://127.0.0.1:{port}"),
            token: "s3cret".into(),
        })
        .unwrap();
        let error = gone
            .call("status", serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(error.code, "tray_unreachable", "{error:?}");
        assert!(!error.message.contains("s3cret"), "{error:?}");
    }
}
