//! Batching queued messages into transport frames (WebSocket messages, POST bodies, polls):
//! fewer, larger writes under load, but never above a size the peer accepts.

use bytes::Bytes;
use tokio::sync::mpsc;

/// Frames are filled up to this size; one message larger than it travels alone.
pub(crate) const FRAME_LIMIT: usize = 64 * 1024;

/// Builds frames from a queue, keeping back the message that would overflow one.
#[derive(Debug, Default)]
pub(crate) struct FrameBuilder {
    carry: Option<Bytes>,
}

impl FrameBuilder {
    /// A message kept back from the previous frame, to start the next one.
    pub fn take_carry(&mut self) -> Option<Bytes> {
        self.carry.take()
    }

    /// `first` plus whatever is already queued, up to [`FRAME_LIMIT`].
    pub fn build(&mut self, first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Bytes {
        let mut frame: Option<Vec<u8>> = None;
        let mut len = first.len();
        while len < FRAME_LIMIT {
            let Ok(next) = queue.try_recv() else { break };
            if len + next.len() > FRAME_LIMIT {
                self.carry = Some(next);
                break;
            }
            let joined = frame.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(FRAME_LIMIT.min(len * 4));
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
}
