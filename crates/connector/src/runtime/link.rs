//! The link task: one [`HubConnection`] to `{hub}/hubs/connector`, a fresh token for every
//! (re)connect, `Register` after each connect and whenever the sources change, `RenewToken`
//! at two thirds of a token's life, a `Heartbeat` for the round trip, and a clock check that
//! reconnects at once after sleep or a wall-clock jump.
//!
//! The loop waits for the next [`LinkEvent`] and hands it to a small handler.

// Each function here stays simple enough to read at a glance (clippy's default bound, 25).
#![warn(clippy::cognitive_complexity)]

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uplink_link::{
    GrantList, HUB_PATH, Heartbeat, Registered, Registration, RelayedQuery, SubscribeRequest,
    TokenRenewed, WriteAnswer, WriteRequest, close_reason, to_connector, to_hub,
};
use uplink_signalr::HubError;
use uplink_signalr::client::{ClientEvent, ConnectionState, HubConnection};

use super::{
    Inner, LinkError, LinkHandle, LinkState, SkippedTransport, lock, query, subscription, write,
};
use crate::credentials::{CredentialStore, LinkCredentials, LinkSecret};
use crate::oauth::OAuthClient;

/// Gets access tokens, one request at a time (a rotating refresh token must never be used
/// twice), persisting each rotated refresh token before the access token is used.
pub(crate) struct TokenSource {
    oauth: OAuthClient,
    store: CredentialStore,
    credentials: tokio::sync::Mutex<LinkCredentials>,
    /// When the last token was issued and how long it lives.
    issued: Mutex<Option<(Instant, Duration)>>,
    /// The hub refused the credentials: the owner must sign in again.
    refused: AtomicBool,
}

impl TokenSource {
    pub(crate) async fn fetch(&self) -> Result<String, LinkError> {
        let mut credentials = self.credentials.lock().await;
        let issued = match &credentials.secret {
            LinkSecret::ClientCredential { credential } => {
                self.oauth
                    .client_credentials(&credentials.connector_id, credential)
                    .await
            }
            LinkSecret::RefreshToken { refresh_token } => self.oauth.refresh(refresh_token).await,
        };
        let issued = match issued {
            Ok(issued) => issued,
            Err(error) => {
                if let LinkError::Refused { code, .. } = &error
                    && matches!(
                        code.as_str(),
                        "invalid_grant" | "invalid_client" | "unauthorized_client"
                    )
                {
                    self.refused.store(true, Ordering::SeqCst);
                }
                return Err(error);
            }
        };
        self.refused.store(false, Ordering::SeqCst);
        if let (LinkSecret::RefreshToken { .. }, Some(next)) =
            (&credentials.secret, issued.refresh_token.clone())
        {
            credentials.secret = LinkSecret::RefreshToken {
                refresh_token: next,
            };
            // The old refresh token is spent: losing the new one would sign the connector out.
            self.store.save_async(&credentials).await?;
        }
        *lock(&self.issued) = Some((Instant::now(), issued.lifetime()));
        Ok(issued.access_token)
    }

    /// When to renew: two thirds into the current token's life.
    fn renew_at(&self) -> Option<Instant> {
        lock(&self.issued).map(|(at, lifetime)| at + lifetime * 2 / 3)
    }
}

