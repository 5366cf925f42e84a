//! Our client against our server over real TLS, on each transport, forced and by fallback.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use support::{Blob, start, within};
use tokio::sync::mpsc;
use uplink_signalr::client::{Backoff, ClientEvent, ConnectionState, HubConnection, ProxySetting};
use uplink_signalr::server::ServerOptions;
use uplink_signalr::{HubError, Transport};

/// Every kind of call over `transport`, in the JSON protocol or, where the transport carries
/// binary, in MessagePack.
async fn exercise(transport: Transport, message_pack: bool) {
    let server = start(ServerOptions::default()).await;
    let (notify_tx, mut notify_rx) = mpsc::unbounded_channel::<String>();
    let tokens = Arc::new(AtomicUsize::new(0));
    let tokens2 = tokens.clone();
    let mut builder = HubConnection::builder(server.url());
    if message_pack {
        builder = builder.message_pack();
    }
    let client = builder
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(transport)
        .access_token(move || {
            let n = tokens2.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, String>(format!("token-{n}")) }
        })
        .on("Answer", |(q,): (String,)| async move {
            Ok::<_, HubError>(format!("answer to {q}"))
        })
        .on("Notify", move |(text,): (String,)| {
            let tx = notify_tx.clone();
            async move {
                let _ = tx.send(text);
                Ok::<_, HubError>(())
            }
        })
        .start()
        .unwrap();
    assert_eq!(within("connect", client.wait_connected()).await, transport);
    let expected = if message_pack && transport != Transport::ServerSentEvents {
        "messagepack"
    } else {
        "json"
    };
    assert_eq!(client.protocol(), Some(expected));
    assert!(tokens.load(Ordering::SeqCst) >= 1, "token provider called");
    assert!(client.connection_id().is_some());

    let sum: i64 = within("Add", client.invoke("Add", (40, 2))).await.unwrap();
    assert_eq!(sum, 42);

    let big = "x".repeat(16 * 1024);
    let echoed: String = within("Echo", client.invoke("Echo", (big.clone(),)))
        .await
        .unwrap();
    assert_eq!(echoed, big);

    // Bytes: `bin` in MessagePack, an array of numbers in JSON; every byte value survives.
    let all: Vec<u8> = (0..=255).collect();
    let (len, sum): (usize, u64) = within("ByteSum", client.invoke("ByteSum", (Blob(all),)))
        .await
        .unwrap();
    assert_eq!((len, sum), (256, 255 * 256 / 2));

    let err = within("Fail", client.invoke::<()>("Fail", ()))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "invocation failed: It didn't work!");

    let err = within("Missing", client.invoke::<()>("NoSuchMethod", ()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Unknown hub method 'NoSuchMethod'"),
        "{err}"
    );

    let answer: String = within("AskClient", client.invoke("AskClient", ("life",)))
        .await
        .unwrap();
    assert_eq!(answer, "answer to life");

    let triggered: bool = within("TriggerNotify", client.invoke("TriggerNotify", ("hello",)))
        .await
        .unwrap();
    assert!(triggered);
    assert_eq!(
        within("Notify", notify_rx.recv()).await.as_deref(),
        Some("hello")
    );

    let items: Vec<u32> = within("Counter", async {
        client
            .stream::<u32>("Counter", (5,))
            .await
            .unwrap()
            .map(|i| i.unwrap())
            .collect()
            .await
    })
    .await;
    assert_eq!(items, vec![0, 1, 2, 3, 4]);

    for as_json in [false, true] {
        let items: Vec<serde_json::Value> = within("Encoded", async {
            client
                .stream::<serde_json::Value>("Encoded", (3, as_json))
                .await
                .unwrap()
                .map(|i| i.unwrap())
                .collect()
                .await
        })
        .await;
        let expected: Vec<serde_json::Value> = (0..3)
            .map(|n| serde_json::json!({"n": n, "text": "a\u{1e}\"b"}))
            .collect();
        assert_eq!(items, expected, "encoded ahead, as JSON: {as_json}");
    }

    // Concurrent calls on one connection all get their own answers.
    let calls = (0..20).map(|i| {
        let client = client.clone();
        async move { client.invoke::<i64>("Add", (i, 1000)).await.unwrap() }
    });
    let results = within("concurrent", futures::future::join_all(calls)).await;
    assert_eq!(results, (0..20).map(|i| i + 1000).collect::<Vec<_>>());

    // The server addresses this connection by id.
    let id = client.connection_id().unwrap();
    let handle = server
        .server
        .connection(&id)
        .expect("server knows the connection");
    assert_eq!(handle.transport(), Some(transport));
    handle.send("Notify", ("by id",)).unwrap();
    assert_eq!(
        within("Notify by id", notify_rx.recv()).await.as_deref(),
        Some("by id")
    );

    let mut events = client.events();
    within("stop", client.stop()).await;
    assert_eq!(client.state(), ConnectionState::Disconnected);
    let mut saw_disconnected = false;
    while let Ok(e) = events.try_recv() {
        saw_disconnected |= matches!(e, ClientEvent::Disconnected { .. });
    }
    assert!(saw_disconnected);
    within("server forgets the connection", async {
        while server.server.connection(&id).is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn websockets_forced() {
    exercise(Transport::WebSockets, false).await;
}

#[tokio::test]
async fn server_sent_events_forced() {
    exercise(Transport::ServerSentEvents, false).await;
}

#[tokio::test]
async fn long_polling_forced() {
    exercise(Transport::LongPolling, false).await;
}

#[tokio::test]
async fn websockets_in_messagepack() {
    exercise(Transport::WebSockets, true).await;
}

#[tokio::test]
async fn long_polling_in_messagepack() {
    exercise(Transport::LongPolling, true).await;
}

#[tokio::test]
async fn server_sent_events_stay_on_json_when_messagepack_is_preferred() {
    exercise(Transport::ServerSentEvents, true).await;
}

#[tokio::test]
async fn falls_back_when_the_server_offers_fewer_transports() {
    let server = start(ServerOptions {
        transports: vec![Transport::LongPolling],
        ..ServerOptions::default()
    })
    .await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .start()
        .unwrap();
    let mut events = client.events();
    assert_eq!(
        within("connect", client.wait_connected()).await,
        Transport::LongPolling
    );
    let sum: i64 = within("Add", client.invoke("Add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);
    let skipped = loop {
        match within("connected event", events.recv()).await.unwrap() {
            ClientEvent::Connected { skipped, .. } => break skipped,
            _ => continue,
        }
    };
    let names: Vec<Transport> = skipped.iter().map(|s| s.transport).collect();
    assert_eq!(
        names,
        vec![Transport::WebSockets, Transport::ServerSentEvents]
    );
    assert!(skipped[0].reason.contains("not offered"), "{skipped:?}");
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn retries_the_first_start_and_reconnects_after_the_server_returns() {
    let ca = support::loopback_ca();
    // Find a free port, then leave it closed: the first attempts must fail and be retried.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client_tls =
        uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned())).unwrap();
    let client = HubConnection::builder(format!("https://127.0.0.1:{port}{}", support::HUB_PATH))
        .tls(client_tls)
        .proxy(ProxySetting::Direct)
        .backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(100),
        })
        .start()
        .unwrap();
    let mut events = client.events();
    let mut reconnecting = 0;
    while reconnecting < 3 {
        if let ClientEvent::Reconnecting {
            attempt,
            delay,
            last_error,
        } = within("reconnecting event", events.recv()).await.unwrap()
        {
            assert!(attempt >= 2);
            assert!(delay <= Duration::from_millis(100), "capped: {delay:?}");
            assert!(last_error.contains("negotiate failed"), "{last_error}");
            reconnecting += 1;
        }
    }
    let server =
        support::start_with(support::test_hub(), ServerOptions::default(), &ca, port).await;
    within("connect once the server is up", client.wait_connected()).await;
    let sum: i64 = client.invoke("Add", (2, 2)).await.unwrap();
    assert_eq!(sum, 4);

    // Take the server away: the client notices and comes back when it returns.
    server.stop().await;
    within("notices the loss", async {
        while matches!(client.state(), ConnectionState::Connected(_)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let server =
        support::start_with(support::test_hub(), ServerOptions::default(), &ca, port).await;
    within("reconnect", client.wait_connected()).await;
    let sum: i64 = within("Add after reconnect", client.invoke("Add", (3, 3)))
        .await
        .unwrap();
    assert_eq!(sum, 6);
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_silent_server_is_detected_and_the_client_reconnects() {
    // The server never pings within the client's server timeout, and the client never pings
    // within the server's client timeout: both sides must notice, the client must come back.
    let server = start(ServerOptions {
        keep_alive_interval: Duration::from_secs(3600),
        ..ServerOptions::default()
    })
    .await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .server_timeout(Duration::from_millis(400))
        .backoff(Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        })
        .start()
        .unwrap();
    let mut events = client.events();
    within("connect", client.wait_connected()).await;
    let error = loop {
        if let ClientEvent::Reconnecting { last_error, .. } =
            within("reconnecting", events.recv()).await.unwrap()
        {
            break last_error;
        }
    };
    assert!(error.contains("server keep-alive timed out"), "{error}");
    within("reconnect", client.wait_connected()).await;
    let sum: i64 = within("Add", client.invoke("Add", (1, 1))).await.unwrap();
    assert_eq!(sum, 2);
    client.stop().await;
    server.stop().await;
}

/// A TCP relay in front of `backend` that counts the connections open through it.
async fn counting_relay(backend: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let open2 = open.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let open = open2.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

#[tokio::test]
async fn a_websocket_link_keeps_no_idle_http_connection_beside_it() {
    let server = start(ServerOptions::default()).await;
    let (relay, open) = counting_relay(server.addr).await;
    let client = HubConnection::builder(format!(
        "https://127.0.0.1:{}{}",
        relay.port(),
        support::HUB_PATH
    ))
    .tls(server.client_tls.clone())
    .proxy(ProxySetting::Direct)
    .force_transport(Transport::WebSockets)
    .start()
    .unwrap();
    within("connect", client.wait_connected()).await;
    let sum: i64 = within("Add", client.invoke("Add", (2, 3))).await.unwrap();
    assert_eq!(sum, 5);
    // The negotiate connection closes once answered; only the WebSocket stays open.
    within("the negotiate connection closing", async {
        while open.load(Ordering::SeqCst) != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    client.stop().await;
    server.stop().await;
}

/// Many large messages sent at once over `transport` travel as several POST batches in flight
/// together; the server still applies every one, in the order sent.
async fn batches_in_flight_arrive_complete_and_in_order(transport: Transport) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(u64, usize)>::new()));
    let (record, list) = (seen.clone(), seen.clone());
    let hub = support::test_hub()
        .method("Append", move |_c, (seq, data): (u64, String)| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((seq, data.len()));
                Ok::<_, HubError>(())
            }
        })
        .method("Appended", move |_c, (): ()| {
            let list = list.clone();
            async move { Ok::<_, HubError>(list.lock().unwrap().clone()) }
        });
    let server =
        support::start_with(hub, ServerOptions::default(), &support::loopback_ca(), 0).await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(transport)
        .start()
        .unwrap();
    assert_eq!(within("connect", client.wait_connected()).await, transport);
    // 160 messages of 24 KiB: about 3.8 MiB, four POSTs of up to 1 MiB or more.
    const COUNT: u64 = 160;
    let data = "v".repeat(24 * 1024);
    let sends = (0..COUNT).map(|seq| {
        let (client, data) = (client.clone(), data.clone());
        async move { client.send("Append", (seq, data)).await }
    });
    // Each send is queued in turn (sends are awaited in order), and the batches go out together.
    for send in sends {
        within("send", send).await.unwrap();
    }
    let appended: Vec<(u64, usize)> = within("Appended", client.invoke("Appended", ()))
        .await
        .unwrap();
    assert_eq!(
        appended,
        (0..COUNT).map(|seq| (seq, data.len())).collect::<Vec<_>>()
    );
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn server_sent_events_batches_in_flight_arrive_complete_and_in_order() {
    batches_in_flight_arrive_complete_and_in_order(Transport::ServerSentEvents).await;
}

#[tokio::test]
async fn long_polling_batches_in_flight_arrive_complete_and_in_order() {
    batches_in_flight_arrive_complete_and_in_order(Transport::LongPolling).await;
}

/// Calls queued with `invoke_queued` reach the server in the order queued and ahead of what is
/// sent after them (a connector sends its `QueryEnd` behind chunks whose completions it has not
/// awaited yet), and each returned future still completes with its own call's result.
#[tokio::test]
async fn queued_invocations_keep_their_order_and_their_results() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let (record, list) = (seen.clone(), seen.clone());
    let hub = support::test_hub()
        .method("Record", move |_c, (n,): (u64,)| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(n);
                Ok::<_, HubError>(n * 2)
            }
        })
        .method("Recorded", move |_c, (): ()| {
            let list = list.clone();
            async move { Ok::<_, HubError>(list.lock().unwrap().clone()) }
        });
    let server =
        support::start_with(hub, ServerOptions::default(), &support::loopback_ca(), 0).await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .force_transport(Transport::WebSockets)
        .start()
        .unwrap();
    within("connect", client.wait_connected()).await;
    let mut results = Vec::new();
    for n in 0..50u64 {
        let queued = within("queue", client.invoke_queued::<u64>("Record", (n,))).await;
        results.push(queued.unwrap());
    }
    within("send", client.send("Record", (999u64,)))
        .await
        .unwrap();
    let doubled = within("results", futures::future::join_all(results)).await;
    let doubled: Vec<u64> = doubled.into_iter().map(Result::unwrap).collect();
    assert_eq!(doubled, (0..50).map(|n| n * 2).collect::<Vec<_>>());
    let recorded: Vec<u64> = within("Recorded", client.invoke("Recorded", ()))
        .await
        .unwrap();
    assert_eq!(recorded, (0..50).chain([999]).collect::<Vec<_>>());
    client.stop().await;
    server.stop().await;
}
