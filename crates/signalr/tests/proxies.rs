//! Fallback and recovery through the kinds of proxies that break SignalR in the field: a reverse
//! proxy that refuses WebSocket upgrades, one that buffers event streams, and a forward proxy
//! that needs Basic credentials for CONNECT.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{HUB_PATH, loopback_ca, test_hub, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uplink_signalr::Transport;
use uplink_signalr::client::{ClientEvent, HubConnection, ProxySetting};
use uplink_signalr::server::{HubServer, ServerOptions};

/// What the reverse proxy does to SignalR traffic.
struct ProxyBehaviour {
    refuse_websockets: AtomicBool,
    buffer_event_streams: AtomicBool,
    backend: SocketAddr,
    client: Client<HttpConnector, Body>,
}

/// A TLS-terminating reverse proxy in front of a plain-HTTP hub, like nginx at a site edge.
struct ReverseProxy {
    url: String,
    behaviour: Arc<ProxyBehaviour>,
    client_tls: Arc<rustls::ClientConfig>,
}

async fn start_reverse_proxy(refuse_websockets: bool, buffer_event_streams: bool) -> ReverseProxy {
    // The hub, on plain HTTP behind the proxy.
    let hub = HubServer::new(test_hub(), ServerOptions::default());
    let backend_app = Router::new().nest(HUB_PATH, hub.router());
    let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = backend_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(backend_listener, backend_app).await });

    let behaviour = Arc::new(ProxyBehaviour {
        refuse_websockets: AtomicBool::new(refuse_websockets),
        buffer_event_streams: AtomicBool::new(buffer_event_streams),
        backend,
        client: Client::builder(TokioExecutor::new()).build_http(),
    });
    let ca = loopback_ca();
    let app = Router::new()
        .fallback(forward)
        .with_state(behaviour.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    tokio::spawn(async move {
        uplink_tls::serve(listener, config, app, std::future::pending::<()>()).await
    });
    ReverseProxy {
        url: format!("https://127.0.0.1:{port}{HUB_PATH}"),
        behaviour,
        client_tls: uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned()))
            .unwrap(),
    }
}

async fn forward(State(proxy): State<Arc<ProxyBehaviour>>, mut request: Request) -> Response {
    let is_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_upgrade && proxy.refuse_websockets.load(Ordering::SeqCst) {
        return (StatusCode::FORBIDDEN, "WebSockets are blocked here").into_response();
    }
    let client_upgrade = is_upgrade.then(|| hyper::upgrade::on(&mut request));
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!("http://{}{}", proxy.backend, path);
    let (mut parts, body) = request.into_parts();
    parts.uri = target.parse().unwrap();
    let mut response = match proxy.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if let Some(client_upgrade) = client_upgrade
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let backend_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(backend)) = (client_upgrade.await, backend_upgrade.await) {
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(client),
                    &mut TokioIo::new(backend),
                )
                .await;
            }
        });
    }
    let is_event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let (parts, body) = response.into_parts();
    if is_event_stream && proxy.buffer_event_streams.load(Ordering::SeqCst) {
        // Holds the whole response until the stream ends, as a buffering proxy does.
        let whole = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Response::from_parts(parts, Body::from(whole));
    }
    Response::from_parts(parts, Body::new(body))
}

fn client_through(proxy: &ReverseProxy) -> uplink_signalr::client::ClientBuilder {
    HubConnection::builder(proxy.url.clone())
        .tls(proxy.client_tls.clone())
        .proxy(ProxySetting::Direct)
        .handshake_timeout(Duration::from_secs(2))
}

async fn connected_event(
    events: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
) -> (Transport, Vec<uplink_signalr::client::SkippedTransport>) {
    loop {
        if let ClientEvent::Connected {
            transport, skipped, ..
        } = within("connected event", events.recv()).await.unwrap()
        {
            return (transport, skipped);
        }
    }
}

