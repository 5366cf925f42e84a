//! The WebSockets transport of the client.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::http::{HeaderValue, Uri, header};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::http::Dialer;
use super::link::{AbortOnDrop, Link};
use super::probe::{Patience, first_probe_wait};
use crate::error::{Error, Result};
use crate::frames::FrameBuilder;
use crate::negotiate::Transport;

const NAME: &str = "WebSockets";

pub(crate) async fn connect(
    dialer: &Dialer,
    url: &url::Url,
    token: Option<&str>,
    max_message_size: usize,
    binary: bool,
    patience: Patience,
    handshake_timeout: std::time::Duration,
) -> Result<Link> {
    let mut ws_url = url.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    ws_url
        .set_scheme(scheme)
        .map_err(|()| Error::Config(format!("cannot use {url} for WebSockets")))?;
    let uri: Uri = ws_url
        .as_str()
        .parse()
        .map_err(|e| Error::Config(format!("WebSocket URL: {e}")))?;
    let started = std::time::Instant::now();
    let stream = dialer.dial(&uri).await?;
    let connect = started.elapsed();
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| Error::transport(NAME, e))?;
    if let Some(token) = token
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    for (name, value) in dialer.headers() {
        request.headers_mut().insert(name, value.clone());
    }
    let config =
        WebSocketConfig::default().max_message_size(Some(max_message_size.max(64 * 1024) * 2));
    let upgrade = tokio_tungstenite::client_async_with_config(request, stream, Some(config));
    let upgraded = match patience {
        Patience::Full => upgrade.await,
        // A proxy that holds upgrades answers nothing: waiting out the whole handshake timeout
        // would only delay the fallback.
        Patience::FirstProbe => {
            let wait = first_probe_wait(connect, handshake_timeout);
            tokio::time::timeout(wait, upgrade).await.map_err(|_| {
                Error::transport(
                    NAME,
                    format!(
                        "no answer to the upgrade within {wait:?} (connecting took {connect:?}): a proxy is probably holding it"
                    ),
                )
            })?
        }
    };
    let (socket, _response) = upgraded.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => Error::HttpStatus {
            operation: "WebSocket upgrade",
            status: response.status().as_u16(),
        },
        other => Error::transport(NAME, other),
    })?;
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut outgoing_rx) = mpsc::channel::<Bytes>(256);
    let (incoming_tx, incoming) = mpsc::channel(256);

    tokio::spawn(async move {
        let mut frames = FrameBuilder::default();
        loop {
            let first = match frames.take_carry() {
                Some(first) => first,
                None => match outgoing_rx.recv().await {
                    Some(first) => first,
                    None => break,
                },
            };
            let frame = frames.build(first, &mut outgoing_rx);
            // Text protocols go in text frames, as the official clients expect; a binary
            // protocol sends everything, its handshake included, in binary frames.
            let message = if binary {
                Message::Binary(frame)
            } else {
                match Utf8Bytes::try_from(frame.clone()) {
                    Ok(text) => Message::Text(text),
                    Err(_) => Message::Binary(frame),
                }
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    });
    let reader = tokio::spawn(async move {
        while let Some(message) = stream.next().await {
            let bytes = match message {
                Ok(Message::Text(text)) => Bytes::from(text),
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Close(_)) => break,
                Ok(_) => continue,
                Err(e) => {
                    let _ = incoming_tx.send(Err(Error::transport(NAME, e))).await;
                    return;
                }
            };
            if incoming_tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
    });
    Ok(Link {
        transport: Transport::WebSockets,
        outgoing,
        incoming,
        connect: Some(connect),
        _receivers: AbortOnDrop(vec![reader]),
    })
}
