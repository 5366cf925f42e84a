//! The SignalR server: an axum [`Router`] serving negotiate and the three transports for one
//! [`Hub`], mountable at any path.
//!
//! ```no_run
//! use axum::Router;
//! use uplink_signalr::server::{Hub, HubError, HubServer, ServerOptions};
//!
//! # async fn serve() -> anyhow::Result<()> {
//! let hub = Hub::new().method("Echo", |_caller, (text,): (String,)| async move {
//!     Ok::<_, HubError>(text)
//! });
//! let server = HubServer::new(hub, ServerOptions::default());
//! let app = Router::new().nest("/hubs/echo", server.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await?; // in Uplink: uplink_tls::serve, always over TLS
//! # Ok(()) }
//! ```

// Request handlers return an axum `Response` as their error: it is what they send.
#![allow(clippy::result_large_err)]

mod auth;
mod connection;
mod hub;
mod long_polling;
mod session;
mod sse;
pub use sse::encode_event as encode_sse_event;
mod websocket;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::RngCore;

pub use auth::{
    AuthRejection, AuthRequest, Authenticator, Claims, Identity, OriginPolicy, bearer_token,
    query_param, redacted_uri,
};
pub use connection::ConnectionHandle;
pub use hub::{Caller, EncodedItem, Hub, HubError};

use self::connection::{Connection, lock};
use crate::negotiate::{AvailableTransport, NegotiateResponse, Transport};
use crate::protocol::{DEFAULT_MAX_MESSAGE_SIZE, HubProtocol, JsonProtocol, MessagePackProtocol};

/// The default [`ServerOptions::max_batch_size`]: axum's default body limit, so a POST and a
/// WebSocket message are bounded alike.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 2 * 1024 * 1024;

/// Limits and timings of a [`HubServer`]. Defaults follow ASP.NET Core.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Transports offered in negotiate and accepted (default: all three).
    pub transports: Vec<Transport>,
    /// Largest incoming message (default 32 KiB).
    pub max_message_size: usize,
    /// Largest incoming batch: one WebSocket message or one POST body, which may hold many
    /// messages (default 2 MiB). The official clients concatenate everything queued while a
    /// send is in flight, so a client with many calls out sends batches far above one message.
    pub max_batch_size: usize,
    /// A ping is written when nothing else was written for this long (default 15 s, as
    /// ASP.NET Core), on every transport and whatever the client sends; a pending long poll is
    /// answered with it.
    pub keep_alive_interval: Duration,
    /// The client is dropped when nothing arrived for this long (default 30 s). Not on long
    /// polling, which keeps itself alive as ASP.NET Core's does: the official clients send no
    /// pings there, and a client that stops polling is dropped after `disconnect_timeout`.
    pub client_timeout: Duration,
    /// The handshake must arrive this soon after the transport attaches (default 15 s).
    pub handshake_timeout: Duration,
    /// A long poll with nothing to send returns empty after this long (default 90 s).
    pub long_poll_timeout: Duration,
    /// A negotiated connection with no transport, or a long-polling one with no poll, is dropped
    /// after this long (default 15 s).
    pub disconnect_timeout: Duration,
    /// Messages queued per connection before the client counts as too slow (default 256).
    pub send_queue_capacity: usize,
    /// How long a stream item may wait for room in the send queue (default 10 s).
    pub stream_send_timeout: Duration,
    /// How long a client result may take (default 30 s).
    pub client_result_timeout: Duration,
    /// Which browser origins may connect.
    pub origins: OriginPolicy,
    /// Checks every request's bearer token; `None` lets everyone in.
    pub authenticator: Option<Authenticator>,
}

impl ServerOptions {
    /// The bound on one incoming batch as applied: never below one message, nor below the
    /// frames our own clients fill.
    pub(crate) fn batch_limit(&self) -> usize {
        self.max_batch_size
            .max(self.max_message_size)
            .max(crate::frames::FRAME_LIMIT)
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            transports: Transport::ALL.to_vec(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            keep_alive_interval: Duration::from_secs(15),
            client_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            long_poll_timeout: Duration::from_secs(90),
            disconnect_timeout: Duration::from_secs(15),
            send_queue_capacity: 256,
            stream_send_timeout: Duration::from_secs(10),
            client_result_timeout: Duration::from_secs(30),
            origins: OriginPolicy::default(),
            authenticator: None,
        }
    }
}

