//! Batching queued messages into transport frames (WebSocket messages, POST bodies, polls):
//! fewer, larger writes under load, but never above a size the peer accepts.

use bytes::Bytes;
use tokio::sync::mpsc;

/// WebSocket messages are filled up to this size; one message larger than it travels alone.
pub(crate) const FRAME_LIMIT: usize = 64 * 1024;

/// POST bodies (Server-Sent Events and long polling send by POST, in order; several in flight
/// where the server applies numbered POSTs in order) are filled up to this size: half of what
/// servers accept in one batch (2 MiB, ours and the official ones alike), and enough for a
/// connector's whole window of four 64 KiB answer chunks in one request rather than a round
/// trip each.
pub(crate) const POST_FRAME_LIMIT: usize = 1024 * 1024;

/// The query parameter that numbers a client's POSTs on one connection, from 0, so a server can
/// apply POSTs that arrive together in the order they were sent.
pub(crate) const POST_SEQ_PARAM: &str = "seq";

/// A server that applies numbered POSTs in order answers each with this header: how many it
/// takes in flight at once. Without it a client sends one POST at a time.
pub(crate) const ORDERED_POSTS_HEADER: &str = "x-signalr-ordered-posts";

/// Builds frames from a queue, keeping back the message that would overflow one.
#[derive(Debug)]
pub(crate) struct FrameBuilder {
    carry: Option<Bytes>,
    limit: usize,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::with_limit(FRAME_LIMIT)
    }
}

impl FrameBuilder {
    /// Frames of at most `limit` bytes (one message larger than it travels alone).
    pub fn with_limit(limit: usize) -> Self {
        Self { carry: None, limit }
    }

    /// A message kept back from the previous frame, to start the next one.
    pub fn take_carry(&mut self) -> Option<Bytes> {
        self.carry.take()
    }

    /// `first` plus whatever is already queued, up to the limit.
    pub fn build(&mut self, first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Bytes {
        let mut frame: Option<Vec<u8>> = None;
        let mut len = first.len();
        while len < self.limit {
            let Ok(next) = queue.try_recv() else { break };
            if len + next.len() > self.limit {
                self.carry = Some(next);
                break;
            }
            let joined = frame.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(self.limit.min(len * 4));
                v.extend_from_slice(&first);
                v
            });
            joined.extend_from_slice(&next);
            len = joined.len();
        }
        match frame {
            Some(joined) => Bytes::from(joined),
            None => first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_fill_up_to_the_limit_and_carry_the_rest() {
        let (tx, mut rx) = mpsc::channel(128);
        let big = Bytes::from(vec![b'a'; FRAME_LIMIT / 2 + 1]);
        for _ in 0..3 {
            tx.send(big.clone()).await.unwrap();
        }
        let mut builder = FrameBuilder::default();
        let first = rx.recv().await.unwrap();
        assert_eq!(
            builder.build(first, &mut rx).len(),
            big.len(),
            "two would overflow"
        );
        let carried = builder.take_carry().expect("second message kept back");
        assert_eq!(builder.build(carried, &mut rx).len(), big.len());
        let carried = builder.take_carry().expect("third message kept back");
        assert_eq!(builder.build(carried, &mut rx).len(), big.len());
        assert!(builder.take_carry().is_none());

        let small = Bytes::from(vec![b'c'; 1000]);
        for _ in 0..100 {
            tx.send(small.clone()).await.unwrap();
        }
        let first = rx.recv().await.unwrap();
        let frame = builder.build(first, &mut rx);
        assert!(
            frame.len() <= FRAME_LIMIT && frame.len() > FRAME_LIMIT - 1000,
            "{}",
            frame.len()
        );

        let (tx, mut rx) = mpsc::channel(4);
        let mut builder = FrameBuilder::default();
        let huge = Bytes::from(vec![b'b'; FRAME_LIMIT * 2]);
        tx.send(Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(
            builder.build(huge, &mut rx).len(),
            FRAME_LIMIT * 2,
            "sent alone"
        );
        assert!(builder.take_carry().is_none());
        assert_eq!(
            rx.try_recv().unwrap(),
            Bytes::from_static(b"x"),
            "left for the next frame"
        );
    }

    #[tokio::test]
    async fn a_post_carries_a_whole_window_of_answer_chunks() {
        let (tx, mut rx) = mpsc::channel(8);
        let chunk = Bytes::from(vec![b'c'; 60 * 1024]);
        for _ in 0..8 {
            tx.send(chunk.clone()).await.unwrap();
        }
        // A WebSocket message holds one such chunk; a POST the connector's whole window of
        // four, and more when more is queued.
        let mut websocket = FrameBuilder::default();
        let first = rx.recv().await.unwrap();
        assert_eq!(websocket.build(first, &mut rx).len(), chunk.len());
        let mut post = FrameBuilder::with_limit(POST_FRAME_LIMIT);
        let first = websocket.take_carry().expect("kept back");
        assert_eq!(post.build(first, &mut rx).len(), 7 * chunk.len());
        assert!(post.take_carry().is_none());
    }
}
