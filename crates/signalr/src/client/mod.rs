//! The SignalR client: negotiate, transport fallback (WebSockets → Server-Sent Events → long
//! polling), TLS through rustls, HTTP CONNECT proxies, and reconnection that never gives up.
//!
//! ```no_run
//! use uplink_signalr::HubError;
//! use uplink_signalr::client::{ClientEvent, HubConnection};
//!
//! # async fn run(tls: std::sync::Arc<rustls::ClientConfig>) -> uplink_signalr::Result<()> {
//! let connection = HubConnection::builder("https://hub.example/hubs/connector")
//!     .tls(tls)
//!     .access_token(|| async { Ok::<_, String>("token from the OS keyring".to_string()) })
//!     .on("Ping", |(n,): (u32,)| async move { Ok::<_, HubError>(n + 1) }) // a client result
//!     .start()?;
//! let mut events = connection.events();
//! tokio::spawn(async move {
//!     while let Ok(event) = events.recv().await {
//!         if let ClientEvent::Connected { transport, .. } = event {
//!             tracing::info!(%transport, "linked");
//!         }
//!     }
//! });
//! connection.wait_connected().await;
//! let sum: i64 = connection.invoke("Add", (40, 2)).await?;
//! assert_eq!(sum, 42);
//! connection.stop().await;
//! # Ok(()) }
//! ```
//!
//! While connected, `run_connected` waits for the next `ConnectedEvent` (the session ended,
//! stop, reconnect now, re-probe) and hands it to a small handler; `session.rs` runs the protocol
//! loop of one session the same way.

// Each function here and in the submodules stays simple enough to read at a glance (clippy's
// default bound, 25).
#![warn(clippy::cognitive_complexity)]

mod backoff;
mod handlers;
mod http;
mod link;
mod long_polling;
mod probe;
mod proxy;
mod session;
mod sse;
mod token;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use hyper::http::{Method, StatusCode, Uri};
use rand::SeedableRng;
use rustls::ClientConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use url::Url;

pub use backoff::Backoff;
pub use probe::{
    FIRST_PROBE_CONNECT_MULTIPLE, FIRST_PROBE_FLOOR, Remembered, TransportMemory, first_probe_wait,
};
pub use proxy::{Proxy, ProxySetting};
pub use sse::EventParser;

use self::handlers::Handlers;
use self::http::{Dialer, HttpClient, KeepAlive, read_body};
use self::link::Link;
use self::probe::Patience;
use self::session::{Liveness, Session, handshake};
use self::token::TokenCell;
use crate::error::{Error, Result};
use crate::hub_error::HubError;
use crate::negotiate::{NegotiateResponse, Transport};
use crate::protocol::{
    HubProtocol, JsonProtocol, MessageDecoder, MessagePackProtocol, TransferFormat,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The client configuration used when the builder was given none: the operating system's
/// trust store, always through the ring provider, whatever default the process installed.
fn platform_trust() -> Result<Arc<ClientConfig>> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let tls = |e: rustls::Error| Error::Tls(e.to_string());
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            .with_platform_verifier()
            .map_err(tls)?
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod platform_trust_tests {
    #[test]
    fn the_default_trust_is_the_platform_store() {
        let config = super::platform_trust().expect("the platform verifier is available");
        assert!(
            config.alpn_protocols.is_empty(),
            "no ALPN: the transports choose HTTP/1.1 themselves"
        );
    }
}

type TokenFn = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// A transport the client did not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTransport {
    /// The transport.
    pub transport: Transport,
    /// Why it was skipped (refused upgrade, no handshake in time, not offered…).
    pub reason: String,
}

/// What the client is doing, as a stream of events (see [`HubConnection::events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Trying to connect (attempt counts from 1 since the last working connection).
    Connecting {
        /// The attempt number.
        attempt: u32,
    },
    /// Connected over `transport`; `skipped` says why faster transports were not used.
    Connected {
        /// The transport in use.
        transport: Transport,
        /// The server's public id for this connection.
        connection_id: Option<String>,
        /// Faster transports that failed, with reasons.
        skipped: Vec<SkippedTransport>,
    },
    /// The last attempt failed or the link dropped; the next attempt follows after `delay`.
    Reconnecting {
        /// The upcoming attempt number.
        attempt: u32,
        /// How long until it starts.
        delay: Duration,
        /// What went wrong.
        last_error: String,
    },
    /// The client stopped ([`HubConnection::stop`]); it will not reconnect.
    Disconnected {
        /// Why, if not a requested stop.
        error: Option<String>,
    },
}

/// The client's state right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Working on a connection.
    Connecting,
    /// Connected over a transport.
    Connected(Transport),
    /// Waiting before the next attempt.
    Reconnecting,
    /// Stopped.
    Disconnected,
}

