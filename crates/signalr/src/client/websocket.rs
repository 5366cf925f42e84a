//! The WebSockets transport of the client.

use bytes::Bytes;
use futures::stream::SplitStream;
use futures::{SinkExt, StreamExt};
use hyper::http::{HeaderValue, Uri, header};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::http::{Dialer, Io};
use super::link::{AbortOnDrop, Incoming, Link};
use super::probe::{Patience, first_probe_wait};
use crate::error::{Error, Result};
use crate::frames::FrameBuilder;
use crate::negotiate::Transport;

const NAME: &str = "WebSockets";

/// Bytes read from the socket at a time: one TLS record's plaintext.
const READ_BUFFER: usize = 16 * 1024;

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
    // The socket zero-fills its read buffer up to this size before every read: the default
    // 128 KiB cost a 128 KiB memset per frame read (6 % of a 100-byte echo's CPU). One TLS
    // record's worth of plaintext is what a read returns at most anyway.
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_size.max(64 * 1024) * 2))
        .read_buffer_size(READ_BUFFER);
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
    let (mut sink, stream) = socket.split();
    let (outgoing, mut outgoing_rx) = mpsc::channel::<Bytes>(256);

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
    Ok(Link {
        transport: Transport::WebSockets,
        outgoing,
        incoming: Incoming::WebSocket(Some(stream)),
        connect: Some(connect),
        _receivers: AbortOnDrop::default(),
    })
}

/// The receiving half of a client WebSocket.
pub(crate) type Reader = SplitStream<WebSocketStream<Box<dyn Io>>>;

/// The next message's bytes; `None` once the socket closed (and from then on), a transport
/// error once. Cancel-safe, as `StreamExt::next` is.
pub(crate) async fn next_bytes(socket: &mut Option<Reader>) -> Option<Result<Bytes>> {
    loop {
        let message = socket.as_mut()?.next().await;
        return match message {
            Some(Ok(Message::Text(text))) => Some(Ok(Bytes::from(text))),
            Some(Ok(Message::Binary(bytes))) => Some(Ok(bytes)),
            // Pings are answered by the socket itself as it reads.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                *socket = None;
                None
            }
            Some(Err(e)) => {
                *socket = None;
                Some(Err(Error::transport(NAME, e)))
            }
        };
    }
}
