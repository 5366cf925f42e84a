//! One transport of the connectivity test: the link's own SignalR client, forced to that
//! transport, opens a connection and completes the handshake, then closes it. It never calls
//! `Register`, so the hub does not take it for the connector's link and the live link stays.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use uplink_signalr::Transport;
use uplink_signalr::client::{ClientEvent, ConnectionState, HubConnection, ProxySetting};

/// Opens and closes one connection over `transport`.
///
/// # Errors
/// Why it could not connect, in words.
pub(super) async fn open_and_close(
    hub_endpoint: &str,
    tls: &Arc<rustls::ClientConfig>,
    proxy: &ProxySetting,
    token: Option<&str>,
    transport: Transport,
    timeout: Duration,
) -> Result<(), String> {
    let mut builder = HubConnection::builder(hub_endpoint)
        .tls(tls.clone())
        .proxy(proxy.clone())
        .force_transport(transport)
        .reprobe_interval(None)
        .handshake_timeout(timeout);
    if let Some(token) = token {
        let token = token.to_owned();
        builder = builder.access_token(move || {
            let token = token.clone();
            async move { Ok::<_, std::convert::Infallible>(token) }
        });
    }
    let connection = builder.start().map_err(|e| e.to_string())?;
    let mut events = connection.events();
    let first = tokio::time::timeout(timeout + Duration::from_secs(5), async {
        // The first attempt cannot have ended before we subscribed (it takes round trips), but
        // the state says so if it did.
        if let ConnectionState::Connected(used) = connection.state() {
            return Ok(used);
        }
        loop {
            match events.recv().await {
                Ok(ClientEvent::Connected { transport, .. }) => return Ok(transport),
                Ok(ClientEvent::Reconnecting { last_error, .. }) => return Err(last_error),
                Ok(ClientEvent::Disconnected { error }) => {
                    return Err(error.unwrap_or_else(|| "the client stopped".into()));
                }
                Ok(ClientEvent::Connecting { .. }) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Err("the client stopped".into()),
            }
        }
    })
    .await;
    connection.stop().await;
    match first {
        Ok(Ok(used)) if used == transport => Ok(()),
        Ok(Ok(used)) => Err(format!("connected over {used} instead")),
        Ok(Err(error)) => Err(plain(transport, &error)),
        Err(_) => Err(format!(
            "no handshake within {} s: a proxy may be holding or buffering the connection",
            (timeout + Duration::from_secs(5)).as_secs()
        )),
    }
}

/// The client's reason without its prefixes, and a hint where a middlebox is the usual cause.
fn plain(transport: Transport, error: &str) -> String {
    let prefix = format!("no transport could connect: {transport}: ");
    let reason = error.strip_prefix(&prefix).unwrap_or(error);
    let blocked = reason.contains("HTTP 400")
        || reason.contains("HTTP 403")
        || reason.contains("HTTP 405")
        || reason.contains("HTTP 426")
        || reason.contains("HTTP 501");
    match transport {
        Transport::WebSockets if blocked => {
            format!("{reason} — a proxy or firewall in between may not allow WebSockets")
        }
        Transport::ServerSentEvents if reason.contains("no handshake") => {
            format!("{reason} — a proxy may be buffering the event stream")
        }
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_name_the_blocked_websocket() {
        let text = plain(
            Transport::WebSockets,
            "no transport could connect: WebSockets: WebSocket upgrade returned HTTP 400",
        );
        assert!(
            text.starts_with("WebSocket upgrade returned HTTP 400"),
            "{text}"
        );
        assert!(text.contains("may not allow WebSockets"), "{text}");
    }
}
