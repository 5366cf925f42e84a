//! A relayed answer on its way from the connector to the app.
//!
//! Chunks travel through a bounded channel: a `QueryChunk` is acknowledged once its chunk is in
//! the channel, so an app that reads slowly leaves the connector's chunks unacknowledged and the
//! connector waits at its window — that is the backpressure, and why neither side holds a whole
//! answer. Chunks of one window may arrive in any order (a client invoking concurrently does
//! not promise its order); each waits for its [`Turn`], so the app gets them by `seq`. The app
//! end ([`Answer`]) cancels the query on the connector when dropped early or when the
//! connector stalls.

use std::collections::BTreeSet;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use super::session::LinkSession;
use crate::relay::RelayError;

/// Chunks the hub holds per query beyond the connector's own window of unacknowledged ones.
pub const ANSWER_BUFFER: usize = 2;

/// What the link hands to the app end of a query.
#[derive(Debug)]
pub enum Item {
    /// What the connector said about its answer before the body (`QueryInfo`); ignored once
    /// the body began.
    Info(uplink_link::QueryInfo),
    /// The next bytes of the body, as the connector sent them.
    Chunk(Bytes),
    /// The body is complete.
    End,
    /// The answer failed (before or after its first chunk).
    Failed(RelayError),
}

/// Which chunk of a query may go next: the `seq` whose turn it is, or over.
#[derive(Debug, Clone)]
pub struct Turn(Arc<watch::Sender<u64>>);

const OVER: u64 = u64::MAX;

impl Turn {
    fn new() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }

    /// The `seq` whose turn it is (`u64::MAX` once over).
    pub fn current(&self) -> u64 {
        *self.0.borrow()
    }

    /// Waits for chunk `seq`'s turn; false when the query ended first.
    pub async fn wait(&self, seq: u64) -> bool {
        let mut turn = self.0.subscribe();
        matches!(turn.wait_for(|t| *t == seq || *t == OVER).await, Ok(t) if *t == seq)
    }

    /// Waits until every chunk before `end` went; false when the query ended first.
    pub async fn wait_all(&self, end: u64) -> bool {
        let mut turn = self.0.subscribe();
        matches!(turn.wait_for(|t| *t >= end).await, Ok(t) if *t != OVER)
    }

    /// Chunk `seq` went (or failed): the next one's turn.
    pub fn advance(&self, seq: u64) {
        self.0.send_if_modified(|t| {
            let mine = *t == seq;
            if mine {
                *t = seq + 1;
            }
            mine
        });
    }

    /// The query is over: chunks still waiting give up.
    pub fn finish(&self) {
        self.0.send_replace(OVER);
    }
}

/// The link's end of a running query.
#[derive(Debug)]
pub struct QuerySlot {
    /// Where its chunks go.
    pub sender: mpsc::Sender<Item>,
    /// Whose turn it is.
    pub turn: Turn,
    /// Chunks admitted but not yet forwarded (those at or after the turn).
    received: BTreeSet<u64>,
    /// One past the highest `seq` admitted: `QueryEnd` waits until all before it went.
    pub end: u64,
    /// Body bytes admitted so far.
    bytes: u64,
}

impl QuerySlot {
    /// A query whose chunks go to `sender`.
    pub fn new(sender: mpsc::Sender<Item>) -> Self {
        Self {
            sender,
            turn: Turn::new(),
            received: BTreeSet::new(),
            end: 0,
            bytes: 0,
        }
    }

    /// Admits chunk `seq` of `len` bytes: within the window, not seen before, not too big,
    /// within the operator's `limit`. The error is what the app is told.
    pub fn admit(&mut self, seq: u64, len: usize, limit: Option<u64>) -> Result<(), RelayError> {
        let turn = self.turn.current();
        self.received.retain(|s| *s >= turn);
        let broken = |message: String| RelayError::Connector {
            code: uplink_link::failure::SOURCE_ERROR.into(),
            message,
        };
        if seq < turn || self.received.contains(&seq) {
            return Err(broken(format!(
                "the connector sent chunk {seq} of the answer twice"
            )));
        }
        if seq - turn >= uplink_link::CHUNK_WINDOW as u64 {
            return Err(broken(format!(
                "the connector sent chunk {seq} of the answer while chunk {turn} was still missing, beyond its window of {} unacknowledged chunks",
                uplink_link::CHUNK_WINDOW
            )));
        }
        if len > uplink_link::MAX_CHUNK_BYTES {
            return Err(broken(format!(
                "the connector sent a chunk of {len} bytes; at most {} are allowed",
                uplink_link::MAX_CHUNK_BYTES
            )));
        }
        self.received.insert(seq);
        self.end = self.end.max(seq + 1);
        self.bytes += len as u64;
        match limit {
            Some(limit) if self.bytes > limit => Err(RelayError::TooLarge { limit }),
            _ => Ok(()),
        }
    }
}

/// Sends `CancelQuery` when the app end goes away before the answer ended.
#[derive(Debug)]
pub struct Cancel {
    session: Weak<LinkSession>,
    query_id: String,
    turn: Turn,
    armed: bool,
}

