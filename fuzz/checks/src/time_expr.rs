//! The one parser for time expressions and durations (`*-8h`, `DAY-0.5d`, `2024-05-01`, `1h`).

use chrono::{DateTime, TimeZone, Utc};
use uplink_model::TimeExpr;
use uplink_model::time_expr::{parse, parse_span};

/// The "now"s every expression is resolved against: an ordinary day, the epoch, and both ends
/// of the range the hub's clock could ever show.
pub(crate) fn nows() -> [DateTime<Utc>; 4] {
    [
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 30, 15).unwrap(),
        DateTime::UNIX_EPOCH,
        Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
    ]
}

/// `time_expr`. The input as text:
///
/// - an expression that parses is written back (`Display`) as text that parses to itself;
/// - resolved against any "now", it is an instant that, written as the hub relays it to a
///   connector, reads back as the same instant;
/// - an error points at a character of the input;
/// - a duration that parses is written back as text that parses to the same length.
pub fn time_expr(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Ok(expr) => {
            let shown = expr.to_string();
            let again =
                parse(&shown).unwrap_or_else(|e| panic!("'{shown}' does not re-parse: {e}"));
            assert_eq!(again, expr, "'{text}' shown as '{shown}'");
            for now in nows() {
                if let Ok(at) = expr.resolve(now) {
                    assert_absolute_round_trips(at);
                }
            }
        }
        Err(error) => {
            assert!(error.position <= text.chars().count());
            let _ = error.to_string();
        }
    }
    if let Ok(span) = parse_span(text) {
        assert!(span.as_micros() >= 0, "a negative duration from '{text}'");
        let shown = span.to_string();
        let again =
            parse_span(&shown).unwrap_or_else(|e| panic!("'{shown}' does not re-parse: {e}"));
        assert_eq!(again, span, "'{text}' shown as '{shown}'");
    }
}

/// An instant, written as an absolute time expression (as the hub relays resolved times), reads
/// back as itself.
pub(crate) fn assert_absolute_round_trips(at: DateTime<Utc>) {
    let absolute = TimeExpr::from(at);
    let shown = absolute.to_string();
    let again = parse(&shown).unwrap_or_else(|e| panic!("resolved time '{shown}' unreadable: {e}"));
    assert_eq!(again, absolute, "resolved time shown as '{shown}'");
}
