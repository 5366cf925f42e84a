//! The protocol loop of one client connection over one transport: pending calls, handlers for
//! server invocations (with client results), keep-alive pings and the server timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::handlers::Handlers;
use super::link::Link;
use crate::arguments::arguments_to_values;
use crate::error::{Error, Result};
use crate::negotiate::Transport;
use crate::protocol::{
    Arguments, CancelInvocation, Close, Completion, HandshakeRequest, HandshakeResponse,
    HubMessage, HubProtocol, Invocation, MessageDecoder, Outcome, RecordReader, ValueEncoding,
    messagepack,
};

/// Message type ids of the invocations a client sends.
const INVOCATION: u8 = 1;
const STREAM_INVOCATION: u8 = 4;

pub(crate) enum Pending {
    Single(oneshot::Sender<Outcome>),
    Stream(mpsc::Sender<Result<Value>>),
}

/// What a session's protocol loop waits for, in this order of priority.
enum SessionEvent {
    /// Bytes from the transport, its error, or its end (`None`).
    Received(Option<Result<Bytes>>),
    /// [`Session::stop`]: send `Close` and end.
    Stop,
    /// Time to check that the server still speaks.
    Tick,
    /// The keep-alive interval has passed since the last send was measured.
    PingDue,
}

/// One live connection; replaced on every reconnect.
pub(crate) struct Session {
    pub transport: Transport,
    pub connection_id: Option<String>,
    outgoing: mpsc::Sender<Bytes>,
    protocol: Arc<dyn HubProtocol>,
    pending: Mutex<HashMap<String, Pending>>,
    next_id: AtomicU64,
    /// When a message was last handed to the transport: a ping goes out when nothing else
    /// did for the keep-alive interval.
    last_sent: Mutex<tokio::time::Instant>,
    stop: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An invocation's result from its completion; the sender dropped means the link went first.
pub(crate) fn result_of(
    outcome: std::result::Result<Outcome, oneshot::error::RecvError>,
) -> Result<Value> {
    match outcome {
        Ok(Outcome::Result(v)) => Ok(v),
        Ok(Outcome::Void) => Ok(Value::Null),
        Ok(Outcome::Error(e)) => Err(Error::Invocation(e)),
        Err(_) => Err(Error::closed(
            "connection lost before the invocation completed",
        )),
    }
}

/// Sends the handshake over a fresh link and waits for the answer.
pub(crate) async fn handshake(
    link: &mut Link,
    protocol: &Arc<dyn HubProtocol>,
    max_message_size: usize,
) -> Result<Box<dyn MessageDecoder>> {
    let mut out = Vec::new();
    HandshakeRequest {
        protocol: protocol.name().to_string(),
        version: protocol.version(),
    }
    .write(&mut out);
    link.outgoing
        .send(Bytes::from(out))
        .await
        .map_err(|_| Error::closed("transport closed before the handshake"))?;
    let mut records = RecordReader::new(max_message_size);
    let response = loop {
        if let Some(record) = records.next_record()? {
            break HandshakeResponse::parse(&record)?;
        }
        match link.incoming.recv().await {
            Some(Ok(bytes)) => records.extend(&bytes),
            Some(Err(e)) => return Err(e),
            None => return Err(Error::closed("transport closed during the handshake")),
        }
    };
    if let Some(error) = response.error {
        return Err(Error::HandshakeRejected(error));
    }
    let mut decoder = protocol.decoder(max_message_size);
    decoder.extend(&records.into_remaining());
    Ok(decoder)
}

/// Timings of the session loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Liveness {
    pub keep_alive_interval: Duration,
    pub server_timeout: Duration,
}

impl Session {
    pub fn new(
        transport: Transport,
        connection_id: Option<String>,
        outgoing: mpsc::Sender<Bytes>,
        protocol: Arc<dyn HubProtocol>,
    ) -> Arc<Self> {
        Arc::new(Self {
            transport,
            connection_id,
            outgoing,
            protocol,
            pending: Mutex::default(),
            next_id: AtomicU64::new(0),
            last_sent: Mutex::new(tokio::time::Instant::now()),
            stop: watch::channel(false).0,
        })
    }

