//! The one parser for time expressions and durations, with errors that point at a character.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use super::{Anchor, Offset, Span, TimeExpr, Unit};

/// A time expression or duration that could not be read: what is wrong and where.
///
/// `position` counts characters from 0; the message counts from 1, as people do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time expression '{}', character {}: {problem}", clip(.input, 64), .position + 1)]
pub struct TimeExprError {
    /// The text as given (shortened in the message if long).
    pub input: String,
    /// Index of the offending character, from 0.
    pub position: usize,
    /// What is wrong there, for a person.
    pub problem: String,
}

/// `text` cut to `limit` characters, so a pasted novel does not fill the log.
fn clip(text: &str, limit: usize) -> String {
    if text.chars().count() > limit {
        let head: String = text.chars().take(limit).collect();
        format!("{head}…")
    } else {
        text.to_owned()
    }
}

/// The largest amount one offset or duration term may have; larger is a typing mistake.
const MAX_AMOUNT: f64 = 1e12;
const UNITS_EXPECTED: &str = "expected ms, s, m, h, d, w, mo or y";
const ANCHORS_EXPECTED: &str = "expected *, NOW, SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR";

/// Reads a time expression: RFC 3339 / ISO 8601 (`2024-05-01T08:00:00Z`, `2024-05-01T08:00:00`
/// taken as UTC, `2024-05-01` for midnight UTC) or a relative form (`*`, `NOW`, `*-8h`,
/// `*-1d+2h`, `DAY-0.5d`, `MONTH+1w`, `-15m`, `WEEK - 12H 30M 57S`, `* - 1 h`).
///
/// ```
/// use uplink_model::time_expr::{parse, TimeExpr};
///
/// assert!(matches!(parse("*-1d+2h"), Ok(TimeExpr::Relative { .. })));
/// assert!(parse("2024-05-01T08:00:00Z").is_ok());
/// assert_eq!(parse("HOUR-1h30m").unwrap(), parse("HOUR-1h-30m").unwrap());
/// assert_eq!(parse("*-").unwrap_err().position, 2);
/// ```
pub fn parse(input: &str) -> Result<TimeExpr, TimeExprError> {
    let mut cursor = Cursor::new(input);
    cursor.skip_spaces();
    match cursor.peek() {
        None => Err(cursor.error_here("the expression is empty")),
        Some(c) if c.is_ascii_digit() => parse_absolute(input, cursor.index()),
        Some(_) => parse_relative(cursor),
    }
}

/// Reads a duration such as `1h`, `90s`, `1.5h` or `2d 6h 30m` (units ms s m h d w; months and
/// years have no fixed length and are refused).
///
/// ```
/// use uplink_model::time_expr::parse_span;
///
/// assert_eq!(parse_span("2d 6h 30m").unwrap().as_micros(), (2 * 86_400 + 6 * 3_600 + 30 * 60) * 1_000_000);
/// assert!(parse_span("1mo").unwrap_err().problem.contains("no fixed length"));
/// ```
pub fn parse_span(input: &str) -> Result<Span, TimeExprError> {
    let mut cursor = Cursor::new(input);
    cursor.skip_spaces();
    if cursor.peek().is_none() {
        return Err(cursor.error_here("the duration is empty"));
    }
    // Whole microseconds per term, summed exactly: a sum in f64 loses microseconds past 2^53
    // (about 285 years), so a long duration did not read back from its own text.
    let mut total: i128 = 0;
    while cursor.peek().is_some() {
        if let Some(sign @ ('+' | '-')) = cursor.peek() {
            return Err(
                cursor.error_here(format!("a duration has no sign; write it without '{sign}'"))
            );
        }
        let (amount, unit, unit_at) = cursor.term()?;
        let Some(micros) = unit.fixed_micros() else {
            return Err(cursor.error_at(
                unit_at,
                format!(
                    "'{}' has no fixed length for a duration; use d or w instead",
                    unit.suffix()
                ),
            ));
        };
        let term = (amount * micros as f64).round();
        if term >= i64::MAX as f64 {
            return Err(cursor.error_at(0, "the duration is too long"));
        }
        total += term as i128;
        cursor.skip_spaces();
    }
    let total = i64::try_from(total).map_err(|_| cursor.error_at(0, "the duration is too long"))?;
    Ok(Span::from_micros(total))
}

fn parse_absolute(input: &str, start: usize) -> Result<TimeExpr, TimeExprError> {
    let text = input.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|date| {
                date.and_hms_opt(0, 0, 0)
                    .expect("midnight exists")
                    .and_utc()
            })
        });
    let error = |problem: &str| TimeExprError {
        input: input.to_owned(),
        position: start,
        problem: problem.to_owned(),
    };
    let at = parsed.map_err(|_| error("not a valid date and time (write RFC 3339 such as 2024-05-01T08:00:00Z, or a relative time such as *-8h)"))?;
    if !super::writable(at) {
        return Err(error("the time in UTC is outside the years 0000 to 9999"));
    }
    Ok(TimeExpr::Absolute(at))
}

