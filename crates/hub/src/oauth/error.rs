//! OAuth2 error responses as RFC 6749 §5.2 defines them: `{error, error_description}`, never
//! cached.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An OAuth2 error for the token, revocation and introspection endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The RFC 6749 error code.
    pub error: &'static str,
    /// A sentence for the developer; never contains a secret.
    pub description: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
    /// Whether this answers a guess that failed (a wrong client credential, a code, refresh
    /// token or device code that is not valid): what the caller's address is charged for.
    pub fn is_failed_attempt(&self) -> bool {
        matches!(
            self.error,
            "invalid_client" | "invalid_grant" | "unauthorized_client" | "expired_token"
        )
    }
    /// `invalid_request`: malformed or missing parameters.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    /// `invalid_client`: client authentication failed (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }
    /// `invalid_grant`: the code or refresh token is not acceptable.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }
    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }
    /// Too many requests.
    pub fn slow_down() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "too many requests; wait a minute and try again",
        )
    }
    /// The hub failed; details are in its log.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the hub could not complete the request",
        )
    }
}

impl From<crate::error::HubError> for OAuthError {
    fn from(e: crate::error::HubError) -> Self {
        tracing::error!(error = %e, "OAuth request failed inside the hub");
        Self::server_error()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Body {
                error: self.error,
                error_description: &self.description,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"uplink\""),
            );
        }
        response
    }
}
