//! IPC commands: one Tauri command per row of the control contract's command table
//! (`uplink_control::control_commands!`), each forwarding its JSON arguments to the
//! [`Backend`] and returning its answer unchanged. Argument names arrive in camelCase
//! (`appId`, `hubUrl`); the control surface checks them and names any that are wrong.

use serde_json::Value;
use tauri::ipc::{Invoke, InvokeBody, Request};
use tauri::{Runtime, State};
use uplink_control::{ControlError, ControlErrorCode};

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
                ControlErrorCode::InvalidArguments,
                format!("bad arguments for '{command}': expected a JSON object"),
            ));
        }
    };
    backend.call(command, arguments).await
}

/// Makes a Tauri command for each row of the command table, and the handler that routes to
/// them. Only the names are used: the arguments and results cross as JSON.
macro_rules! shims {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident ( $($args:tt)* ) -> $result:ty = |$control:ident| $body:expr;
    )*) => {
        $(
            $(#[doc = $doc])*
            #[tauri::command]
            async fn $name(
                backend: State<'_, Backend>,
                request: Request<'_>,
            ) -> Result<Value, ControlError> {
                forward(&backend, stringify!($name), &request).await
            }
        )*

        /// Routes each IPC command of the contract to its shim.
        pub(crate) fn handler<R: Runtime>() -> impl Fn(Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }
    };
}

uplink_control::control_commands!(shims);