/// Starts the link for `credentials`.
pub(super) fn start(
    inner: &Arc<Inner>,
    credentials: LinkCredentials,
) -> Result<LinkHandle, LinkError> {
    let trust = match &credentials.ca_pem {
        Some(pem) => uplink_tls::Trust::CustomCa(pem.clone()),
        None => uplink_tls::Trust::Platform,
    };
    let tls = uplink_tls::client_config(&trust)
        .map_err(|e| LinkError::Config(format!("TLS for the hub: {e}")))?;
    let hub_url = credentials.hub_url.trim_end_matches('/').to_owned();
    let connector_id = credentials.connector_id.clone();
    let tokens = Arc::new(TokenSource {
        oauth: OAuthClient::new(&hub_url, tls.clone())?,
        store: inner.credentials.clone(),
        credentials: tokio::sync::Mutex::new(credentials),
        issued: Mutex::new(None),
        refused: AtomicBool::new(false),
    });
    let provider = tokens.clone();
    let on_query = Arc::downgrade(inner);
    let on_cancel = Arc::downgrade(inner);
    let on_grants = Arc::downgrade(inner);
    let on_subscribe = Arc::downgrade(inner);
    let on_unsubscribe = Arc::downgrade(inner);
    let on_write = Arc::downgrade(inner);
    let connection = HubConnection::builder(format!("{hub_url}{HUB_PATH}"))
        .tls(tls)
        .transports(&super::lock(&inner.transports).clone())
        .backoff(inner.options.backoff)
        .handshake_timeout(inner.options.handshake_timeout)
        .reprobe_interval(inner.options.reprobe_interval)
        // Starts and reconnects on the transport that last worked on this route.
        .transport_memory(Arc::new(super::transport_memory::FileTransportMemory::new(
            &inner.options.data_dir,
        )))
        .keep_alive_interval(inner.options.keep_alive_interval)
        .server_timeout(inner.options.server_timeout)
        // Answer chunks then travel as bytes on WebSockets and long polling.
        .message_pack()
        // A load balancer in front of hub replicas keeps this link's requests on one of them.
        .header(uplink_link::CONNECTOR_HEADER, connector_id.clone())
        .access_token(move || {
            let provider = provider.clone();
            async move { provider.fetch().await }
        })
        // The handlers run in order of arrival, before their futures: a CancelQuery always
        // finds the Query it cancels.
        .on(to_connector::QUERY, move |(relayed,): (RelayedQuery,)| {
            if let Some(inner) = on_query.upgrade() {
                query::accept(&inner, relayed);
            }
            std::future::ready(Ok::<(), HubError>(()))
        })
        .on(
            to_connector::CANCEL_QUERY,
            move |arguments: Vec<serde_json::Value>| {
                if let (Some(inner), Some(id)) = (
                    on_cancel.upgrade(),
                    arguments.first().and_then(|v| v.as_str()),
                ) {
                    let reason = arguments.get(1).and_then(|v| v.as_str()).unwrap_or("");
                    query::cancel(&inner, id, reason);
                }
                std::future::ready(Ok::<(), HubError>(()))
            },
        )
        .on(
            to_connector::SUBSCRIBE,
            move |(request,): (SubscribeRequest,)| {
                if let Some(inner) = on_subscribe.upgrade() {
                    subscription::accept(&inner, request);
                }
                std::future::ready(Ok::<(), HubError>(()))
            },
        )
        .on(
            to_connector::UNSUBSCRIBE,
            move |arguments: Vec<serde_json::Value>| {
                if let (Some(inner), Some(id)) = (
                    on_unsubscribe.upgrade(),
                    arguments.first().and_then(|v| v.as_str()),
                ) {
                    let reason = arguments.get(1).and_then(|v| v.as_str()).unwrap_or("");
                    subscription::cancel(&inner, id, reason);
                }
                std::future::ready(Ok::<(), HubError>(()))
            },
        )
        // A write answers with its results (a client result), once every value was tried.
        .on(to_connector::WRITE, move |(request,): (WriteRequest,)| {
            let inner = on_write.upgrade();
            async move {
                match inner {
                    Some(inner) => {
                        Ok::<WriteAnswer, HubError>(write::serve(&inner, &request).await)
                    }
                    None => Err(HubError::new("the connector is stopping")),
                }
            }
        })
        .on(to_connector::GRANTS, move |(list,): (GrantList,)| {
            if let Some(inner) = on_grants.upgrade() {
                inner.set_grants(list.grants, list.revoked_apps);
            }
            std::future::ready(Ok::<(), HubError>(()))
        })
        .start()
        .map_err(|e| LinkError::Config(e.to_string()))?;
    inner.update_view(|v| {
        *v = super::LinkView {
            state: Some(LinkState::Connecting),
            hub_url: Some(hub_url.clone()),
            connector_id: Some(connector_id.clone()),
            ..super::LinkView::default()
        }
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(
        Arc::downgrade(inner),
        connection.clone(),
        tokens.clone(),
        connector_id,
        stopped,
    ));
    Ok(LinkHandle {
        connection,
        tokens,
        stop,
        task,
    })
}

/// The display name sent at registration: the configured one, else the machine's name.
fn display_name(inner: &Inner) -> String {
    site_name(lock(&inner.site_name).as_deref())
}

/// The site's name the hub shows: the owner's `configured` choice, else this machine's name.
pub(super) fn site_name(configured: Option<&str>) -> String {
    configured
        .map(str::to_owned)
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "connector".to_owned())
}

