//! One client connection on the server: its queues, its state, and the handle the hub uses to
//! call the client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

use super::auth::Identity;
use super::hub::StreamValue;
use crate::arguments::arguments_for;
use crate::error::{Error, Result};
use crate::negotiate::Transport;
use crate::protocol::{
    Close, HubMessage, HubProtocol, Invocation, Outcome, StreamItem, TransferFormat, ValueEncoding,
};
use crate::signal::OnceFlag;

/// Shared state of one connection; transports and the session task hold it.
pub(crate) struct Connection {
    /// Shared with every handle, as is the identity: handles are made per call and per hub
    /// method, and a deep copy each would cost every idle connection again.
    pub id: Arc<str>,
    pub token: String,
    pub identity: Option<Arc<Identity>>,
    pub outbound_tx: mpsc::Sender<Bytes>,
    pub outbound_rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Bytes>>>,
    /// Frame batching state of whichever transport holds `outbound_rx`.
    pub frames: Mutex<crate::frames::FrameBuilder>,
    pub inbound_tx: mpsc::Sender<Bytes>,
    pub inbound_rx: Mutex<Option<mpsc::Receiver<Bytes>>>,
    pub transport: Mutex<Option<Transport>>,
    /// Raised once the connection is over; transports drain what is queued and stop.
    closed: OnceFlag,
    close_reason: Mutex<Option<String>>,
    pub post_in_progress: AtomicBool,
    /// The next numbered POST to apply; numbered POSTs that arrive early wait for it.
    pub post_turn: tokio::sync::watch::Sender<u64>,
    /// The numbers of the POSTs admitted and not yet applied (at most [`ORDERED_POSTS`]).
    pub posts_waiting: Mutex<std::collections::BTreeSet<u64>>,
    pub long_poll: Mutex<LongPollState>,
    pub poll_superseded: Notify,
    pending_results: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    next_invocation: AtomicU64,
    /// The keep-alive interval: a Ping is written when nothing else was for this long.
    keep_alive: Duration,
    /// When a frame was last handed to the transport to write; `None` until the handshake is
    /// answered (no pings before it).
    last_write: Mutex<Option<tokio::time::Instant>>,
    /// Wakes a transport writer waiting for the keep-alive clock to start.
    keep_alive_armed: Notify,
    pub protocol: Mutex<Option<Arc<dyn HubProtocol>>>,
    pub client_result_timeout: Duration,
}

/// Numbered POSTs a connection takes in flight at once (the client's `seq` query parameter):
/// each is read whole (at most the batch limit) and waits for those before it, so a client may
/// have this many batches on their way instead of one.
pub(crate) const ORDERED_POSTS: u64 = 4;

/// Long polling bookkeeping: whether a poll is open, and when the last one ended.
#[derive(Debug)]
pub(crate) struct LongPollState {
    pub generation: u64,
    pub active: bool,
    pub last_ended: Instant,
}

impl Connection {
    pub fn new(
        id: String,
        token: String,
        identity: Option<Identity>,
        send_queue: usize,
        client_result_timeout: Duration,
        keep_alive: Duration,
    ) -> Arc<Self> {
        let (outbound_tx, outbound_rx) = mpsc::channel(send_queue.max(1));
        let (inbound_tx, inbound_rx) = mpsc::channel(64);
        Arc::new(Self {
            id: Arc::from(id),
            token,
            identity: identity.map(Arc::new),
            outbound_tx,
            outbound_rx: Arc::new(tokio::sync::Mutex::new(outbound_rx)),
            frames: Mutex::default(),
            inbound_tx,
            inbound_rx: Mutex::new(Some(inbound_rx)),
            transport: Mutex::new(None),
            closed: OnceFlag::default(),
            close_reason: Mutex::new(None),
            post_in_progress: AtomicBool::new(false),
            post_turn: tokio::sync::watch::channel(0).0,
            posts_waiting: Mutex::default(),
            long_poll: Mutex::new(LongPollState {
                generation: 0,
                active: false,
                last_ended: Instant::now(),
            }),
            poll_superseded: Notify::new(),
            pending_results: Mutex::new(HashMap::new()),
            next_invocation: AtomicU64::new(0),
            keep_alive,
            last_write: Mutex::new(None),
            keep_alive_armed: Notify::new(),
            protocol: Mutex::new(None),
            client_result_timeout,
        })
    }

