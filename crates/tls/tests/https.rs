//! A router served over real TLS answers a client that trusts the loopback CA, and a client
//! that trusts nothing else refuses the connection.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::routing::get;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use uplink_tls::{LoopbackCa, Trust, client_config, serve, server_config};

async fn start(ca: &LoopbackCa) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let config = server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, config, app, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn get_peer(addr: SocketAddr, trust: &Trust) -> std::io::Result<String> {
    let connector = TlsConnector::from(client_config(trust).unwrap());
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(b"GET /peer HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn serves_https_to_clients_that_trust_the_ca() {
    let ca = LoopbackCa::generate(&["localhost", "127.0.0.1"]).unwrap();
    let (addr, _stop) = start(&ca).await;
    let response = get_peer(addr, &Trust::CustomCa(ca.ca_pem().to_owned()))
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("127.0.0.1"),
        "handlers see the peer address: {response}"
    );
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_server() {
    let ca = LoopbackCa::generate(&["localhost"]).unwrap();
    let other = LoopbackCa::generate(&["localhost"]).unwrap();
    let (addr, _stop) = start(&ca).await;
    let err = get_peer(addr, &Trust::CustomCa(other.ca_pem().to_owned()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
