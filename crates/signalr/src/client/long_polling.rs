//! The long-polling transport of the client: GETs down, POSTs up, DELETE to finish.

use std::time::Duration;

use bytes::Bytes;
use hyper::http::{Method, StatusCode, Uri};
use tokio::sync::mpsc;

use super::http::{HttpClient, read_body};
use super::link::{AbortOnDrop, Incoming, Link, spawn_sender};
use super::token::TokenCell;
use crate::error::{Error, Result};
use crate::negotiate::Transport;

pub(crate) async fn connect(
    http: &HttpClient,
    uri: &Uri,
    token: &TokenCell,
    poll_timeout: Duration,
    max_body: usize,
) -> Result<Link> {
    // The server answers the first poll at once: it only starts the connection.
    let first = http
        .send(Method::GET, uri, token.get().as_deref(), None, Bytes::new())
        .await?;
    if first.status() != StatusCode::OK {
        return Err(Error::HttpStatus {
            operation: "long polling GET",
            status: first.status().as_u16(),
        });
    }
    let leftover = read_body(first, max_body).await?;
    let (outgoing, outgoing_rx) = mpsc::channel::<Bytes>(256);
    let (incoming_tx, incoming) = mpsc::channel(256);
    let failures = incoming_tx.clone();
    let poller_http = http.clone();
    let poller_uri = uri.clone();
    let poller_token = token.clone();
    let poller = tokio::spawn(async move {
        if !leftover.is_empty() && incoming_tx.send(Ok(leftover)).await.is_err() {
            return;
        }
        loop {
            // Read for every poll: a token renewed while connected applies from the next one.
            let token = poller_token.get();
            let request = poller_http.send(
                Method::GET,
                &poller_uri,
                token.as_deref(),
                None,
                Bytes::new(),
            );
            let response = match tokio::time::timeout(poll_timeout, request).await {
                Err(_) => continue, // a proxy or the network swallowed the poll: poll again
                Ok(Err(e)) => {
                    let _ = incoming_tx.send(Err(e)).await;
                    return;
                }
                Ok(Ok(response)) => response,
            };
            match response.status() {
                StatusCode::OK => {}
                // The server ended the connection.
                StatusCode::NO_CONTENT => return,
                status => {
                    let _ = incoming_tx
                        .send(Err(Error::HttpStatus {
                            operation: "long polling GET",
                            status: status.as_u16(),
                        }))
                        .await;
                    return;
                }
            }
            match read_body(response, max_body).await {
                Ok(body) if body.is_empty() => {}
                Ok(body) => {
                    if incoming_tx.send(Ok(body)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = incoming_tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let _sender = spawn_sender(
        http.clone(),
        uri.clone(),
        token.clone(),
        outgoing_rx,
        failures,
        true,
    );
    Ok(Link {
        transport: Transport::LongPolling,
        outgoing,
        incoming: Incoming::Queue(incoming),
        connect: None,
        _receivers: AbortOnDrop(vec![poller]),
    })
}
