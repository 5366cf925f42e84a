//! Time expressions as historian users write them: absolute (`2024-05-01T08:00:00Z`) or relative
//! to now (`*-8h`, `DAY-0.5d`, `MONTH+1w`), and durations for intervals (`1h`, `2d 6h 30m`).
//!
//! One parser ([`parse`], [`parse_span`]) serves every part of Uplink, so an expression means the
//! same thing in the app API, the CLI and the desktop app.
//!
//! Relative expressions start at an anchor — `*` or `NOW`, or the start of the current `SECOND`,
//! `MINUTE`, `HOUR`, `DAY`, `WEEK` (Monday), `MONTH` or `YEAR` — followed by signed offsets in
//! `ms s m h d w mo y` (case-insensitive). One sign may govern several terms (`WEEK - 12H 30M
//! 57S` is `WEEK-12h-30m-57s`), and whitespace may stand between any two tokens (`* - 1 h`), as
//! in Intelligent Plant's grammar. Calendar anchors are taken in UTC. Months and years move by
//! calendar months, so they must be whole numbers.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use uplink_model::time_expr;
//!
//! let now = Utc.with_ymd_and_hms(2024, 5, 15, 10, 30, 0).unwrap();
//! let start = time_expr::parse("DAY-0.5d").unwrap().resolve(now).unwrap();
//! assert_eq!(start, Utc.with_ymd_and_hms(2024, 5, 14, 12, 0, 0).unwrap());
//!
//! let err = time_expr::parse("*-8x").unwrap_err();
//! assert_eq!(err.to_string(), "time expression '*-8x', character 4: unknown unit 'x' (expected ms, s, m, h, d, w, mo or y)");
//! ```

mod parse;
mod span;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, SecondsFormat, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use parse::{TimeExprError, parse, parse_span};
pub use span::Span;

use crate::ModelError;

/// A point in time, absolute or relative to the moment a query runs.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeExpr {
    /// A fixed instant.
    Absolute(DateTime<Utc>),
    /// An anchor and offsets, resolved against "now" when the query runs.
    Relative {
        /// Where counting starts.
        anchor: Anchor,
        /// Applied left to right.
        offsets: Vec<Offset>,
    },
}

/// Where a relative expression starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// `*` or `NOW`: the moment of resolution.
    Now,
    /// The start of the current second.
    Second,
    /// The start of the current minute.
    Minute,
    /// The start of the current hour.
    Hour,
    /// Midnight UTC today.
    Day,
    /// Midnight UTC on this week's Monday.
    Week,
    /// Midnight UTC on the first of this month.
    Month,
    /// Midnight UTC on the first of January this year.
    Year,
}

impl Anchor {
    /// Every anchor, in order of coarseness.
    pub const ALL: [Anchor; 8] = [
        Anchor::Now,
        Anchor::Second,
        Anchor::Minute,
        Anchor::Hour,
        Anchor::Day,
        Anchor::Week,
        Anchor::Month,
        Anchor::Year,
    ];

    /// The keyword as written (`*` for now).
    pub const fn keyword(self) -> &'static str {
        match self {
            Anchor::Now => "*",
            Anchor::Second => "SECOND",
            Anchor::Minute => "MINUTE",
            Anchor::Hour => "HOUR",
            Anchor::Day => "DAY",
            Anchor::Week => "WEEK",
            Anchor::Month => "MONTH",
            Anchor::Year => "YEAR",
        }
    }

    /// The anchor's instant for the given "now".
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let midnight = |d: DateTime<Utc>| {
            d.date_naive()
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc()
        };
        match self {
            Anchor::Now => now,
            Anchor::Second => now.with_nanosecond(0).unwrap_or(now),
            Anchor::Minute => {
                now - TimeDelta::seconds(i64::from(now.second()))
                    - TimeDelta::nanoseconds(i64::from(now.nanosecond()))
            }
            Anchor::Hour => midnight(now) + TimeDelta::hours(i64::from(now.hour())),
            Anchor::Day => midnight(now),
            Anchor::Week => {
                midnight(now) - TimeDelta::days(i64::from(now.weekday().num_days_from_monday()))
            }
            Anchor::Month => midnight(now.with_day(1).expect("every month has a first day")),
            Anchor::Year => midnight(
                now.with_day(1)
                    .and_then(|d| d.with_month(1))
                    .expect("every year has a first of January"),
            ),
        }
    }
}

/// A unit of time in an offset or a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `ms`
    Millisecond,
    /// `s`
    Second,
    /// `m`
    Minute,
    /// `h`
    Hour,
    /// `d`
    Day,
    /// `w`
    Week,
    /// `mo`: a calendar month.
    Month,
    /// `y`: a calendar year.
    Year,
}

