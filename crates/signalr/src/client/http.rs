//! Connections for the client: TCP, through a proxy tunnel when configured, then rustls; and a
//! pooled HTTP/1.1 client on top for negotiate, Server-Sent Events, long polling and POST.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::{HeaderValue, Method, Request, Response, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::proxy::Proxy;
use crate::error::{Error, Result};

/// A byte stream to the server: plain TCP or TLS, possibly inside a proxy tunnel.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Opens streams to servers: proxy tunnel if configured, then TLS for `https`/`wss`.
#[derive(Clone)]
pub(crate) struct Dialer {
    tls: TlsConnector,
    proxy: Option<Arc<Proxy>>,
    /// How long the latest dial took (TCP, proxy tunnel, TLS): sizes a first probe's wait.
    last_connect: Arc<std::sync::Mutex<Option<std::time::Duration>>>,
    /// Headers sent on every request of the connection (negotiate, polls, sends, the
    /// WebSocket upgrade), e.g. one a load balancer hashes to keep a client on one server.
    headers: Arc<Vec<(header::HeaderName, HeaderValue)>>,
}

impl Dialer {
    pub fn new(tls: &Arc<ClientConfig>, proxy: Option<Proxy>) -> Self {
        // WebSockets and this client speak HTTP/1.1 only.
        let mut config = (**tls).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: TlsConnector::from(Arc::new(config)),
            proxy: proxy.map(Arc::new),
            last_connect: Arc::default(),
            headers: Arc::default(),
        }
    }

    /// The same dialer, sending `headers` on every request.
    pub fn with_headers(mut self, headers: Vec<(header::HeaderName, HeaderValue)>) -> Self {
        self.headers = Arc::new(headers);
        self
    }

    /// The headers sent on every request.
    pub fn headers(&self) -> &[(header::HeaderName, HeaderValue)] {
        &self.headers
    }

    /// How long the latest connect took, TCP (or the proxy's tunnel) and TLS together.
    pub fn last_connect(&self) -> Option<std::time::Duration> {
        *self.last_connect.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the client reaches `host`, for telling routes apart: `direct`, or the proxy's
    /// address (never its credentials).
    pub fn route_to(&self, host: &str) -> String {
        match &self.proxy {
            Some(proxy) if !proxy.bypasses(host) => {
                format!("proxy {}:{}", proxy.host(), proxy.port())
            }
            _ => "direct".to_owned(),
        }
    }

    /// Dials `uri`, measuring how long it took.
    pub async fn dial(&self, uri: &Uri) -> Result<Box<dyn Io>> {
        let started = std::time::Instant::now();
        let stream = self.dial_unmeasured(uri).await?;
        let took = started.elapsed();
        *self.last_connect.lock().unwrap_or_else(|p| p.into_inner()) = Some(took);
        tracing::trace!(?took, "connected");
        Ok(stream)
    }

    async fn dial_unmeasured(&self, uri: &Uri) -> Result<Box<dyn Io>> {
        let secure = match uri.scheme_str() {
            Some("https" | "wss") => true,
            Some("http" | "ws") => false,
            other => {
                return Err(Error::Config(format!(
                    "unsupported URL scheme {other:?}: use https"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::Config("URL has no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = match &self.proxy {
            Some(proxy) if !proxy.bypasses(&host) => proxy.tunnel(&host, port).await?,
            _ => {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                tcp
            }
        };
        if !secure {
            return Ok(Box::new(tcp));
        }
        let name = ServerName::try_from(host.clone())
            .map_err(|e| Error::Config(format!("'{host}' is not a valid server name: {e}")))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(Box::new(tls))
    }
}

/// A dialled stream as hyper wants it.
pub(crate) struct HttpStream(TokioIo<Box<dyn Io>>);

impl Connection for HttpStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for HttpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for HttpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tower::Service<Uri> for Dialer {
    type Response = HttpStream;
    type Error = Error;
    type Future = BoxFuture<'static, Result<HttpStream>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move { Ok(HttpStream(TokioIo::new(dialer.dial(&uri).await?))) })
    }
}

/// Whether a request's connection goes back to the pool afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Kept for the next request (long polls, sends).
    Pool,
    /// Closed once the response is read: nothing else will use it, and an idle connection
    /// costs the server a TLS session and HTTP buffers for as long as it stays open.
    Close,
}

/// How long an unused pooled connection is kept open for the next request.
const IDLE_CONNECTION_KEPT: std::time::Duration = std::time::Duration::from_secs(5);

/// The HTTP client of one SignalR client: pooled keep-alive connections over the dialer.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<Dialer, Full<Bytes>>,
    pub dialer: Dialer,
}

impl HttpClient {
    pub fn new(dialer: Dialer) -> Self {
        // Several POSTs go up at once on the slower transports, each on a connection of its
        // own; once the burst is over the extra ones close soon, so that an idle link costs the
        // hub one connection, not one per POST it once had in flight.
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(IDLE_CONNECTION_KEPT)
            .build(dialer.clone());
        Self { client, dialer }
    }

    /// Sends one request; the bearer token (if any) goes in the `Authorization` header.
    pub fn send(
        &self,
        method: Method,
        uri: &Uri,
        token: Option<&str>,
        accept: Option<&'static str>,
        body: Bytes,
    ) -> impl Future<Output = Result<Response<Incoming>>> + Send + 'static + use<> {
        self.send_with(method, uri, token, accept, body, KeepAlive::Pool)
    }

    /// Sends one request like [`HttpClient::send`], choosing whether its connection is kept.
    pub fn send_with(
        &self,
        method: Method,
        uri: &Uri,
        token: Option<&str>,
        accept: Option<&'static str>,
        body: Bytes,
        keep_alive: KeepAlive,
    ) -> impl Future<Output = Result<Response<Incoming>>> + Send + 'static + use<> {
        let mut request = Request::builder().method(method).uri(uri.clone());
        if keep_alive == KeepAlive::Close {
            request = request.header(header::CONNECTION, "close");
        }
        if let Some(token) = token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        for (name, value) in self.dialer.headers() {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
        }
        let request = request.body(Full::new(body));
        let client = self.client.clone();
        async move {
            let request = request.map_err(|e| Error::Config(e.to_string()))?;
            client.request(request).await.map_err(|e| {
                // The dialer's own error says more than hyper's wrapper.
                let mut source: Option<&dyn std::error::Error> = Some(&e);
                let mut detail = e.to_string();
                while let Some(s) = source {
                    detail = s.to_string();
                    source = s.source();
                }
                Error::transport("HTTP", detail)
            })
        }
    }
}

/// Reads a whole (small) response body.
pub(crate) async fn read_body(response: Response<Incoming>, limit: usize) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(response.into_body(), limit);
    limited
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| Error::transport("HTTP", format!("reading response body: {e}")))
}