#[tokio::test]
async fn a_proxy_that_refuses_websocket_upgrades_lands_on_server_sent_events() {
    let proxy = start_reverse_proxy(true, false).await;
    let client = client_through(&proxy).start().unwrap();
    let mut events = client.events();
    let (transport, skipped) = connected_event(&mut events).await;
    assert_eq!(transport, Transport::ServerSentEvents);
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].transport, Transport::WebSockets);
    assert!(skipped[0].reason.contains("403"), "{:?}", skipped[0]);
    let sum: i64 = within("Add", client.invoke("Add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);
    client.stop().await;
}

#[tokio::test]
async fn a_proxy_that_buffers_event_streams_lands_on_long_polling() {
    let proxy = start_reverse_proxy(true, true).await;
    let client = client_through(&proxy).start().unwrap();
    let mut events = client.events();
    let (transport, skipped) = connected_event(&mut events).await;
    assert_eq!(transport, Transport::LongPolling);
    let skipped_names: Vec<_> = skipped.iter().map(|s| s.transport).collect();
    assert_eq!(
        skipped_names,
        vec![Transport::WebSockets, Transport::ServerSentEvents]
    );
    assert!(
        skipped[1].reason.contains("no handshake within"),
        "{:?}",
        skipped[1]
    );
    let answer: String = within("Echo", client.invoke("Echo", ("through LP",)))
        .await
        .unwrap();
    assert_eq!(answer, "through LP");
    client.stop().await;
}

#[tokio::test]
async fn after_a_fallback_the_client_moves_back_up_when_websockets_work_again() {
    let proxy = start_reverse_proxy(true, false).await;
    let client = client_through(&proxy)
        .reprobe_interval(Some(Duration::from_millis(300)))
        .start()
        .unwrap();
    let mut events = client.events();
    assert_eq!(
        connected_event(&mut events).await.0,
        Transport::ServerSentEvents
    );
    proxy
        .behaviour
        .refuse_websockets
        .store(false, Ordering::SeqCst);
    let (transport, skipped) = connected_event(&mut events).await;
    assert_eq!(transport, Transport::WebSockets);
    assert_eq!(
        skipped[0].transport,
        Transport::ServerSentEvents,
        "says what it replaced"
    );
    let sum: i64 = within("Add on WebSockets", client.invoke("Add", (5, 5)))
        .await
        .unwrap();
    assert_eq!(sum, 10);
    assert_eq!(client.transport(), Some(Transport::WebSockets));
    client.stop().await;
}

/// A forward proxy that tunnels CONNECT after checking Basic credentials.
async fn start_connect_proxy(
    user: &'static str,
    password: &'static str,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counter = tunnels.clone();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let expected = expected.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if inbound.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let authorised = head.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("proxy-authorization") && v.trim() == expected
                    })
                });
                if !head.starts_with("CONNECT ") || !authorised {
                    let _ = inbound
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    let _ = inbound.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = inbound
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (port, tunnels)
}

#[tokio::test]
async fn every_transport_goes_through_a_connect_proxy_with_basic_credentials() {
    let server = support::start(ServerOptions::default()).await;
    let (port, tunnels) = start_connect_proxy("site", "p@ss word").await;
    for transport in Transport::ALL {
        let before = tunnels.load(Ordering::SeqCst);
        let client = HubConnection::builder(server.url())
            .tls(server.client_tls.clone())
            .proxy(ProxySetting::Url {
                url: format!("http://site:p%40ss%20word@127.0.0.1:{port}"),
                no_proxy: "example.invalid".into(),
            })
            .force_transport(transport)
            .start()
            .unwrap();
        assert_eq!(
            within("connect via proxy", client.wait_connected()).await,
            transport
        );
        let sum: i64 = within("Add via proxy", client.invoke("Add", (20, 22)))
            .await
            .unwrap();
        assert_eq!(sum, 42);
        assert!(
            tunnels.load(Ordering::SeqCst) > before,
            "{transport} went through the proxy"
        );
        client.stop().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_proxy_credentials_are_reported_and_retried() {
    let server = support::start(ServerOptions::default()).await;
    let (port, tunnels) = start_connect_proxy("site", "right").await;
    let client = HubConnection::builder(server.url())
        .tls(server.client_tls.clone())
        .proxy(ProxySetting::Url {
            url: format!("http://site:wrong@127.0.0.1:{port}"),
            no_proxy: String::new(),
        })
        .start()
        .unwrap();
    let mut events = client.events();
    let error = loop {
        if let ClientEvent::Reconnecting { last_error, .. } =
            within("reconnecting", events.recv()).await.unwrap()
        {
            break last_error;
        }
    };
    assert!(error.contains("407"), "{error}");
    assert!(
        !error.contains("wrong"),
        "the password stays out of errors: {error}"
    );
    assert_eq!(tunnels.load(Ordering::SeqCst), 0);
    client.stop().await;
    server.stop().await;
}
