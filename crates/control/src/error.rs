use serde::Serialize;
use ts_rs::TS;

/// An error returned to a user interface: a stable machine-readable `code` the UI can branch
/// on, and a `message` written for the person reading it. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    /// Stable, snake_case; part of the UI contract.
    pub code: String,
    /// One sentence for a person.
    pub message: String,
}

impl ControlError {
    /// An error with a stable code and a human message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}