fn parse_relative(mut cursor: Cursor<'_>) -> Result<TimeExpr, TimeExprError> {
    let anchor = match cursor.peek() {
        Some('*') => {
            cursor.bump();
            Anchor::Now
        }
        Some('+' | '-') => Anchor::Now,
        Some(c) if c.is_alphabetic() => {
            let at = cursor.index();
            let word = cursor.take_while(char::is_alphabetic);
            if word.eq_ignore_ascii_case("NOW") {
                Anchor::Now
            } else {
                Anchor::ALL
                    .into_iter()
                    .find(|anchor| anchor.keyword().eq_ignore_ascii_case(word))
                    .ok_or_else(|| {
                        cursor.error_at(
                            at,
                            format!("unknown anchor '{}' ({ANCHORS_EXPECTED})", clip(word, 16)),
                        )
                    })?
            }
        }
        Some(c) => {
            return Err(cursor.error_here(format!(
                "unexpected '{c}' ({ANCHORS_EXPECTED}, or a date such as 2024-05-01T08:00:00Z)"
            )));
        }
        None => unreachable!("parse() checked for an empty expression"),
    };
    let mut offsets = Vec::new();
    loop {
        cursor.skip_spaces();
        let negative = match cursor.peek() {
            None => break,
            Some('+') => false,
            Some('-') => true,
            Some(c) => {
                return Err(cursor.error_here(format!(
                    "unexpected '{c}' (expected + or - and an offset such as -8h)"
                )));
            }
        };
        cursor.bump();
        cursor.skip_spaces();
        // One sign governs every term up to the next sign: `WEEK - 12H 30M 57S` is
        // WEEK-12h-30m-57s, as Intelligent Plant's grammar reads it.
        loop {
            let (amount, unit, unit_at) = cursor.term()?;
            if unit.fixed_micros().is_none() && amount.fract() != 0.0 {
                return Err(cursor.error_at(
                    unit_at,
                    format!(
                        "'{amount}{}': '{}' moves by calendar months, so the amount must be a whole number",
                        unit.suffix(),
                        unit.suffix()
                    ),
                ));
            }
            offsets.push(Offset {
                amount: if negative { -amount } else { amount },
                unit,
            });
            cursor.skip_spaces();
            match cursor.peek() {
                None | Some('+' | '-') => break,
                Some(c) if c.is_ascii_digit() || c == '.' => {}
                Some(c) => {
                    return Err(cursor.error_here(format!(
                        "unexpected '{c}' (expected another term such as 30m, + or -, or the end)"
                    )));
                }
            }
        }
    }
    Ok(TimeExpr::Relative { anchor, offsets })
}

/// A position in the input, counted in characters for error messages.
struct Cursor<'a> {
    input: &'a str,
    /// Byte offset of the next character.
    byte: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Self {
        Self { input, byte: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.byte..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.byte += c.len_utf8();
        }
    }

    /// Character index of the next character.
    fn index(&self) -> usize {
        self.input[..self.byte].chars().count()
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.byte;
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
        &self.input[start..self.byte]
    }

    fn skip_spaces(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// A number followed by a unit, such as `8h` or `0.5d`; returns the unit's character index.
    fn term(&mut self) -> Result<(f64, Unit, usize), TimeExprError> {
        let number_at = self.index();
        let number = self.take_while(|c| c.is_ascii_digit() || c == '.');
        if number.is_empty() {
            return Err(match self.peek() {
                None => self.error_here("expected a number, found the end"),
                Some(c) => self.error_here(format!("expected a number, found '{c}'")),
            });
        }
        let amount: f64 = number.parse().map_err(|_| {
            self.error_at(number_at, format!("'{}' is not a number", clip(number, 16)))
        })?;
        if amount > MAX_AMOUNT {
            return Err(self.error_at(number_at, format!("{} is too large", clip(number, 16))));
        }
        let after_number = self.index();
        // `1 h` is `1h`: whitespace may stand between any two tokens.
        self.skip_spaces();
        let unit_at = self.index();
        let suffix = self.take_while(char::is_alphabetic);
        if suffix.is_empty() {
            return Err(self.error_at(
                after_number,
                format!("missing unit after {} ({UNITS_EXPECTED})", clip(number, 16)),
            ));
        }
        let unit = Unit::from_suffix(suffix).ok_or_else(|| {
            self.error_at(
                unit_at,
                format!("unknown unit '{}' ({UNITS_EXPECTED})", clip(suffix, 16)),
            )
        })?;
        Ok((amount, unit, unit_at))
    }

    fn error_here(&self, problem: impl Into<String>) -> TimeExprError {
        self.error_at(self.index(), problem)
    }

    fn error_at(&self, position: usize, problem: impl Into<String>) -> TimeExprError {
        TimeExprError {
            input: self.input.to_owned(),
            position,
            problem: problem.into(),
        }
    }
}
