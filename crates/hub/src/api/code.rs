//! The `code` of every `{code, message}` error an app can meet under `/api/`: one list, each
//! code with its HTTP status, and the table in `docs/api.md` ("Errors") checked against it.

use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uplink_link::failure::FailureCode;

use crate::error::json_error;

/// Makes [`ApiErrorCode`] from its variants, wire names and HTTP statuses.
macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal => $status:ident, )*) => {
        /// The stable, machine-readable `code` of an app data API error: what an app branches
        /// on. snake_case on the wire; each is listed with its status in `docs/api.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum ApiErrorCode {
            $( $(#[doc = $doc])* #[serde(rename = $wire)] $variant, )*
        }

        impl ApiErrorCode {
            /// Every code, in the order they are declared.
            pub const ALL: &[ApiErrorCode] = &[$(ApiErrorCode::$variant),*];

            /// The code as it appears on the wire, e.g. `invalid_query`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ApiErrorCode::$variant => $wire, )*
                }
            }

            /// The code of this wire name, if it is one.
            pub fn from_wire(code: &str) -> Option<Self> {
                match code {
                    $( $wire => Some(ApiErrorCode::$variant), )*
                    _ => None,
                }
            }

            /// The HTTP status an app sees with this code.
            pub const fn status(self) -> StatusCode {
                match self {
                    $( ApiErrorCode::$variant => StatusCode::$status, )*
                }
            }
        }
    };
}

codes! {
    // The request.
    /// A parameter or field is missing, malformed or out of limits.
    InvalidQuery = "invalid_query" => BAD_REQUEST,
    /// The data source does not answer this kind of query.
    Unsupported = "unsupported" => BAD_REQUEST,
    /// The token's sign-in or the connector holds as many live-value streams as allowed.
    TooManySubscriptions = "too_many_subscriptions" => TOO_MANY_REQUESTS,
    /// The request body could not be read.
    UnreadableBody = "unreadable_body" => BAD_REQUEST,
    /// The request body did not arrive within the hub's limit.
    BodyTimeout = "body_timeout" => REQUEST_TIMEOUT,
    /// The request body is over the route's limit.
    BodyTooLarge = "body_too_large" => PAYLOAD_TOO_LARGE,
    /// The request head is over the server's limits (answered by `uplink_tls`).
    RequestHeadTooLarge = "request_head_too_large" => REQUEST_HEADER_FIELDS_TOO_LARGE,
    /// No route at this path.
    NotFound = "not_found" => NOT_FOUND,
    // The token and the grant.
    /// No bearer token.
    MissingToken = "missing_token" => UNAUTHORIZED,
    /// The token is malformed, expired or not from this hub.
    InvalidToken = "invalid_token" => UNAUTHORIZED,
    /// The token lacks the scope.
    InsufficientScope = "insufficient_scope" => FORBIDDEN,
    /// No live grant for this user, app and data source.
    NoGrant = "no_grant" => FORBIDDEN,
    /// The hub cannot read its store.
    StoreUnavailable = "store_unavailable" => SERVICE_UNAVAILABLE,
    // Billing (`account.debit`).
    /// The user's balance is lower than the debit.
    InsufficientFunds = "insufficient_funds" => PAYMENT_REQUIRED,
    /// The debit would pass the monthly limit the user set for the app.
    LimitReached = "limit_reached" => PAYMENT_REQUIRED,
    /// The `Idempotency-Key` was used before for a different debit or write.
    IdempotencyKeyReused = "idempotency_key_reused" => CONFLICT,
    /// A write with this `Idempotency-Key` is being applied; ask again for its answer.
    WriteInProgress = "write_in_progress" => CONFLICT,
    /// The refund is more than is left of the debit, or the debit is past the refund window.
    RefundRefused = "refund_refused" => UNPROCESSABLE_ENTITY,
    // The data source and its connector.
    /// No such data source, or its connector no longer offers it.
    UnknownSource = "unknown_source" => NOT_FOUND,
    /// The data source has no such tag.
    UnknownTag = "unknown_tag" => NOT_FOUND,
    /// The connector's local policy refuses this app or data source.
    Vetoed = "vetoed" => FORBIDDEN,
    /// The data source failed on site.
    SourceError = "source_error" => BAD_GATEWAY,
    /// The connector is running too many queries.
    Busy = "busy" => SERVICE_UNAVAILABLE,
    /// The connector has no live link.
    ConnectorOffline = "connector_offline" => SERVICE_UNAVAILABLE,
    /// The link dropped during the answer.
    LinkLost = "link_lost" => SERVICE_UNAVAILABLE,
    /// The connector did not answer in time.
    ConnectorTimeout = "connector_timeout" => GATEWAY_TIMEOUT,
    /// The answer exceeds the hub's size limit.
    AnswerTooLarge = "answer_too_large" => PAYLOAD_TOO_LARGE,
}