/// Configures a [`HubConnection`]; see [`HubConnection::builder`].
pub struct ClientBuilder {
    url: String,
    tls: Option<Arc<ClientConfig>>,
    transports: Vec<Transport>,
    token: Option<TokenFn>,
    proxy: ProxySetting,
    handlers: Handlers,
    backoff: Backoff,
    reprobe_interval: Option<Duration>,
    handshake_timeout: Duration,
    keep_alive_interval: Duration,
    server_timeout: Duration,
    long_poll_timeout: Duration,
    max_message_size: usize,
    message_pack: bool,
    memory: Option<Arc<dyn TransportMemory>>,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("transports", &self.transports)
            .field("proxy", &self.proxy)
            .field("handlers", &self.handlers)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The rustls configuration (default: the platform's trust store).
    pub fn tls(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The transports to try, in order (default: WebSockets, Server-Sent Events, long polling).
    pub fn transports(mut self, transports: &[Transport]) -> Self {
        self.transports = transports.to_vec();
        self
    }

    /// Uses only `transport`, for diagnosis.
    pub fn force_transport(self, transport: Transport) -> Self {
        self.transports(&[transport])
    }

    /// Called before every connection attempt for a fresh bearer token.
    pub fn access_token<F, Fut, E>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.token = Some(Arc::new(move || {
            provider().map(|r| r.map_err(|e| e.to_string())).boxed()
        }));
        self
    }

    /// The proxy to use (default: from `HTTPS_PROXY` / `NO_PROXY`).
    pub fn proxy(mut self, proxy: ProxySetting) -> Self {
        self.proxy = proxy;
        self
    }

    /// Handles the server's invocations of `name`; the returned value answers a client-result
    /// call.
    pub fn on<A, R, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HubError>> + Send + 'static,
    {
        self.handlers.insert(name.into(), handler);
        self
    }

    /// Reconnect delays (default: 1 s doubling up to 30 s, full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// After falling back, how often to try the faster transports again (default 5 minutes;
    /// `None` never).
    pub fn reprobe_interval(mut self, interval: Option<Duration>) -> Self {
        self.reprobe_interval = interval;
        self
    }

    /// How long one transport may take to connect and complete the handshake before the next
    /// is tried (default 15 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// A ping is sent when nothing else was sent for this long (default 15 s).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// The connection counts as lost when nothing arrived for this long (default 30 s).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.server_timeout = timeout;
        self
    }

    /// How long a long poll may stay open before it is retried (default 100 s).
    pub fn long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.long_poll_timeout = timeout;
        self
    }

    /// Speaks the MessagePack hub protocol where the transport carries binary (WebSockets and
    /// long polling), and JSON over Server-Sent Events, which carry text only. Arguments that
    /// serialise as bytes then travel as MessagePack `bin`, neither escaped nor base64-encoded.
    /// A server that refuses MessagePack in the handshake is spoken to in JSON from then on.
    pub fn message_pack(mut self) -> Self {
        self.message_pack = true;
        self
    }

    /// Where the transport that last worked on this route (hub URL and proxy) is kept, with
    /// why the faster ones failed: the client starts and reconnects on it at once, and moves up
    /// when a background re-probe finds a faster one working. Without it the client remembers
    /// only while it runs.
    pub fn transport_memory(mut self, memory: Arc<dyn TransportMemory>) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Sends `name: value` on every request of the connection: negotiate, each poll and send,
    /// the event stream and the WebSocket upgrade (so a load balancer can hash it and keep
    /// the connection on one server). Checked by [`ClientBuilder::start`].
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Largest message accepted from the server (default 1 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Starts connecting in the background and returns at once. The first connection is retried
    /// like any reconnect, forever, until [`HubConnection::stop`].
    ///
    /// # Errors
    /// Only for configuration: an unusable URL, proxy setting or TLS setup.
    pub fn start(self) -> Result<HubConnection> {
        let url = Url::parse(&self.url)
            .map_err(|e| Error::Config(format!("hub URL '{}': {e}", self.url)))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::Config(format!(
                "hub URL scheme '{}' is not supported: use https",
                url.scheme()
            )));
        }
        if self.transports.is_empty() {
            return Err(Error::Config("no transport allowed".into()));
        }
        let tls = match self.tls {
            Some(tls) => tls,
            None => platform_trust()?,
        };
        let proxy = self.proxy.resolve(|name| std::env::var(name).ok())?;
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                Ok((
                    hyper::http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| Error::Config(format!("header name '{name}': {e}")))?,
                    hyper::http::HeaderValue::from_str(value)
                        .map_err(|e| Error::Config(format!("header '{name}' value: {e}")))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let http = HttpClient::new(Dialer::new(&tls, proxy).with_headers(headers));
        // The transports allowed are part of the route: what worked while the owner forced
        // long polling says nothing about the full list.
        let allowed: Vec<&str> = self.transports.iter().map(|t| t.as_str()).collect();
        let route = format!(
            "{} {} [{}]",
            url.as_str(),
            http.dialer.route_to(url.host_str().unwrap_or_default()),
            allowed.join(",")
        );
        let working = self
            .memory
            .as_ref()
            .and_then(|memory| memory.recall(&route))
            .filter(|r| self.transports.contains(&r.transport));
        if let Some(remembered) = &working {
            tracing::info!(%route, transport = %remembered.transport, "starting on the transport that last worked on this route");
        }
        let shared = Arc::new(Shared {
            url,
            route,
            memory: self.memory,
            working: Mutex::new(working),
            http,
            transports: self.transports,
            token: self.token,
            handlers: Arc::new(self.handlers),
            backoff: self.backoff,
            reprobe_interval: self.reprobe_interval,
            handshake_timeout: self.handshake_timeout,
            liveness: Liveness {
                keep_alive_interval: self.keep_alive_interval,
                server_timeout: self.server_timeout,
            },
            long_poll_timeout: self.long_poll_timeout,
            max_message_size: self.max_message_size,
            protocol: Arc::new(JsonProtocol),
            binary_protocol: self
                .message_pack
                .then(|| Arc::new(MessagePackProtocol) as Arc<dyn HubProtocol>),
            binary_refused: AtomicBool::new(false),
            session: watch::channel(None).0,
            state: watch::channel(ConnectionState::Connecting).0,
            events: broadcast::channel(64).0,
            stop: watch::channel(false).0,
            supervisor: Mutex::new(None),
            current_token: TokenCell::default(),
            reconnect: Notify::new(),
            reconnect_requested: AtomicBool::new(false),
        });
        let task = tokio::spawn(supervise(shared.clone()));
        *shared.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(HubConnection { shared })
    }
}