impl Cancel {
    /// Armed for `query_id` on `session`, whose chunks take `turn`s.
    pub fn new(session: Weak<LinkSession>, query_id: String, turn: Turn) -> Self {
        Self {
            session,
            query_id,
            turn,
            armed: true,
        }
    }

    /// Cancels the query on the connector (once).
    pub fn fire(&mut self, reason: &str) {
        if std::mem::take(&mut self.armed)
            && let Some(session) = self.session.upgrade()
        {
            session.cancel_query(&self.query_id, reason);
        }
    }

    /// The answer ended on its own: nothing to cancel.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.fire("the app went away");
        // Whatever still waits for this query (a chunk after a gap, an early end) gives up.
        self.turn.finish();
    }
}

/// The app end: yields the body's chunks in order; a stall between chunks longer than
/// `idle_timeout` (measured only while the app is waiting) ends it with a timeout.
pub struct Answer {
    first: Option<Bytes>,
    items: mpsc::Receiver<Item>,
    cancel: Cancel,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    waiting: bool,
    done: bool,
}

impl Answer {
    /// The rest of an answer whose first chunk already arrived.
    pub fn new(
        first: Bytes,
        items: mpsc::Receiver<Item>,
        cancel: Cancel,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            first: Some(first),
            items,
            cancel,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            waiting: false,
            done: false,
        }
    }

    fn finish(
        &mut self,
        item: Option<Result<Bytes, RelayError>>,
    ) -> Poll<Option<Result<Bytes, RelayError>>> {
        self.done = true;
        self.cancel.disarm();
        Poll::Ready(item)
    }
}

impl Stream for Answer {
    type Item = Result<Bytes, RelayError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        match this.items.poll_recv(cx) {
            // Headers went with the first chunk: a late `QueryInfo` changes nothing.
            Poll::Ready(Some(Item::Info(_))) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Some(Item::Chunk(bytes))) => {
                this.waiting = false;
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Item::End)) => this.finish(None),
            Poll::Ready(Some(Item::Failed(error))) => this.finish(Some(Err(error))),
            // Every sender is gone without an end: the link dropped or was replaced.
            Poll::Ready(None) => this.finish(Some(Err(RelayError::LinkLost))),
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.idle_timeout;
                    this.idle.as_mut().reset(deadline);
                }
                match this.idle.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.done = true;
                        this.cancel
                            .fire("the connector did not send the next chunk in time");
                        Poll::Ready(Some(Err(RelayError::Timeout {
                            seconds: this.idle_timeout.as_secs(),
                        })))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_go_in_seq_order_whatever_order_they_arrive_in() {
        let (sender, mut items) = mpsc::channel(8);
        let mut slot = QuerySlot::new(sender);
        let mut tasks = Vec::new();
        for seq in [1u64, 0, 3, 2] {
            slot.admit(seq, 1, None).unwrap();
            let (sender, turn) = (slot.sender.clone(), slot.turn.clone());
            tasks.push(tokio::spawn(async move {
                assert!(turn.wait(seq).await);
                sender
                    .send(Item::Chunk(Bytes::from(seq.to_string())))
                    .await
                    .unwrap();
                turn.advance(seq);
            }));
        }
        assert_eq!(slot.end, 4);
        assert!(slot.turn.wait_all(slot.end).await);
        let mut order = String::new();
        for _ in 0..4 {
            let Some(Item::Chunk(bytes)) = items.recv().await else {
                panic!("a chunk")
            };
            order.push_str(std::str::from_utf8(&bytes).unwrap());
        }
        assert_eq!(order, "0123");
        for task in tasks {
            task.await.unwrap();
        }
    }

    #[test]
    fn admission_keeps_the_window_the_size_limit_and_the_answer_limit() {
        let mut slot = QuerySlot::new(mpsc::channel(1).0);
        slot.admit(0, 10, Some(25)).unwrap();
        let twice = slot.admit(0, 1, None).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
        let beyond = slot.admit(4, 1, None).unwrap_err();
        assert!(beyond.to_string().contains("window of 4"), "{beyond}");
        let big = slot
            .admit(1, uplink_link::MAX_CHUNK_BYTES + 1, None)
            .unwrap_err();
        assert!(big.to_string().contains("at most"), "{big}");
        slot.admit(3, 10, Some(25)).unwrap();
        assert_eq!(
            slot.admit(2, 10, Some(25)),
            Err(RelayError::TooLarge { limit: 25 })
        );
    }

    #[tokio::test]
    async fn a_finished_query_releases_whatever_waits_for_it() {
        let slot = QuerySlot::new(mpsc::channel(1).0);
        let turn = slot.turn.clone();
        let waiting = tokio::spawn(async move { turn.wait(2).await });
        slot.turn.finish();
        assert!(!waiting.await.unwrap(), "a chunk after a gap gives up");
        assert!(!slot.turn.wait_all(1).await);
    }
}