    pub fn transport(&self) -> Option<Transport> {
        *lock(&self.transport)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_raised()
    }

    /// Completes once the connection is closed.
    pub async fn closed(&self) {
        self.closed.wait().await;
    }

    pub fn close_reason(&self) -> Option<String> {
        lock(&self.close_reason).clone()
    }

    /// Ends the connection: queues a `Close` (best effort) and tells every transport to stop.
    pub fn close(&self, error: Option<String>) {
        if self.is_closed() {
            return;
        }
        if let Some(reason) = &error {
            tracing::debug!(connection_id = %self.id, reason = %reason, "closing connection");
        }
        if lock(&self.protocol).is_some() {
            let _ = self.encode_and_try_send(&HubMessage::Close(Close {
                error: error.clone(),
                allow_reconnect: false,
            }));
        }
        *lock(&self.close_reason) = error;
        self.closed.raise();
        self.poll_superseded.notify_waiters();
        // Fail every client-result call still waiting.
        lock(&self.pending_results).clear();
    }

    fn protocol(&self) -> Result<Arc<dyn HubProtocol>> {
        lock(&self.protocol)
            .clone()
            .ok_or_else(|| Error::closed("handshake not completed"))
    }

    /// Whether the connection speaks a binary protocol (so its WebSocket frames are binary).
    pub fn is_binary(&self) -> bool {
        lock(&self.protocol)
            .as_ref()
            .is_some_and(|p| p.transfer_format() == TransferFormat::Binary)
    }

    fn encode(&self, message: &HubMessage) -> Result<Bytes> {
        let protocol = self.protocol()?;
        let mut out = Vec::with_capacity(128);
        protocol.encode(message, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn encode_and_try_send(&self, message: &HubMessage) -> Result<()> {
        let bytes = self.encode(message)?;
        self.outbound_tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::SlowConsumer,
            mpsc::error::TrySendError::Closed(_) => Error::closed("send queue closed"),
        })?;
        Ok(())
    }

    /// Queues a message without waiting; a full queue means the client is too slow, and it is
    /// disconnected rather than allowed to grow the server's memory.
    pub fn send_now(&self, message: &HubMessage) -> Result<()> {
        if self.is_closed() {
            return Err(Error::closed("connection closed"));
        }
        match self.encode_and_try_send(message) {
            Err(Error::SlowConsumer) => {
                tracing::warn!(connection_id = %self.id, "send queue full: disconnecting slow client");
                self.close(Some(
                    "Connection closed: the client did not read fast enough".into(),
                ));
                Err(Error::SlowConsumer)
            }
            other => other,
        }
    }

    /// Queues one item of stream `invocation_id`, waiting up to `patience` for room (stream
    /// items pace themselves to the client); a client that stays that slow is disconnected.
    /// An item encoded ahead in this connection's encoding is copied in as it is.
    pub async fn send_stream_item(
        &self,
        invocation_id: &str,
        item: StreamValue,
        patience: Duration,
    ) -> Result<()> {
        if self.is_closed() {
            return Err(Error::closed("connection closed"));
        }
        let protocol = self.protocol()?;
        let item = match item {
            StreamValue::Encoded(encoded) if encoded.encoding() == protocol.value_encoding() => {
                let mut out = Vec::with_capacity(encoded.bytes().len() + 64);
                protocol.encode_stream_item(invocation_id, encoded.bytes(), &mut out)?;
                return self.send_paced(Bytes::from(out), patience).await;
            }
            StreamValue::Encoded(encoded) => encoded.to_value()?,
            StreamValue::Value(value) => value,
        };
        let bytes = self.encode(&HubMessage::StreamItem(StreamItem {
            headers: Default::default(),
            invocation_id: invocation_id.to_owned(),
            item,
        }))?;
        self.send_paced(bytes, patience).await
    }