struct Shared {
    url: Url,
    /// The hub URL, how it is reached (directly or through which proxy) and the transports
    /// allowed: what a [`TransportMemory`] keeps apart.
    route: String,
    memory: Option<Arc<dyn TransportMemory>>,
    /// The transport that last worked on the route, and why the faster ones did not.
    working: Mutex<Option<Remembered>>,
    http: HttpClient,
    transports: Vec<Transport>,
    token: Option<TokenFn>,
    handlers: Arc<Handlers>,
    backoff: Backoff,
    reprobe_interval: Option<Duration>,
    handshake_timeout: Duration,
    liveness: Liveness,
    long_poll_timeout: Duration,
    max_message_size: usize,
    /// The text protocol, for every transport.
    protocol: Arc<dyn HubProtocol>,
    /// The binary protocol preferred on transports that carry binary, if any.
    binary_protocol: Option<Arc<dyn HubProtocol>>,
    /// The server refused the binary protocol in a handshake: JSON from then on.
    binary_refused: AtomicBool,
    session: watch::Sender<Option<Arc<Session>>>,
    state: watch::Sender<ConnectionState>,
    events: broadcast::Sender<ClientEvent>,
    stop: watch::Sender<bool>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    /// The token the transports send, from the provider at each connect or
    /// [`HubConnection::set_access_token`].
    current_token: TokenCell,
    /// Wakes the supervisor for [`HubConnection::reconnect_now`].
    reconnect: Notify,
    /// Set with the wake-up, so the attempt that follows waits no backoff.
    reconnect_requested: AtomicBool,
}

/// How a transport skipped because it failed before is reported.
const NOT_RETRIED: &str = "not retried (failed before): ";

impl Shared {
    /// What to try, in order: the transport that last worked, at once and with the whole
    /// handshake timeout, then the others in order of preference; each a first probe but the
    /// last, which has nothing to fall back to.
    fn plan(&self) -> (Vec<(Transport, Patience)>, Vec<SkippedTransport>) {
        let working = lock(&self.working).clone();
        let mut plan = Vec::with_capacity(self.transports.len());
        let mut not_retried = Vec::new();
        if let Some(remembered) = &working {
            plan.push((remembered.transport, Patience::Full));
            not_retried = remembered
                .failed
                .iter()
                .map(|s| SkippedTransport {
                    transport: s.transport,
                    reason: format!("{NOT_RETRIED}{}", s.reason.trim_start_matches(NOT_RETRIED)),
                })
                .collect();
        }
        let rest: Vec<Transport> = self
            .transports
            .iter()
            .copied()
            .filter(|t| working.as_ref().is_none_or(|r| r.transport != *t))
            .collect();
        for (i, &transport) in rest.iter().enumerate() {
            let patience = if i + 1 == rest.len() {
                Patience::Full
            } else {
                Patience::FirstProbe
            };
            plan.push((transport, patience));
        }
        (plan, not_retried)
    }