    /// The protocol this session speaks.
    pub fn protocol_name(&self) -> &'static str {
        self.protocol.name()
    }

    pub fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    pub async fn send_message(&self, message: &HubMessage) -> Result<()> {
        let mut out = Vec::with_capacity(128);
        self.protocol.encode(message, &mut out)?;
        self.send_encoded(Bytes::from(out)).await
    }

    /// Queues bytes already encoded in this session's protocol.
    async fn send_encoded(&self, encoded: Bytes) -> Result<()> {
        self.outgoing
            .send(encoded)
            .await
            .map_err(|_| Error::closed("transport closed"))?;
        *lock(&self.last_sent) = tokio::time::Instant::now();
        Ok(())
    }

    /// Encodes an invocation (`type_id` 1) or stream invocation (4) of `target`. In
    /// MessagePack the arguments are serialised straight into the message, so a byte string
    /// among them (an answer chunk) is copied once; in JSON they become values first.
    fn encode_invocation<A: Serialize>(
        &self,
        type_id: u8,
        invocation_id: Option<&str>,
        target: &str,
        arguments: A,
    ) -> Result<Bytes> {
        match self.protocol.value_encoding() {
            ValueEncoding::MessagePack => {
                messagepack::encode_invocation_with(type_id, invocation_id, target, arguments)
            }
            ValueEncoding::Json => {
                let arguments = Arguments::Values(arguments_to_values(arguments)?);
                let invocation =
                    Invocation::new(invocation_id.map(str::to_owned), target, arguments);
                let message = if type_id == STREAM_INVOCATION {
                    HubMessage::StreamInvocation(invocation)
                } else {
                    HubMessage::Invocation(invocation)
                };
                let mut out = Vec::with_capacity(128);
                self.protocol.encode(&message, &mut out)?;
                Ok(Bytes::from(out))
            }
        }
    }

    fn next_invocation_id(&self) -> String {
        self.next_id.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Calls `target` without an invocation id: no answer comes.
    pub async fn send(&self, target: &str, arguments: impl Serialize) -> Result<()> {
        let encoded = self.encode_invocation(INVOCATION, None, target, arguments)?;
        self.send_encoded(encoded).await
    }

    pub async fn invoke(&self, target: &str, arguments: impl Serialize) -> Result<Value> {
        result_of(self.start_invoke(target, arguments).await?.await)
    }

    /// Queues the invocation on the transport; what it returns completes with its outcome.
    pub async fn start_invoke(
        &self,
        target: &str,
        arguments: impl Serialize,
    ) -> Result<oneshot::Receiver<Outcome>> {
        let id = self.next_invocation_id();
        let encoded = self.encode_invocation(INVOCATION, Some(&id), target, arguments)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.clone(), Pending::Single(tx));
        if let Err(e) = self.send_encoded(encoded).await {
            lock(&self.pending).remove(&id);
            return Err(e);
        }
        Ok(rx)
    }

    pub async fn stream(
        self: &Arc<Self>,
        target: &str,
        arguments: impl Serialize,
    ) -> Result<(String, mpsc::Receiver<Result<Value>>)> {
        let id = self.next_invocation_id();
        let encoded = self.encode_invocation(STREAM_INVOCATION, Some(&id), target, arguments)?;
        let (tx, rx) = mpsc::channel(64);
        lock(&self.pending).insert(id.clone(), Pending::Stream(tx));
        if let Err(e) = self.send_encoded(encoded).await {
            lock(&self.pending).remove(&id);
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Tells the server the caller lost interest in a stream.
    pub async fn cancel(&self, invocation_id: &str) {
        if lock(&self.pending).remove(invocation_id).is_some() {
            let _ = self
                .send_message(&HubMessage::CancelInvocation(CancelInvocation {
                    headers: Default::default(),
                    invocation_id: invocation_id.to_string(),
                }))
                .await;
        }
    }

    /// Asks the loop to send `Close` and end.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Runs until the transport fails, the server closes, or [`Session::stop`]: handles the
    /// messages decoded so far, then waits for the next [`SessionEvent`] and handles it.
    pub async fn run(
        self: Arc<Self>,
        mut link: Link,
        mut decoder: Box<dyn MessageDecoder>,
        handlers: Arc<Handlers>,
        liveness: Liveness,
    ) -> Result<()> {
        let mut stop = self.stop.subscribe();
        let tick_every = (liveness.server_timeout / 4).max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(tick_every);
        let mut last_received = Instant::now();
        // One timer for the whole session, moved as sends happen: a new one per event would
        // register and remove a timer entry (under the timer driver's lock) for every frame.
        let ping = tokio::time::sleep_until(self.ping_due(liveness.keep_alive_interval));
        tokio::pin!(ping);
        let result = loop {
            if let Some(end) = self.dispatch_decoded(&mut decoder, &handlers).await {
                break end;
            }
            let due = self.ping_due(liveness.keep_alive_interval);
            if ping.deadline() != due {
                ping.as_mut().reset(due);
            }
            let event = self
                .next_event(&mut link, &mut stop, &mut tick, ping.as_mut())
                .await;
            match event {
                SessionEvent::Received(Some(Ok(bytes))) => {
                    last_received = Instant::now();
                    decoder.extend(&bytes);
                }
                SessionEvent::Received(Some(Err(e))) => break Err(e),
                SessionEvent::Received(None) => {
                    break Err(Error::closed("the server ended the transport"));
                }
                SessionEvent::Stop => {
                    let _ = self
                        .send_message(&HubMessage::Close(Close::default()))
                        .await;
                    break Ok(());
                }
                SessionEvent::Tick => {
                    if last_received.elapsed() > liveness.server_timeout {
                        break Err(Error::Timeout {
                            what: "server keep-alive",
                            after: liveness.server_timeout,
                        });
                    }
                }
                SessionEvent::PingDue => {
                    // A transport that takes nothing more is over (and the ping would only
                    // fall due again at once).
                    if let Err(error) = self.ping_if_idle(liveness.keep_alive_interval).await {
                        break Err(error);
                    }
                }
            }
        };
        self.finish(result)
    }

    /// When a ping falls due: measured from the last send, whatever it was (a ping included).
    fn ping_due(&self, keep_alive_interval: Duration) -> tokio::time::Instant {
        *lock(&self.last_sent) + keep_alive_interval
    }

    /// Waits for the next event, the transport's first.
    async fn next_event(
        &self,
        link: &mut Link,
        stop: &mut watch::Receiver<bool>,
        tick: &mut tokio::time::Interval,
        ping: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> SessionEvent {
        tokio::select! {
            biased;
            received = link.incoming.recv() => SessionEvent::Received(received),
            _ = crate::signal::raised(stop) => SessionEvent::Stop,
            _ = tick.tick() => SessionEvent::Tick,
            () = ping => SessionEvent::PingDue,
        }
    }

    /// Handles every whole message decoded so far; `Some` ends the session.
    async fn dispatch_decoded(
        self: &Arc<Self>,
        decoder: &mut Box<dyn MessageDecoder>,
        handlers: &Arc<Handlers>,
    ) -> Option<Result<()>> {
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if let Some(end) = self.dispatch(message, handlers).await {
                        return Some(end);
                    }
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Sends a ping when nothing was sent for `keep_alive_interval`.
    async fn ping_if_idle(&self, keep_alive_interval: Duration) -> Result<()> {
        if lock(&self.last_sent).elapsed() >= keep_alive_interval {
            self.send_message(&HubMessage::Ping).await?;
        }
        Ok(())
    }

    fn finish(&self, result: Result<()>) -> Result<()> {
        // Dropping the senders fails every waiting call with "connection lost".
        lock(&self.pending).clear();
        result
    }

    /// Handles one message; `Some` ends the session.
    async fn dispatch(
        self: &Arc<Self>,
        message: HubMessage,
        handlers: &Arc<Handlers>,
    ) -> Option<Result<()>> {
        match message {
            HubMessage::Completion(Completion {
                invocation_id,
                outcome,
                ..
            }) => match lock(&self.pending).remove(&invocation_id) {
                Some(Pending::Single(tx)) => {
                    let _ = tx.send(outcome);
                }
                Some(Pending::Stream(tx)) => {
                    if let Outcome::Error(e) = outcome {
                        let _ = tx.try_send(Err(Error::Invocation(e)));
                    }
                }
                None => {}
            },
            HubMessage::StreamItem(item) => {
                let sender = match lock(&self.pending).get(&item.invocation_id) {
                    Some(Pending::Stream(tx)) => Some(tx.clone()),
                    _ => None,
                };
                // Awaited so items keep their order and a slow reader slows the server down
                // (through the transport) instead of growing memory here.
                if let Some(tx) = sender
                    && tx.send(Ok(item.item)).await.is_err()
                {
                    self.cancel(&item.invocation_id).await;
                }
            }
            HubMessage::Invocation(invocation) => self.answer(invocation, handlers),
            HubMessage::StreamInvocation(invocation) => {
                if let Some(id) = invocation.invocation_id {
                    let session = self.clone();
                    tokio::spawn(async move {
                        let _ = session
                            .send_message(&HubMessage::Completion(Completion::new(
                                id,
                                Outcome::Error(
                                    "this client does not offer streaming methods".into(),
                                ),
                            )))
                            .await;
                    });
                }
            }
            HubMessage::Close(close) => {
                return Some(match close.error {
                    Some(error) => Err(Error::closed(format!(
                        "server closed the connection: {error}"
                    ))),
                    None => Err(Error::closed("server closed the connection")),
                });
            }
            HubMessage::CancelInvocation(_)
            | HubMessage::Ping
            | HubMessage::Ack { .. }
            | HubMessage::Sequence { .. } => {}
        }
        None
    }

    /// Runs a handler for a server invocation; answers with a Completion when an id was given.
    fn answer(self: &Arc<Self>, invocation: Invocation, handlers: &Arc<Handlers>) {
        let Invocation {
            invocation_id,
            target,
            arguments,
            ..
        } = invocation;
        let call = handlers.call(&target, arguments);
        let session = self.clone();
        tokio::spawn(async move {
            let outcome = match call {
                Some(call) => match call.await {
                    Ok(value) => Outcome::Result(value),
                    Err(e) => Outcome::Error(e.to_string()),
                },
                None => {
                    tracing::warn!(%target, "the server invoked a method this client does not handle");
                    Outcome::Error(format!("Client didn't provide a result for '{target}'."))
                }
            };
            if let Some(id) = invocation_id {
                let _ = session
                    .send_message(&HubMessage::Completion(Completion::new(id, outcome)))
                    .await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::link::AbortOnDrop;
    use crate::protocol::JsonProtocol;

    /// The client's own pings: one every keep-alive interval after the last send, a ping
    /// counting as a send (not one skipped every other interval).
    #[tokio::test(start_paused = true)]
    async fn pings_go_out_every_interval_after_the_last_send() {
        let (outgoing, mut wire) = mpsc::channel(16);
        let (_server, incoming) = mpsc::channel(16);
        let link = Link {
            transport: Transport::WebSockets,
            outgoing: outgoing.clone(),
            incoming: crate::client::link::Incoming::Queue(incoming),
            connect: None,
            _receivers: AbortOnDrop::default(),
        };
        let protocol: Arc<dyn HubProtocol> = Arc::new(JsonProtocol);
        let session = Session::new(Transport::WebSockets, None, outgoing, protocol.clone());
        let interval = Duration::from_secs(15);
        let started = tokio::time::Instant::now();
        let _run = tokio::spawn(session.clone().run(
            link,
            protocol.decoder(1024),
            Arc::new(Handlers::default()),
            Liveness {
                keep_alive_interval: interval,
                server_timeout: Duration::from_secs(3600),
            },
        ));
        let mut sent = Vec::new();
        for _ in 0..4 {
            let frame = wire.recv().await.expect("a ping");
            assert_eq!(&frame[..], b"{\"type\":6}\x1e");
            sent.push(started.elapsed());
        }
        let whole = |s: u64| Duration::from_secs(s);
        assert_eq!(
            sent.iter().map(|d| whole(d.as_secs())).collect::<Vec<_>>(),
            [whole(15), whole(30), whole(45), whole(60)],
            "{sent:?}"
        );
        // A message sent in between moves the next ping back a whole interval.
        tokio::time::sleep(Duration::from_secs(5)).await;
        session
            .send_message(&HubMessage::Invocation(Invocation::new(
                None,
                "Hello",
                Arguments::default(),
            )))
            .await
            .unwrap();
        let _hello = wire.recv().await.unwrap();
        let before = started.elapsed();
        let frame = wire.recv().await.unwrap();
        assert_eq!(&frame[..], b"{\"type\":6}\x1e");
        assert_eq!(whole((started.elapsed() - before).as_secs()), interval);
    }

    /// A transport that takes nothing more ends the session at the next ping, rather than
    /// leaving the loop to try the overdue ping again and again.
    #[tokio::test]
    async fn a_transport_that_takes_nothing_ends_the_session_at_the_next_ping() {
        let (outgoing, wire) = mpsc::channel(16);
        drop(wire);
        let (_server, incoming) = mpsc::channel(16);
        let link = Link {
            transport: Transport::LongPolling,
            outgoing: outgoing.clone(),
            incoming: crate::client::link::Incoming::Queue(incoming),
            connect: None,
            _receivers: AbortOnDrop::default(),
        };
        let protocol: Arc<dyn HubProtocol> = Arc::new(JsonProtocol);
        let session = Session::new(Transport::LongPolling, None, outgoing, protocol.clone());
        let run = session.run(
            link,
            protocol.decoder(1024),
            Arc::new(Handlers::default()),
            Liveness {
                keep_alive_interval: Duration::from_millis(50),
                server_timeout: Duration::from_secs(3600),
            },
        );
        let ended = tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("the session ended");
        assert_eq!(ended.unwrap_err().code(), "connection_closed");
    }
}