    /// Queues an encoded message, waiting up to `patience` for room; a client that stays
    /// that slow is disconnected.
    async fn send_paced(&self, bytes: Bytes, patience: Duration) -> Result<()> {
        match self.outbound_tx.send_timeout(bytes, patience).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.close(Some(
                    "Connection closed: the client did not read fast enough".into(),
                ));
                Err(Error::SlowConsumer)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                Err(Error::closed("send queue closed"))
            }
        }
    }

    /// Starts the keep-alive clock; called once the handshake's answer is queued, so no ping
    /// ever goes before it.
    pub fn arm_keep_alive(&self) {
        lock(&self.last_write).get_or_insert_with(tokio::time::Instant::now);
        // A stored permit: a writer that has not started waiting yet still sees it.
        self.keep_alive_armed.notify_one();
    }

    /// When a ping is due: the keep-alive interval after the last write.
    fn ping_due(&self) -> Option<tokio::time::Instant> {
        lock(&self.last_write).map(|at| at + self.keep_alive)
    }

    /// Records a write, restarting the keep-alive clock (once armed).
    fn wrote(&self) {
        if let Some(at) = lock(&self.last_write).as_mut() {
            *at = tokio::time::Instant::now();
        }
    }

    /// The next frame to send: a message kept back last time, else the first queued one,
    /// batched with what else is waiting; or a Ping when nothing was written for the keep-alive
    /// interval. `None` once closed and drained.
    ///
    /// Every transport writes only what this returns, so the keep-alive is measured from the
    /// last write whatever the transport, and whatever the client sends: a long poll waiting
    /// here is answered with the Ping when it falls due.
    pub async fn next_frame(&self, outbound: &mut mpsc::Receiver<Bytes>) -> Option<Bytes> {
        let carried = lock(&self.frames).take_carry();
        let first = match carried {
            Some(first) => first,
            None => loop {
                let due = self.ping_due();
                let ping_time = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => self.keep_alive_armed.notified().await,
                    }
                };
                tokio::select! {
                    biased;
                    next = outbound.recv() => match next {
                        Some(first) => break first,
                        None => return None,
                    },
                    _ = self.closed() => match outbound.try_recv() {
                        Ok(first) => break first,
                        Err(_) => return None,
                    },
                    _ = ping_time => {
                        if due.is_none() {
                            continue; // the clock just started
                        }
                        match self.encode(&HubMessage::Ping) {
                            Ok(ping) => {
                                self.wrote();
                                return Some(ping);
                            }
                            // Unreachable once armed; never spin on it.
                            Err(_) => *lock(&self.last_write) = None,
                        }
                    }
                }
            },
        };
        let frame = lock(&self.frames).build(first, outbound);
        self.wrote();
        Some(frame)
    }

    pub fn complete_client_result(&self, invocation_id: &str, outcome: Outcome) -> bool {
        match lock(&self.pending_results).remove(invocation_id) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short critical sections leaves consistent data.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A handle on one connection: send it invocations, ask it for results, close it.
///
/// Handles are cheap to clone and do not keep a closed connection alive.
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) id: Arc<str>,
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) inner: Weak<Connection>,
}

impl std::fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("id", &self.id)
            .field("subject", &self.identity.as_ref().map(|i| &i.subject))
            .finish()
    }
}

impl ConnectionHandle {
    pub(crate) fn new(conn: &Arc<Connection>) -> Self {
        Self {
            id: conn.id.clone(),
            identity: conn.identity.clone(),
            inner: Arc::downgrade(conn),
        }
    }

