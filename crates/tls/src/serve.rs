use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection waiting this long for its next request's headers is closed: an idle keep-alive
/// connection holds a TLS session and HTTP buffers (tens of KiB) for nothing, and a client
/// that trickles its headers cannot pin them either. Clients reconnect when they need to.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` over HTTPS on `listener` until `shutdown` completes. Each connection gets its
/// own task, so a slow handshake never delays others; HTTP upgrades (WebSockets) work, and
/// handlers can extract the peer's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with_idle_timeout(listener, config, app, shutdown, IDLE_TIMEOUT).await
}

async fn serve_with_idle_timeout(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    idle_timeout: Duration,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let mut http = auto::Builder::new(TokioExecutor::new());
    // hyper applies its header read timeout only with a timer; it runs while a connection
    // waits for a request, so it also ends idle keep-alive connections.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        // Small messages (relayed answers, SignalR frames) must not wait for Nagle's algorithm
        // to meet the peer's delayed ACK: that pairing alone costs 40 ms a round trip.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            // Handlers see the peer address through axum's `ConnectInfo`, as with `axum::serve`.
            let service = TowerToHyperService::new(app.map_request(
                move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                },
            ));
            if let Err(error) = http
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;

    use super::*;
    use crate::{LoopbackCa, Trust, client_config, server_config};

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        crate::install_crypto_provider();
        let ca = LoopbackCa::generate(&["localhost"]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let config = server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
        tokio::spawn(serve_with_idle_timeout(
            listener,
            config,
            app,
            std::future::pending(),
            Duration::from_millis(200),
        ));
        let connector =
            TlsConnector::from(client_config(&Trust::CustomCa(ca.ca_pem().to_owned())).unwrap());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        // Keep-alive: the response comes, then the connection idles until the server ends it.
        // A close without TLS close_notify reads as an error; either way the connection ended.
        let mut received = Vec::new();
        let _ended = tokio::time::timeout(Duration::from_secs(20), tls.read_to_end(&mut received))
            .await
            .expect("the server closes an idle connection");
        let received = String::from_utf8_lossy(&received);
        assert!(received.starts_with("HTTP/1.1 200"), "{received}");
        assert!(received.ends_with("ok"), "{received}");
    }
}
