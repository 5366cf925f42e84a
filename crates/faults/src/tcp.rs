//! The TCP fault proxy: every accepted connection is paired with one to the upstream and its
//! bytes are pumped both ways through the faults in force.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::FaultError;

/// How a connection is closed on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// An orderly close: each peer reads end-of-stream.
    Fin,
    /// An abortive close (`SO_LINGER` 0): each peer gets "connection reset".
    Rst,
}

/// The faults applied to traffic; changed through [`Faults`].
#[derive(Debug, Clone, Default)]
struct Config {
    stalled: bool,
    latency: Duration,
    loss: f64,
    loss_stall: Duration,
    cut_after: Option<u64>,
    refuse: bool,
}

/// What open connections are told to do.
#[derive(Debug, Clone, Copy)]
enum Action {
    Drop(Close),
    Blackhole,
}

struct Shared {
    config: watch::Sender<Config>,
    actions: broadcast::Sender<Action>,
    open: AtomicUsize,
    accepted: AtomicU64,
}

/// A TCP proxy on 127.0.0.1 in front of one upstream address; stops when dropped, closing
/// every connection it carries.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    faults: Faults,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding connections made to [`addr`](Self::addr) to `upstream`, with no fault.
    ///
    /// # Errors
    /// [`FaultError::Io`] when it cannot listen.
    pub async fn start(upstream: SocketAddr) -> Result<Self, FaultError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: watch::channel(Config::default()).0,
            actions: broadcast::channel(16).0,
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        Ok(Self {
            addr,
            faults: Faults { shared },
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The switches of this proxy's faults.
    pub fn faults(&self) -> Faults {
        self.faults.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Switches a [`FaultProxy`]'s faults at run time; clone it freely.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("config", &*self.shared.config.borrow())
            .field("open", &self.open_connections())
            .finish()
    }
}

impl Faults {
    fn change(&self, edit: impl FnOnce(&mut Config)) {
        self.shared.config.send_modify(edit);
    }

    /// Closes every open connection now, on both sides, with `close`. New connections are
    /// accepted as before.
    pub fn drop_connections(&self, close: Close) {
        let _ = self.shared.actions.send(Action::Drop(close));
    }

    /// Makes every open connection half-open for good: nothing more is forwarded either way and
    /// neither side is closed, as when a NAT or firewall silently forgets a flow. New
    /// connections work.
    pub fn stall_connections(&self) {
        let _ = self.shared.actions.send(Action::Blackhole);
    }

    /// Stops (`true`) or resumes forwarding on every connection, new ones included; sockets
    /// stay open meanwhile.
    pub fn set_stalled(&self, stalled: bool) {
        self.change(|c| c.stalled = stalled);
    }

    /// Delays every chunk by `latency` (order is kept).
    pub fn set_latency(&self, latency: Duration) {
        self.change(|c| c.latency = latency);
    }

    /// Treats each chunk as lost with `probability`: it and everything behind it wait `stall`
    /// longer, as a TCP retransmission would make them.
    pub fn set_loss(&self, probability: f64, stall: Duration) {
        self.change(|c| {
            c.loss = probability.clamp(0.0, 1.0);
            c.loss_stall = stall;
        });
    }

    /// Connections opened from now on are reset after carrying `bytes` (both directions
    /// together), possibly in the middle of a message; `None` lifts the limit.
    pub fn set_cut_after(&self, bytes: Option<u64>) {
        self.change(|c| c.cut_after = bytes);
    }

    /// New connections are reset as soon as they are accepted (`true`) or forwarded again.
    pub fn set_refuse(&self, refuse: bool) {
        self.change(|c| c.refuse = refuse);
    }

    /// Lifts every switchable fault (stall, latency, loss, cut, refusal). Connections already
    /// black-holed stay so.
    pub fn clear(&self) {
        self.change(|c| *c = Config::default());
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since the start (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    // Owned here so that stopping the proxy aborts every connection task with it.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.accepted.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(connection(stream, upstream, shared.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "fault proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Closes `stream` with RST instead of FIN when it is dropped.
fn reset_on_drop(stream: &TcpStream) {
    if let Err(error) = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)) {
        tracing::debug!(%error, "fault proxy: cannot set SO_LINGER 0");
    }
}

/// Counts an open connection for as long as it lives.
struct OpenGuard<'a>(&'a AtomicUsize);

impl<'a> OpenGuard<'a> {
    fn new(open: &'a AtomicUsize) -> Self {
        open.fetch_add(1, Ordering::SeqCst);
        Self(open)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a pump stopped early.
#[derive(Debug)]
enum Broken {
    /// The byte budget ran out.
    Cut,
    /// A peer reset or the socket failed.
    Failed,
}

async fn connection(mut down: TcpStream, upstream: SocketAddr, shared: Arc<Shared>) {
    if shared.config.borrow().refuse {
        reset_on_drop(&down);
        return;
    }
    let mut actions = shared.actions.subscribe();
    let mut up = match TcpStream::connect(upstream).await {
        Ok(up) => up,
        Err(error) => {
            tracing::debug!(%error, "fault proxy: upstream unreachable");
            reset_on_drop(&down);
            return;
        }
    };
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let _open = OpenGuard::new(&shared.open);
    let budget = AtomicU64::new(shared.config.borrow().cut_after.unwrap_or(u64::MAX));
    let (frozen, frozen_rx) = watch::channel(false);
    let gate = Gate {
        config: shared.config.subscribe(),
        frozen: frozen_rx,
    };
    let close = {
        let (down_read, down_write) = down.split();
        let (up_read, up_write) = up.split();
        let pumps = async {
            tokio::try_join!(
                pump(down_read, up_write, gate.clone(), &budget),
                pump(up_read, down_write, gate.clone(), &budget),
            )
        };
        tokio::pin!(pumps);
        loop {
            tokio::select! {
                ended = &mut pumps => break match ended {
                    Ok(_) => None,
                    Err(Broken::Cut | Broken::Failed) => Some(Close::Rst),
                },
                action = actions.recv() => match action {
                    Ok(Action::Drop(close)) => break Some(close),
                    Ok(Action::Blackhole) => { frozen.send_replace(true); }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break Some(Close::Rst),
                },
            }
        }
    };
    match close {
        None => {}
        Some(Close::Fin) => {
            let _ = down.shutdown().await;
            let _ = up.shutdown().await;
        }
        Some(Close::Rst) => {
            reset_on_drop(&down);
            reset_on_drop(&up);
        }
    }
}

/// Whether traffic may flow: not while the proxy is stalled or the connection black-holed.
#[derive(Clone)]
struct Gate {
    config: watch::Receiver<Config>,
    frozen: watch::Receiver<bool>,
}

impl Gate {
    async fn open(&mut self) {
        loop {
            if !self.config.borrow_and_update().stalled && !*self.frozen.borrow_and_update() {
                return;
            }
            tokio::select! {
                changed = self.config.changed() => if changed.is_err() { std::future::pending::<()>().await },
                changed = self.frozen.changed() => if changed.is_err() { std::future::pending::<()>().await },
            }
        }
    }

    /// When a chunk read now may be written.
    fn due(&self) -> Instant {
        let config = self.config.borrow();
        let mut due = Instant::now() + config.latency;
        if config.loss > 0.0 && rand::random::<f64>() < config.loss {
            due += config.loss_stall;
        }
        due
    }
}

/// Copies `from` to `to` through the gate, in order; an end-of-stream is passed on as FIN.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    gate: Gate,
    budget: &AtomicU64,
) -> Result<(), Broken> {
    let (chunks, mut queued) = mpsc::channel::<(Instant, Bytes)>(32);
    let mut read_gate = gate.clone();
    let read = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            read_gate.open().await;
            let n = from.read(&mut buffer).await.map_err(|_| Broken::Failed)?;
            if n == 0 {
                return Ok(());
            }
            let chunk = Bytes::copy_from_slice(&buffer[..n]);
            if chunks.send((read_gate.due(), chunk)).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut write_gate = gate;
    let write = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            write_gate.open().await;
            let len = chunk.len() as u64;
            let left = budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    Some(left.saturating_sub(len))
                })
                .unwrap_or(0);
            if left < len {
                let partial = usize::try_from(left).unwrap_or(0);
                let _ = to.write_all(&chunk[..partial]).await;
                let _ = to.flush().await;
                return Err(Broken::Cut);
            }
            to.write_all(&chunk).await.map_err(|_| Broken::Failed)?;
        }
        let _ = to.shutdown().await;
        Ok(())
    };
    tokio::try_join!(read, write).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server; returns its address.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut back = vec![0u8; message.len()];
        stream.read_exact(&mut back).await?;
        Ok(back)
    }

    const BOUND: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn forwards_and_drops_with_fin_or_rst() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        for (close, expect_reset) in [(Close::Fin, false), (Close::Rst, true)] {
            let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
            assert_eq!(round_trip(&mut client, b"hello").await.unwrap(), b"hello");
            faults.drop_connections(close);
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(BOUND, client.read(&mut byte))
                .await
                .expect("the drop is seen");
            match read {
                Ok(0) => assert!(!expect_reset, "{close:?} ended with FIN"),
                Err(e) => assert!(
                    expect_reset && e.kind() == std::io::ErrorKind::ConnectionReset,
                    "{close:?}: {e}"
                ),
                Ok(n) => panic!("{close:?}: {n} unexpected bytes"),
            }
        }
        assert_eq!(faults.accepted(), 2);
    }

    #[tokio::test]
    async fn a_stalled_connection_stays_open_and_silent_until_resumed() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"a").await.unwrap(), b"a");
        faults.set_stalled(true);
        client.write_all(b"b").await.unwrap();
        let mut byte = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(300), client.read(&mut byte))
                .await
                .is_err(),
            "nothing comes back, and nothing closes"
        );
        faults.set_stalled(false);
        tokio::time::timeout(BOUND, client.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&byte, b"b");
    }

    #[tokio::test]
    async fn a_black_holed_connection_is_half_open_while_new_ones_work() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut old, b"a").await.unwrap(), b"a");
        faults.stall_connections();
        old.write_all(b"b").await.unwrap();
        let mut byte = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(300), old.read(&mut byte))
                .await
                .is_err()
        );
        let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut new, b"c").await.unwrap(), b"c");
        assert_eq!(faults.open_connections(), 2);
    }

    #[tokio::test]
    async fn cuts_after_the_byte_budget_mid_message() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        faults.set_cut_after(Some(10));
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        // 6 bytes up and 4 of their echo down make the budget; the rest never arrives.
        client.write_all(b"abcdef").await.unwrap();
        let mut back = Vec::new();
        let read = tokio::time::timeout(BOUND, client.read_to_end(&mut back))
            .await
            .expect("the cut closes the connection");
        assert!(read.is_err() || back.len() < 6, "{read:?} {back:?}");
        assert!(b"abcdef".starts_with(&back));
    }

    #[tokio::test]
    async fn refuses_new_connections_then_serves_again() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        faults.set_refuse(true);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(BOUND, refused.read(&mut byte))
            .await
            .unwrap();
        assert!(
            matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        faults.set_refuse(false);
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"ok").await.unwrap(), b"ok");
    }

    #[tokio::test]
    async fn latency_and_loss_delay_but_keep_every_byte_in_order() {
        let proxy = FaultProxy::start(echo().await).await.unwrap();
        let faults = proxy.faults();
        faults.set_latency(Duration::from_millis(20));
        faults.set_loss(0.5, Duration::from_millis(50));
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let started = Instant::now();
        let message: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let back = tokio::time::timeout(BOUND, round_trip(&mut client, &message))
            .await
            .unwrap()
            .unwrap();
        assert!(back == message, "every byte, in order");
        assert!(
            started.elapsed() >= Duration::from_millis(40),
            "latency applies both ways"
        );
    }
}