    /// The public connection id (not the secret connection token).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who authenticated this connection, when an authentication hook is configured.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_deref()
    }

    /// The transport in use, once one is attached.
    pub fn transport(&self) -> Option<Transport> {
        self.inner.upgrade().and_then(|c| c.transport())
    }

    /// The hub protocol the client chose in its handshake (`json`, `messagepack`).
    pub fn protocol(&self) -> Option<&'static str> {
        let conn = self.inner.upgrade()?;
        lock(&conn.protocol).as_ref().map(|p| p.name())
    }

    /// How the connection's protocol encodes values, once its handshake is done: what a
    /// stream of [`super::EncodedItem`]s encodes its items in.
    pub fn value_encoding(&self) -> Option<ValueEncoding> {
        let conn = self.inner.upgrade()?;
        lock(&conn.protocol).as_ref().map(|p| p.value_encoding())
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.inner.upgrade().is_some_and(|c| !c.is_closed())
    }

    fn connection(&self) -> Result<Arc<Connection>> {
        self.inner
            .upgrade()
            .filter(|c| !c.is_closed())
            .ok_or_else(|| Error::closed("connection closed"))
    }

    /// Calls `target` on the client without waiting for an answer.
    ///
    /// # Errors
    /// [`Error::ConnectionClosed`], or [`Error::SlowConsumer`] if the client's send queue is full
    /// (the client is then disconnected).
    pub fn send<A: Serialize>(&self, target: &str, arguments: A) -> Result<()> {
        let conn = self.connection()?;
        let arguments = arguments_for(conn.protocol()?.value_encoding(), arguments)?;
        conn.send_now(&HubMessage::Invocation(Invocation::new(
            None, target, arguments,
        )))
    }

    /// Calls `target` on the client and waits for its result (a "client result").
    ///
    /// Gives up after the server's client-result timeout; dropping the future abandons the call.
    ///
    /// # Errors
    /// [`Error::Invocation`] with the client's error, [`Error::Timeout`],
    /// [`Error::ConnectionClosed`], or [`Error::Conversion`] if the result has the wrong type.
    pub async fn invoke<A: Serialize, R: DeserializeOwned>(
        &self,
        target: &str,
        arguments: A,
    ) -> Result<R> {
        let conn = self.connection()?;
        let arguments = arguments_for(conn.protocol()?.value_encoding(), arguments)?;
        let id = format!("s{}", conn.next_invocation.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending_results).insert(id.clone(), tx);
        let forget = PendingGuard {
            conn: Arc::downgrade(&conn),
            id: id.clone(),
        };
        conn.send_now(&HubMessage::Invocation(Invocation::new(
            Some(id),
            target,
            arguments,
        )))?;
        let timeout = conn.client_result_timeout;
        drop(conn);
        let outcome = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => {
                return Err(Error::closed(
                    "connection closed before the client answered",
                ));
            }
            Err(_) => {
                return Err(Error::Timeout {
                    what: "client result",
                    after: timeout,
                });
            }
        };
        drop(forget);
        match outcome {
            Outcome::Result(v) => {
                serde_json::from_value(v).map_err(|e| Error::Conversion(e.to_string()))
            }
            Outcome::Void => {
                serde_json::from_value(Value::Null).map_err(|e| Error::Conversion(e.to_string()))
            }
            Outcome::Error(e) => Err(Error::Invocation(e)),
        }
    }

    /// Closes the connection, telling the client why (`None` for a normal close).
    pub fn close(&self, error: Option<String>) {
        if let Some(conn) = self.inner.upgrade() {
            conn.close(error);
        }
    }
}

/// Removes an abandoned client-result call so a late answer is ignored, not leaked.
struct PendingGuard {
    conn: Weak<Connection>,
    id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.upgrade() {
            lock(&conn.pending_results).remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_full_send_queue_disconnects_the_slow_client() {
        let conn = Connection::new(
            "id".into(),
            "tok".into(),
            None,
            2,
            Duration::from_secs(1),
            Duration::from_secs(15),
        );
        *lock(&conn.protocol) = Some(Arc::new(crate::protocol::JsonProtocol));
        let handle = ConnectionHandle::new(&conn);
        handle.send("A", ()).unwrap();
        handle.send("A", ()).unwrap();
        let err = handle.send("A", ()).unwrap_err();
        assert_eq!(err.code(), "slow_consumer");
        assert!(conn.is_closed());
        assert!(!handle.is_connected());
    }

    #[tokio::test]
    async fn client_results_time_out_and_resolve() {
        let conn = Connection::new(
            "id".into(),
            "tok".into(),
            None,
            8,
            Duration::from_millis(50),
            Duration::from_secs(15),
        );
        *lock(&conn.protocol) = Some(Arc::new(crate::protocol::JsonProtocol));
        let handle = ConnectionHandle::new(&conn);
        let err = handle.invoke::<_, i64>("Ask", ()).await.unwrap_err();
        assert_eq!(err.code(), "timeout");
        assert!(
            lock(&conn.pending_results).is_empty(),
            "abandoned call forgotten"
        );

        let h2 = handle.clone();
        let call = tokio::spawn(async move { h2.invoke::<_, i64>("Ask", ()).await });
        // Wait until the invocation is queued, then answer it.
        let mut rx = conn.outbound_rx.lock().await;
        let _ = rx.recv().await.unwrap();
        let _ = rx.recv().await.unwrap();
        let id = lock(&conn.pending_results).keys().next().cloned().unwrap();
        assert!(conn.complete_client_result(&id, Outcome::Result(json!(7))));
        assert_eq!(call.await.unwrap().unwrap(), 7);
    }
}
