use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_connector::{LinkError, SourceError};

/// Makes [`ControlErrorCode`] from its variants and their wire names.
macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal, )*) => {
        /// The stable, machine-readable kind of a [`ControlError`]: what a user interface
        /// branches on. Part of the UI contract (a TypeScript union in
        /// `ui/src/lib/bindings/ControlErrorCode.ts`); snake_case on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
        pub enum ControlErrorCode {
            $( $(#[doc = $doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl ControlErrorCode {
            /// Every code, in the order they are declared.
            pub const ALL: &[ControlErrorCode] = &[$(ControlErrorCode::$variant),*];

            /// The code as it appears on the wire, e.g. `invalid_arguments`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ControlErrorCode::$variant => $wire, )*
                }
            }

            /// The code of this wire name, if it is one.
            pub fn from_wire(code: &str) -> Option<Self> {
                match code {
                    $( $wire => Some(ControlErrorCode::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    // Refusals of the contract itself.
    /// A command's arguments did not fit its argument type; the message names what is wrong.
    InvalidArguments = "invalid_arguments",
    /// No command has that name (an older Uplink, or a typo).
    UnknownCommand = "unknown_command",
    /// A form that did not validate; `fields` says what is wrong with each field.
    InvalidForm = "invalid_form",
    /// Something failed that the user cannot change.
    Internal = "internal",
    /// A file or folder could not be read or written.
    Io = "io",
    // The connector's state.
    /// The connector is not linked to a hub yet.
    NotConfigured = "not_configured",
    /// The connector is already signed in to a hub.
    AlreadyConfigured = "already_configured",
    /// The link is paused.
    Paused = "paused",
    /// The connector runtime has stopped.
    Stopped = "stopped",
    /// A slow step (a test of a data source, the connectivity test) was stopped at the user's
    /// request before it finished.
    Cancelled = "cancelled",
    /// The local hub could not start or be used.
    LocalHub = "local_hub",
    /// The hub refused to revoke the grant.
    RevokeRefused = "revoke_refused",
    // The link to the hub.
    /// The link configuration is unusable.
    LinkConfig = "link_config",
    /// No hub answered.
    HubUnreachable = "hub_unreachable",
    /// The hub answered with a refusal.
    HubRefused = "hub_refused",
    /// The connector was signed out.
    SignedOut = "signed_out",
    /// The connector is not linked.
    NotLinked = "not_linked",
    // Signing in through the browser.
    /// The owner cancelled the sign-in.
    SignInCancelled = "sign_in_cancelled",
    /// The sign-in did not complete (refused, timed out, or the hub's answer was wrong).
    SignInFailed = "sign_in_failed",
    // Data sources.
    /// No data source has that name.
    UnknownSource = "unknown_source",
    /// No data source has that name (as the connector's data layer says it).
    UnknownDataSource = "unknown_data_source",
    /// The data source has no such tag.
    UnknownTag = "unknown_tag",
    /// No data source kind has that name.
    UnknownKind = "unknown_kind",
    /// A data source's settings are invalid.
    InvalidSettings = "invalid_settings",
    /// The data source cannot do that.
    Unsupported = "unsupported",
    /// The data source's database failed.
    Database = "database",
    /// The device or server behind the data source did not answer, or refused.
    Device = "device",
    /// A write was refused before it reached the device (a read-only tag, a value that does not fit).
    WriteRefused = "write_refused",
    /// The data source's server or device cannot be reached or refused the connection.
    SourceUnavailable = "source_unavailable",
    /// The data source did not answer in time.
    SourceTimeout = "source_timeout",
    // The connector's configuration files.
    /// A configuration file is damaged.
    ConfigCorrupt = "config_corrupt",
    /// A configuration file was written by a newer Uplink.
    ConfigNewerVersion = "config_newer_version",
    /// A configuration file could not be read or written.
    ConfigIo = "config_io",
    // Queries (a data source test reads values).
    /// A time expression did not parse.
    BadTimeExpression = "bad_time_expression",
    /// A time is out of range.
    TimeOutOfRange = "time_out_of_range",
    /// A time range starts after it ends.
    StartAfterEnd = "start_after_end",
    /// A time range is empty.
    EmptyTimeRange = "empty_time_range",
    /// An interval is zero or negative.
    NonPositiveInterval = "non_positive_interval",
    /// A count is out of range.
    CountOutOfRange = "count_out_of_range",
    /// No function has that name.
    UnknownFunction = "unknown_function",
    /// Something required is empty.
    Empty = "empty",
    /// A paging cursor of an events read is not one this source gave out.
    BadCursor = "bad_cursor",
    /// A pattern did not parse.
    BadPattern = "bad_pattern",
    // The loopback bridge (`uplink ui` and the desktop app's tray process).
    /// The request lacks this session's access token.
    Unauthorized = "unauthorized",
    /// The request did not come to a loopback address.
    NotLoopback = "not_loopback",
    // The desktop app's window.
    /// The tray process, which runs the connector, did not answer.
    TrayUnreachable = "tray_unreachable",
    // Raised by the UI's own transport (ui/src/lib/ipc.ts), never by Uplink's processes.
    /// The desktop app's IPC failed before reaching Uplink.
    IpcFailed = "ipc_failed",
    /// Uplink is not answering (`uplink ui` stopped).
    Unreachable = "unreachable",
    /// Uplink answered with an HTTP error and no explanation.
    HttpError = "http_error",
    /// Uplink's answer was not valid JSON.
    InvalidResponse = "invalid_response",
    /// The status stream ended.
    StreamEnded = "stream_ended",
}

impl ControlErrorCode {
    /// The code of a lower layer's error (`SourceError::code()` and its kin). A code this
    /// contract does not list becomes `internal`; the contract test keeps that from happening.
    pub fn from_lower(code: &'static str) -> Self {
        Self::from_wire(code).unwrap_or_else(|| {
            tracing::warn!(code, "an error code outside the control contract");
            ControlErrorCode::Internal
        })
    }
}

impl std::fmt::Display for ControlErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ControlErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error returned to a user interface: a stable machine-readable `code` the UI can branch
/// on, and a `message` written for the person reading it. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    /// Stable; part of the UI contract.
    pub code: ControlErrorCode,
    /// One sentence for a person.
    pub message: String,
    /// For `invalid_form`: what is wrong with each submitted field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub fields: Option<Vec<uplink_connector::form::FieldError>>,
}

impl ControlError {
    /// An error with a stable code and a human message.
    pub fn new(code: ControlErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// An error with a lower layer's code (see [`ControlErrorCode::from_lower`]).
    pub(crate) fn lower(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ControlErrorCode::from_lower(code), message)
    }

    /// A form that did not validate, with one message per bad field.
    pub fn invalid_form(fields: Vec<uplink_connector::form::FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields need attention", fields.len()),
        };
        Self {
            code: ControlErrorCode::InvalidForm,
            message,
            fields: Some(fields),
        }
    }

    pub(crate) fn invalid_arguments(command: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            ControlErrorCode::InvalidArguments,
            format!("bad arguments for '{command}': {problem}"),
        )
    }
}

impl From<SourceError> for ControlError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::InvalidSettings(fields) => Self::invalid_form(fields),
            SourceError::UnknownSource(_) => {
                Self::new(ControlErrorCode::UnknownSource, error.to_string())
            }
            other => Self::lower(other.code(), other.to_string()),
        }
    }
}