pub(crate) struct ServerShared {
    pub hub: Hub,
    pub options: ServerOptions,
    pub protocols: Vec<Arc<dyn HubProtocol>>,
    by_token: Mutex<HashMap<String, Arc<Connection>>>,
    by_id: Mutex<HashMap<String, Arc<Connection>>>,
}

/// A hub served over SignalR. Clone it freely; all clones serve the same connections.
#[derive(Clone)]
pub struct HubServer {
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for HubServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubServer")
            .field("hub", &self.shared.hub)
            .field("connections", &lock(&self.shared.by_id).len())
            .finish()
    }
}

impl HubServer {
    /// A server for `hub` speaking the JSON and MessagePack hub protocols (each client picks
    /// one in its handshake; MessagePack over WebSockets and long polling only).
    pub fn new(hub: Hub, options: ServerOptions) -> Self {
        Self {
            shared: Arc::new(ServerShared {
                hub,
                options,
                protocols: vec![Arc::new(JsonProtocol), Arc::new(MessagePackProtocol)],
                by_token: Mutex::default(),
                by_id: Mutex::default(),
            }),
        }
    }

    /// The routes: `POST /negotiate` and `GET|POST|DELETE /`. Mount with [`Router::nest`].
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/",
                get(transport_get)
                    .post(long_polling::post_messages)
                    .delete(long_polling::delete),
            )
            .route("/negotiate", post(negotiate))
            .layer(DefaultBodyLimit::max(self.shared.options.batch_limit()))
            .with_state(self.shared.clone())
    }

    /// The open connection with this public id.
    pub fn connection(&self, connection_id: &str) -> Option<ConnectionHandle> {
        lock(&self.shared.by_id)
            .get(connection_id)
            .filter(|c| !c.is_closed())
            .map(ConnectionHandle::new)
    }

    /// Closes every connection, telling clients why; for shutting the server down. Stop
    /// accepting new requests first, or clients may reconnect at once.
    pub fn close_all(&self, error: Option<String>) {
        let all: Vec<_> = lock(&self.shared.by_id).values().cloned().collect();
        for conn in all {
            conn.close(error.clone());
        }
    }

    /// How many connections are open, counting those negotiated or awaiting their handshake:
    /// each holds the server's resources, so a connection cap counts them all.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.by_id)
            .values()
            .filter(|c| !c.is_closed())
            .count()
    }

    /// Every open connection that completed its handshake.
    pub fn connections(&self) -> Vec<ConnectionHandle> {
        lock(&self.shared.by_id)
            .values()
            .filter(|c| !c.is_closed() && lock(&c.protocol).is_some())
            .map(ConnectionHandle::new)
            .collect()
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn registry_remove(server: &ServerShared, conn: &Connection) {
    lock(&server.by_token).remove(&conn.token);
    lock(&server.by_id).remove(&*conn.id);
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// Origin check and authentication, shared by every route.
async fn admit(
    server: &ServerShared,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Option<Identity>, Response> {
    if !server.options.origins.permits(headers) {
        tracing::info!(path = %uri.path(), "refused a request from a foreign origin");
        return Err(error_response(StatusCode::FORBIDDEN, "origin not allowed"));
    }
    let Some(authenticator) = &server.options.authenticator else {
        return Ok(None);
    };
    let request = AuthRequest {
        bearer: auth::bearer_token(headers, uri),
        headers: headers.clone(),
    };
    match authenticator.check(request).await {
        Ok(identity) => Ok(Some(identity)),
        Err(AuthRejection(reason)) => {
            tracing::info!(uri = %redacted_uri(uri), %reason, "authentication refused");
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                reason,
            )
                .into_response())
        }
    }
}

/// Finds the connection named by `id` and checks the request comes from its owner.
async fn find_connection(
    server: &ServerShared,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Arc<Connection>, Response> {
    let identity = admit(server, headers, uri).await?;
    let Some(token) = auth::query_param(uri, "id") else {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "connection id (the 'id' query parameter) is required",
        ));
    };
    let conn = lock(&server.by_token).get(&token).cloned();
    let Some(conn) = conn else {
        return Err(error_response(
            StatusCode::NOT_FOUND,
            "no connection with this id",
        ));
    };
    if identity.as_ref().map(|i| &i.subject) != conn.identity.as_ref().map(|i| &i.subject) {
        return Err(error_response(
            StatusCode::FORBIDDEN,
            "the request's identity does not own this connection",
        ));
    }
    Ok(conn)
}

