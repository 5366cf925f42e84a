//! The cap on connector links: a request that would open one more connection on the link
//! (negotiate, or a WebSocket that skips it) is refused with 503, a `Retry-After` and a
//! `{code, message}` body naming the limit once the cap is reached. Requests of connections
//! already open pass untouched, so links that are up keep working; a slot frees as soon as a
//! link closes.
//!
//! Connections count from negotiate on, before their transport and handshake, since each
//! holds the hub's resources from then; a negotiate still running holds a slot too, so a burst
//! of connectors cannot slip past the cap together.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uplink_signalr::server::HubServer;

/// Seconds a refused connector is asked to wait: a slot frees only when a link closes.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The `code` of the refusal.
pub const LIMIT_CODE: &str = "connector_limit";

/// The cap and what it counts.
#[derive(Debug)]
pub struct ConnectorLimit {
    limits: Arc<crate::live_limits::LiveLimits>,
    server: HubServer,
    /// Requests admitted that have not yet finished opening their connection.
    opening: Mutex<usize>,
    /// When a refusal was last logged at warning level (Unix seconds).
    last_warned: AtomicI64,
}

impl ConnectorLimit {
    /// A cap on connections to `server`'s endpoint: the limits' `max_connectors` in force.
    pub fn new(limits: Arc<crate::live_limits::LiveLimits>, server: HubServer) -> Self {
        Self {
            limits,
            server,
            opening: Mutex::new(0),
            last_warned: AtomicI64::new(i64::MIN),
        }
    }

    /// A slot for one more connection, held while it opens; `None` at the cap.
    fn admit(self: &Arc<Self>) -> Option<Opening> {
        let mut opening = self.opening.lock().unwrap_or_else(|p| p.into_inner());
        if self.server.open_connections() + *opening >= self.limits.max_connectors() {
            return None;
        }
        *opening += 1;
        Some(Opening(self.clone()))
    }

    fn refusal(&self) -> Response {
        let max = self.limits.max_connectors();
        let now = crate::clock::now();
        let last = self.last_warned.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60
            && self
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connectors = max,
                "connector link refused: the hub is at its connector limit (logged once a minute)"
            );
        } else {
            tracing::debug!(
                max_connectors = max,
                "connector link refused at the limit"
            );
        }
        let message = format!(
            "this hub serves at most {} connector links at once and all are in use; retry in {RETRY_AFTER_SECS} s",
            max
        );
        // `error` is where a SignalR client looks in a negotiate answer.
        let body = serde_json::json!({ "code": LIMIT_CODE, "message": message, "error": message });
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            axum::Json(body),
        )
            .into_response()
    }
}

/// A slot taken by a connection being opened; given back once the request is answered (the
/// connection then counts among the server's own).
struct Opening(Arc<ConnectorLimit>);

impl Drop for Opening {
    fn drop(&mut self) {
        let mut opening = self.0.opening.lock().unwrap_or_else(|p| p.into_inner());
        *opening = opening.saturating_sub(1);
    }
}

/// Whether `request` opens a new connection: negotiate, or a WebSocket without a
/// connection id (a client that skips negotiate).
fn opens_connection(request: &Request) -> bool {
    let uri = request.uri();
    if request.method() == Method::POST {
        return uri.path().trim_end_matches('/').ends_with("/negotiate");
    }
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let has_id = uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "id"));
    request.method() == Method::GET && upgrade && !has_id
}

/// The middleware in front of the link's routes.
pub async fn gate(
    State(limit): State<Arc<ConnectorLimit>>,
    request: Request,
    next: Next,
) -> Response {
    if !opens_connection(&request) {
        return next.run(request).await;
    }
    let Some(_slot) = limit.admit() else {
        return limit.refusal();
    };
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(method: Method, uri: &str, upgrade: bool) -> Request {
        let mut builder = axum::http::Request::builder().method(method).uri(uri);
        if upgrade {
            builder = builder.header(header::UPGRADE, "websocket");
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn only_requests_that_open_a_connection_are_counted() {
        assert!(opens_connection(&request(
            Method::POST,
            "/hubs/connector/negotiate?negotiateVersion=1",
            false
        )));
        assert!(opens_connection(&request(
            Method::POST,
            "/negotiate",
            false
        )));
        assert!(opens_connection(&request(Method::GET, "/", true)));
        assert!(opens_connection(&request(
            Method::GET,
            "/?access_token=x",
            true
        )));
        // Requests of a connection already open: its WebSocket, long polls, sends, SSE.
        assert!(!opens_connection(&request(Method::GET, "/?id=abc", true)));
        assert!(!opens_connection(&request(Method::GET, "/?id=abc", false)));
        assert!(!opens_connection(&request(Method::POST, "/?id=abc", false)));
        assert!(!opens_connection(&request(
            Method::DELETE,
            "/?id=abc",
            false
        )));
        assert!(!opens_connection(&request(
            Method::GET,
            "/negotiate",
            false
        )));
    }
}
