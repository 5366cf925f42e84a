//! The commands of the control contract, made from the one table in `command_table.rs`: the
//! list of their names, their argument types, and [`Control::dispatch`], which runs a command
//! given as JSON (how the loopback HTTP bridge and the desktop app's IPC shims carry them).
//! Both hosts go through the same [`Control`] methods, so they give the same answers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;
use uplink_connector::SourceConfig;
use uplink_connector::activity::ActivityRecord;
use uplink_connector::diagnostics::{DiagnosticsExport, DiagnosticsReport};
use uplink_connector::form::FormSchema;

use crate::{
    AppInfo, Control, ControlError, ControlErrorCode, ControlStatus, DemoConsent, FolderListing,
    LocalQuery, PendingSignIn, QueryTable, RecentEvents, SourceAbilities, SourceTest, TagWatch,
    TagsPage, TransportPreference,
};

fn args<T: DeserializeOwned>(command: &str, value: Value) -> Result<T, ControlError> {
    serde_json::from_value(value).map_err(|e| ControlError::invalid_arguments(command, e))
}

fn reply(value: impl Serialize) -> Result<Value, ControlError> {
    serde_json::to_value(value).map_err(|e| {
        ControlError::new(
            ControlErrorCode::Internal,
            format!("the answer did not serialise: {e}"),
        )
    })
}

/// Makes the list, the argument types and `dispatch` from the rows of the command table.
macro_rules! contract {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident (
            $( $args:ident { $( $(#[$field_meta:meta])* $field:ident : $field_ty:ty ),* $(,)? } )?
        ) -> $result:ty = |$control:ident| $body:expr;
    )*) => {
        /// Every command a user interface may call, in the order the contract lists them.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        $($(
            #[doc = concat!(" The arguments of `", stringify!($name), "`, a JSON object.")]
            #[derive(Debug, Clone, Serialize, Deserialize, TS)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            pub struct $args {
                $( $(#[$field_meta])* pub $field: $field_ty, )*
            }
        )?)*

        impl Control {
            /// Runs `command` with JSON `arguments` (an object) and answers with its JSON
            /// result; an unknown command or bad arguments are named in the error.
            pub async fn dispatch(
                &self,
                command: &str,
                arguments: Value,
            ) -> Result<Value, ControlError> {
                match command {
                    $(
                        stringify!($name) => {
                            $( let $args { $($field),* } = args::<$args>(command, arguments)?; )?
                            let $control = self;
                            let answer: Result<$result, ControlError> = $body;
                            reply(answer?)
                        }
                    )*
                    other => Err(ControlError::new(
                        ControlErrorCode::UnknownCommand,
                        format!("there is no command '{other}'"),
                    )),
                }
            }
        }
    };
}

crate::control_commands!(contract);
