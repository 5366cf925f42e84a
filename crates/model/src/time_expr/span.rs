//! A length of time for intervals, written like `1h` or `2d 6h 30m`.

use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{TimeExprError, parse_span};

/// A fixed length of time, kept in microseconds; written and read as text (`"2d6h30m"`).
///
/// A span may be zero or negative when built in code; queries refuse such intervals.
///
/// ```
/// use uplink_model::time_expr::Span;
///
/// let span: Span = "90m".parse().unwrap();
/// assert_eq!(span.to_string(), "1h30m");
/// assert_eq!(span, Span::from_micros(90 * 60 * 1_000_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    micros: i64,
}

impl Span {
    /// A span of `micros` microseconds.
    pub const fn from_micros(micros: i64) -> Self {
        Self { micros }
    }

    /// A span of whole seconds.
    pub const fn from_secs(secs: i64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// The length in microseconds.
    pub const fn as_micros(self) -> i64 {
        self.micros
    }

    /// The length as a chrono delta.
    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::microseconds(self.micros)
    }
}

impl fmt::Display for Span {
    /// Largest units first (`d h m s ms`), a fraction of a millisecond when needed; `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.micros == 0 {
            return f.write_str("0s");
        }
        if self.micros < 0 {
            f.write_str("-")?;
        }
        let mut rest = self.micros.unsigned_abs();
        for (unit, suffix) in [
            (86_400_000_000u64, "d"),
            (3_600_000_000, "h"),
            (60_000_000, "m"),
            (1_000_000, "s"),
        ] {
            if rest >= unit {
                write!(f, "{}{suffix}", rest / unit)?;
                rest %= unit;
            }
        }
        if rest > 0 {
            if rest.is_multiple_of(1_000) {
                write!(f, "{}ms", rest / 1_000)?;
            } else {
                write!(f, "{}ms", rest as f64 / 1_000.0)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Span {
    type Err = TimeExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_span(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_span(&text).map_err(serde::de::Error::custom)
    }
}