    /// Remembers `transport` as working on the route, with the faster transports that failed.
    fn learn(&self, transport: Transport, skipped: &[SkippedTransport]) {
        let faster: Vec<Transport> = self
            .transports
            .iter()
            .copied()
            .take_while(|t| *t != transport)
            .collect();
        let learnt = Remembered {
            transport,
            failed: skipped
                .iter()
                .filter(|s| faster.contains(&s.transport))
                .map(|s| SkippedTransport {
                    transport: s.transport,
                    reason: s.reason.trim_start_matches(NOT_RETRIED).to_owned(),
                })
                .collect(),
        };
        let mut working = lock(&self.working);
        if working.as_ref() == Some(&learnt) {
            return;
        }
        *working = Some(learnt.clone());
        drop(working);
        if let Some(memory) = &self.memory {
            memory.remember(&self.route, &learnt);
        }
    }

    fn emit(&self, event: ClientEvent) {
        match &event {
            ClientEvent::Connected {
                transport, skipped, ..
            } => tracing::info!(%transport, skipped = ?skipped, "SignalR connected"),
            ClientEvent::Reconnecting {
                attempt,
                delay,
                last_error,
            } => tracing::info!(attempt, ?delay, %last_error, "SignalR reconnecting"),
            other => tracing::debug!(event = ?other, "SignalR client"),
        }
        let state = match &event {
            ClientEvent::Connecting { .. } => ConnectionState::Connecting,
            ClientEvent::Connected { transport, .. } => ConnectionState::Connected(*transport),
            ClientEvent::Reconnecting { .. } => ConnectionState::Reconnecting,
            ClientEvent::Disconnected { .. } => ConnectionState::Disconnected,
        };
        self.state.send_replace(state);
        let _ = self.events.send(event);
    }
}

/// A client connection to a SignalR hub, kept up in the background. Clone it freely.
#[derive(Clone)]
pub struct HubConnection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HubConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConnection")
            .field("url", &self.shared.url.as_str())
            .field("state", &*self.shared.state.borrow())
            .finish()
    }
}

