//! A token renewed while connected reaches every later request of the connection, and a
//! requested reconnect happens at once.

mod support;

use std::sync::{Arc, Mutex};

use support::{loopback_ca, start_with, test_hub, within};
use uplink_signalr::Transport;
use uplink_signalr::client::{ClientEvent, HubConnection, ProxySetting};
use uplink_signalr::server::{AuthRejection, Authenticator, Identity, ServerOptions};

/// A server that accepts `token-*` bearers and records every one it sees, in order.
async fn recording_server() -> (support::TestServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let options = ServerOptions {
        authenticator: Some(Authenticator::new(move |request| {
            let record = record.clone();
            async move {
                match request.bearer {
                    Some(token) if token.starts_with("token-") => {
                        record.lock().unwrap().push(token);
                        Ok(Identity::new("connector"))
                    }
                    _ => Err(AuthRejection("token required".into())),
                }
            }
        })),
        ..ServerOptions::default()
    };
    (
        start_with(test_hub(), options, &loopback_ca(), 0).await,
        seen,
    )
}

async fn renewed_token_reaches_later_requests(transport: Transport) {
    let (server, seen) = recording_server().await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(transport)
        .access_token(|| async { Ok::<_, String>("token-first".to_string()) })
        .start()
        .unwrap();
    within("connect", client.wait_connected()).await;
    let sum: i64 = within("Add", client.invoke("Add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);
    assert!(seen.lock().unwrap().iter().all(|t| t == "token-first"));

    client.set_access_token("token-renewed");
    let before = seen.lock().unwrap().len();
    for n in 0..3 {
        let sum: i64 = within("Add", client.invoke("Add", (n, 1))).await.unwrap();
        assert_eq!(sum, n + 1);
    }
    let later: Vec<String> = seen.lock().unwrap()[before..].to_vec();
    assert!(
        later.iter().any(|t| t == "token-renewed"),
        "later requests carry the renewed token: {later:?}"
    );
    assert!(
        !later.iter().any(|t| t == "token-first") || transport == Transport::LongPolling,
        "after renewal, sends carry the new token: {later:?}"
    );
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn long_polling_sends_the_renewed_token() {
    renewed_token_reaches_later_requests(Transport::LongPolling).await;
}

#[tokio::test]
async fn server_sent_events_sends_the_renewed_token() {
    renewed_token_reaches_later_requests(Transport::ServerSentEvents).await;
}

#[tokio::test]
async fn reconnect_now_reconnects_without_backoff() {
    let (server, _seen) = recording_server().await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .access_token(|| async { Ok::<_, String>("token-x".to_string()) })
        .start()
        .unwrap();
    within("connect", client.wait_connected()).await;
    let first_id = client.connection_id().unwrap();
    let mut events = client.events();
    client.reconnect_now();
    let delay = within("reconnecting", async {
        loop {
            if let ClientEvent::Reconnecting { delay, .. } = events.recv().await.unwrap() {
                return delay;
            }
        }
    })
    .await;
    assert!(
        delay.is_zero(),
        "no backoff after a requested reconnect: {delay:?}"
    );
    within("reconnected", async {
        loop {
            if let ClientEvent::Connected { .. } = events.recv().await.unwrap() {
                return;
            }
        }
    })
    .await;
    assert_ne!(
        client.connection_id().unwrap(),
        first_id,
        "a new connection"
    );
    let sum: i64 = within("Add", client.invoke("Add", (2, 2))).await.unwrap();
    assert_eq!(sum, 4);
    client.stop().await;
    server.stop().await;
}

/// A server at another origin that accepts any request and records the bearer of each (None
/// when there is none).
async fn other_origin(
    ca: &uplink_tls::LoopbackCa,
) -> (support::TestServer, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let options = ServerOptions {
        authenticator: Some(Authenticator::new(move |request| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(request.bearer);
                Ok(Identity::new("anyone"))
            }
        })),
        ..ServerOptions::default()
    };
    (start_with(test_hub(), options, ca, 0).await, seen)
}

/// The hub's own origin: its negotiate redirects to `target` (with `handed` as the redirect's
/// own token, if any). Returns its URL.
async fn redirecting_hub(
    ca: &uplink_tls::LoopbackCa,
    target: String,
    handed: Option<&'static str>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let answer = match handed {
        Some(token) => serde_json::json!({ "url": target, "accessToken": token }),
        None => serde_json::json!({ "url": target }),
    };
    let app = axum::Router::new().route(
        &format!("{}/negotiate", support::HUB_PATH),
        axum::routing::post(move || {
            let answer = answer.clone();
            async move { axum::Json(answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = uplink_tls::serve(listener, config, app, async {
            let _ = stopped.await;
        })
        .await;
    });
    (
        format!("https://127.0.0.1:{port}{}", support::HUB_PATH),
        stop,
    )
}

async fn redirected_to_another_origin(transport: Transport, handed: Option<&'static str>) {
    let ca = loopback_ca();
    let (other, seen) = other_origin(&ca).await;
    let (hub_url, _stop) = redirecting_hub(&ca, other.url(), handed).await;
    let client = HubConnection::builder(hub_url)
        .tls(other.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(transport)
        .access_token(|| async { Ok::<_, String>("token-ours".to_string()) })
        .start()
        .unwrap();
    within("connect through the redirect", client.wait_connected()).await;
    client.set_access_token("token-ours-renewed");
    let sum: i64 = within("Add", client.invoke("Add", (2, 3))).await.unwrap();
    assert_eq!(sum, 5);
    let seen = seen.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the other origin was reached");
    assert!(
        seen.iter().all(|bearer| bearer.as_deref() == handed),
        "the other origin sees only the token the redirect handed over, never ours: {seen:?}"
    );
    client.stop().await;
    other.stop().await;
}

#[tokio::test]
async fn a_negotiate_redirect_to_another_origin_never_gets_our_token() {
    for transport in [Transport::LongPolling, Transport::WebSockets] {
        redirected_to_another_origin(transport, None).await;
    }
}

#[tokio::test]
async fn a_negotiate_redirect_to_another_origin_gets_only_the_token_it_handed_over() {
    redirected_to_another_origin(Transport::ServerSentEvents, Some("token-handed")).await;
}
