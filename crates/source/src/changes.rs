//! Per-value change streams: every new value of a source's tags as it arrives, for the edge
//! historian, which must not lose the values a snapshot stream would fold together (several MQTT
//! messages on one topic between two reads). A [`ChangeFeed`] is what a kind publishes into;
//! each reader has its own bounded queue, and a reader that falls behind loses the newest values
//! beyond [`ChangeFeed::capacity`] and is told how many ([`Changes::dropped`]), so memory stays
//! bounded whatever the rate.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::BoxStream;
use futures::task::AtomicWaker;
use uplink_model::TagValue;

/// One tag's new value.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The tag's name.
    pub tag: Arc<str>,
    /// Its value, as the source read it.
    pub value: TagValue,
}

/// What a change stream yields: the values that arrived since the last item, oldest first,
/// and how many were dropped since because the reader was behind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// The values, in the order they arrived.
    pub values: Vec<Change>,
    /// Values lost since the previous item because the reader's queue was full.
    pub dropped: u64,
}

/// Every value of every tag of a source as it arrives (see [`crate::DataSource::changes`]).
pub type ChangeStream = BoxStream<'static, Changes>;

/// The values one reader has not taken yet.
#[derive(Debug, Default)]
struct Queue {
    state: Mutex<QueueState>,
    waker: AtomicWaker,
}

#[derive(Debug, Default)]
struct QueueState {
    values: VecDeque<Change>,
    dropped: u64,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a source publishes its new values; each [`subscribe`](Self::subscribe)r gets them all,
/// up to [`capacity`](Self::capacity) waiting. Dropping the feed ends its streams.
#[derive(Debug)]
pub struct ChangeFeed {
    queues: Mutex<Vec<Arc<Queue>>>,
    capacity: usize,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new(Self::CAPACITY)
    }
}

impl ChangeFeed {
    /// The values a reader may have waiting by default.
    pub const CAPACITY: usize = 65_536;

    /// A feed whose readers each hold at most `capacity` waiting values.
    pub fn new(capacity: usize) -> Self {
        Self {
            queues: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    /// The most values a reader may have waiting.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn queues(&self) -> MutexGuard<'_, Vec<Arc<Queue>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anyone reads (a source can skip building values nobody takes).
    pub fn has_readers(&self) -> bool {
        let mut queues = self.queues();
        queues.retain(|q| Arc::strong_count(q) > 1);
        !queues.is_empty()
    }

    /// A new reader: every value published from now on.
    pub fn subscribe(&self) -> ChangeStream {
        let queue = Arc::new(Queue::default());
        self.queues().push(queue.clone());
        Box::pin(Reader { queue })
    }

    /// Publishes one value.
    pub fn publish(&self, tag: &Arc<str>, value: &TagValue) {
        self.publish_all(std::iter::once((tag, value)));
    }

    /// Publishes values, in order.
    pub fn publish_all<'a>(&self, values: impl IntoIterator<Item = (&'a Arc<str>, &'a TagValue)>) {
        let mut queues = self.queues();
        queues.retain(|q| Arc::strong_count(q) > 1);
        if queues.is_empty() {
            return;
        }
        let mut any = false;
        for (tag, value) in values {
            any = true;
            for queue in queues.iter() {
                let mut state = queue.lock();
                if state.values.len() < self.capacity {
                    state.values.push_back(Change {
                        tag: tag.clone(),
                        value: value.clone(),
                    });
                } else {
                    state.dropped += 1;
                }
            }
        }
        if any {
            queues.iter().for_each(|q| q.waker.wake());
        }
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        for queue in self.queues().drain(..) {
            queue.lock().closed = true;
            queue.waker.wake();
        }
    }
}

struct Reader {
    queue: Arc<Queue>,
}

impl Stream for Reader {
    type Item = Changes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Changes>> {
        let mut state = self.queue.lock();
        if !state.values.is_empty() || state.dropped > 0 {
            let values = state.values.drain(..).collect();
            let dropped = std::mem::take(&mut state.dropped);
            return Poll::Ready(Some(Changes { values, dropped }));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        // Registered under the lock: a value published after the check above wakes this task.
        self.queue.waker.register(cx.waker());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn every_value_reaches_every_reader_and_a_slow_one_is_told_what_it_lost() {
        let feed = ChangeFeed::new(3);
        let mut a = feed.subscribe();
        let tag: Arc<str> = Arc::from("t");
        for i in 0..5 {
            feed.publish(&tag, &TagValue::number(Utc::now(), f64::from(i)));
        }
        let got = a.next().await.unwrap();
        let values: Vec<f64> = got.values.iter().map(|c| c.value.value.unwrap()).collect();
        assert_eq!(values, [0.0, 1.0, 2.0]);
        assert_eq!(got.dropped, 2);
        let mut b = feed.subscribe();
        feed.publish(&tag, &TagValue::text(Utc::now(), "x"));
        assert_eq!(a.next().await.unwrap().values.len(), 1);
        assert_eq!(
            b.next().await.unwrap().values[0].value.text.as_deref(),
            Some("x")
        );
        drop(a);
        assert!(feed.has_readers());
        drop(b);
        assert!(!feed.has_readers());
        let mut c = feed.subscribe();
        drop(feed);
        assert_eq!(c.next().await, None);
    }
}
