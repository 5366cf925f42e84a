use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::head_limit::HeadLimitAnswer;

/// What one HTTPS server lets a client hold, and for how long. Every field has a default
/// ([`ServeLimits::default`]) sized for a hub with thousands of connectors and apps; the
/// hub's operator can change each one (`uplink hub serve --help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once (default 12 000: above the hub's default cap on connector
    /// links, so apps still get in when every connector place is taken). A connection beyond
    /// it is closed as soon as it is accepted, before its TLS handshake; the connections being
    /// served are not touched. Keep the process's file-descriptor limit above it.
    pub max_connections: usize,
    /// A client that has not finished its TLS handshake by then is dropped (default 10 s).
    pub handshake_timeout: Duration,
    /// A connection waiting this long for a request's headers is closed (default 30 s): an
    /// idle keep-alive connection holds a TLS session and HTTP buffers (tens of KiB) for
    /// nothing, and a client that trickles its headers cannot pin them either. The clock
    /// runs from the first byte the request needs, not per byte.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) in bytes (default 16 KiB); a larger
    /// one is answered 431, with a `{code, message}` JSON body whose code is
    /// `request_head_too_large`, and the connection closed.
    pub max_header_bytes: usize,
    /// Most header fields in one request (default 100); more are answered 431.
    pub max_headers: usize,
    /// A connection whose writes make no progress for this long is closed (default 60 s):
    /// a client that never reads its response cannot pin the response, its producer or the
    /// connection. Any byte accepted by the peer restarts the clock.
    pub send_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_connections: 12_000,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            send_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` over HTTPS on `listener` until `shutdown` completes, with the default
/// [`ServeLimits`]. Each connection gets its own task, so a slow handshake never delays
/// others; HTTP upgrades (WebSockets) work, and handlers can extract the peer's
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    serve_with_limits(listener, config, app, shutdown, ServeLimits::default()).await
}

/// [`serve`] with the given limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    limits: ServeLimits,
) -> io::Result<()> {
    let limits = Arc::new(ServeLimitsSlot::new(limits));
    serve_with_live_limits(listener, config, app, shutdown, limits).await
}

/// The limits a server applies, replaceable while it serves (an operator's reload): each new
/// connection is served under the limits in force when it was accepted; connections already
/// open keep theirs. A lower connection cap closes no connection: new ones are refused until
/// enough have ended.
#[derive(Debug)]
pub struct ServeLimitsSlot(watch::Sender<ServeLimits>);

impl ServeLimitsSlot {
    /// A slot holding `limits`.
    pub fn new(limits: ServeLimits) -> Self {
        Self(watch::Sender::new(limits))
    }

    /// The limits in force.
    pub fn current(&self) -> ServeLimits {
        self.0.borrow().clone()
    }

    /// Puts `limits` in force for the connections accepted from now on.
    pub fn replace(&self, limits: ServeLimits) {
        self.0.send_replace(limits);
    }
}

/// [`serve`] with limits an operator can replace while it serves.
pub async fn serve_with_live_limits(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    live: Arc<ServeLimitsSlot>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let open = Arc::new(AtomicUsize::new(0));
    let mut last_refusal_logged: Option<Instant> = None;
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
        let limits = live.current();
        let Some(permit) = OpenConnection::admit(&open, limits.max_connections) else {
            // Dropping the stream closes it at once; the connections in service keep theirs.
            drop(stream);
            if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                last_refusal_logged = Some(Instant::now());
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: closing new connections until some end"
                );
            }
            continue;
        };
        // Small messages (relayed answers, SignalR frames) must not wait for Nagle's algorithm
        // to meet the peer's delayed ACK: that pairing alone costs 40 ms a round trip.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        // HTTP/1.1 only, as the TLS configuration announces over ALPN: a client cannot slip
        // past these limits by opening HTTP/2 with prior knowledge.
        let mut http = hyper::server::conn::http1::Builder::new();
        // hyper applies its header read timeout only with a timer; it runs while a connection
        // waits for a request, so it also ends idle keep-alive connections.
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_header_size(limits.max_header_bytes)
            .max_headers(limits.max_headers);
        let (handshake_timeout, send_timeout) = (limits.handshake_timeout, limits.send_timeout);
        let (max_header_bytes, max_headers) = (limits.max_header_bytes, limits.max_headers);
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
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
            // hyper answers an oversized head itself, with an empty 431; the wrapper gives
            // that answer the `{code, message}` JSON body of every other API error.
            let io = TokioIo::new(HeadLimitAnswer::new(
                SendTimeout::new(tls, send_timeout),
                max_header_bytes,
                max_headers,
            ));
            if let Err(error) = http.serve_connection(io, service).with_upgrades().await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// One connection counted against the cap, until it is dropped.
struct OpenConnection(Arc<AtomicUsize>);

impl OpenConnection {
    /// Counts one more connection, unless `max` are open already.
    fn admit(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Self(open.clone()))
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream whose writes fail with `TimedOut` once they have been pending, without any
/// progress, for `timeout`. Upgraded connections (WebSockets) keep the wrapper.
struct SendTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> SendTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Called when a write is pending: starts the clock if it is not running, and fails the
    /// write once it has run out. The sleep registers the task's waker, so the failure comes
    /// even if the peer never reads again.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer has not read for the send timeout",
        )))
    }

    fn progress<T>(
        &mut self,
        outcome: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match outcome {
            Poll::Pending => self.stall(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(outcome, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(outcome, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(outcome, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(outcome, cx)
    }
}
