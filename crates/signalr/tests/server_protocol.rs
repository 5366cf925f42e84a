//! The server as the specification describes it, driven with raw HTTP requests and a raw
//! WebSocket: status codes, keep-alive and timeouts, and every kind of bad input.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{TestServer, start, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use uplink_signalr::protocol::{
    Completion, HubMessage, HubProtocol, MessagePackProtocol, Outcome, write_length_prefix,
};
use uplink_signalr::server::{AuthRejection, Authenticator, Identity, OriginPolicy, ServerOptions};

async fn tls_stream(server: &TestServer) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let connector = TlsConnector::from(server.client_tls.clone());
    connector
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// One HTTP/1.1 request on its own connection: the status and the body.
async fn request(
    server: &TestServer,
    method: &str,
    path_and_query: &str,
    extra: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = tls_stream(server).await;
    let head = format!(
        "{method} {}{path_and_query} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        support::HUB_PATH,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn negotiate(server: &TestServer) -> Value {
    let (status, body) = request(server, "POST", "/negotiate?negotiateVersion=1", "", "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn websocket(
    server: &TestServer,
    query: &str,
) -> Result<WebSocketStream<TlsStream<TcpStream>>, u16> {
    let stream = tls_stream(server).await;
    let url = format!(
        "wss://127.0.0.1:{}{}{query}",
        server.addr.port(),
        support::HUB_PATH
    );
    match tokio_tungstenite::client_async(url, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

/// Reads frames until one holds a record matching `wanted` (records split on 0x1E).
async fn next_record(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Option<Value> {
    loop {
        match within("a frame", ws.next()).await {
            Some(Ok(Message::Text(text))) => {
                let first = text.split('\u{1e}').find(|r| !r.is_empty())?;
                return Some(serde_json::from_str(first).unwrap());
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send(ws: &mut WebSocketStream<TlsStream<TcpStream>>, text: &str) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

async fn handshaken(server: &TestServer) -> WebSocketStream<TlsStream<TcpStream>> {
    let mut ws = websocket(server, "").await.unwrap();
    send(&mut ws, "{\"protocol\":\"json\",\"version\":1}\u{1e}").await;
    assert_eq!(next_record(&mut ws).await, Some(json!({})));
    ws
}

#[tokio::test]
async fn negotiate_follows_the_specification() {
    let server = start(ServerOptions::default()).await;
    let v1 = negotiate(&server).await;
    assert_eq!(v1["negotiateVersion"], 1);
    assert!(v1["connectionToken"].as_str().unwrap().len() >= 16);
    assert_ne!(
        v1["connectionToken"], v1["connectionId"],
        "the token is a separate secret"
    );
    let transports: Vec<&str> = v1["availableTransports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["transport"].as_str().unwrap())
        .collect();
    assert_eq!(
        transports,
        ["WebSockets", "ServerSentEvents", "LongPolling"]
    );
    assert_eq!(
        v1["availableTransports"][1]["transferFormats"],
        json!(["Text"])
    );

    let (status, body) = request(&server, "POST", "/negotiate", "", "").await;
    assert_eq!(status, 200);
    let v0: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v0["negotiateVersion"], 0);
    assert!(v0.get("connectionToken").is_none());
    // Version 0 clients use the connection id as `id`.
    let id = v0["connectionId"].as_str().unwrap();
    let (status, _) = request(&server, "GET", &format!("?id={id}"), "", "").await;
    assert_eq!(status, 200, "first long poll with a version-0 id");
}

#[tokio::test]
async fn transport_requests_get_the_specified_status_codes() {
    let server = start(ServerOptions {
        long_poll_timeout: Duration::from_millis(1500),
        ..ServerOptions::default()
    })
    .await;
    assert_eq!(request(&server, "GET", "?id=nope", "", "").await.0, 404);
    assert_eq!(request(&server, "GET", "", "", "").await.0, 400);
    assert_eq!(request(&server, "POST", "", "", "x").await.0, 400);
    assert_eq!(request(&server, "POST", "?id=nope", "", "x").await.0, 404);
    assert_eq!(request(&server, "DELETE", "?id=nope", "", "").await.0, 404);
    assert_eq!(websocket(&server, "?id=nope").await.err(), Some(404));
    assert_eq!(
        request(
            &server,
            "GET",
            "?id=nope",
            "Accept: text/event-stream\r\n",
            ""
        )
        .await
        .0,
        404
    );

    // Long polling: the first poll returns at once, a poll with nothing returns 200 empty after
    // the poll timeout, and a second poll supersedes the first, which answers 204.
    let token = negotiate(&server).await["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!("?id={token}");
    assert_eq!(
        request(&server, "GET", &q, "", "").await,
        (200, String::new())
    );
    assert_eq!(request(&server, "GET", &q, "", "").await.0, 200);
    let server = Arc::new(server);
    let first = {
        let server = server.clone();
        let q = q.clone();
        tokio::spawn(async move { request(&server, "GET", &q, "", "").await.0 })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = {
        let server = server.clone();
        let q = q.clone();
        tokio::spawn(async move { request(&server, "GET", &q, "", "").await.0 })
    };
    assert_eq!(within("superseded poll", first).await.unwrap(), 204);
    // The connection already uses long polling: no WebSocket for it.
    assert_eq!(websocket(&server, &q).await.err(), Some(400));
    // POST carries the handshake; the answer arrives on the open poll.
    let (status, _) = request(
        &server,
        "POST",
        &q,
        "",
        "{\"protocol\":\"json\",\"version\":1}\u{1e}",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(within("poll", second).await.unwrap(), 200);
    // DELETE ends it: 202; a poll collects the Close still queued, then polls say 204 (closed)
    // and POSTs 404.
    assert_eq!(request(&server, "DELETE", &q, "", "").await.0, 202);
    assert_eq!(
        request(&server, "GET", &q, "", "").await,
        (200, "{\"type\":7}\u{1e}".to_string())
    );
    assert_eq!(request(&server, "GET", &q, "", "").await.0, 204);
    assert_eq!(
        request(&server, "POST", &q, "", "{\"type\":6}\u{1e}")
            .await
            .0,
        404
    );

    // A second WebSocket for one connection is refused with 409.
    let token = negotiate(&server).await["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!("?id={token}");
    let _first = websocket(&server, &q).await.unwrap();
    assert_eq!(websocket(&server, &q).await.err(), Some(409));
}

#[tokio::test]
async fn foreign_origins_and_missing_tokens_are_refused() {
    let server = start(ServerOptions {
        origins: OriginPolicy::SameOrigin,
        authenticator: Some(Authenticator::new(|r| async move {
            match r.bearer.as_deref() {
                Some("good") => Ok(Identity::new("alice")),
                Some("other") => Ok(Identity::new("mallory")),
                _ => Err(AuthRejection("token required".into())),
            }
        })),
        ..ServerOptions::default()
    })
    .await;
    let (status, _) = request(
        &server,
        "POST",
        "/negotiate?negotiateVersion=1",
        "Origin: https://evil.example\r\nAuthorization: Bearer good\r\n",
        "",
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = request(&server, "POST", "/negotiate?negotiateVersion=1", "", "").await;
    assert_eq!((status, body.as_str()), (401, "token required"));
    let (status, body) = request(
        &server,
        "POST",
        "/negotiate?negotiateVersion=1",
        "Authorization: Bearer good\r\n",
        "",
    )
    .await;
    assert_eq!(status, 200);
    let token = serde_json::from_str::<Value>(&body).unwrap()["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    // The token in the query works too (browsers' WebSockets and EventSource)...
    assert_eq!(
        request(
            &server,
            "GET",
            &format!("?id={token}&access_token=good"),
            "",
            ""
        )
        .await
        .0,
        200
    );
    // ...but another identity cannot use alice's connection.
    assert_eq!(
        request(
            &server,
            "GET",
            &format!("?id={token}&access_token=other"),
            "",
            ""
        )
        .await
        .0,
        403
    );
    assert_eq!(
        websocket(&server, "?access_token=bad").await.err(),
        Some(401)
    );
}

#[tokio::test]
async fn bad_input_closes_only_the_offending_connection() {
    let server = start(ServerOptions::default()).await;
    let mut healthy = handshaken(&server).await;

    let cases: [(&str, &str); 4] = [
        ("{\"type\":1,\"target\":\u{1e}", "malformed message"),
        ("{\"type\":42}\u{1e}", "unknown message type 42"),
        (
            "{\"type\":1,\"arguments\":[]}\u{1e}",
            "missing its required 'target'",
        ),
        (
            "{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"x\"}\u{1e}",
            "both a result and an error",
        ),
    ];
    for (input, expected) in cases {
        let mut ws = handshaken(&server).await;
        send(&mut ws, input).await;
        let close = next_record(&mut ws).await.expect("a Close message");
        assert_eq!(close["type"], 7, "{input}");
        assert!(
            close["error"].as_str().unwrap().contains(expected),
            "{input}: {close}"
        );
        assert_eq!(next_record(&mut ws).await, None, "then the socket closes");
    }

    // Oversized: more than 32 KiB without a separator.
    let mut ws = handshaken(&server).await;
    send(&mut ws, &"x".repeat(40 * 1024)).await;
    let close = next_record(&mut ws).await.unwrap();
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("maximum size of 32768"),
        "{close}"
    );

    // An unknown protocol in the handshake gets a handshake error.
    let mut ws = websocket(&server, "").await.unwrap();
    send(
        &mut ws,
        "{\"protocol\":\"messagepack2\",\"version\":1}\u{1e}",
    )
    .await;
    let answer = next_record(&mut ws).await.unwrap();
    assert!(
        answer["error"].as_str().unwrap().contains("'messagepack2'"),
        "{answer}"
    );

    // Unknown methods and wrong arguments are Completion errors; the connection carries on.
    send(
        &mut healthy,
        "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Nope\",\"arguments\":[]}\u{1e}",
    )
    .await;
    let c = next_record(&mut healthy).await.unwrap();
    assert_eq!(
        (c["type"].as_i64(), c["error"].as_str()),
        (Some(3), Some("Unknown hub method 'Nope'"))
    );
    send(
        &mut healthy,
        "{\"type\":1,\"invocationId\":\"2\",\"target\":\"Add\",\"arguments\":[1]}\u{1e}",
    )
    .await;
    let c = next_record(&mut healthy).await.unwrap();
    assert!(
        c["error"]
            .as_str()
            .unwrap()
            .contains("Failed to invoke 'Add'"),
        "{c}"
    );
    send(
        &mut healthy,
        "{\"type\":4,\"invocationId\":\"3\",\"target\":\"Add\",\"arguments\":[1,2]}\u{1e}",
    )
    .await;
    let c = next_record(&mut healthy).await.unwrap();
    assert!(
        c["error"].as_str().unwrap().contains("non-streaming"),
        "{c}"
    );
    // Two messages in one frame, and one message split over two frames.
    send(
        &mut healthy,
        "{\"type\":6}\u{1e}{\"type\":1,\"invocationId\":\"4\",\"target\":\"Add\",",
    )
    .await;
    send(&mut healthy, "\"arguments\":[40,2]}\u{1e}").await;
    let c = next_record(&mut healthy).await.unwrap();
    assert_eq!(c, json!({"type": 3, "invocationId": "4", "result": 42}));
}

/// Many invocations in one WebSocket message, as the official clients send them when calls
/// queue up behind a send in flight.
fn echo_batch(calls: usize, size: usize) -> String {
    let payload = "x".repeat(size);
    (0..calls)
        .map(|i| {
            format!(
                "{{\"type\":1,\"invocationId\":\"{i}\",\"target\":\"Echo\",\"arguments\":[\"{payload}\"]}}\u{1e}"
            )
        })
        .collect()
}

#[tokio::test]
async fn a_batch_of_many_messages_in_one_websocket_message_is_served() {
    let server = start(ServerOptions::default()).await;
    let mut ws = handshaken(&server).await;
    // 40 × 16 KiB: each message under the 32 KiB limit, the batch far over it.
    send(&mut ws, &echo_batch(40, 16 * 1024)).await;
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < 40 {
        let Some(Ok(Message::Text(text))) = within("echoes", ws.next()).await else {
            panic!("the connection closed after {} echoes", answered.len());
        };
        for record in text.split('\u{1e}').filter(|r| !r.is_empty()) {
            let c: Value = serde_json::from_str(record).unwrap();
            assert_eq!(c["result"].as_str().map(str::len), Some(16 * 1024), "{c}");
            answered.insert(c["invocationId"].as_str().unwrap().to_owned());
        }
    }
}

#[tokio::test]
async fn a_batch_over_the_limit_closes_only_that_connection() {
    let server = start(ServerOptions {
        max_batch_size: 256 * 1024,
        ..ServerOptions::default()
    })
    .await;
    let mut healthy = handshaken(&server).await;
    let mut ws = handshaken(&server).await;
    // The server may close while the batch is still being written.
    let _ = ws
        .send(Message::Text(echo_batch(20, 16 * 1024).into()))
        .await;
    let close = next_record(&mut ws).await.expect("a Close message");
    assert_eq!(close["type"], 7, "{close}");
    assert!(
        close["error"]
            .as_str()
            .is_some_and(|e| e.contains("Message too long")),
        "{close}"
    );
    send(
        &mut healthy,
        "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Add\",\"arguments\":[1,2]}\u{1e}",
    )
    .await;
    assert_eq!(
        next_record(&mut healthy).await,
        Some(json!({"type": 3, "invocationId": "1", "result": 3}))
    );
}

#[tokio::test]
async fn cancel_invocation_stops_a_stream_and_completes_it() {
    let server = start(ServerOptions::default()).await;
    let mut ws = handshaken(&server).await;
    send(
        &mut ws,
        "{\"type\":4,\"invocationId\":\"s\",\"target\":\"Counter\",\"arguments\":[100000]}\u{1e}",
    )
    .await;
    let first = next_record(&mut ws).await.unwrap();
    assert_eq!(
        (first["type"].as_i64(), first["item"].as_i64()),
        (Some(2), Some(0))
    );
    send(&mut ws, "{\"type\":5,\"invocationId\":\"s\"}\u{1e}").await;
    let completion = loop {
        let r = next_record(&mut ws).await.unwrap();
        if r["type"] == 3 {
            break r;
        }
    };
    assert_eq!(completion["invocationId"], "s");
    assert!(
        completion["error"].as_str().unwrap().contains("canceled"),
        "{completion}"
    );
}

#[tokio::test]
async fn keep_alive_pings_and_timeouts() {
    let server = start(ServerOptions {
        keep_alive_interval: Duration::from_millis(100),
        client_timeout: Duration::from_millis(600),
        handshake_timeout: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    // No handshake: the server gives up on the connection.
    let mut silent = websocket(&server, "").await.unwrap();
    assert_eq!(next_record(&mut silent).await, None);

    // After the handshake, an idle server pings; a silent client is then timed out.
    let mut ws = handshaken(&server).await;
    assert_eq!(next_record(&mut ws).await, Some(json!({"type": 6})));
    let close = loop {
        let r = next_record(&mut ws)
            .await
            .expect("a Close before the socket ends");
        if r["type"] == 7 {
            break r;
        }
    };
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("client keep-alive timed out"),
        "{close}"
    );
}

/// The bytes of the next data frame, text or binary.
async fn next_frame(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Option<Vec<u8>> {
    loop {
        match within("a frame", ws.next()).await {
            Some(Ok(Message::Text(text))) => return Some(text.as_bytes().to_vec()),
            Some(Ok(Message::Binary(bytes))) => return Some(bytes.to_vec()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A MessagePack body with its VarInt length prefix, in a binary frame.
async fn send_framed(ws: &mut WebSocketStream<TlsStream<TcpStream>>, body: &[u8]) {
    let mut framed = Vec::new();
    write_length_prefix(body.len(), &mut framed);
    framed.extend_from_slice(body);
    ws.send(Message::Binary(framed.into())).await.unwrap();
}

/// The next hub message on a MessagePack connection.
async fn next_message(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Option<HubMessage> {
    let mut decoder = MessagePackProtocol.decoder(1 << 20);
    loop {
        if let Some(message) = decoder.next_message().unwrap() {
            return Some(message);
        }
        decoder.extend(&next_frame(ws).await?);
    }
}

async fn messagepack_handshaken(server: &TestServer) -> WebSocketStream<TlsStream<TcpStream>> {
    let mut ws = websocket(server, "").await.unwrap();
    send(
        &mut ws,
        "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}",
    )
    .await;
    assert_eq!(next_frame(&mut ws).await.as_deref(), Some(&b"{}\x1e"[..]));
    ws
}

#[tokio::test]
async fn messagepack_calls_and_bad_messagepack_closes_only_that_connection() {
    let server = start(ServerOptions::default()).await;
    let mut healthy = messagepack_handshaken(&server).await;
    // Add(40, 2) with id "1": [1, {}, "1", "Add", [40, 2], []].
    let add = [
        0x96, 0x01, 0x80, 0xa1, b'1', 0xa3, b'A', b'd', b'd', 0x92, 40, 2, 0x90,
    ];
    send_framed(&mut healthy, &add).await;
    let answer = next_frame(&mut healthy).await.unwrap();
    assert_eq!(answer, [0x07, 0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x2a]);

    let cases: [(&[u8], &str); 4] = [
        (
            &[0x01, 0xc1],
            "expected an array, found MessagePack invalid marker 0xc1",
        ),
        (&[0x02, 0x91, 0x63], "unknown message type 99"),
        (&[0x80, 0x80, 0x04], "maximum size of 32768"),
        (&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "longer than 5 bytes"),
    ];
    for (input, expected) in cases {
        let mut ws = messagepack_handshaken(&server).await;
        ws.send(Message::Binary(input.to_vec().into()))
            .await
            .unwrap();
        let Some(HubMessage::Close(close)) = next_message(&mut ws).await else {
            panic!("{input:x?}: a Close message")
        };
        let error = close.error.unwrap_or_default();
        assert!(error.contains(expected), "{input:x?}: {error}");
        assert_eq!(next_frame(&mut ws).await, None, "then the socket closes");
    }

    // Arguments of the wrong type are a Completion error; the connection carries on.
    let wrong = [
        0x96, 0x01, 0x80, 0xa1, b'2', 0xa3, b'A', b'd', b'd', 0x92, 0xa1, b'x', 2, 0x90,
    ];
    send_framed(&mut healthy, &wrong).await;
    let Some(HubMessage::Completion(c)) = next_message(&mut healthy).await else {
        panic!("a Completion")
    };
    let Outcome::Error(error) = c.outcome else {
        panic!("an error")
    };
    assert!(error.contains("Failed to invoke 'Add'"), "{error}");
    send_framed(&mut healthy, &add).await;
    assert_eq!(
        next_message(&mut healthy).await,
        Some(HubMessage::Completion(Completion::new(
            "1",
            Outcome::Result(json!(42))
        )))
    );
}

#[tokio::test]
async fn messagepack_is_refused_over_server_sent_events() {
    let server = Arc::new(start(ServerOptions::default()).await);
    let token = negotiate(&server).await["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!("?id={token}");
    let events = {
        let server = server.clone();
        let q = q.clone();
        tokio::spawn(async move {
            request(&server, "GET", &q, "Accept: text/event-stream\r\n", "").await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = request(
        &server,
        "POST",
        &q,
        "",
        "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}",
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = within("event stream ends", events).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("cannot be used over Server-Sent Events"),
        "{body}"
    );
}

/// The `invocationId`s of the completions in a long poll's body, in order.
fn completion_ids(body: &str) -> Vec<String> {
    body.split('\u{1e}')
        .filter(|r| !r.is_empty())
        .filter_map(|r| serde_json::from_str::<Value>(r).ok())
        .filter(|m| m["type"] == 3)
        .map(|m| m["invocationId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn numbered_posts_sent_together_are_applied_in_their_order() {
    let server = Arc::new(start(ServerOptions::default()).await);
    let token = negotiate(&server).await["connectionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let q = format!("?id={token}");
    assert_eq!(request(&server, "GET", &q, "", "").await.0, 200);
    let echo = |id: &str| {
        format!(
            "{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"Echo\",\"arguments\":[\"{id}\"]}}\u{1e}"
        )
    };
    // The last batch goes first and the first last: each waits for the ones numbered before it.
    let mut posts = Vec::new();
    for (seq, body) in [
        (2, echo("c")),
        (1, echo("b")),
        (
            0,
            format!("{{\"protocol\":\"json\",\"version\":1}}\u{1e}{}", echo("a")),
        ),
    ] {
        let (server, q) = (server.clone(), q.clone());
        posts.push(tokio::spawn(async move {
            request(&server, "POST", &format!("{q}&seq={seq}"), "", &body)
                .await
                .0
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for post in posts {
        assert_eq!(within("numbered POST", post).await.unwrap(), 200);
    }
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let (status, body) = within("poll", request(&server, "GET", &q, "", "")).await;
        assert_eq!(status, 200, "{body}");
        ids.extend(completion_ids(&body));
    }
    assert_eq!(ids, ["a", "b", "c"]);

    // A number already applied, or too far ahead of the next one (3), is refused; the next
    // one is taken.
    let post = |seq: u64| {
        let (server, q) = (server.clone(), q.clone());
        let body = echo("d");
        async move {
            request(&server, "POST", &format!("{q}&seq={seq}"), "", &body)
                .await
                .0
        }
    };
    assert_eq!(post(1).await, 409);
    assert_eq!(post(7).await, 409);
    assert_eq!(post(3).await, 200);
    let (_, body) = within("poll", request(&server, "GET", &q, "", "")).await;
    assert_eq!(completion_ids(&body), ["d"]);
}

/// Waits until the server holds `expected` connections.
async fn open_connections_become(server: &TestServer, expected: usize) {
    within("the connection count", async {
        while server.server.open_connections() != expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn websockets_that_end_early_leave_no_connection_behind() {
    let server = start(ServerOptions::default()).await;

    // Upgraded, then gone before the handshake: the session reading the socket ends it.
    let ws = websocket(&server, "").await.unwrap();
    open_connections_become(&server, 1).await;
    drop(ws);
    open_connections_become(&server, 0).await;

    // Negotiated, upgraded, and the socket dropped before the handshake: nothing stays
    // registered (the negotiated connection is claimed by the upgrade).
    for _ in 0..5 {
        let id = negotiate(&server).await["connectionToken"]
            .as_str()
            .unwrap()
            .to_string();
        let mut stream = tls_stream(&server).await;
        let head = format!(
            "GET {}?id={id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            support::HUB_PATH
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            within("the upgrade's answer", stream.read_exact(&mut byte))
                .await
                .unwrap();
            answer.push(byte[0]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        drop(stream);
    }
    open_connections_become(&server, 0).await;

    // And a connection that completed its handshake still serves after all that.
    let mut ws = handshaken(&server).await;
    send(
        &mut ws,
        "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"still here\"]}\u{1e}",
    )
    .await;
    let completion = next_record(&mut ws).await.unwrap();
    assert_eq!(completion["result"], json!("still here"), "{completion}");
    open_connections_become(&server, 1).await;
}
