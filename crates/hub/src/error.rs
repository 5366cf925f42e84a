//! The hub's one error type, and how it crosses HTTP: `{code, message}` with a stable code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything that can go wrong in the hub outside the OAuth2 protocol's own error format.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The store could not be read or written.
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    /// The store could not be opened (a database unreachable or refusing the hub); the
    /// message never holds the database URL's password.
    #[error("{0}")]
    StoreOpen(String),
    /// The store's schema could not be brought up to date.
    #[error("store migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A name or value given by an administrator or user is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something with that name already exists.
    #[error("{0}")]
    Conflict(String),
    /// Password hashing or verification failed for a reason other than a wrong password.
    #[error("password hashing failed: {0}")]
    PasswordHashing(String),
    /// An access token could not be made.
    #[error("access token could not be issued: {0}")]
    TokenIssue(String),
    /// TLS set-up failed.
    #[error(transparent)]
    Tls(#[from] uplink_tls::TlsError),
    /// The data folder or one of the hub's files in it could be read by other local users.
    #[error("{0}")]
    Permissions(String),
    /// Reading or writing a file in the data directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl HubError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::Store(_) | HubError::StoreOpen(_) | HubError::Migration(_) => "store_error",
            HubError::Invalid(_) => "invalid_input",
            HubError::NotFound(_) => "not_found",
            HubError::Conflict(_) => "conflict",
            HubError::PasswordHashing(_) => "password_hashing_failed",
            HubError::TokenIssue(_) => "token_issue_failed",
            HubError::Tls(_) => "tls_error",
            HubError::Permissions(_) => "insecure_permissions",
            HubError::Io { .. } => "io_error",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            HubError::Invalid(_) => StatusCode::BAD_REQUEST,
            HubError::NotFound(_) => StatusCode::NOT_FOUND,
            HubError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON body of every non-OAuth error the hub answers with.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// A JSON error response: status plus `{code, message}`.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.to_owned(),
            message: message.into(),
        }),
    )
        .into_response()
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            // Internal details stay in the log; the client learns only the code.
            json_error(
                status,
                self.code(),
                "the hub could not complete the request",
            )
        } else {
            json_error(status, self.code(), self.to_string())
        }
    }
}

/// Result with [`HubError`].
pub type Result<T, E = HubError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_serialises_with_a_stable_code() {
        let err = HubError::Invalid("username 'x' is too short".into());
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
