//! Why the app data API refused or failed a request, and how that crosses HTTP: a status and
//! `{code, message}`, where a message about a query names the field it is about.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::ApiErrorCode;
use crate::access::Denied;
use crate::error::{HubError, json_error};
use crate::relay::RelayError;

/// Everything the data API answers with instead of data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token, or no grant: 401 or 403.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// No data source with this id: 404.
    #[error("no data source with id '{0}'")]
    UnknownSource(String),
    /// The data source exists but its connector no longer offers it: 404.
    #[error("the data source '{source_name}' is no longer offered by its connector '{connector}'")]
    SourceUnavailable {
        /// The data source's name.
        source_name: String,
        /// Its connector's name.
        connector: String,
    },
    /// A field of the query is malformed or out of limits: 400 `invalid_query`.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as the app wrote it (`start`, `times[2]`, `body`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The data source does not answer this query: 400 `unsupported`.
    #[error("{0}")]
    Unsupported(String),
    /// The relay refused or failed before the answer began.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The token's sign-in or the connector holds as many live-value streams as the hub
    /// allows: 429 `too_many_subscriptions`.
    #[error("{0}")]
    TooManySubscriptions(String),
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] HubError),
}

impl ApiError {
    /// A 400 about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl ApiError {
    /// The stable code an app sees with this error (the JSON body's `code`).
    pub fn code(&self) -> &str {
        match self {
            ApiError::Denied(denied) => match denied {
                Denied::Store(_) => ApiErrorCode::StoreUnavailable.as_str(),
                other => other.metric_code(),
            },
            ApiError::UnknownSource(_) | ApiError::SourceUnavailable { .. } => {
                ApiErrorCode::UnknownSource.as_str()
            }
            ApiError::Invalid { .. } => ApiErrorCode::InvalidQuery.as_str(),
            ApiError::Unsupported(_) => ApiErrorCode::Unsupported.as_str(),
            ApiError::TooManySubscriptions(_) => ApiErrorCode::TooManySubscriptions.as_str(),
            ApiError::Relay(error) => error.code(),
            ApiError::Store(_) => ApiErrorCode::StoreUnavailable.as_str(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::Denied(denied) => denied.into_response(),
            ApiError::UnknownSource(_) | ApiError::SourceUnavailable { .. } => {
                ApiErrorCode::UnknownSource.response(message)
            }
            ApiError::Invalid { .. } => ApiErrorCode::InvalidQuery.response(message),
            ApiError::Unsupported(_) => ApiErrorCode::Unsupported.response(message),
            ApiError::TooManySubscriptions(_) => {
                ApiErrorCode::TooManySubscriptions.response(message)
            }
            ApiError::Relay(error) => {
                let status = StatusCode::from_u16(error.http_status())
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                json_error(status, error.code(), message)
            }
            ApiError::Store(error) => {
                tracing::error!(%error, "data API could not read the store");
                ApiErrorCode::StoreUnavailable
                    .response("the hub cannot read its store right now; try again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn invalid_names_the_field_in_the_message() {
        let (status, body) =
            body_of(ApiError::invalid("start", "time expression '*-8x' is bad").into_response())
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], "invalid_query");
        assert_eq!(body["message"], "start: time expression '*-8x' is bad");
    }

    #[tokio::test]
    async fn relay_errors_keep_their_status_and_code() {
        let (status, body) =
            body_of(ApiError::from(RelayError::Timeout { seconds: 30 }).into_response()).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(body["code"], "connector_timeout");
        let (status, body) = body_of(
            ApiError::from(RelayError::Connector {
                code: "vetoed".into(),
                message: "blocked on site".into(),
            })
            .into_response(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["message"], "blocked on site");
    }
}
