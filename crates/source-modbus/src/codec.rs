//! Registers to engineering values and back: the type, the word and byte order, then scale and
//! offset.

use crate::map::{Order, Row, ValueType};

/// The value's bytes, most significant first, from its registers as the device holds them.
fn bytes_of(words: &[u16], order: Order) -> Vec<u8> {
    let mut ordered: Vec<u16> = words.to_vec();
    if order.words_swapped {
        ordered.reverse();
    }
    ordered
        .iter()
        .flat_map(|&w| {
            let [hi, lo] = w.to_be_bytes();
            if order.bytes_swapped {
                [lo, hi]
            } else {
                [hi, lo]
            }
        })
        .collect()
}

/// The registers a device holds for these bytes (most significant first): `bytes_of` reversed.
fn words_of(bytes: &[u8], order: Order) -> Vec<u16> {
    let mut words: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| {
            if order.bytes_swapped {
                u16::from_be_bytes([pair[1], pair[0]])
            } else {
                u16::from_be_bytes([pair[0], pair[1]])
            }
        })
        .collect();
    if order.words_swapped {
        words.reverse();
    }
    words
}

/// The raw value of a register row (before scale and offset). `words` holds exactly the row's
/// registers.
pub fn decode_raw(value_type: ValueType, order: Order, words: &[u16]) -> f64 {
    // A 16-bit value has no word order, only a byte order.
    let bytes = bytes_of(words, order);
    let array = |n: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(&bytes[..n]);
        out
    };
    match value_type {
        ValueType::U16 => f64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
        ValueType::I16 => f64::from(i16::from_be_bytes([bytes[0], bytes[1]])),
        ValueType::Bool => f64::from(u8::from(words[0] != 0)),
        ValueType::U32 => {
            let a = array(4);
            f64::from(u32::from_be_bytes([a[0], a[1], a[2], a[3]]))
        }
        ValueType::I32 => {
            let a = array(4);
            f64::from(i32::from_be_bytes([a[0], a[1], a[2], a[3]]))
        }
        ValueType::F32 => {
            let a = array(4);
            f64::from(f32::from_be_bytes([a[0], a[1], a[2], a[3]]))
        }
        ValueType::F64 => f64::from_be_bytes(array(8)),
    }
}

/// The engineering value of a register row.
pub fn decode(row: &Row, words: &[u16]) -> f64 {
    let raw = decode_raw(row.value_type, row.order, words);
    if row.is_scaled() {
        raw * row.scale + row.offset
    } else {
        raw
    }
}

/// Why a value cannot be written to a row.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The value is not finite.
    #[error("{0} is not a finite number")]
    NotFinite(f64),
    /// The raw value (after undoing scale and offset) does not fit the type.
    #[error("{value} is {raw} on the device, which does not fit a {value_type} ({min} to {max})")]
    OutOfRange {
        /// The engineering value asked for.
        value: f64,
        /// The raw value it becomes.
        raw: f64,
        /// The row's type.
        value_type: ValueType,
        /// The smallest raw value of the type.
        min: f64,
        /// The largest.
        max: f64,
    },
}

