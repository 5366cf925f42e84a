use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uplink_connector::{LinkError, SourceError};

/// An error returned to a user interface: a stable machine-readable `code` the UI can branch
/// on, and a `message` written for the person reading it. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    /// Stable, snake_case; part of the UI contract.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
    /// For `invalid_form`: what is wrong with each submitted field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub fields: Option<Vec<uplink_connector::form::FieldError>>,
}

impl ControlError {
    /// An error with a stable code and a human message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            fields: None,
        }
    }

    /// A form that did not validate, with one message per bad field.
    pub fn invalid_form(fields: Vec<uplink_connector::form::FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields need attention", fields.len()),
        };
        Self {
            code: "invalid_form".into(),
            message,
            fields: Some(fields),
        }
    }

    pub(crate) fn invalid_arguments(command: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            "invalid_arguments",
            format!("bad arguments for '{command}': {problem}"),
        )
    }
}

impl From<SourceError> for ControlError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::InvalidSettings(fields) => Self::invalid_form(fields),
            SourceError::UnknownSource(_) => Self::new("unknown_source", error.to_string()),
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl From<LinkError> for ControlError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Source(source) => source.into(),
            LinkError::SignedOut => Self::new(
                "not_configured",
                "this connector is not linked to a hub yet: sign in to a hub or use a local hub",
            ),
            other => Self::new(other.code(), other.to_string()),
        }
    }
}
