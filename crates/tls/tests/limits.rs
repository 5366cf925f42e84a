//! What a hostile or careless client can hold of an HTTPS server is bounded: the number of
//! connections, the size and count of request headers, the time to send them, and the time a
//! response may wait for a client that never reads it. Each limit is set small here so the
//! tests run quickly; each test asserts the limit holds and that other clients are unaffected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use uplink_tls::{LoopbackCa, ServeLimits, Trust, client_config, serve_with_limits, server_config};

/// Counts what the endless route produced and whether its body was dropped.
#[derive(Default)]
struct Endless {
    produced: AtomicU64,
    dropped: AtomicBool,
}

struct Server {
    addr: SocketAddr,
    connector: TlsConnector,
    endless: Arc<Endless>,
}

async fn start(limits: ServeLimits) -> Server {
    uplink_tls::install_crypto_provider();
    let ca = LoopbackCa::generate(&["localhost"]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endless = Arc::new(Endless::default());
    let app = axum::Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/endless",
            get({
                let endless = endless.clone();
                move || async move { Body::from_stream(endless_body(endless)) }
            }),
        );
    let config = server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    tokio::spawn(serve_with_limits(
        listener,
        config,
        app,
        std::future::pending(),
        limits,
    ));
    let connector =
        TlsConnector::from(client_config(&Trust::CustomCa(ca.ca_pem().to_owned())).unwrap());
    Server {
        addr,
        connector,
        endless,
    }
}

/// 64 KiB chunks for ever, produced only as fast as the connection takes them.
fn endless_body(
    endless: Arc<Endless>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct Guard(Arc<Endless>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    futures::stream::unfold(Guard(endless), move |guard| {
        let chunk = chunk.clone();
        async move {
            guard
                .0
                .produced
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Some((Ok(chunk), guard))
        }
    })
}

impl Server {
    async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from("localhost").unwrap();
        self.connector.connect(name, tcp).await
    }
}

/// One keep-alive `GET /` on `tls`, read up to the end of its 2-byte body.
async fn get_root(tls: &mut TlsStream<TcpStream>) -> std::io::Result<String> {
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    while !received.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("no response within 10 s"))??;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&received).into_owned())
}

/// Everything the server sends until it closes the connection (bounded by 20 s).
async fn read_until_closed(tls: &mut TlsStream<TcpStream>) -> String {
    let mut received = Vec::new();
    // A close without TLS close_notify reads as an error; either way the connection ended.
    let _ended = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut received))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

/// Whether a keep-alive `GET /` on `tls` is answered 200.
async fn is_served(tls: &mut TlsStream<TcpStream>) -> bool {
    get_root(tls)
        .await
        .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
}

/// A keep-alive `GET /` on `tls` must be answered 200.
async fn assert_served(tls: &mut TlsStream<TcpStream>) {
    let response = get_root(tls).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// The server's whole answer to `request` on a new connection, read until it closes.
async fn answer(server: &Server, request: &str) -> String {
    let mut tls = server.connect().await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut tls).await
}