fn new_connection(server: &Arc<ServerShared>, identity: Option<Identity>) -> Arc<Connection> {
    let conn = Connection::new(
        random_id(),
        random_id(),
        identity,
        server.options.send_queue_capacity,
        server.options.client_result_timeout,
        server.options.keep_alive_interval,
    );
    lock(&server.by_token).insert(conn.token.clone(), conn.clone());
    lock(&server.by_id).insert(conn.id.to_string(), conn.clone());
    conn
}

/// Claims the connection for `transport`; the first claim starts the protocol session, fed
/// by the transport through the connection's inbound channel.
fn attach(
    server: &Arc<ServerShared>,
    conn: &Arc<Connection>,
    transport: Transport,
) -> Result<bool, Response> {
    let first = claim(server, conn, transport)?;
    if first {
        tokio::spawn(session::run(server.clone(), conn.clone(), None));
    }
    Ok(first)
}

/// Claims the connection for `transport`; `true` for the first claim, whose caller starts the
/// protocol session.
fn claim(
    server: &Arc<ServerShared>,
    conn: &Arc<Connection>,
    transport: Transport,
) -> Result<bool, Response> {
    if !server.options.transports.contains(&transport) {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("the {transport} transport is disabled on this server"),
        ));
    }
    let mut current = lock(&conn.transport);
    match *current {
        None => {
            *current = Some(transport);
            Ok(true)
        }
        Some(t) if t == transport && transport == Transport::LongPolling => Ok(false),
        Some(t) if t == transport => Err(error_response(
            StatusCode::CONFLICT,
            &format!("another {transport} request is already active for this connection"),
        )),
        Some(t) => Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("this connection already uses the {t} transport"),
        )),
    }
}

/// The negotiate version this server answers a request with: what the client asks for in
/// `negotiateVersion` (0 when absent or unreadable), at most 1.
pub fn negotiate_version(uri: &Uri) -> u32 {
    auth::query_param(uri, "negotiateVersion")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
        .min(1)
}

async fn negotiate(
    State(server): State<Arc<ServerShared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let identity = match admit(&server, &headers, &uri).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let conn = new_connection(&server, identity);
    let version = negotiate_version(&uri);
    let format = |t: Transport| match t {
        Transport::ServerSentEvents => vec!["Text".to_string()],
        _ => vec!["Text".to_string(), "Binary".to_string()],
    };
    let body = NegotiateResponse {
        connection_id: Some(conn.id.to_string()),
        // Version 0 clients present the connection id itself as `id`.
        connection_token: (version >= 1).then(|| conn.token.clone()),
        negotiate_version: version,
        available_transports: server
            .options
            .transports
            .iter()
            .map(|&t| AvailableTransport {
                transport: t.as_str().to_string(),
                transfer_formats: format(t),
            })
            .collect(),
        ..NegotiateResponse::default()
    };
    if version == 0 {
        // Version 0 uses the id as the token: re-key the connection under it.
        let mut by_token = lock(&server.by_token);
        by_token.remove(&conn.token);
        by_token.insert(conn.id.to_string(), conn.clone());
    }
    // A negotiated connection that never attaches a transport is dropped.
    let server2 = server.clone();
    let conn2 = conn.clone();
    tokio::spawn(async move {
        tokio::time::sleep(server2.options.disconnect_timeout).await;
        if conn2.transport().is_none() {
            conn2.close(None);
            registry_remove(&server2, &conn2);
            let mut by_token = lock(&server2.by_token);
            by_token.remove(&*conn2.id);
        }
    });
    tracing::debug!(connection_id = %conn.id, version, "negotiated");
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn transport_get(State(server): State<Arc<ServerShared>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let uri = request.uri().clone();
    if is_websocket_upgrade(&headers) {
        websocket::accept(server, request).await
    } else if accepts_event_stream(&headers) {
        sse::stream(server, headers, uri).await
    } else {
        long_polling::poll(server, headers, uri).await
    }
}
