//! The TLS-intercepting proxy: it ends the client's TLS with a certificate of its own test CA,
//! opens its own TLS to the upstream for every client connection, and relays HTTP/1.1 between
//! them, applying the HTTP faults in force.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::FaultError;

type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;
type Upstream = Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Incoming>>>;

#[derive(Debug, Default)]
struct Shared {
    refuse_websockets: AtomicBool,
    hang_websockets: AtomicBool,
    hung_upgrades: AtomicU64,
    /// Releases the upgrades held while `hang_websockets` was on.
    release_upgrades: tokio::sync::Notify,
    buffer_event_streams: AtomicBool,
    refused_upgrades: AtomicU64,
    buffered_streams: AtomicU64,
}

/// A TLS-intercepting HTTP proxy on 127.0.0.1 in front of one upstream; stops when dropped.
#[derive(Debug)]
pub struct InterceptProxy {
    addr: SocketAddr,
    ca_pem: String,
    faults: HttpFaults,
    task: JoinHandle<()>,
}

impl InterceptProxy {
    /// Starts intercepting connections made to [`addr`](Self::addr): TLS is ended with a
    /// certificate for `localhost` and `127.0.0.1` from a fresh test CA ([`ca_pem`](Self::ca_pem)),
    /// and each connection is relayed over a TLS connection of its own to `upstream`, whose
    /// certificate must chain to `upstream_ca_pem`.
    ///
    /// # Errors
    /// [`FaultError::Io`] when it cannot listen, [`FaultError::Tls`] for an unusable CA.
    pub async fn start(upstream: SocketAddr, upstream_ca_pem: &str) -> Result<Self, FaultError> {
        let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"])?;
        let acceptor = TlsAcceptor::from(uplink_tls::server_config(
            &ca.cert_chain_pem(),
            ca.key_pem(),
        )?);
        let mut client =
            (*uplink_tls::client_config(&uplink_tls::Trust::CustomCa(upstream_ca_pem.to_owned()))?)
                .clone();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = TlsConnector::from(Arc::new(client));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(
            listener,
            upstream,
            acceptor,
            connector,
            shared.clone(),
        ));
        Ok(Self {
            addr,
            ca_pem: ca.ca_pem().to_owned(),
            faults: HttpFaults { shared },
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PEM certificate of the proxy's test CA, which clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The switches of this proxy's faults.
    pub fn faults(&self) -> HttpFaults {
        self.faults.clone()
    }
}

impl Drop for InterceptProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Switches an [`InterceptProxy`]'s faults at run time; clone it freely.
#[derive(Debug, Clone)]
pub struct HttpFaults {
    shared: Arc<Shared>,
}

impl HttpFaults {
    /// Answers `403` to every request that asks to upgrade to a WebSocket (`true`), or relays
    /// them again.
    pub fn refuse_websockets(&self, refuse: bool) {
        self.shared
            .refuse_websockets
            .store(refuse, Ordering::SeqCst);
    }

    /// Holds every request that asks to upgrade to a WebSocket without an answer (`true`), as
    /// a proxy that does not understand upgrades may: the client sees only silence. Switched
    /// off, the held requests go on to the upstream.
    pub fn hang_websockets(&self, hang: bool) {
        self.shared.hang_websockets.store(hang, Ordering::SeqCst);
        if !hang {
            self.shared.release_upgrades.notify_waiters();
        }
    }

    /// Holds back every `text/event-stream` body until the upstream ends it (`true`): the
    /// headers pass at once, the events only at the very end. Or relays them as they come.
    pub fn buffer_event_streams(&self, buffer: bool) {
        self.shared
            .buffer_event_streams
            .store(buffer, Ordering::SeqCst);
    }

    /// WebSocket upgrades refused so far.
    pub fn refused_upgrades(&self) -> u64 {
        self.shared.refused_upgrades.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades held without an answer so far.
    pub fn hung_upgrades(&self) -> u64 {
        self.shared.hung_upgrades.load(Ordering::SeqCst)
    }

    /// Event streams held back so far.
    pub fn buffered_streams(&self) -> u64 {
        self.shared.buffered_streams.load(Ordering::SeqCst)
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    shared: Arc<Shared>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let (acceptor, connector, shared) = (acceptor.clone(), connector.clone(), shared.clone());
                    connections.spawn(async move {
                        if let Err(error) = intercept(stream, upstream, acceptor, connector, shared).await {
                            tracing::debug!(%error, "intercepting proxy: connection ended");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "intercepting proxy: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn intercept(
    stream: TcpStream,
    upstream: SocketAddr,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    shared: Arc<Shared>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = stream.set_nodelay(true);
    let client_side = acceptor.accept(stream).await?;
    let server_side = TcpStream::connect(upstream).await?;
    let _ = server_side.set_nodelay(true);
    let server_side = connector
        .connect(ServerName::IpAddress(upstream.ip().into()), server_side)
        .await?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(server_side)).await?;
    let driving = tokio::spawn(connection.with_upgrades());
    let sender: Upstream = Arc::new(tokio::sync::Mutex::new(sender));
    let service =
        hyper::service::service_fn(move |request| relay(request, sender.clone(), shared.clone()));
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(client_side), service)
        .with_upgrades()
        .await;
    // An upgraded connection has moved into its copying task; otherwise the upstream one
    // closes with the client's.
    if !driving.is_finished() {
        driving.abort();
    }
    Ok(served?)
}

fn full(status: StatusCode, json: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(json.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn relay(
    mut request: Request<Incoming>,
    upstream: Upstream,
    shared: Arc<Shared>,
) -> Result<Response<ProxyBody>, Infallible> {
    let websocket = request
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if websocket && shared.refuse_websockets.load(Ordering::SeqCst) {
        shared.refused_upgrades.fetch_add(1, Ordering::SeqCst);
        return Ok(full(
            StatusCode::FORBIDDEN,
            r#"{"code":"proxy_policy","message":"WebSocket upgrades are not allowed by this proxy"}"#,
        ));
    }
    if websocket && shared.hang_websockets.load(Ordering::SeqCst) {
        shared.hung_upgrades.fetch_add(1, Ordering::SeqCst);
        loop {
            let released = shared.release_upgrades.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if !shared.hang_websockets.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
    }
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut request));
    let sent = {
        let mut sender = upstream.lock().await;
        match sender.ready().await {
            Ok(()) => sender.send_request(request).await,
            Err(error) => Err(error),
        }
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "intercepting proxy: upstream request failed");
            return Ok(full(
                StatusCode::BAD_GATEWAY,
                r#"{"code":"bad_gateway","message":"the proxy could not reach the upstream"}"#,
            ));
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let server_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(server)) = tokio::join!(client_upgrade, server_upgrade) {
                let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        return Ok(response.map(|body| body.boxed_unsync()));
    }
    let event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if event_stream && shared.buffer_event_streams.load(Ordering::SeqCst) {
        shared.buffered_streams.fetch_add(1, Ordering::SeqCst);
        return Ok(response.map(|body| {
            let whole = futures::stream::once(async move {
                body.collect().await.map(|all| Frame::data(all.to_bytes()))
            });
            StreamBody::new(whole).boxed_unsync()
        }));
    }
    Ok(response.map(|body| body.boxed_unsync()))
}
