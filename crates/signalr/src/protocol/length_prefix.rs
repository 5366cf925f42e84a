//! Binary framing: each message is preceded by its length as a VarInt (7 bits a byte, least
//! significant first, at most 5 bytes), as the MessagePack hub protocol frames its messages.
//!
//! Like [`super::RecordReader`], the reader buffers bytes until a message is complete, but it
//! learns a message's length from its prefix, so an oversized message is refused before its
//! body is buffered.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{Error, Result};

/// The longest prefix: 5 bytes hold the largest length the protocol allows (2^31 - 1).
const MAX_PREFIX: usize = 5;
/// The largest length a prefix may announce.
const MAX_LENGTH: u64 = i32::MAX as u64;

/// Splits a byte stream into length-prefixed messages.
///
/// ```
/// use uplink_signalr::protocol::LengthPrefixedReader;
///
/// let mut reader = LengthPrefixedReader::new(1024);
/// reader.extend(&[0x02, 0x91, 0x06, 0x02]); // a Ping, then half of a second one
/// assert_eq!(&reader.next_message().unwrap().unwrap()[..], [0x91, 0x06]);
/// assert!(reader.next_message().unwrap().is_none());
/// reader.extend(&[0x91, 0x06]);
/// assert_eq!(&reader.next_message().unwrap().unwrap()[..], [0x91, 0x06]);
/// ```
#[derive(Debug)]
pub struct LengthPrefixedReader {
    /// A received frame not yet copied anywhere: whole messages are sliced out of it.
    frame: Option<Bytes>,
    /// How long the kept frame was when it arrived.
    frame_len: usize,
    /// Bytes of a message split across frames.
    buffer: BytesMut,
    /// How many bytes the buffer the last message was sliced from holds.
    held_by_last: usize,
    max_message_size: usize,
}

impl LengthPrefixedReader {
    /// A reader that refuses messages longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            frame: None,
            frame_len: 0,
            buffer: BytesMut::new(),
            held_by_last: 0,
            max_message_size,
        }
    }

    /// Appends bytes received from the transport.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.spill();
        self.buffer.extend_from_slice(bytes);
    }

    /// Appends a frame received from the transport, keeping it as it is: the messages it
    /// holds whole are handed out as slices of it, without a copy.
    pub fn extend_owned(&mut self, bytes: Bytes) {
        if self.frame.is_none() && self.buffer.is_empty() {
            self.frame_len = bytes.len();
            self.frame = Some(bytes);
        } else {
            self.extend(&bytes);
        }
    }

    /// Moves a kept frame into the buffer, behind nothing: when a message continues past it.
    fn spill(&mut self) {
        if let Some(frame) = self.frame.take() {
            self.buffer.extend_from_slice(&frame);
        }
    }

    /// The next complete message without its prefix, `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when the prefix announces more than the maximum, and
    /// [`Error::MalformedMessage`] for a prefix longer than 5 bytes or beyond 2^31 - 1.
    pub fn next_message(&mut self) -> Result<Option<Bytes>> {
        if let Some(frame) = &mut self.frame {
            if let Some((length, prefix)) = read_prefix(frame)? {
                if length > self.max_message_size as u64 {
                    return Err(Error::MessageTooLarge {
                        limit: self.max_message_size,
                    });
                }
                let end = prefix + length as usize;
                if frame.len() >= end {
                    let message = frame.slice(prefix..end);
                    frame.advance(end);
                    self.held_by_last = self.frame_len;
                    if frame.is_empty() {
                        self.frame = None;
                    }
                    return Ok(Some(message));
                }
            }
            // The rest of the frame is the start of a message: buffer it for the next frames.
            self.spill();
        }
        let Some((length, prefix)) = read_prefix(&self.buffer)? else {
            return Ok(None);
        };
        if length > self.max_message_size as u64 {
            return Err(Error::MessageTooLarge {
                limit: self.max_message_size,
            });
        }
        let length = length as usize;
        if self.buffer.len() - prefix < length {
            // No room is reserved from the prefix alone: a peer could claim the maximum in a
            // few bytes on every connection.
            return Ok(None);
        }
        self.buffer.advance(prefix);
        self.held_by_last = self.buffer.capacity();
        Ok(Some(self.buffer.split_to(length).freeze()))
    }

    /// How many bytes the last message returned keeps alive while it lives: the frame it was
    /// sliced from, or the buffer it was assembled in. What holds on to a part of a message
    /// for long (an answer chunk on its way onwards) should copy the part instead when it is a
    /// small share of this.
    pub fn held_by_last(&self) -> usize {
        self.held_by_last
    }

    /// Whether bytes of an incomplete message are waiting.
    pub fn has_partial(&self) -> bool {
        self.frame.is_some() || !self.buffer.is_empty()
    }
}