/// A `GET /` with `head` lines after the Host line, then `fields` header fields `X-Field-i: i`.
fn request_with_fields(head: &str, fields: usize) -> String {
    let mut request = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{head}");
    for i in 0..fields {
        request.push_str(&format!("X-Field-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    request
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(ServeLimits {
        header_read_timeout: Duration::from_millis(200),
        ..ServeLimits::default()
    })
    .await;
    // Keep-alive: the response comes, then the connection idles until the server ends it.
    let received = answer(&server, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.ends_with("ok"), "{received}");
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_the_served_ones_keep_working() {
    let server = start(ServeLimits {
        max_connections: 2,
        ..ServeLimits::default()
    })
    .await;
    let mut first = server.connect().await.unwrap();
    let mut second = server.connect().await.unwrap();
    assert_served(&mut first).await;
    assert_served(&mut second).await;

    // The third is closed before its handshake completes, or right after it.
    let refused = match server.connect().await {
        Err(_) => true,
        Ok(mut third) => !is_served(&mut third).await,
    };
    assert!(refused, "a connection beyond the cap was served");

    // The two in service are untouched.
    assert_served(&mut first).await;
    assert_served(&mut second).await;

    // Once one ends, its place is free again (the server notices the close promptly).
    drop(first);
    let mut served = false;
    for _ in 0..100 {
        if let Ok(mut again) = server.connect().await
            && is_served(&mut again).await
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed place was not given to a new connection");
}

/// A 431 carries the `{code, message}` JSON body of every other API error (hyper's own was
/// empty), complete by its `content-length`, naming the limit.
fn assert_json_431(response: &str, names: &str) {
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head} / {body}"
    );
    assert!(
        body.starts_with(r#"{"code":"request_head_too_large","message":""#),
        "{body}"
    );
    assert!(body.ends_with("\"}"), "{body}");
    assert!(body.contains(names), "{body}");
}

#[tokio::test]
async fn oversized_headers_are_answered_431_and_others_still_served() {
    let server = start(ServeLimits {
        max_header_bytes: 8 * 1024,
        ..ServeLimits::default()
    })
    .await;
    let big = "a".repeat(9 * 1024);
    let refused = answer(
        &server,
        &format!("GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n"),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    assert_json_431(&refused, "8192 bytes");

    let mut other = server.connect().await.unwrap();
    assert_served(&mut other).await;
}

#[tokio::test]
async fn too_many_header_fields_are_answered_431() {
    let server = start(ServeLimits {
        max_headers: 20,
        ..ServeLimits::default()
    })
    .await;
    let refused = answer(&server, &request_with_fields("", 40)).await;
    assert!(refused.starts_with("HTTP/1.1 431"), "{refused}");
    assert_json_431(&refused, "20 header fields");

    // Within the limit, the same request is served.
    let served = answer(&server, &request_with_fields("Connection: close\r\n", 10)).await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
}

#[tokio::test]
async fn headers_trickling_in_are_cut_off_at_the_header_timeout() {
    let server = start(ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    })
    .await;
    let mut tls = server.connect().await.unwrap();
    // One byte every 50 ms, each well inside any per-byte timeout: the headers would take
    // 20 s to complete. The server must end the connection long before.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}\r\n\r\n",
        "s".repeat(400)
    );
    let mut cut_off = false;
    for byte in request.as_bytes() {
        if tls.write_all(&[*byte]).await.is_err() || tls.flush().await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(50), tls.read(&mut buf)).await {
            Err(_) => {}
            // Closed (with or without close_notify), or hyper's own 408 before closing.
            Ok(Ok(0) | Err(_)) => {
                cut_off = true;
                break;
            }
            Ok(Ok(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                assert!(!text.starts_with("HTTP/1.1 200"), "{text}");
                cut_off = true;
                break;
            }
        }
    }
    assert!(cut_off, "the server waited for every trickled header byte");
}

#[tokio::test]
async fn a_client_that_never_reads_pins_neither_memory_nor_the_connection() {
    let server = start(ServeLimits {
        send_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    })
    .await;
    let mut tls = server.connect().await.unwrap();
    tls.write_all(b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // Never read. The body is produced only as fast as the socket takes it, so production
    // stops once the buffers are full; once writes stall for the send timeout, the server
    // drops the connection and with it the body.
    let mut waited = Duration::ZERO;
    while !server.endless.dropped.load(Ordering::SeqCst) {
        assert!(
            waited < Duration::from_secs(20),
            "the response to a client that never reads was kept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    let produced = server.endless.produced.load(Ordering::SeqCst);
    assert!(
        produced < 64 * 1024 * 1024,
        "{produced} bytes were produced for a client that read none"
    );
    drop(tls);

    // The server still serves.
    let mut other = server.connect().await.unwrap();
    assert_served(&mut other).await;
}
