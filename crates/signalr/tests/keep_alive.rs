//! The server's keep-alive pings, on every transport: a Ping whenever nothing else was written
//! for the keep-alive interval, measured from the last write, whatever the client sends. A
//! client that says nothing after its handshake (no pings of its own) must still hear one at
//! least every interval (plus scheduling slack), or clients with the default 30 s server
//! timeout drop idle links.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{TestServer, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use uplink_signalr::server::ServerOptions;

/// Short, so the test sees several pings in a few seconds; at 2 s a ping skipped every other
/// interval (the old fault) shows as a 4 s gap, well past the bound.
const INTERVAL: Duration = Duration::from_secs(2);
/// How long each client listens.
const LISTEN: Duration = Duration::from_secs(9);
/// The bound: a ping at most this long after the previous write.
const SLACK: Duration = Duration::from_secs(1);

const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";

async fn serve(client_timeout: Duration) -> Arc<TestServer> {
    Arc::new(
        start(ServerOptions {
            keep_alive_interval: INTERVAL,
            client_timeout,
            ..ServerOptions::default()
        })
        .await,
    )
}

async fn tls_stream(server: &TestServer) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    TlsConnector::from(server.client_tls.clone())
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// One request on its own connection: status and body.
async fn request(server: &TestServer, method: &str, query: &str, body: &str) -> (u16, Vec<u8>) {
    let mut stream = tls_stream(server).await;
    let head = format!(
        "{method} {}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        support::HUB_PATH,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let status = String::from_utf8_lossy(&response[..split])
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response[split + 4..].to_vec())
}

async fn connection_token(server: &TestServer) -> String {
    let (status, body) = request(server, "POST", "/negotiate?negotiateVersion=1", "").await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_slice(&body).unwrap();
    answer["connectionToken"].as_str().unwrap().to_owned()
}

/// The JSON records in `bytes` (split on the record separator).
fn records(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == 0x1e)
        .filter(|r| !r.iter().all(u8::is_ascii_whitespace))
        .map(|r| serde_json::from_slice(r).unwrap_or(Value::Null))
        .collect()
}

fn is_ping(record: &Value) -> bool {
    record == &json!({"type": 6})
}

/// When pings arrived, measured from the handshake's answer, over a WebSocket whose client
/// sends nothing but its handshake (or, with `client_pings`, its own ping every 300 ms).
async fn websocket_pings(server: Arc<TestServer>, client_pings: bool) -> Vec<Duration> {
    let url = format!(
        "wss://127.0.0.1:{}{}",
        server.addr.port(),
        support::HUB_PATH
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls_stream(&server).await)
        .await
        .unwrap();
    ws.send(Message::Text(HANDSHAKE.into())).await.unwrap();
    let mut pings = Vec::new();
    let mut start = None;
    let mut own_ping = tokio::time::interval(Duration::from_millis(300));
    let end = Instant::now() + LISTEN;
    loop {
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    other => panic!("the WebSocket ended: {other:?}"),
                };
                for record in records(text.as_bytes()) {
                    if record == json!({}) {
                        start = Some(Instant::now());
                    } else if is_ping(&record) {
                        pings.push(start.expect("handshake first").elapsed());
                    }
                }
            }
            _ = own_ping.tick(), if client_pings && start.is_some() => {
                ws.send(Message::Text("{\"type\":6}\u{1e}".into())).await.unwrap();
            }
            _ = tokio::time::sleep_until(end) => return pings,
        }
    }
}

