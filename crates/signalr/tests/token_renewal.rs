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