/// The longest display name the hub accepts at registration.
const MAX_NAME_CHARS: usize = 128;

/// The longest site name the owner may choose (the hub accepts up to [`MAX_NAME_CHARS`]).
pub const MAX_SITE_NAME_CHARS: usize = 64;

/// Checks a site name the owner chose; the error completes "The site name …".
///
/// # Errors
/// What is wrong with it, in a sentence to show beside the field.
pub fn check_site_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("is required: enter the name apps and the hub show for this site".into());
    }
    if name.chars().count() > MAX_SITE_NAME_CHARS {
        return Err(format!(
            "is too long: use at most {MAX_SITE_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("cannot contain line breaks, tabs or other control characters".into());
    }
    Ok(name)
}

async fn register(
    inner: &Inner,
    connection: &HubConnection,
    connector_id: &str,
) -> Result<(), LinkError> {
    let sources = inner.descriptors();
    // Unreadable configuration: the sources go by name alone until it reads again.
    let source_keys: std::collections::BTreeMap<String, String> = inner
        .config
        .load()
        .map(|config| {
            sources
                .iter()
                .map(|s| (s.name.clone(), config.source_key(&s.name)))
                .collect()
        })
        .unwrap_or_default();
    let registration = Registration {
        connector_id: connector_id.to_owned(),
        name: display_name(inner),
        software: format!("uplink-connector {}", env!("CARGO_PKG_VERSION")),
        sources,
        source_keys,
    };
    let count = registration.sources.len();
    let registered: Registered = connection
        .invoke(to_hub::REGISTER, (registration,))
        .await
        .map_err(call_error)?;
    *lock(&inner.hub_ids) = registered
        .sources
        .into_iter()
        .map(|s| (s.name, s.id))
        .collect();
    inner.set_grants(registered.grants, registered.revoked_apps);
    tracing::info!(connector = %registered.connector_id, sources = count, "registered with the hub");
    Ok(())
}

fn call_error(error: uplink_signalr::Error) -> LinkError {
    match error {
        uplink_signalr::Error::Invocation(message) => LinkError::Refused {
            code: "call_refused".into(),
            message,
        },
        other => LinkError::NotLinked(other.to_string()),
    }
}

/// The longest the link loop waits for the hub to answer one of its calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the link loop knows about the current connection.
#[derive(Default)]
struct Linked {
    connected: bool,
    registered: bool,
    ever_connected: bool,
}

/// What the link loop waits for; each is handled by one small method of [`LinkLoop`].
enum LinkEvent {
    /// The owner stopped the link.
    Stop,
    /// The connection's state changed (or events were missed, or the connection is gone).
    Client(Result<ClientEvent, broadcast::error::RecvError>),
    /// The sources changed: register again.
    Reregister,
    /// Time to (re)try `Register`.
    RegisterDue,
    /// Time to renew the access token.
    RenewDue,
    /// Time to measure the round trip.
    Heartbeat,
    /// Time to compare the wall clock with the monotonic one.
    ClockCheck,
}

/// The link loop's state between events.
struct LinkLoop {
    inner: Weak<Inner>,
    connection: HubConnection,
    tokens: Arc<TokenSource>,
    connector_id: String,
    stopped: watch::Receiver<bool>,
    events: broadcast::Receiver<ClientEvent>,
    linked: Linked,
    /// The connection is up but the loop has not handled it yet.
    pending_connect: bool,
    heartbeat: tokio::time::Interval,
    clock: tokio::time::Interval,
    clock_jump_tolerance: Duration,
    last_check: (Instant, SystemTime),
    renew_at: Option<Instant>,
    register_retry: Option<Instant>,
}

async fn run(
    inner: Weak<Inner>,
    connection: HubConnection,
    tokens: Arc<TokenSource>,
    connector_id: String,
    stopped: watch::Receiver<bool>,
) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let options = strong.options.clone();
    drop(strong);
    let mut heartbeat = tokio::time::interval(options.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut clock = tokio::time::interval(options.clock_check_interval);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut link = LinkLoop {
        inner,
        events: connection.events(),
        // An event may have gone by before we subscribed.
        pending_connect: matches!(connection.state(), ConnectionState::Connected(_)),
        connection,
        tokens,
        connector_id,
        stopped,
        linked: Linked::default(),
        heartbeat,
        clock,
        clock_jump_tolerance: options.clock_jump_tolerance,
        last_check: (Instant::now(), SystemTime::now()),
        renew_at: None,
        register_retry: None,
    };
    link.run().await;
}

/// Sleeps until `at`, or forever when there is no `at`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl LinkLoop {
    /// Waits for the next event and handles it, until the link ends.
    async fn run(&mut self) {
        loop {
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            if std::mem::take(&mut self.pending_connect) {
                let transport = self.connection.transport().map(|t| t.to_string());
                self.connected(&inner, transport, Vec::new());
            }
            let event = self.next_event(&inner).await;
            if self.handle(&inner, event).await.is_break() {
                return;
            }
        }
    }

    async fn next_event(&mut self, inner: &Inner) -> LinkEvent {
        tokio::select! {
            _ = raised(&mut self.stopped) => LinkEvent::Stop,
            event = self.events.recv() => LinkEvent::Client(event),
            _ = inner.reregister.notified() => LinkEvent::Reregister,
            _ = sleep_until(self.register_retry) => LinkEvent::RegisterDue,
            _ = sleep_until(self.renew_at) => LinkEvent::RenewDue,
            _ = self.heartbeat.tick() => LinkEvent::Heartbeat,
            _ = self.clock.tick() => LinkEvent::ClockCheck,
        }
    }

    async fn handle(&mut self, inner: &Arc<Inner>, event: LinkEvent) -> ControlFlow<()> {
        match event {
            LinkEvent::Stop => return ControlFlow::Break(()),
            LinkEvent::Client(event) => return self.on_client_event(inner, event).await,
            LinkEvent::Reregister => {
                if self.linked.connected {
                    self.register_retry = Some(Instant::now());
                }
            }
            LinkEvent::RegisterDue => self.on_register_due(inner).await,
            LinkEvent::RenewDue => self.on_renew_due(inner).await,
            LinkEvent::Heartbeat => self.on_heartbeat(inner),
            LinkEvent::ClockCheck => self.on_clock_check(),
        }
        ControlFlow::Continue(())
    }

    async fn on_client_event(
        &mut self,
        inner: &Inner,
        event: Result<ClientEvent, broadcast::error::RecvError>,
    ) -> ControlFlow<()> {
        match event {
            Ok(ClientEvent::Connecting { .. }) => {
                let state = self.state_while_down();
                inner.update_view(|v| v.state = Some(state));
            }
            Ok(ClientEvent::Connected {
                transport, skipped, ..
            }) => {
                let skipped = skipped
                    .into_iter()
                    .map(|s| SkippedTransport {
                        transport: s.transport.to_string(),
                        reason: s.reason,
                    })
                    .collect();
                self.connected(inner, Some(transport.to_string()), skipped);
            }
            Ok(ClientEvent::Reconnecting {
                last_error,
                delay,
                attempt,
            }) => {
                return self
                    .on_reconnecting(inner, last_error, delay, attempt)
                    .await;
            }
            Ok(ClientEvent::Disconnected { error }) => {
                inner.update_view(|v| {
                    v.state = Some(LinkState::Offline);
                    v.transport = None;
                    v.connected_since = None;
                    if error.is_some() {
                        v.last_error = error;
                    }
                });
                return ControlFlow::Break(());
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Events were missed: take the connection's state as it is now.
                self.pending_connect =
                    matches!(self.connection.state(), ConnectionState::Connected(_));
            }
            Err(broadcast::error::RecvError::Closed) => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    /// The connection is up: show it, register at once, renew the token in time.
    fn connected(
        &mut self,
        inner: &Inner,
        transport: Option<String>,
        skipped: Vec<SkippedTransport>,
    ) {
        on_connected(inner, &mut self.linked, transport, skipped);
        self.linked.registered = false;
        self.register_retry = Some(Instant::now());
        self.renew_at = self.tokens.renew_at();
    }

    fn state_while_down(&self) -> LinkState {
        let signed_out = self.tokens.refused.load(Ordering::SeqCst);
        state_while_down(self.linked.ever_connected, signed_out)
    }

    async fn on_reconnecting(
        &mut self,
        inner: &Inner,
        last_error: String,
        delay: Duration,
        attempt: u32,
    ) -> ControlFlow<()> {
        if let Some(reason) = final_close_reason(&last_error) {
            self.stop_for_good(inner, reason).await;
            return ControlFlow::Break(());
        }
        self.linked.connected = false;
        self.linked.registered = false;
        self.register_retry = None;
        self.renew_at = None;
        let state = self.state_while_down();
        tracing::info!(attempt, ?delay, error = %last_error, "link to the hub lost; reconnecting");
        inner.update_view(|v| {
            v.state = Some(state);
            v.transport = None;
            v.connected_since = None;
            v.last_error = Some(last_error);
        });
        ControlFlow::Continue(())
    }

    /// Reconnecting would take the connector back from the link that replaced this one: stop
    /// until the owner reconnects.
    async fn stop_for_good(&mut self, inner: &Inner, reason: &str) {
        tracing::warn!(reason, "the hub ended this link for good; not reconnecting");
        self.connection.stop().await;
        lock(&inner.current).take();
        inner.update_view(|v| {
            v.state = Some(LinkState::Offline);
            v.transport = None;
            v.connected_since = None;
            v.last_error = Some(format!(
                "{reason}; not reconnecting until you choose Reconnect"
            ));
        });
    }

    async fn on_register_due(&mut self, inner: &Inner) {
        self.register_retry = None;
        let registered = tokio::time::timeout(
            CALL_TIMEOUT,
            register(inner, &self.connection, &self.connector_id),
        )
        .await
        .unwrap_or_else(|_| {
            Err(LinkError::NotLinked(
                "the hub did not answer Register in time".into(),
            ))
        });
        match registered {
            Ok(()) => {
                self.linked.registered = true;
                inner.update_view(|v| {
                    v.state = Some(LinkState::Connected);
                    v.last_error = None;
                });
            }
            Err(error) => {
                tracing::warn!(%error, "registration with the hub failed; retrying");
                inner.update_view(|v| v.last_error = Some(format!("registration failed: {error}")));
                if self.linked.connected {
                    self.register_retry = Some(Instant::now() + Duration::from_secs(5));
                }
            }
        }
    }

    async fn on_renew_due(&mut self, inner: &Inner) {
        let renewed = tokio::time::timeout(CALL_TIMEOUT, renew(&self.connection, &self.tokens))
            .await
            .unwrap_or_else(|_| {
                Err(LinkError::NotLinked(
                    "the hub did not answer RenewToken in time".into(),
                ))
            });
        match renewed {
            Ok(()) => self.renew_at = self.tokens.renew_at(),
            Err(error) => {
                tracing::warn!(%error, "token renewal failed; retrying");
                inner
                    .update_view(|v| v.last_error = Some(format!("token renewal failed: {error}")));
                self.renew_at = Some(Instant::now() + Duration::from_secs(15));
            }
        }
    }

    fn on_heartbeat(&self, inner: &Arc<Inner>) {
        if !self.linked.registered {
            return;
        }
        // Measured aside, so a slow answer never holds up the clock check.
        let (connection, inner) = (self.connection.clone(), Arc::downgrade(inner));
        tokio::spawn(async move {
            let sent = Instant::now();
            let answered = tokio::time::timeout(
                CALL_TIMEOUT,
                connection.invoke::<Heartbeat>(to_hub::HEARTBEAT, ()),
            )
            .await;
            if let (Ok(Ok(_)), Some(inner)) = (answered, inner.upgrade()) {
                let rtt = sent.elapsed().as_secs_f64() * 1000.0;
                inner.update_view(|v| v.round_trip_ms = Some(rtt));
            }
        });
    }

    fn on_clock_check(&mut self) {
        let now = (Instant::now(), SystemTime::now());
        if let Some(gap) = clock_gap(self.last_check, now)
            && gap > self.clock_jump_tolerance
        {
            tracing::warn!(
                gap_s = gap.as_secs_f64(),
                "the machine slept or its clock jumped; reconnecting at once"
            );
            self.connection.reconnect_now();
        }
        self.last_check = now;
    }
}

/// How far the wall clock moved apart from the monotonic clock between two checks (a suspend
/// stops the monotonic clock; an NTP step moves only the wall clock).
pub(crate) fn clock_gap(
    before: (Instant, SystemTime),
    after: (Instant, SystemTime),
) -> Option<Duration> {
    let monotonic = after.0.saturating_duration_since(before.0);
    let wall = match after.1.duration_since(before.1) {
        Ok(forward) => forward,
        // The wall clock went back: the whole step back plus the time that passed.
        Err(back) => return Some(back.duration() + monotonic),
    };
    Some(wall.abs_diff(monotonic))
}

fn state_while_down(ever_connected: bool, signed_out: bool) -> LinkState {
    if signed_out {
        LinkState::SignedOut
    } else if ever_connected {
        LinkState::Reconnecting
    } else {
        LinkState::Connecting
    }
}

fn on_connected(
    inner: &Inner,
    linked: &mut Linked,
    transport: Option<String>,
    skipped: Vec<SkippedTransport>,
) {
    let reconnected = linked.ever_connected;
    linked.connected = true;
    linked.ever_connected = true;
    tracing::info!(transport = ?transport, skipped = skipped.len(), "linked to the hub");
    inner.update_view(|v| {
        // Linked, but queries are served only once registered.
        v.state = Some(LinkState::Connecting);
        v.transport = transport;
        v.skipped = skipped;
        v.connected_since = Some(Utc::now());
        if reconnected {
            v.reconnects += 1;
        }
    });
}

async fn renew(connection: &HubConnection, tokens: &TokenSource) -> Result<(), LinkError> {
    let token = tokens.fetch().await?;
    let renewed: TokenRenewed = connection
        .invoke(to_hub::RENEW_TOKEN, (token.clone(),))
        .await
        .map_err(call_error)?;
    // Later long polls and sends carry the new token too.
    connection.set_access_token(token);
    tracing::debug!(expires_at = %renewed.expires_at, "access token renewed");
    Ok(())
}

/// Resolves once `signal` is true (or its sender is gone).
pub(crate) async fn raised(signal: &mut watch::Receiver<bool>) {
    while !*signal.borrow_and_update() {
        if signal.changed().await.is_err() {
            return;
        }
    }
}

/// The reason in a hub's `Close` after which this connector must not reconnect by itself
/// (docs/protocol.md §5): a newer link of this connector replaced this one, and reconnecting
/// would take the connector back from it. After the other final reasons (connector removed,
/// sign-in revoked) the hub refuses the next token anyway, which shows the owner "signed out"
/// with "Sign in again"; trying again costs nothing there.
fn final_close_reason(last_error: &str) -> Option<&'static str> {
    last_error
        .ends_with(close_reason::REPLACED)
        .then_some(close_reason::REPLACED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspend_or_a_clock_step_shows_as_a_gap() {
        let start = (Instant::now(), SystemTime::now());
        let same = (
            start.0 + Duration::from_secs(2),
            start.1 + Duration::from_secs(2),
        );
        assert_eq!(clock_gap(start, same), Some(Duration::ZERO));
        // Slept 10 minutes: the monotonic clock saw 2 s, the wall clock 10 minutes.
        let woke = (
            start.0 + Duration::from_secs(2),
            start.1 + Duration::from_secs(600),
        );
        assert_eq!(clock_gap(start, woke), Some(Duration::from_secs(598)));
        // NTP stepped the clock back an hour.
        let stepped = (
            start.0 + Duration::from_secs(2),
            start.1 - Duration::from_secs(3600),
        );
        assert_eq!(clock_gap(start, stepped), Some(Duration::from_secs(3602)));
    }

    #[test]
    fn a_refused_credential_reads_as_signed_out() {
        assert_eq!(state_while_down(true, true), LinkState::SignedOut);
        assert_eq!(state_while_down(true, false), LinkState::Reconnecting);
        assert_eq!(state_while_down(false, false), LinkState::Connecting);
    }
}