/// The registers to write for an engineering value: scale and offset undone, whole-number types
/// rounded to the nearest, then ordered as the device holds them.
///
/// # Errors
/// [`EncodeError`] when the value does not fit.
pub fn encode(row: &Row, value: f64) -> Result<Vec<u16>, EncodeError> {
    if !value.is_finite() {
        return Err(EncodeError::NotFinite(value));
    }
    let raw = if row.is_scaled() {
        (value - row.offset) / row.scale
    } else {
        value
    };
    let (min, max) = match row.value_type {
        ValueType::U16 => (0.0, f64::from(u16::MAX)),
        ValueType::I16 => (f64::from(i16::MIN), f64::from(i16::MAX)),
        ValueType::U32 => (0.0, f64::from(u32::MAX)),
        ValueType::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
        ValueType::F32 => (f64::from(f32::MIN), f64::from(f32::MAX)),
        ValueType::F64 => (f64::MIN, f64::MAX),
        ValueType::Bool => (0.0, 1.0),
    };
    let raw = if row.value_type.is_integer() || row.value_type == ValueType::Bool {
        raw.round()
    } else {
        raw
    };
    if !(min..=max).contains(&raw) {
        return Err(EncodeError::OutOfRange {
            value,
            raw,
            value_type: row.value_type,
            min,
            max,
        });
    }
    // In range and rounded: the casts below are exact.
    let bytes: Vec<u8> = match row.value_type {
        ValueType::U16 => (raw as u16).to_be_bytes().to_vec(),
        ValueType::I16 => (raw as i16).to_be_bytes().to_vec(),
        ValueType::Bool => return Ok(vec![u16::from(raw != 0.0)]),
        ValueType::U32 => (raw as u32).to_be_bytes().to_vec(),
        ValueType::I32 => (raw as i32).to_be_bytes().to_vec(),
        ValueType::F32 => (raw as f32).to_be_bytes().to_vec(),
        ValueType::F64 => raw.to_be_bytes().to_vec(),
    };
    Ok(words_of(&bytes, row.order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Table;

    fn row(value_type: ValueType, order: &str) -> Row {
        Row {
            name: "t".into(),
            table: Table::HoldingRegister,
            address: 0,
            value_type,
            order: Order {
                words_swapped: order.starts_with('C') || order.starts_with('D'),
                bytes_swapped: order.starts_with('B') || order.starts_with('D'),
            },
            scale: 1.0,
            offset: 0.0,
            units: String::new(),
            description: String::new(),
        }
    }

    #[test]
    fn the_four_orders_of_a_float() {
        // -1234.5 as f32 is 0xC49A5000.
        let cases = [
            ("ABCD", [0xC49A, 0x5000]),
            ("CDAB", [0x5000, 0xC49A]),
            ("BADC", [0x9AC4, 0x0050]),
            ("DCBA", [0x0050, 0x9AC4]),
        ];
        for (order, words) in cases {
            let r = row(ValueType::F32, order);
            assert_eq!(decode(&r, &words), -1234.5, "{order}");
            assert_eq!(encode(&r, -1234.5).unwrap(), words, "{order}");
        }
    }

    #[test]
    fn every_type_round_trips_in_every_order() {
        let values = [
            (ValueType::U16, 51966.0),
            (ValueType::I16, -12345.0),
            (ValueType::U32, 3_735_928_559.0),
            (ValueType::I32, -123_456_789.0),
            (ValueType::F32, 0.15625),
            (ValueType::F64, 12345.678901234),
            (ValueType::Bool, 1.0),
        ];
        for order in ["ABCD", "CDAB", "BADC", "DCBA"] {
            for (value_type, value) in values {
                let r = row(value_type, order);
                let words = encode(&r, value).unwrap();
                assert_eq!(words.len() as u32, r.width());
                assert_eq!(decode(&r, &words), value, "{value_type} {order}");
            }
        }
        // A 16-bit value only swaps its bytes.
        assert_eq!(
            encode(&row(ValueType::U16, "BADC"), 0x1234 as f64).unwrap(),
            [0x3412]
        );
        assert_eq!(
            encode(&row(ValueType::U16, "CDAB"), 0x1234 as f64).unwrap(),
            [0x1234]
        );
    }

    #[test]
    fn scale_and_offset_apply_both_ways_and_bounds_hold() {
        let mut r = row(ValueType::U16, "ABCD");
        r.scale = 0.1;
        r.offset = -50.0;
        assert!((decode(&r, &[1234]) - 73.4).abs() < 1e-9);
        assert_eq!(encode(&r, 73.4).unwrap(), [1234]);
        let err = encode(&r, -60.0).unwrap_err();
        assert!(
            err.to_string().contains("does not fit a u16 (0 to 65535)"),
            "{err}"
        );
        assert!(encode(&row(ValueType::I16, "ABCD"), 40_000.0).is_err());
        assert!(encode(&row(ValueType::F32, "ABCD"), f64::NAN).is_err());
        assert!(encode(&row(ValueType::F32, "ABCD"), 1e300).is_err());
    }
}
