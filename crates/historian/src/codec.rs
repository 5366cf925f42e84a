//! The block encoding: a tag's samples packed so slowly changing values take a few bytes each.
//!
//! Each sample is one header byte (the status and the shape of the value's change), the time as a
//! zigzag varint of the change in the time step (0 for a steady sample rate: one byte), and the
//! bytes of the value's XOR with the previous value that are not zero (none when the value did not
//! change; the trailing zero bytes of an integer-valued change are left out too).
//!
//! A value with a text (a text tag's value, or a digital state's name beside its number) is the
//! byte [`TEXT`] (a header never takes it), the sample as above, then the text's length as a
//! varint and its UTF-8 bytes; a text-only value's number is NaN. Numeric values cost nothing more.

use uplink_model::{Sample, Status};

/// The byte that starts a value with a text (headers stop at 254).
pub const TEXT: u8 = 255;

/// The longest text kept, in bytes; a longer one is cut at a character boundary.
pub const MAX_TEXT: usize = 65_536;

/// Appends samples to an encoded block.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
    count: u32,
    first_us: i64,
    last_us: i64,
    last_delta: i64,
    last_bits: u64,
}

impl Encoder {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample with a text (see the module's notes); times must increase.
    pub fn push_text(&mut self, sample: &Sample, text: Option<&str>) {
        let Some(text) = text else {
            return self.push(sample);
        };
        self.bytes.push(TEXT);
        self.push(sample);
        let mut end = text.len().min(MAX_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        put_varint(&mut self.bytes, end as u64);
        self.bytes.extend_from_slice(&text.as_bytes()[..end]);
    }

    /// Adds a sample; times must increase.
    pub fn push(&mut self, sample: &Sample) {
        if self.count == 0 {
            self.first_us = sample.time_us;
            self.last_us = sample.time_us;
        }
        let delta = sample.time_us - self.last_us;
        let bits = sample.value.to_bits();
        let xor = bits ^ self.last_bits;
        let (trailing, length) = if xor == 0 {
            (0u8, 0u8)
        } else {
            let trailing = (xor.trailing_zeros() / 8) as u8;
            let leading = (xor.leading_zeros() / 8) as u8;
            (trailing, 8 - trailing - leading)
        };
        let change = if length == 0 {
            0
        } else {
            trailing * 9 + length
        };
        let status = match sample.status {
            Status::Bad => 0u8,
            Status::Uncertain => 1,
            Status::Good => 2,
        };
        self.bytes.push(status * 85 + change);
        put_varint(&mut self.bytes, zigzag(delta.wrapping_sub(self.last_delta)));
        let shifted = xor >> (u32::from(trailing) * 8);
        self.bytes
            .extend_from_slice(&shifted.to_le_bytes()[..usize::from(length)]);
        self.last_delta = delta;
        self.last_us = sample.time_us;
        self.last_bits = bits;
        self.count += 1;
    }

    /// How many samples it holds.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The first sample's time (meaningless when empty).
    pub fn first_us(&self) -> i64 {
        self.first_us
    }

    /// The last sample's time (meaningless when empty).
    pub fn last_us(&self) -> i64 {
        self.last_us
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Empties the block, keeping its buffer.
    pub fn clear(&mut self) {
        self.bytes.clear();
        *self = Self {
            bytes: std::mem::take(&mut self.bytes),
            ..Self::default()
        };
    }
}

/// Encodes samples into a fresh block.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut encoder = Encoder::new();
    for sample in samples {
        encoder.push(sample);
    }
    encoder.bytes
}

/// A block that does not decode: the file was changed by something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored block of values is damaged")]
pub struct Damaged;

/// Decodes a block that starts at `first_us`, appending to `out`.
///
/// # Errors
/// [`Damaged`] when the bytes are not a block.
pub fn decode(first_us: i64, bytes: &[u8], out: &mut Vec<Sample>) -> Result<(), Damaged> {
    decode_with(first_us, bytes, |sample, _| out.push(sample))
}

/// Decodes a block that starts at `first_us`, giving each sample with its text, if any.
///
/// # Errors
/// [`Damaged`] when the bytes are not a block.
pub fn decode_with(
    first_us: i64,
    bytes: &[u8],
    mut each: impl FnMut(Sample, Option<&str>),
) -> Result<(), Damaged> {
    let (mut at, mut time, mut delta, mut bits) = (0usize, first_us, 0i64, 0u64);
    while at < bytes.len() {
        let mut header = bytes[at];
        at += 1;
        let has_text = header == TEXT;
        if has_text {
            header = *bytes.get(at).ok_or(Damaged)?;
            at += 1;
        }
        let status = match header / 85 {
            0 => Status::Bad,
            1 => Status::Uncertain,
            2 => Status::Good,
            _ => return Err(Damaged),
        };
        let change = header % 85;
        let (trailing, length) = if change == 0 {
            (0, 0)
        } else {
            (change / 9, change % 9)
        };
        if change != 0 && (length == 0 || trailing + length > 8) {
            return Err(Damaged);
        }
        let (dod, used) = get_varint(&bytes[at..]).ok_or(Damaged)?;
        at += used;
        delta = delta.wrapping_add(unzigzag(dod));
        time = time.wrapping_add(delta);
        let length = usize::from(length);
        let raw = bytes.get(at..at + length).ok_or(Damaged)?;
        at += length;
        let mut word = [0u8; 8];
        word[..length].copy_from_slice(raw);
        bits ^= u64::from_le_bytes(word) << (u32::from(trailing) * 8);
        let sample = Sample {
            time_us: time,
            value: f64::from_bits(bits),
            status,
            source_code: 0,
        };
        if has_text {
            let (length, used) = get_varint(&bytes[at..]).ok_or(Damaged)?;
            at += used;
            let length = usize::try_from(length).map_err(|_| Damaged)?;
            let raw = bytes
                .get(at..at.checked_add(length).ok_or(Damaged)?)
                .ok_or(Damaged)?;
            at += length;
            each(sample, Some(std::str::from_utf8(raw).map_err(|_| Damaged)?));
        } else {
            each(sample, None);
        }
    }
    Ok(())
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[Sample]) -> Vec<Sample> {
        let mut out = Vec::new();
        decode(samples[0].time_us, &encode(samples), &mut out).unwrap();
        out
    }

    #[test]
    fn values_times_and_statuses_read_back_bit_for_bit() {
        let samples = vec![
            Sample::good(1_000, 50.0),
            Sample::good(2_000, 50.0),
            Sample::good(3_000, 51.0),
            Sample {
                time_us: 3_500,
                value: -0.1,
                status: Status::Uncertain,
                source_code: 0,
            },
            Sample::bad(10_000),
            Sample::good(-5 + 20_000, f64::MAX),
            Sample::good(i64::MAX / 2, f64::MIN_POSITIVE),
        ];
        let back = round_trip(&samples);
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!(a.time_us, b.time_us);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
            assert_eq!(a.status, b.status);
        }
    }