impl From<LinkError> for ControlError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Source(source) => source.into(),
            LinkError::SignedOut => Self::new(
                ControlErrorCode::NotConfigured,
                "this connector is not linked to a hub yet: sign in to a hub or use a local hub",
            ),
            other => Self::lower(other.code(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `code()` functions of the layers below, as written: every string they can answer
    /// must be a code of the contract, or the UI would see `internal` instead.
    const LOWER_CODES: &[(&str, &str)] = &[
        (
            "crates/source/src/error.rs",
            include_str!("../../source/src/error.rs"),
        ),
        (
            "crates/connector/src/runtime/error.rs",
            include_str!("../../connector/src/runtime/error.rs"),
        ),
        (
            "crates/connector/src/config.rs",
            include_str!("../../connector/src/config.rs"),
        ),
        (
            "crates/connector/src/browser_sign_in.rs",
            include_str!("../../connector/src/browser_sign_in.rs"),
        ),
        (
            "crates/model/src/error.rs",
            include_str!("../../model/src/error.rs"),
        ),
    ];

    /// The string literals in the body of `fn code(&self) -> &'static str` in `source`.
    fn codes_in(source: &str) -> Vec<String> {
        let start = source
            .find("fn code(&self) -> &'static str {")
            .expect("the file has a code() function");
        let body = &source[start..];
        let mut depth = 0usize;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        body[..end]
            .split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_code_of_the_layers_below_is_a_contract_code() {
        let mut seen = 0;
        for (file, source) in LOWER_CODES {
            let codes = codes_in(source);
            assert!(!codes.is_empty(), "{file}: no codes found");
            for code in codes {
                seen += 1;
                assert!(
                    ControlErrorCode::from_wire(&code).is_some(),
                    "{file} answers the code '{code}', which ControlErrorCode does not list"
                );
            }
        }
        assert!(seen >= 25, "only {seen} codes found: the scan is broken");
    }

    #[test]
    fn codes_cross_the_wire_as_their_snake_case_names() {
        for code in ControlErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::json!(code.as_str()));
            assert_eq!(ControlErrorCode::from_wire(code.as_str()), Some(*code));
            let back: ControlErrorCode = serde_json::from_value(json).unwrap();
            assert_eq!(back, *code);
        }
        assert_eq!(
            ControlErrorCode::from_lower("no_such_code"),
            ControlErrorCode::Internal
        );
    }
}
