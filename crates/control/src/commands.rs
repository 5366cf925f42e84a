//! The command table: each command's name, its JSON arguments and its JSON result, for hosts
//! that carry commands as JSON (the loopback HTTP bridge). The desktop app calls the typed
//! methods directly; both go through the same [`Control`] methods.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uplink_connector::SourceConfig;

use crate::{Control, ControlError, TransportPreference};

/// Every command a user interface may call, in the order the contract lists them.
pub const COMMANDS: &[&str] = &[
    "app_info",
    "status",
    "reconnect",
    "set_paused",
    "set_transport_preference",
    "source_kinds",
    "source_settings",
    "add_source",
    "edit_source",
    "remove_source",
    "test_source",
    "revoke",
    "set_app_blocked",
    "activity",
    "run_diagnostics",
    "export_diagnostics",
    "use_local_hub",
    "sign_in",
    "cancel_sign_in",
    "sign_out",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Paused {
    paused: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Preference {
    preference: TransportPreference,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Source {
    source: SourceConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Edit {
    name: String,
    source: SourceConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Revoke {
    app_id: String,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignIn {
    hub_url: String,
    #[serde(default)]
    ca_pem: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Block {
    app_id: String,
    blocked: bool,
}

fn args<T: DeserializeOwned>(command: &str, value: Value) -> Result<T, ControlError> {
    serde_json::from_value(value).map_err(|e| ControlError::invalid_arguments(command, e))
}

fn reply(value: impl serde::Serialize) -> Result<Value, ControlError> {
    serde_json::to_value(value)
        .map_err(|e| ControlError::new("internal", format!("the answer did not serialise: {e}")))
}

impl Control {
    /// Runs `command` with JSON `arguments` (an object) and answers with its JSON result.
    pub async fn dispatch(&self, command: &str, arguments: Value) -> Result<Value, ControlError> {
        match command {
            "app_info" => reply(self.app_info()),
            "status" => reply(self.status()),
            "reconnect" => reply(self.reconnect().await?),
            "set_paused" => {
                let a: Paused = args(command, arguments)?;
                reply(self.set_paused(a.paused).await?)
            }
            "set_transport_preference" => {
                let a: Preference = args(command, arguments)?;
                reply(self.set_transport_preference(a.preference).await?)
            }
            "source_kinds" => reply(self.source_kinds()),
            "source_settings" => {
                let a: Named = args(command, arguments)?;
                reply(self.source_settings(&a.name)?)
            }
            "add_source" => {
                let a: Source = args(command, arguments)?;
                reply(self.add_source(a.source).await?)
            }
            "edit_source" => {
                let a: Edit = args(command, arguments)?;
                reply(self.edit_source(&a.name, a.source).await?)
            }
            "remove_source" => {
                let a: Named = args(command, arguments)?;
                reply(self.remove_source(&a.name).await?)
            }
            "test_source" => {
                let a: Source = args(command, arguments)?;
                reply(self.test_source(a.source).await?)
            }
            "revoke" => {
                let a: Revoke = args(command, arguments)?;
                reply(self.revoke(&a.app_id, a.source.as_deref()).await?)
            }
            "set_app_blocked" => {
                let a: Block = args(command, arguments)?;
                reply(self.set_app_blocked(&a.app_id, a.blocked).await?)
            }
            "activity" => reply(self.activity().await?),
            "run_diagnostics" => reply(self.run_diagnostics().await?),
            "export_diagnostics" => reply(self.export_diagnostics().await?),
            "use_local_hub" => reply(self.use_local_hub().await?),
            "sign_in" => {
                let a: SignIn = args(command, arguments)?;
                reply(self.sign_in(&a.hub_url, a.ca_pem).await?)
            }
            "cancel_sign_in" => {
                self.cancel_sign_in();
                reply(())
            }
            "sign_out" => reply(self.sign_out().await?),
            other => Err(ControlError::new(
                "unknown_command",
                format!("there is no command '{other}'"),
            )),
        }
    }
}