impl HubConnection {
    /// Starts configuring a connection to the hub at `url` (`https://host/hubs/name`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            tls: None,
            transports: Transport::ALL.to_vec(),
            token: None,
            proxy: ProxySetting::default(),
            handlers: Handlers::default(),
            backoff: Backoff::default(),
            reprobe_interval: Some(Duration::from_secs(300)),
            handshake_timeout: Duration::from_secs(15),
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            long_poll_timeout: Duration::from_secs(100),
            max_message_size: 1024 * 1024,
            message_pack: false,
            memory: None,
            headers: Vec::new(),
        }
    }

    /// Events from now on: connecting, connected, reconnecting, disconnected.
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.shared.events.subscribe()
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        *self.shared.state.borrow()
    }

    /// Waits until connected (returns at once if connected), giving the transport.
    pub async fn wait_connected(&self) -> Transport {
        let mut state = self.shared.state.subscribe();
        loop {
            if let ConnectionState::Connected(t) = *state.borrow_and_update() {
                return t;
            }
            if state.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable, but never spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The transport of the current connection.
    pub fn transport(&self) -> Option<Transport> {
        self.shared.session.borrow().as_ref().map(|s| s.transport)
    }

    /// The server's id for the current connection.
    pub fn connection_id(&self) -> Option<String> {
        self.shared
            .session
            .borrow()
            .as_ref()
            .and_then(|s| s.connection_id.clone())
    }

    /// The hub protocol of the current connection (`json` or `messagepack`).
    pub fn protocol(&self) -> Option<&'static str> {
        self.shared
            .session
            .borrow()
            .as_ref()
            .map(|s| s.protocol_name())
    }

    fn session(&self) -> Result<Arc<Session>> {
        self.shared
            .session
            .borrow()
            .clone()
            .ok_or(Error::ConnectionClosed {
                reason: Some("not connected".into()),
            })
    }

    /// Calls `target` and waits for its result.
    ///
    /// # Errors
    /// [`Error::Invocation`] with the server's error, [`Error::ConnectionClosed`] when not
    /// connected or the link drops first, [`Error::Conversion`] for a result of another type.
    pub async fn invoke<R: DeserializeOwned>(
        &self,
        target: &str,
        arguments: impl Serialize,
    ) -> Result<R> {
        let session = self.session()?;
        let value = session.invoke(target, arguments).await?;
        serde_json::from_value(value).map_err(|e| Error::Conversion(e.to_string()))
    }

    /// Calls `target` and returns, once the call is queued on the transport, what waits for its
    /// result: whatever is sent after this returns goes after the call. For a caller that
    /// keeps several calls in flight and must not let a later message overtake them.
    ///
    /// # Errors
    /// As [`HubConnection::invoke`]; the returned future gives the call's own errors.
    pub async fn invoke_queued<R: DeserializeOwned>(
        &self,
        target: &str,
        arguments: impl Serialize,
    ) -> Result<impl Future<Output = Result<R>> + Send + 'static> {
        let session = self.session()?;
        let completion = session.start_invoke(target, arguments).await?;
        Ok(async move {
            let value = session::result_of(completion.await)?;
            serde_json::from_value(value).map_err(|e| Error::Conversion(e.to_string()))
        })
    }

    /// Calls `target` without waiting for (or getting) an answer.
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] when not connected.
    pub async fn send(&self, target: &str, arguments: impl Serialize) -> Result<()> {
        let session = self.session()?;
        session.send(target, arguments).await
    }

    /// Calls the streaming method `target`; dropping the stream cancels it on the server.
    ///
    /// Read it promptly: while an item waits for its reader, the connection waits too.
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`] when not connected.
    pub async fn stream<T: DeserializeOwned>(
        &self,
        target: &str,
        arguments: impl Serialize,
    ) -> Result<InvocationStream<T>> {
        let session = self.session()?;
        let (id, items) = session.stream(target, arguments).await?;
        Ok(InvocationStream {
            session,
            id,
            items,
            finished: false,
            _item: std::marker::PhantomData,
        })
    }

    /// Replaces the bearer token for every later request of the current connection (each
    /// long poll and send of the long-polling and Server-Sent Events transports). A WebSocket
    /// carries its token only when it opens, so there the server must be told in-band (for
    /// Uplink's connector link: `RenewToken`). Reconnects still ask the token provider.
    pub fn set_access_token(&self, token: impl Into<String>) {
        self.shared.current_token.renew(token.into());
    }

    /// Drops the current connection (or abandons the attempt in progress) and connects again
    /// at once, without backoff: for when the network changed, the machine woke from sleep or
    /// the wall clock jumped, and the old connection is probably dead without knowing it.
    pub fn reconnect_now(&self) {
        self.shared
            .reconnect_requested
            .store(true, Ordering::SeqCst);
        self.shared.reconnect.notify_one();
    }

    /// Closes the connection and stops reconnecting.
    pub async fn stop(&self) {
        self.shared.stop.send_replace(true);
        let task = self
            .shared
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The items of a streaming invocation.
pub struct InvocationStream<T> {
    session: Arc<Session>,
    id: String,
    items: mpsc::Receiver<Result<Value>>,
    finished: bool,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for InvocationStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationStream")
            .field("id", &self.id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl<T: DeserializeOwned> futures::Stream for InvocationStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.items.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item.and_then(|v| {
                serde_json::from_value(v).map_err(|e| Error::Conversion(e.to_string()))
            }))),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Drop for InvocationStream<T> {
    fn drop(&mut self) {
        if !self.finished {
            let session = self.session.clone();
            let id = std::mem::take(&mut self.id);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { session.cancel(&id).await });
            }
        }
    }
}

/// A transport that completed the handshake.
struct Established {
    link: Link,
    protocol: Arc<dyn HubProtocol>,
    decoder: Box<dyn MessageDecoder>,
    connection_id: Option<String>,
    skipped: Vec<SkippedTransport>,
}

async fn supervise(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut failures: u32 = 0;
    loop {
        shared.emit(ClientEvent::Connecting {
            attempt: failures + 1,
        });
        let (plan, not_retried) = shared.plan();
        let connected = tokio::select! {
            result = connect(&shared, &plan, not_retried) => result,
            _ = crate::signal::raised(&mut stop) => break,
            _ = shared.reconnect.notified() => Err(Error::closed("reconnect requested")),
        };
        let error = match connected {
            Ok(established) => {
                failures = 0;
                match run_connected(&shared, established, &mut stop).await {
                    None => break,
                    Some(error) => error,
                }
            }
            Err(error) => error,
        };
        failures = failures.saturating_add(1);
        let delay = if shared.reconnect_requested.swap(false, Ordering::SeqCst) {
            Duration::ZERO
        } else {
            shared.backoff.delay(failures, &mut rng)
        };
        shared.emit(ClientEvent::Reconnecting {
            attempt: failures + 1,
            delay,
            last_error: error.to_string(),
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = crate::signal::raised(&mut stop) => break,
            _ = shared.reconnect.notified() => {
                shared.reconnect_requested.store(false, Ordering::SeqCst);
            }
        }
    }
    shared.session.send_replace(None);
    shared.emit(ClientEvent::Disconnected { error: None });
}

/// Runs sessions until the link is lost (`Some(error)`) or the client stops (`None`), moving
/// up to a faster transport when a periodic re-probe finds one working again.
async fn run_connected(
    shared: &Arc<Shared>,
    mut established: Established,
    stop: &mut watch::Receiver<bool>,
) -> Option<Error> {
    loop {
        match Connected::start(shared, established)
            .serve(shared, stop)
            .await
        {
            SessionEnd::Lost(error) => return Some(error),
            SessionEnd::Stopped => return None,
            SessionEnd::Moved(better) => established = better,
        }
    }
}

/// What the connected loop waits for; each is handled by one small method of [`Connected`].
enum ConnectedEvent {
    /// The session ended by itself (transport failed, server closed).
    Ended(std::result::Result<Result<()>, tokio::task::JoinError>),
    /// The client is stopping.
    Stop,
    /// [`HubConnection::reconnect_now`] was called.
    Reconnect,
    /// Time to see whether a faster transport works again.
    Reprobe,
}

/// How one session ended.
enum SessionEnd {
    /// The link is lost: reconnect.
    Lost(Error),
    /// The client stopped.
    Stopped,
    /// A faster transport is connected: run the next session on it.
    Moved(Established),
}

/// One running session and what the connected loop needs to watch it.
struct Connected {
    transport: Transport,
    session: Arc<Session>,
    task: tokio::task::JoinHandle<Result<()>>,
    /// The transports preferred to this one, in order.
    faster: Vec<Transport>,
    reprobe_timer: Option<tokio::time::Interval>,
}

impl Connected {
    /// Starts a session on `established` and announces it.
    fn start(shared: &Arc<Shared>, established: Established) -> Self {
        let transport = established.link.transport;
        shared.learn(transport, &established.skipped);
        let session = Session::new(
            transport,
            established.connection_id.clone(),
            established.link.outgoing.clone(),
            established.protocol.clone(),
        );
        shared.session.send_replace(Some(session.clone()));
        shared.emit(ClientEvent::Connected {
            transport,
            connection_id: established.connection_id.clone(),
            skipped: established.skipped.clone(),
        });
        let task = tokio::spawn(session.clone().run(
            established.link,
            established.decoder,
            shared.handlers.clone(),
            shared.liveness,
        ));
        let faster: Vec<Transport> = shared
            .transports
            .iter()
            .copied()
            .take_while(|t| *t != transport)
            .collect();
        let reprobe = shared.reprobe_interval.filter(|_| !faster.is_empty());
        let reprobe_timer = reprobe
            .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
        Self {
            transport,
            session,
            task,
            faster,
            reprobe_timer,
        }
    }

    /// Waits for the next event and handles it, until the session ends.
    async fn serve(mut self, shared: &Arc<Shared>, stop: &mut watch::Receiver<bool>) -> SessionEnd {
        loop {
            let event = self.next_event(shared, stop).await;
            if let Some(end) = self.handle(shared, event).await {
                return end;
            }
        }
    }

    async fn next_event(
        &mut self,
        shared: &Shared,
        stop: &mut watch::Receiver<bool>,
    ) -> ConnectedEvent {
        let reprobe_timer = &mut self.reprobe_timer;
        tokio::select! {
            ended = &mut self.task => ConnectedEvent::Ended(ended),
            _ = crate::signal::raised(stop) => ConnectedEvent::Stop,
            _ = shared.reconnect.notified() => ConnectedEvent::Reconnect,
            _ = async {
                match reprobe_timer.as_mut() {
                    Some(timer) => { timer.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => ConnectedEvent::Reprobe,
        }
    }

    /// Handles one event; `Some` ends the session.
    async fn handle(&mut self, shared: &Arc<Shared>, event: ConnectedEvent) -> Option<SessionEnd> {
        match event {
            ConnectedEvent::Ended(ended) => {
                shared.session.send_replace(None);
                let error = match ended {
                    Ok(Ok(())) => Error::closed("the connection ended"),
                    Ok(Err(e)) => e,
                    Err(e) => Error::closed(format!("session task failed: {e}")),
                };
                Some(SessionEnd::Lost(error))
            }
            ConnectedEvent::Stop => {
                self.stop_session().await;
                Some(SessionEnd::Stopped)
            }
            ConnectedEvent::Reconnect => {
                shared.session.send_replace(None);
                self.stop_session().await;
                Some(SessionEnd::Lost(Error::closed("reconnect requested")))
            }
            ConnectedEvent::Reprobe => self.reprobe(shared).await.map(SessionEnd::Moved),
        }
    }

    /// Asks the session to close and gives it a moment to do so.
    async fn stop_session(&mut self) {
        self.session.stop();
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }

    /// Tries the faster transports; `Some` when one works and the session was idle enough to
    /// leave for it.
    async fn reprobe(&mut self, shared: &Arc<Shared>) -> Option<Established> {
        // In the background: each faster transport gets the whole handshake timeout.
        let plan: Vec<_> = self.faster.iter().map(|&t| (t, Patience::Full)).collect();
        match connect(shared, &plan, Vec::new()).await {
            Ok(better) if !self.session.has_pending() => Some(self.move_to(better).await),
            Ok(_) => {
                tracing::debug!("faster transport works, but calls are in flight: switching later");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "re-probe: faster transports still unavailable");
                None
            }
        }
    }

    /// Ends this session for `better`, a faster transport found working again.
    async fn move_to(&mut self, mut better: Established) -> Established {
        tracing::info!(from = %self.transport, to = %better.link.transport, "re-probe found a faster transport working again");
        better.skipped.push(SkippedTransport {
            transport: self.transport,
            reason: "replaced: a re-probe found a faster transport working".into(),
        });
        self.stop_session().await;
        better
    }
}

/// Tries the transports of `plan` in order, each with its own negotiate, within the handshake
/// timeout and as patiently as planned; `skipped` starts with the transports not tried at all.
async fn connect(
    shared: &Arc<Shared>,
    plan: &[(Transport, Patience)],
    mut skipped: Vec<SkippedTransport>,
) -> Result<Established> {
    for &(transport, patience) in plan {
        let started = std::time::Instant::now();
        match tokio::time::timeout(
            shared.handshake_timeout,
            try_transport(shared, transport, patience),
        )
        .await
        {
            Ok(Ok(mut established)) => {
                tracing::debug!(%transport, ?patience, took = ?started.elapsed(), connect = ?established.link.connect.or(shared.http.dialer.last_connect()), "transport connected");
                skipped.retain(|s| s.transport != transport);
                established.skipped = skipped;
                return Ok(established);
            }
            // The server itself is unreachable or refused us: another transport cannot help.
            Ok(Err(error @ Error::Negotiate(_))) => return Err(error),
            Ok(Err(error)) => skipped.push(SkippedTransport {
                transport,
                reason: error.to_string(),
            }),
            Err(_) => skipped.push(SkippedTransport {
                transport,
                reason: format!(
                    "no handshake within {:?} (a proxy may be blocking or buffering it)",
                    shared.handshake_timeout
                ),
            }),
        }
        tracing::debug!(%transport, ?patience, took = ?started.elapsed(), reason = %skipped.last().map(|s| s.reason.as_str()).unwrap_or(""), "transport skipped");
    }
    let reasons: Vec<String> = skipped
        .iter()
        .map(|s| format!("{}: {}", s.transport, s.reason))
        .collect();
    Err(Error::NoTransport(reasons.join("; ")))
}

/// Connects over `transport` with the binary protocol where it may be used, else JSON; a
/// server that refuses the binary protocol is asked again in JSON at once.
async fn try_transport(
    shared: &Arc<Shared>,
    transport: Transport,
    patience: Patience,
) -> Result<Established> {
    let binary = shared
        .binary_protocol
        .as_ref()
        .filter(|_| transport != Transport::ServerSentEvents)
        .filter(|_| !shared.binary_refused.load(Ordering::Relaxed));
    if let Some(binary) = binary {
        match try_transport_with(shared, transport, binary.clone(), patience).await {
            Err(Error::HandshakeRejected(reason)) => {
                tracing::info!(%transport, protocol = binary.name(), %reason, "the server refused the binary hub protocol; using JSON");
                shared.binary_refused.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    try_transport_with(shared, transport, shared.protocol.clone(), patience).await
}

async fn try_transport_with(
    shared: &Arc<Shared>,
    transport: Transport,
    protocol: Arc<dyn HubProtocol>,
    patience: Patience,
) -> Result<Established> {
    let token = match &shared.token {
        Some(provider) => Some(
            provider()
                .await
                .map_err(|e| Error::Negotiate(format!("the access token provider failed: {e}")))?,
        ),
        None => None,
    };
    // A WebSocket dials its own connection: the negotiate one would only idle beside it.
    let keep_alive = match transport {
        Transport::WebSockets => KeepAlive::Close,
        Transport::ServerSentEvents | Transport::LongPolling => KeepAlive::Pool,
    };
    let (negotiation, base, token) =
        negotiate(shared, shared.url.clone(), token, keep_alive).await?;
    let foreign = base.origin() != shared.url.origin();
    shared.current_token.set(token.clone(), foreign);
    if !negotiation.offers(transport) {
        return Err(Error::transport(
            transport.as_str(),
            "not offered by the server",
        ));
    }
    let id = negotiation
        .transport_id()
        .ok_or_else(|| Error::Negotiate("the answer has no connection token".into()))?;
    let mut url = base;
    url.query_pairs_mut().append_pair("id", id);
    let uri: Uri = url
        .as_str()
        .parse()
        .map_err(|e| Error::Config(format!("transport URL: {e}")))?;
    let token = token.as_deref();
    let mut link = match transport {
        Transport::WebSockets => {
            let binary = protocol.transfer_format() == TransferFormat::Binary;
            websocket::connect(
                &shared.http.dialer,
                &url,
                token,
                shared.max_message_size,
                binary,
                patience,
                shared.handshake_timeout,
            )
            .await?
        }
        Transport::ServerSentEvents => {
            sse::connect(
                &shared.http,
                &uri,
                &shared.current_token,
                // One event carries one frame: a batch of messages, as a long poll does.
                shared.max_message_size.saturating_mul(4),
            )
            .await?
        }
        Transport::LongPolling => {
            long_polling::connect(
                &shared.http,
                &uri,
                &shared.current_token,
                shared.long_poll_timeout,
                shared.max_message_size.saturating_mul(4),
            )
            .await?
        }
    };
    let decoder = match patience {
        Patience::Full => handshake(&mut link, &protocol, shared.max_message_size).await?,
        // A server answers the handshake at once (and opens an event stream with a comment
        // before it); a proxy that buffers the stream or holds frames back shows only silence,
        // so a first probe stops waiting for it soon after connecting.
        Patience::FirstProbe => {
            let connect = link
                .connect
                .or(shared.http.dialer.last_connect())
                .unwrap_or_default();
            let wait = probe::first_probe_wait(connect, shared.handshake_timeout);
            let why = if transport == Transport::ServerSentEvents {
                "a proxy is probably buffering the event stream"
            } else {
                "a proxy may be holding it"
            };
            tokio::time::timeout(
                wait,
                handshake(&mut link, &protocol, shared.max_message_size),
            )
            .await
            .map_err(|_| {
                Error::transport(
                    transport.as_str(),
                    format!(
                        "no handshake answer within {wait:?} (connecting took {connect:?}): {why}"
                    ),
                )
            })??
        }
    };
    Ok(Established {
        link,
        protocol,
        decoder,
        connection_id: negotiation.connection_id.clone(),
        skipped: Vec::new(),
    })
}

/// `POST …/negotiate?negotiateVersion=1`, following redirects to another endpoint. Our access
/// token goes only to the hub's own origin: a redirect elsewhere gets the token it hands over
/// (`accessToken`), or none.
async fn negotiate(
    shared: &Shared,
    mut base: Url,
    mut token: Option<String>,
    keep_alive: KeepAlive,
) -> Result<(NegotiateResponse, Url, Option<String>)> {
    for _ in 0..5 {
        let mut url = base.clone();
        url.set_path(&format!("{}/negotiate", base.path().trim_end_matches('/')));
        url.query_pairs_mut().append_pair("negotiateVersion", "1");
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|e| Error::Config(format!("negotiate URL: {e}")))?;
        let response = shared
            .http
            .send_with(
                Method::POST,
                &uri,
                token.as_deref(),
                None,
                Bytes::new(),
                keep_alive,
            )
            .await
            .map_err(|e| Error::Negotiate(e.to_string()))?;
        let status = response.status();
        let body = read_body(response, 64 * 1024)
            .await
            .map_err(|e| Error::Negotiate(e.to_string()))?;
        if status != StatusCode::OK {
            let detail = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(Error::Negotiate(format!(
                "HTTP {}: {detail}",
                status.as_u16()
            )));
        }
        let answer = NegotiateResponse::parse(&body)?;
        if let Some(redirect) = &answer.url {
            let next =
                Url::parse(redirect).map_err(|e| Error::Negotiate(format!("redirect URL: {e}")))?;
            if answer.access_token.is_some() {
                token = answer.access_token.clone();
            } else if next.origin() != base.origin() {
                tracing::info!(
                    from = %base.origin().ascii_serialization(),
                    to = %next.origin().ascii_serialization(),
                    "negotiate redirected to another origin without a token of its own; ours stays home"
                );
                token = None;
            }
            base = next;
            continue;
        }
        return Ok((answer, base, token));
    }
    Err(Error::Negotiate("too many redirects".into()))
}