/// The announced length and the prefix's size, `None` while the prefix is incomplete.
fn read_prefix(bytes: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut length: u64 = 0;
    for (i, &byte) in bytes.iter().take(MAX_PREFIX).enumerate() {
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if length > MAX_LENGTH {
                return Err(Error::malformed(format!(
                    "message length prefix announces {length} bytes, beyond the protocol's 2^31 - 1"
                )));
            }
            return Ok(Some((length, i + 1)));
        }
    }
    if bytes.len() >= MAX_PREFIX {
        return Err(Error::malformed(
            "message length prefix is longer than 5 bytes",
        ));
    }
    Ok(None)
}

/// Appends the VarInt prefix for a message of `length` bytes to `out`.
pub fn write_length_prefix(mut length: usize, out: &mut Vec<u8>) {
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(length: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_length_prefix(length, &mut out);
        out
    }

    #[test]
    fn prefixes_match_the_specification_examples() {
        assert_eq!(prefix(0x35), [0x35]);
        assert_eq!(prefix(0x1480), [0x80, 0x29]);
        assert_eq!(prefix(0x7fff_ffff), [0xff, 0xff, 0xff, 0xff, 0x07]);
        assert_eq!(read_prefix(&[0x80, 0x29]).unwrap(), Some((0x1480, 2)));
        assert_eq!(read_prefix(&[0x80]).unwrap(), None);
        for length in [0, 1, 127, 128, 16_383, 16_384, 65_536, 1 << 30] {
            assert_eq!(
                read_prefix(&prefix(length)).unwrap(),
                Some((length as u64, prefix(length).len()))
            );
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        let err = read_prefix(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).unwrap_err();
        assert_eq!(err.code(), "malformed_message");
        let err = read_prefix(&[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
        assert!(err.to_string().contains("2^31"), "{err}");
    }

    #[test]
    fn messages_split_and_joined_across_frames() {
        let mut stream = Vec::new();
        for body in [&b"a"[..], &[], &vec![7u8; 300]] {
            write_length_prefix(body.len(), &mut stream);
            stream.extend_from_slice(body);
        }
        for cut in 0..stream.len() {
            let mut reader = LengthPrefixedReader::new(1024);
            let mut got = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                reader.extend(piece);
                while let Some(message) = reader.next_message().unwrap() {
                    got.push(message.len());
                }
            }
            assert_eq!(got, [1, 0, 300], "cut at {cut}");
            assert!(!reader.has_partial());
        }
    }

    #[test]
    fn whole_messages_are_sliced_out_of_owned_frames_and_split_ones_joined() {
        let mut stream = Vec::new();
        for body in [&b"abc"[..], &[], &vec![7u8; 300], b"z"] {
            write_length_prefix(body.len(), &mut stream);
            stream.extend_from_slice(body);
        }
        let stream = Bytes::from(stream);
        for cut in 0..stream.len() {
            let mut reader = LengthPrefixedReader::new(1024);
            let mut got = Vec::new();
            for piece in [stream.slice(..cut), stream.slice(cut..)] {
                reader.extend_owned(piece);
                while let Some(message) = reader.next_message().unwrap() {
                    got.push(message.len());
                }
            }
            assert_eq!(got, [3, 0, 300, 1], "cut at {cut}");
            assert!(!reader.has_partial());
        }
        let mut reader = LengthPrefixedReader::new(1024);
        reader.extend_owned(stream.clone());
        let first = reader.next_message().unwrap().unwrap();
        assert_eq!(first.as_ptr(), stream[1..].as_ptr(), "a slice, not a copy");
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_prefix_alone() {
        let mut reader = LengthPrefixedReader::new(100);
        reader.extend(&prefix(101));
        assert!(matches!(
            reader.next_message(),
            Err(Error::MessageTooLarge { limit: 100 })
        ));
        let mut reader = LengthPrefixedReader::new(100);
        reader.extend(&prefix(100));
        reader.extend(&[0; 100]);
        assert_eq!(reader.next_message().unwrap().unwrap().len(), 100);
    }
}