impl ApiErrorCode {
    /// The `{code, message}` response with this code's status.
    pub fn response(self, message: impl Into<String>) -> Response {
        json_error(self.status(), self.as_str(), message)
    }

    /// The code an app sees for a connector's failure; `None` for `cancelled`, which never
    /// reaches an app (the app went away first).
    pub fn of_failure(failure: FailureCode) -> Option<Self> {
        Some(match failure {
            FailureCode::UnknownSource => Self::UnknownSource,
            FailureCode::UnknownTag => Self::UnknownTag,
            FailureCode::Vetoed => Self::Vetoed,
            FailureCode::InvalidQuery => Self::InvalidQuery,
            FailureCode::Unsupported => Self::Unsupported,
            FailureCode::SourceError => Self::SourceError,
            FailureCode::Busy => Self::Busy,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rows of the markdown table under `heading` in `doc`: `(status, code)` from rows
/// `| 400 | \`code\` | … |`.
#[cfg(test)]
pub(crate) fn documented_codes(doc: &str, heading: &str) -> Vec<(u16, String)> {
    let section = doc
        .split_once(heading)
        .unwrap_or_else(|| panic!("docs/api.md has no heading {heading:?}"))
        .1;
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let status = cells.get(1)?.parse::<u16>().ok()?;
            let code = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((status, code.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const API_MD: &str = include_str!("../../../../docs/api.md");

    #[test]
    fn every_code_is_in_the_error_table_of_the_docs_with_its_status() {
        let table = documented_codes(API_MD, "\n## Errors\n");
        for &code in ApiErrorCode::ALL {
            let rows: Vec<u16> = table
                .iter()
                .filter(|(_, c)| c == code.as_str())
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(
                rows,
                [code.status().as_u16()],
                "docs/api.md's error table must list `{code}` once, with HTTP {}",
                code.status().as_u16()
            );
        }
    }

    #[test]
    fn every_code_in_the_error_table_of_the_docs_is_a_code() {
        let table = documented_codes(API_MD, "\n## Errors\n");
        assert!(
            table.len() >= 10,
            "the error table was not found: {table:?}"
        );
        for (_, code) in &table {
            assert!(
                ApiErrorCode::from_wire(code).is_some(),
                "docs/api.md lists `{code}`, which ApiErrorCode does not have"
            );
        }
    }

    #[test]
    fn codes_round_trip_through_their_wire_names() {
        for &code in ApiErrorCode::ALL {
            assert_eq!(ApiErrorCode::from_wire(code.as_str()), Some(code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[test]
    fn connector_failures_keep_their_wire_name_and_status() {
        for &failure in FailureCode::ALL {
            match ApiErrorCode::of_failure(failure) {
                Some(code) => {
                    assert_eq!(code.as_str(), failure.as_str());
                    assert_eq!(code.status().as_u16(), failure.http_status());
                }
                None => assert_eq!(failure, FailureCode::Cancelled),
            }
        }
    }

    #[test]
    fn the_head_limit_answers_with_the_documented_code() {
        assert_eq!(
            uplink_tls::HEAD_TOO_LARGE_CODE,
            ApiErrorCode::RequestHeadTooLarge.as_str()
        );
    }
}