    #[test]
    fn a_steady_slow_signal_takes_few_bytes_per_value() {
        let samples: Vec<Sample> = (0..10_000)
            .map(|i| Sample::good(i * 1_000_000, (50.0 + (i / 60) as f64 * 0.5).round()))
            .collect();
        let bytes = encode(&samples);
        assert!(bytes.len() < 3 * samples.len(), "{} bytes", bytes.len());
        assert_eq!(round_trip(&samples), samples);
    }

    #[test]
    fn texts_and_digital_state_names_read_back_beside_their_numbers() {
        let values = [
            (Sample::good(1_000, 1.0), Some("Open")),
            (Sample::good(2_000, 2.0), None),
            (Sample::good(3_000, f64::NAN), Some("batch 42 — started")),
            (Sample::good(4_000, f64::NAN), Some("")),
            (Sample::good(5_000, 3.0), None),
        ];
        let mut encoder = Encoder::new();
        values.iter().for_each(|(s, t)| encoder.push_text(s, *t));
        let mut back = Vec::new();
        decode_with(1_000, encoder.bytes(), |s, t| {
            back.push((s, t.map(str::to_owned)))
        })
        .unwrap();
        assert_eq!(back.len(), values.len());
        for ((a, at), (b, bt)) in values.iter().zip(&back) {
            assert_eq!(a.time_us, b.time_us);
            assert_eq!(a.value.to_bits(), b.value.to_bits());
            assert_eq!(a.status, b.status);
            assert_eq!(at.map(str::to_owned), *bt);
        }
        let mut samples = Vec::new();
        decode(1_000, encoder.bytes(), &mut samples).unwrap();
        assert_eq!(samples.len(), values.len());
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let mut out = Vec::new();
        assert_eq!(decode(0, &[255], &mut out), Err(Damaged));
        assert_eq!(decode(0, &[170, 0, 1, 2], &mut out), Err(Damaged));
        assert_eq!(decode(0, &[170, 0x80], &mut out), Err(Damaged));
    }
}
