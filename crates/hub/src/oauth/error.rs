//! OAuth2 error responses as RFC 6749 §5.2 defines them: `{error, error_description}`, never
//! cached.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Makes [`OAuthErrorCode`] from its variants and their wire names.
macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal, )*) => {
        /// The `error` of an OAuth2 error answer or redirect (RFC 6749 §4.1.2.1 and §5.2,
        /// RFC 8628 §3.5): what a client branches on. snake_case on the wire; each is listed in
        /// `docs/api.md` ("OAuth errors").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum OAuthErrorCode {
            $( $(#[doc = $doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl OAuthErrorCode {
            /// Every code, in the order they are declared.
            #[cfg(any(test, feature = "testing"))]
            pub const ALL: &[OAuthErrorCode] = &[$(OAuthErrorCode::$variant),*];

            /// The code as it appears on the wire, e.g. `invalid_grant`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( OAuthErrorCode::$variant => $wire, )*
                }
            }

            /// The code of this wire name, if it is one.
            #[cfg(any(test, feature = "testing"))]
            pub fn from_wire(code: &str) -> Option<Self> {
                match code {
                    $( $wire => Some(OAuthErrorCode::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// A parameter is missing, repeated or malformed (PKCE included).
    InvalidRequest = "invalid_request",
    /// Client authentication failed (401).
    InvalidClient = "invalid_client",
    /// The code, refresh token or credential is not acceptable.
    InvalidGrant = "invalid_grant",
    /// The client may not use this grant type.
    UnauthorizedClient = "unauthorized_client",
    /// The hub does not support this grant type.
    UnsupportedGrantType = "unsupported_grant_type",
    /// The hub supports only `response_type=code`.
    UnsupportedResponseType = "unsupported_response_type",
    /// The scopes asked for are missing, unknown, mixed or not registered for the app.
    InvalidScope = "invalid_scope",
    /// The user refused.
    AccessDenied = "access_denied",
    /// Device flow: the user has not approved yet.
    AuthorizationPending = "authorization_pending",
    /// Too many requests, or device polling too often.
    SlowDown = "slow_down",
    /// Device flow: the device code is expired, unknown or used.
    ExpiredToken = "expired_token",
    /// The hub failed.
    ServerError = "server_error",
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth2 error for the token, revocation and introspection endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// HTTP status.
    pub status: StatusCode,
    /// The RFC 6749 error code.
    pub error: OAuthErrorCode,
    /// A sentence for the developer; never contains a secret.
    pub description: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    /// An error with this status and code.
    pub fn new(status: StatusCode, error: OAuthErrorCode, description: impl Into<String>) -> Self {
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
            OAuthErrorCode::InvalidClient
                | OAuthErrorCode::InvalidGrant
                | OAuthErrorCode::UnauthorizedClient
                | OAuthErrorCode::ExpiredToken
        )
    }
    /// `invalid_request`: malformed or missing parameters.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidRequest, d)
    }
    /// `invalid_client`: client authentication failed (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, OAuthErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`: the code or refresh token is not acceptable.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidGrant, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, OAuthErrorCode::InvalidScope, d)
    }
    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::UnsupportedGrantType,
            d,
        )
    }
    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            OAuthErrorCode::UnauthorizedClient,
            d,
        )
    }
    /// Too many requests.
    pub fn slow_down() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            OAuthErrorCode::SlowDown,
            "too many requests; wait a minute and try again",
        )
    }
    /// The hub failed; details are in its log.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::ServerError,
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
                error: self.error.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;

    const API_MD: &str = include_str!("../../../../docs/api.md");

    /// The codes of the table under "### OAuth errors": its rows `| \`code\` | … |`.
    fn documented() -> Vec<String> {
        let section = API_MD
            .split_once("\n### OAuth errors\n")
            .expect("docs/api.md has an \"OAuth errors\" section")
            .1;
        let section = section.split("\n#").next().unwrap_or_default();
        // The rows after the table's header and its `|---|` line.
        section
            .lines()
            .skip_while(|line| !line.starts_with("|---"))
            .skip(1)
            .filter_map(|line| {
                let cell = line.split('|').nth(1)?.trim();
                Some(cell.strip_prefix('`')?.strip_suffix('`')?.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_code_is_in_the_oauth_error_table_of_the_docs() {
        let table = documented();
        for &code in OAuthErrorCode::ALL {
            assert_eq!(
                table.iter().filter(|c| *c == code.as_str()).count(),
                1,
                "docs/api.md's OAuth error table must list `{code}` once"
            );
        }
    }

    #[test]
    fn every_code_in_the_oauth_error_table_of_the_docs_is_a_code() {
        let table = documented();
        assert!(
            table.len() >= 5,
            "the OAuth error table was not found: {table:?}"
        );
        for code in &table {
            assert!(
                OAuthErrorCode::from_wire(code).is_some(),
                "docs/api.md lists OAuth error `{code}`, which OAuthErrorCode does not have"
            );
        }
    }

    #[test]
    fn codes_round_trip_through_their_wire_names() {
        for &code in OAuthErrorCode::ALL {
            assert_eq!(OAuthErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[tokio::test]
    async fn the_body_carries_the_code_on_the_wire() {
        let response = OAuthError::invalid_grant("the code was used").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        assert_eq!(
            &bytes[..],
            br#"{"error":"invalid_grant","error_description":"the code was used"}"#
        );
    }
}