impl Unit {
    /// Every unit, smallest first.
    pub const ALL: [Unit; 8] = [
        Unit::Millisecond,
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Week,
        Unit::Month,
        Unit::Year,
    ];

    /// The suffix as written.
    pub const fn suffix(self) -> &'static str {
        match self {
            Unit::Millisecond => "ms",
            Unit::Second => "s",
            Unit::Minute => "m",
            Unit::Hour => "h",
            Unit::Day => "d",
            Unit::Week => "w",
            Unit::Month => "mo",
            Unit::Year => "y",
        }
    }

    /// The unit's length in microseconds, or `None` for calendar units (months, years).
    pub const fn fixed_micros(self) -> Option<i64> {
        match self {
            Unit::Millisecond => Some(1_000),
            Unit::Second => Some(1_000_000),
            Unit::Minute => Some(60_000_000),
            Unit::Hour => Some(3_600_000_000),
            Unit::Day => Some(86_400_000_000),
            Unit::Week => Some(604_800_000_000),
            Unit::Month | Unit::Year => None,
        }
    }

    fn from_suffix(suffix: &str) -> Option<Unit> {
        Unit::ALL
            .into_iter()
            .find(|unit| unit.suffix().eq_ignore_ascii_case(suffix))
    }
}

/// A signed amount of a unit, such as `-8h` or `+0.5d`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offset {
    /// Signed; whole for months and years.
    pub amount: f64,
    /// The unit of `amount`.
    pub unit: Unit,
}

impl Offset {
    fn apply(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.unit.fixed_micros() {
            Some(unit) => {
                let micros = (self.amount * unit as f64).round();
                if !micros.is_finite() || micros.abs() >= i64::MAX as f64 {
                    return None;
                }
                at.checked_add_signed(TimeDelta::microseconds(micros as i64))
            }
            None => {
                let per = if self.unit == Unit::Year { 12.0 } else { 1.0 };
                let months = (self.amount.abs() * per).round();
                if months > f64::from(u32::MAX) {
                    return None;
                }
                let months = Months::new(months as u32);
                if self.amount.is_sign_negative() {
                    at.checked_sub_months(months)
                } else {
                    at.checked_add_months(months)
                }
            }
        }
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.amount.is_sign_negative() {
            '-'
        } else {
            '+'
        };
        write!(f, "{sign}{}{}", self.amount.abs(), self.unit.suffix())
    }
}

impl TimeExpr {
    /// `*`: the moment the query runs.
    pub const NOW: TimeExpr = TimeExpr::Relative {
        anchor: Anchor::Now,
        offsets: Vec::new(),
    };

    /// The instant this expression names when "now" is `now`.
    ///
    /// # Errors
    /// [`ModelError::TimeOutOfRange`] when an offset moves the time outside the years 0000 to
    /// 9999, the range RFC 3339 can write: a resolved time is relayed as text and must read back.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<DateTime<Utc>, ModelError> {
        let at = match self {
            TimeExpr::Absolute(at) => Some(*at),
            TimeExpr::Relative { anchor, offsets } => offsets
                .iter()
                .try_fold(anchor.at(now), |at, offset| offset.apply(at)),
        };
        at.filter(|&at| writable(at))
            .ok_or_else(|| ModelError::TimeOutOfRange {
                expression: self.to_string(),
            })
    }

    /// True when the expression depends on the moment it is resolved.
    pub fn is_relative(&self) -> bool {
        matches!(self, TimeExpr::Relative { .. })
    }
}

impl From<DateTime<Utc>> for TimeExpr {
    fn from(at: DateTime<Utc>) -> Self {
        TimeExpr::Absolute(at)
    }
}

impl fmt::Display for TimeExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeExpr::Absolute(at) => f.write_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            TimeExpr::Relative { anchor, offsets } => {
                f.write_str(anchor.keyword())?;
                offsets.iter().try_for_each(|offset| write!(f, "{offset}"))
            }
        }
    }
}

impl FromStr for TimeExpr {
    type Err = TimeExprError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl Serialize for TimeExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether RFC 3339 can write `at` (years 0000 to 9999), so that it reads back as itself: a
/// wider year is written with a sign (`-0001-…`, `+10000-…`) that no RFC 3339 reader takes.
pub(crate) fn writable(at: DateTime<Utc>) -> bool {
    (0..=9999).contains(&at.year())
}

/// Microseconds since the Unix epoch: the compact time of [`crate::Sample`].
pub fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant `micros` microseconds after the Unix epoch (clamped to chrono's range).
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(if micros < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests;
