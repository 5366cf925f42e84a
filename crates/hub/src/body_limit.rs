//! Request bodies are bounded per route, in size and in the time they may take to arrive. A
//! body is read whole before its handler runs (every hub route outside the connector link
//! takes a small body, or none), so a handler never waits on a client that trickles its bytes,
//! and a refusal is a JSON `{code, message}` like every other hub error.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::LengthLimitError;

use crate::api::ApiErrorCode;

/// How large a request body may be on each kind of route, and how long it may take to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// OAuth endpoints, sign-in, consent and settings forms (default 64 KiB).
    pub form_bytes: usize,
    /// The app data API, whose `POST …/query` takes a query as JSON (default 1 MiB: a
    /// snapshot of the 10 000 tags a query may name fits).
    pub api_bytes: usize,
    /// The longest a request body may take to arrive, from its headers to its last byte
    /// (default 30 s); a body still arriving then is answered 408 and the connection closed.
    pub read_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            form_bytes: 64 * 1024,
            api_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// Which of [`BodyLimits`] a group of routes applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyGroup {
    /// [`BodyLimits::form_bytes`].
    Form,
    /// [`BodyLimits::api_bytes`].
    Api,
}

/// The limit one group of routes applies, read from the limits in force for each request:
/// the state of [`read_whole_body`].
#[derive(Debug, Clone)]
pub struct RouteLimit {
    /// Which size limit applies.
    pub group: BodyGroup,
    /// Where the limits in force are.
    pub limits: std::sync::Arc<crate::live_limits::LiveLimits>,
}

/// The size and time one request's body may take.
#[derive(Debug, Clone, Copy)]
struct Limit {
    bytes: usize,
    timeout: Duration,
}

/// Middleware: reads the body within the route's limits, then runs the handler on it.
pub async fn read_whole_body(
    State(route): State<RouteLimit>,
    request: Request,
    next: Next,
) -> Response {
    let bodies = route.limits.bodies();
    let limit = Limit {
        bytes: match route.group {
            BodyGroup::Form => bodies.form_bytes,
            BodyGroup::Api => bodies.api_bytes,
        },
        timeout: bodies.read_timeout,
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.bytes as u64) {
        return too_large(limit.bytes);
    }
    let (parts, body) = request.into_parts();
    let bytes =
        match tokio::time::timeout(limit.timeout, axum::body::to_bytes(body, limit.bytes)).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(error)) if is_length_limit(&error) => return too_large(limit.bytes),
            Ok(Err(error)) => {
                tracing::debug!(%error, "request body could not be read");
                return closing(
                    ApiErrorCode::UnreadableBody.response("the request body could not be read"),
                );
            }
            Err(_) => {
                return closing(ApiErrorCode::BodyTimeout.response(format!(
                    "the request body did not arrive within {} s",
                    limit.timeout.as_secs_f64()
                )));
            }
        };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn too_large(limit: usize) -> Response {
    closing(ApiErrorCode::BodyTooLarge.response(format!(
        "the request body is larger than this route's limit of {limit} bytes"
    )))
}

/// The rest of the body is never read, so the connection cannot carry another request.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
