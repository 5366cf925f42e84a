//! The link task: one [`HubConnection`] to `{hub}/hubs/connector`, a fresh token for every
//! (re)connect, `Register` after each connect and whenever the sources change, `RenewToken`
//! at two thirds of a token's life, a `Heartbeat` for the round trip, and a clock check that
//! reconnects at once after sleep or a wall-clock jump.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uplink_link::{
    GrantList, HUB_PATH, Heartbeat, Registered, Registration, RelayedQuery, TokenRenewed,
    close_reason, to_connector, to_hub,
};
use uplink_signalr::HubError;
use uplink_signalr::client::{ClientEvent, ConnectionState, HubConnection};

use super::{Inner, LinkError, LinkHandle, LinkState, SkippedTransport, lock, query};
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
        .on(to_connector::GRANTS, move |(list,): (GrantList,)| {
            if let Some(inner) = on_grants.upgrade() {
                inner.set_grants(list.grants);
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
    inner
        .config
        .load()
        .ok()
        .and_then(|c| c.settings.display_name)
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

async fn register(
    inner: &Inner,
    connection: &HubConnection,
    connector_id: &str,
) -> Result<(), LinkError> {
    let registration = Registration {
        connector_id: connector_id.to_owned(),
        name: display_name(inner),
        software: format!("uplink-connector {}", env!("CARGO_PKG_VERSION")),
        sources: inner.descriptors(),
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
    inner.set_grants(registered.grants);
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

async fn run(
    inner: Weak<Inner>,
    connection: HubConnection,
    tokens: Arc<TokenSource>,
    connector_id: String,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(strong) = inner.upgrade() else {
        return;
    };
    let options = strong.options.clone();
    drop(strong);
    let mut events = connection.events();
    let mut linked = Linked::default();
    // An event may have gone by before we subscribed.
    let mut pending_connect = matches!(connection.state(), ConnectionState::Connected(_));
    let mut heartbeat = tokio::time::interval(options.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut clock = tokio::time::interval(options.clock_check_interval);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = (Instant::now(), SystemTime::now());
    let mut renew_at: Option<Instant> = None;
    let mut register_retry: Option<Instant> = None;
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if pending_connect {
            pending_connect = false;
            let transport = connection.transport().map(|t| t.to_string());
            on_connected(&inner, &mut linked, transport, Vec::new());
            linked.registered = false;
            register_retry = Some(Instant::now());
            renew_at = tokens.renew_at();
        }
        let renew_sleep = async {
            match renew_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let register_sleep = async {
            match register_retry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = crate::runtime::link::raised(&mut stopped) => return,
            event = events.recv() => match event {
                Ok(ClientEvent::Connecting { .. }) => {
                    let signed_out = tokens.refused.load(Ordering::SeqCst);
                    inner.update_view(|v| v.state = Some(state_while_down(linked.ever_connected, signed_out)));
                }
                Ok(ClientEvent::Connected { transport, skipped, .. }) => {
                    let skipped = skipped
                        .into_iter()
                        .map(|s| SkippedTransport { transport: s.transport.to_string(), reason: s.reason })
                        .collect();
                    on_connected(&inner, &mut linked, Some(transport.to_string()), skipped);
                    linked.registered = false;
                    register_retry = Some(Instant::now());
                    renew_at = tokens.renew_at();
                }
                Ok(ClientEvent::Reconnecting { last_error, delay, attempt }) => {
                    if let Some(reason) = final_close_reason(&last_error) {
                        // Reconnecting would take the connector back from the link that
                        // replaced this one: stop until the owner reconnects.
                        tracing::warn!(reason, "the hub ended this link for good; not reconnecting");
                        connection.stop().await;
                        lock(&inner.current).take();
                        inner.update_view(|v| {
                            v.state = Some(LinkState::Offline);
                            v.transport = None;
                            v.connected_since = None;
                            v.last_error = Some(format!("{reason}; not reconnecting until you choose Reconnect"));
                        });
                        return;
                    }
                    linked.connected = false;
                    linked.registered = false;
                    register_retry = None;
                    renew_at = None;
                    let signed_out = tokens.refused.load(Ordering::SeqCst);
                    tracing::info!(attempt, ?delay, error = %last_error, "link to the hub lost; reconnecting");
                    inner.update_view(|v| {
                        v.state = Some(state_while_down(linked.ever_connected, signed_out));
                        v.transport = None;
                        v.connected_since = None;
                        v.last_error = Some(last_error);
                    });
                }
                Ok(ClientEvent::Disconnected { error }) => {
                    inner.update_view(|v| {
                        v.state = Some(LinkState::Offline);
                        v.transport = None;
                        v.connected_since = None;
                        if error.is_some() { v.last_error = error; }
                    });
                    return;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Events were missed: take the connection's state as it is now.
                    pending_connect = matches!(connection.state(), ConnectionState::Connected(_));
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = inner.reregister.notified() => {
                if linked.connected {
                    register_retry = Some(Instant::now());
                }
            }
            _ = register_sleep => {
                register_retry = None;
                let registered = tokio::time::timeout(CALL_TIMEOUT, register(&inner, &connection, &connector_id))
                    .await
                    .unwrap_or_else(|_| Err(LinkError::NotLinked("the hub did not answer Register in time".into())));
                match registered {
                    Ok(()) => {
                        linked.registered = true;
                        inner.update_view(|v| {
                            v.state = Some(LinkState::Connected);
                            v.last_error = None;
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "registration with the hub failed; retrying");
                        inner.update_view(|v| v.last_error = Some(format!("registration failed: {error}")));
                        if linked.connected {
                            register_retry = Some(Instant::now() + Duration::from_secs(5));
                        }
                    }
                }
            }
            _ = renew_sleep => {
                let renewed = tokio::time::timeout(CALL_TIMEOUT, renew(&connection, &tokens))
                    .await
                    .unwrap_or_else(|_| Err(LinkError::NotLinked("the hub did not answer RenewToken in time".into())));
                match renewed {
                    Ok(()) => renew_at = tokens.renew_at(),
                    Err(error) => {
                        tracing::warn!(%error, "token renewal failed; retrying");
                        inner.update_view(|v| v.last_error = Some(format!("token renewal failed: {error}")));
                        renew_at = Some(Instant::now() + Duration::from_secs(15));
                    }
                }
            }
            _ = heartbeat.tick() => {
                if linked.registered {
                    // Measured aside, so a slow answer never holds up the clock check.
                    let (connection, inner) = (connection.clone(), Arc::downgrade(&inner));
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
            }
            _ = clock.tick() => {
                let now = (Instant::now(), SystemTime::now());
                if let Some(gap) = clock_gap(last_check, now)
                    && gap > options.clock_jump_tolerance
                {
                    tracing::warn!(gap_s = gap.as_secs_f64(), "the machine slept or its clock jumped; reconnecting at once");
                    connection.reconnect_now();
                }
                last_check = now;
            }
        }
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