/// When pings arrived over Server-Sent Events, from the handshake's answer on.
async fn sse_pings(server: Arc<TestServer>) -> Vec<Duration> {
    let token = connection_token(&server).await;
    let mut stream = tls_stream(&server).await;
    let head = format!(
        "GET {}?id={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        support::HUB_PATH
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let posted = {
        let (server, token) = (server.clone(), token.clone());
        tokio::spawn(
            async move { request(&server, "POST", &format!("?id={token}"), HANDSHAKE).await },
        )
    };
    let mut pings = Vec::new();
    let mut start = None;
    let mut pending = Vec::new();
    let end = Instant::now() + LISTEN;
    let mut buffer = vec![0u8; 4096];
    loop {
        let read = tokio::select! {
            read = stream.read(&mut buffer) => read.unwrap(),
            _ = tokio::time::sleep_until(end) => break,
        };
        assert!(read > 0, "the event stream ended");
        pending.extend_from_slice(&buffer[..read]);
        // Chunk sizes and blank lines never start with `data: `: the data lines are the events.
        while let Some(at) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            for record in records(data) {
                if record == json!({}) {
                    start = Some(Instant::now());
                } else if is_ping(&record) {
                    pings.push(start.expect("handshake first").elapsed());
                }
            }
        }
    }
    assert_eq!(posted.await.unwrap().0, 200, "the handshake POST");
    pings
}

/// When pings arrived by long polling, from the handshake's answer on; the client polls again
/// as soon as a poll returns, as the official clients do.
async fn long_polling_pings(server: Arc<TestServer>) -> Vec<Duration> {
    let token = connection_token(&server).await;
    let query = format!("?id={token}");
    assert_eq!(
        request(&server, "GET", &query, "").await.0,
        200,
        "first poll"
    );
    let posted = {
        let (server, query) = (server.clone(), query.clone());
        tokio::spawn(async move { request(&server, "POST", &query, HANDSHAKE).await })
    };
    let mut pings = Vec::new();
    let mut start = None;
    let end = Instant::now() + LISTEN;
    loop {
        let (status, body) = tokio::select! {
            polled = request(&server, "GET", &query, "") => polled,
            _ = tokio::time::sleep_until(end) => break,
        };
        assert_eq!(status, 200, "a poll (204: the server ended the connection)");
        for record in records(&body) {
            if record == json!({}) {
                start = Some(Instant::now());
            } else if is_ping(&record) {
                pings.push(start.expect("handshake first").elapsed());
            }
        }
    }
    assert_eq!(posted.await.unwrap().0, 200, "the handshake POST");
    pings
}

/// Every gap between the handshake and the first ping, and between pings, is within the
/// interval plus the slack; and the pings kept coming until the end.
fn assert_on_time(transport: &str, pings: &[Duration]) {
    let gaps: Vec<Duration> = std::iter::once(Duration::ZERO)
        .chain(pings.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    eprintln!("{transport}: pings at {pings:?}, gaps {gaps:?}");
    let expected = (LISTEN.as_secs_f64() / INTERVAL.as_secs_f64()) as usize - 1;
    assert!(
        pings.len() >= expected,
        "{transport}: {} pings in {LISTEN:?}, expected at least {expected}: {pings:?}",
        pings.len()
    );
    for gap in &gaps {
        assert!(
            *gap <= INTERVAL + SLACK,
            "{transport}: a {gap:?} gap without a ping (interval {INTERVAL:?}): {pings:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_link_hears_a_ping_every_interval_on_every_transport() {
    // The clients below never ping: keep them from being dropped while they listen.
    let server = serve(Duration::from_secs(120)).await;
    // Long polling keeps itself alive by polling, as the official clients expect (they send no
    // pings on it): a client timeout shorter than the listening does not end it.
    let polled = serve(LISTEN / 3).await;
    let (websockets, sse, long_polling, websockets_pinging) = tokio::join!(
        websocket_pings(server.clone(), false),
        sse_pings(server.clone()),
        long_polling_pings(polled.clone()),
        // The server's pings do not depend on what the client sends.
        websocket_pings(server.clone(), true),
    );
    assert_on_time("WebSockets", &websockets);
    assert_on_time("ServerSentEvents", &sse);
    assert_on_time("LongPolling", &long_polling);
    assert_on_time("WebSockets, client pinging", &websockets_pinging);
}
