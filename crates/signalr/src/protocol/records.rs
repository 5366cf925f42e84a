//! Text framing: each message ends with the ASCII record separator `0x1E`.
//!
//! A transport frame may carry several records, and one record may be split across frames, so
//! bytes are buffered until a separator arrives — but never beyond the configured maximum, so a
//! peer cannot grow memory by leaving the separator out.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{Error, Result};

/// The record separator that ends every JSON message and the handshake.
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// The default maximum size of one incoming message, as in ASP.NET Core (32 KiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024;

/// Splits a byte stream into records.
///
/// ```
/// use uplink_signalr::protocol::RecordReader;
///
/// let mut reader = RecordReader::new(1024);
/// reader.extend(b"{\"type\":6}\x1e{\"ty");
/// assert_eq!(&reader.next_record().unwrap().unwrap()[..], b"{\"type\":6}");
/// assert!(reader.next_record().unwrap().is_none()); // the second record is incomplete
/// reader.extend(b"pe\":6}\x1e");
/// assert_eq!(&reader.next_record().unwrap().unwrap()[..], b"{\"type\":6}");
/// ```
#[derive(Debug)]
pub struct RecordReader {
    buffer: BytesMut,
    max_message_size: usize,
    /// Bytes already searched for a separator, so re-scans start where the last one stopped.
    scanned: usize,
}

impl RecordReader {
    /// A reader that refuses records longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            max_message_size,
            scanned: 0,
        }
    }

    /// Appends bytes received from the transport.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record without its separator, `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`Error::MessageTooLarge`] when a record (or the unterminated tail) exceeds the maximum.
    pub fn next_record(&mut self) -> Result<Option<Bytes>> {
        let unscanned = &self.buffer[self.scanned..];
        // A byte-at-a-time search was a twentieth of a relayed answer's cost; memchr is vectorised.
        match memchr::memchr(RECORD_SEPARATOR, unscanned) {
            Some(offset) => {
                let end = self.scanned + offset;
                self.scanned = 0;
                if end > self.max_message_size {
                    return Err(Error::MessageTooLarge {
                        limit: self.max_message_size,
                    });
                }
                let record = self.buffer.split_to(end).freeze();
                self.buffer.advance(1);
                Ok(Some(record))
            }
            None => {
                self.scanned = self.buffer.len();
                if self.buffer.len() > self.max_message_size {
                    return Err(Error::MessageTooLarge {
                        limit: self.max_message_size,
                    });
                }
                Ok(None)
            }
        }
    }

    /// The bytes after the records read so far: after the handshake, the start of the hub
    /// protocol's stream, whatever its framing.
    pub fn into_remaining(self) -> BytesMut {
        self.buffer
    }

    /// Whether bytes of an incomplete record are waiting.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// Appends `record` and its separator to `out`.
pub fn write_record(record: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(record);
    out.push(RECORD_SEPARATOR);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(reader: &mut RecordReader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r.to_vec());
        }
        out
    }

    #[test]
    fn several_records_in_one_frame() {
        let mut r = RecordReader::new(100);
        r.extend(b"a\x1ebb\x1e\x1eccc\x1e");
        assert_eq!(
            drain(&mut r),
            vec![b"a".to_vec(), b"bb".to_vec(), vec![], b"ccc".to_vec()]
        );
        assert!(!r.has_partial());
    }

    #[test]
    fn record_split_across_frames() {
        let mut r = RecordReader::new(100);
        r.extend(b"hel");
        assert!(drain(&mut r).is_empty());
        r.extend(b"lo");
        assert!(drain(&mut r).is_empty());
        assert!(r.has_partial());
        r.extend(b"\x1ewor");
        assert_eq!(drain(&mut r), vec![b"hello".to_vec()]);
        r.extend(b"ld\x1e");
        assert_eq!(drain(&mut r), vec![b"world".to_vec()]);
    }

    #[test]
    fn oversized_record_is_refused() {
        let mut r = RecordReader::new(4);
        r.extend(b"12345\x1e");
        assert!(matches!(
            r.next_record(),
            Err(Error::MessageTooLarge { limit: 4 })
        ));
    }

    #[test]
    fn missing_separator_cannot_grow_memory() {
        let mut r = RecordReader::new(8);
        r.extend(b"12345678");
        assert!(r.next_record().unwrap().is_none());
        r.extend(b"9");
        assert!(matches!(
            r.next_record(),
            Err(Error::MessageTooLarge { .. })
        ));
    }

    #[test]
    fn record_of_exactly_the_limit_is_accepted() {
        let mut r = RecordReader::new(4);
        r.extend(b"1234\x1e");
        assert_eq!(drain(&mut r), vec![b"1234".to_vec()]);
    }
}
