//! A relayed answer on its way from the connector to the app.
//!
//! Chunks travel through a bounded channel: a `QueryChunk` is acknowledged once its chunk is in
//! the channel, so an app that reads slowly leaves the connector's chunks unacknowledged and the
//! connector waits at its window — that is the backpressure, and why neither side holds a whole
//! answer. The app end ([`Answer`]) cancels the query on the connector when dropped early or
//! when the connector stalls.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use super::session::Session;
use crate::relay::RelayError;

/// Chunks the hub holds per query beyond the connector's own window of unacknowledged ones.
pub const ANSWER_BUFFER: usize = 2;

/// What the link hands to the app end of a query.
#[derive(Debug)]
pub enum Item {
    /// The next bytes of the body, as the connector sent them.
    Chunk(Bytes),
    /// The body is complete.
    End,
    /// The answer failed (before or after its first chunk).
    Failed(RelayError),
}

/// The link's end of a running query.
#[derive(Debug)]
pub struct QuerySlot {
    /// Where its chunks go.
    pub sender: mpsc::Sender<Item>,
    /// The `seq` the next chunk must carry.
    pub next_seq: u64,
    /// Body bytes received so far.
    pub bytes: u64,
}

/// Sends `CancelQuery` when the app end goes away before the answer ended.
#[derive(Debug)]
pub struct Cancel {
    session: Weak<Session>,
    query_id: String,
    armed: bool,
}

impl Cancel {
    /// Armed for `query_id` on `session`.
    pub fn new(session: Weak<Session>, query_id: String) -> Self {
        Self {
            session,
            query_id,
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
