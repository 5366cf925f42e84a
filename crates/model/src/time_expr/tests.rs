use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// Wednesday 15 May 2024, 10:30:45.250 UTC.
fn now() -> DateTime<Utc> {
    at(2024, 5, 15, 10, 30, 45) + TimeDelta::milliseconds(250)
}

fn resolve(text: &str) -> DateTime<Utc> {
    parse(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .resolve(now())
        .unwrap()
}

#[test]
fn relative_forms_resolve_as_historians_do() {
    let cases = [
        ("*", now()),
        ("NOW", now()),
        ("now", now()),
        ("*-8h", now() - TimeDelta::hours(8)),
        ("*-1d+2h", now() - TimeDelta::hours(22)),
        ("-15m", now() - TimeDelta::minutes(15)),
        ("* - 1d", now() - TimeDelta::days(1)),
        ("*+500ms", now() + TimeDelta::milliseconds(500)),
        ("SECOND", at(2024, 5, 15, 10, 30, 45)),
        ("MINUTE", at(2024, 5, 15, 10, 30, 0)),
        ("HOUR", at(2024, 5, 15, 10, 0, 0)),
        ("DAY", at(2024, 5, 15, 0, 0, 0)),
        ("day-0.5d", at(2024, 5, 14, 12, 0, 0)),
        ("WEEK", at(2024, 5, 13, 0, 0, 0)),
        ("MONTH", at(2024, 5, 1, 0, 0, 0)),
        ("MONTH+1w", at(2024, 5, 8, 0, 0, 0)),
        ("MONTH-1mo", at(2024, 4, 1, 0, 0, 0)),
        ("YEAR", at(2024, 1, 1, 0, 0, 0)),
        ("YEAR-1y+2MO", at(2023, 3, 1, 0, 0, 0)),
        ("*-1W", now() - TimeDelta::weeks(1)),
        ("*+30S", now() + TimeDelta::seconds(30)),
    ];
    for (text, expected) in cases {
        assert_eq!(resolve(text), expected, "{text}");
    }
}

/// Intelligent Plant's App Store Connect grammar: several terms after one sign, whitespace
/// between any two tokens (also between a number and its unit), any case.
#[test]
fn the_whole_app_store_connect_grammar_is_accepted() {
    let cases = [
        (
            "WEEK - 12H 30M 57S",
            at(2024, 5, 13, 0, 0, 0)
                - TimeDelta::hours(12)
                - TimeDelta::minutes(30)
                - TimeDelta::seconds(57),
        ),
        ("MONTH + 8h30m", at(2024, 5, 1, 8, 30, 0)),
        ("HOUR-1h30m", at(2024, 5, 15, 8, 30, 0)),
        ("* - 1 h", now() - TimeDelta::hours(1)),
        ("*-1 h", now() - TimeDelta::hours(1)),
        ("  now  -  2 d  ", now() - TimeDelta::days(2)),
        ("week-12h30m57s", at(2024, 5, 12, 11, 29, 3)),
        ("DAY + 1h 30m - 15m", at(2024, 5, 15, 1, 15, 0)),
        ("Year + 1mo 2d", at(2024, 2, 3, 0, 0, 0)),
        ("YEAR - 1Y 6MO", at(2022, 7, 1, 0, 0, 0)),
        ("*-1.5h 30m", now() - TimeDelta::hours(2)),
        ("MINUTE - 500ms 0.5s", at(2024, 5, 15, 10, 29, 59)),
        ("second-1S", at(2024, 5, 15, 10, 30, 44)),
        ("- 1 w", now() - TimeDelta::weeks(1)),
        ("*-.5d", now() - TimeDelta::hours(12)),
    ];
    for (text, expected) in cases {
        assert_eq!(resolve(text), expected, "{text}");
    }
    // One sign over several terms is the same expression as a sign on each.
    assert_eq!(
        parse("WEEK - 12H 30M 57S").unwrap(),
        parse("WEEK-12h-30m-57s").unwrap()
    );
    assert_eq!(
        parse("WEEK - 12H 30M 57S").unwrap().to_string(),
        "WEEK-12h-30m-57s"
    );
}

/// Every expression docs/api.md shows in its time-expression table parses, and resolves to the
/// instant the table promises.
#[test]
fn every_example_in_the_api_guide_parses() {
    let cases = [
        ("2026-11-25T08:00:00Z", at(2026, 11, 25, 8, 0, 0)),
        ("2026-11-25T09:00:00+01:00", at(2026, 11, 25, 8, 0, 0)),
        (
            "2026-11-25T08:00:00.125Z",
            at(2026, 11, 25, 8, 0, 0) + TimeDelta::milliseconds(125),
        ),
        ("2026-11-25T08:00:00", at(2026, 11, 25, 8, 0, 0)),
        ("2026-11-25", at(2026, 11, 25, 0, 0, 0)),
        ("*", now()),
        ("NOW", now()),
        ("*-8h", now() - TimeDelta::hours(8)),
        ("*-1d", now() - TimeDelta::days(1)),
        ("*-30m", now() - TimeDelta::minutes(30)),
        ("*-1.5h", now() - TimeDelta::minutes(90)),
        ("-15m", now() - TimeDelta::minutes(15)),
        ("SECOND", at(2024, 5, 15, 10, 30, 45)),
        ("MINUTE", at(2024, 5, 15, 10, 30, 0)),
        ("HOUR", at(2024, 5, 15, 10, 0, 0)),
        ("DAY", at(2024, 5, 15, 0, 0, 0)),
        ("WEEK", at(2024, 5, 13, 0, 0, 0)),
        ("MONTH", at(2024, 5, 1, 0, 0, 0)),
        ("YEAR", at(2024, 1, 1, 0, 0, 0)),
        ("DAY-0.5d", at(2024, 5, 14, 12, 0, 0)),
        ("MONTH+1w", at(2024, 5, 8, 0, 0, 0)),
        ("*-1mo", now() - TimeDelta::days(30)),
        ("*-1d+2h", now() - TimeDelta::hours(22)),
        ("WEEK - 12H 30M 57S", at(2024, 5, 12, 11, 29, 3)),
        ("MONTH + 8h30m", at(2024, 5, 1, 8, 30, 0)),
        ("HOUR-1h30m", at(2024, 5, 15, 8, 30, 0)),
        ("* - 1 h", now() - TimeDelta::hours(1)),
        ("*-7d", now() - TimeDelta::days(7)),
        ("*-1h", now() - TimeDelta::hours(1)),
    ];
    for (text, expected) in cases {
        assert_eq!(resolve(text), expected, "{text}");
    }
    // And the guide shows no expression this table leaves out.
    let guide = include_str!("../../../../docs/api.md");
    let section = guide
        .split("## Time expressions")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has a Time expressions section");
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        for example in first_cell.split('`').skip(1).step_by(2) {
            assert!(
                cases.iter().any(|(text, _)| *text == example),
                "docs/api.md shows '{example}', which this test does not check"
            );
        }
    }
}

#[test]
fn absolute_forms_are_read_as_utc() {
    assert_eq!(resolve("2024-05-01T08:00:00Z"), at(2024, 5, 1, 8, 0, 0));
    assert_eq!(
        resolve("2024-05-01T10:00:00+02:00"),
        at(2024, 5, 1, 8, 0, 0)
    );
    assert_eq!(resolve("2024-05-01T08:00:00"), at(2024, 5, 1, 8, 0, 0));
    assert_eq!(resolve("2024-05-01"), at(2024, 5, 1, 0, 0, 0));
    assert_eq!(
        resolve("2024-05-01T08:00:00.125Z"),
        at(2024, 5, 1, 8, 0, 0) + TimeDelta::milliseconds(125)
    );
    assert!(!parse("2024-05-01").unwrap().is_relative());
}

#[test]
fn month_offsets_clamp_to_the_end_of_shorter_months() {
    let jan31 = at(2024, 1, 31, 0, 0, 0);
    let expr = parse("*+1mo").unwrap();
    assert_eq!(expr.resolve(jan31).unwrap(), at(2024, 2, 29, 0, 0, 0));
}

fn error(text: &str) -> TimeExprError {
    parse(text).expect_err(text)
}

#[test]
fn every_bad_expression_says_what_and_where() {
    let cases: [(&str, usize, &str); 22] = [
        ("", 0, "empty"),
        ("   ", 3, "empty"),
        ("*-8x", 3, "unknown unit 'x'"),
        ("*-8", 3, "missing unit after 8"),
        ("*-", 2, "expected a number, found the end"),
        ("*-h", 2, "expected a number, found 'h'"),
        ("*8h", 1, "unexpected '8'"),
        ("TOMORROW", 0, "unknown anchor 'TOMORROW'"),
        ("#", 0, "unexpected '#'"),
        ("*-1.5mo", 5, "'1.5mo': 'mo' moves by calendar months"),
        ("*-1.2.3h", 2, "'1.2.3' is not a number"),
        ("*-99999999999999h", 2, "too large"),
        ("2024-13-01T00:00:00Z", 0, "not a valid date and time"),
        ("DAY+1d junk", 7, "unexpected 'j'"),
        ("WEEK - 12H 30X", 13, "unknown unit 'X'"),
        ("MONTH + 8h30", 12, "missing unit after 30"),
        ("HOUR-1h 30m 1.5mo", 15, "whole number"),
        ("* - 1 h 30", 10, "missing unit after 30"),
        ("* 1h", 2, "unexpected '1'"),
        ("*-1h, 2m", 4, "unexpected ','"),
        ("* - ", 4, "expected a number, found the end"),
        ("DAYS-1h", 0, "unknown anchor 'DAYS'"),
    ];
    for (text, position, problem) in cases {
        let err = error(text);
        assert_eq!(err.position, position, "{text}: {err}");
        assert!(err.problem.contains(problem), "{text}: {err}");
        assert!(
            err.to_string()
                .contains(&format!("character {}: ", position + 1)),
            "{err}"
        );
    }
}

#[test]
fn positions_count_characters_not_bytes() {
    let err = error("*-1é");
    assert_eq!(err.position, 3);
    let err = error("é");
    assert_eq!(err.position, 0);
}

#[test]
fn long_inputs_are_shortened_in_messages() {
    let text = format!("*-1h{}", "x".repeat(500));
    let message = error(&text).to_string();
    assert!(message.len() < 300, "{message}");
}

#[test]
fn out_of_range_results_are_errors_not_panics() {
    let err = parse("*+999999999y").unwrap().resolve(now()).unwrap_err();
    assert_eq!(err.code(), "time_out_of_range");
    let err = parse("*-999999999999d")
        .unwrap()
        .resolve(now())
        .unwrap_err();
    assert_eq!(err.code(), "time_out_of_range");
}

/// Found by fuzzing: `*-3000y` resolved to year -976, which the hub relayed as
/// `-0976-05-15T10:30:45.250Z`, text no connector could read back (a leading `-` is a relative
/// time). Times now stay within the years RFC 3339 writes, however they are reached.
#[test]
fn times_outside_the_years_0000_to_9999_are_refused() {
    for text in ["*-3000y", "*+8000y", "YEAR-2025y-1d", "*+7975y+8mo"] {
        let err = parse(text).unwrap().resolve(now()).unwrap_err();
        assert_eq!(err.code(), "time_out_of_range", "{text}");
    }
    assert_eq!(resolve("YEAR-2024y"), at(0, 1, 1, 0, 0, 0));
    for text in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:00:00-01:00"] {
        let err = parse(text).unwrap_err();
        assert!(err.problem.contains("0000 to 9999"), "{text}: {err}");
    }
    let late = parse("9999-12-31T23:59:59.999999999Z").unwrap();
    assert_eq!(parse(&late.to_string()).unwrap(), late);
}

/// Found by fuzzing: `0888888808881.88888888s` was shown as `10288064d22h1m21s888.768ms`,
/// which read back 128 µs longer, because the terms were summed in floating point.
#[test]
fn a_long_duration_reads_back_from_its_own_text() {
    let span = parse_span("0888888808881.88888888s").unwrap();
    assert_eq!(parse_span(&span.to_string()).unwrap(), span);
    let span = Span::from_micros(i64::MAX - 1);
    assert_eq!(parse_span(&span.to_string()).unwrap(), span);
    assert!(parse_span("9999999999w 9999999999w").is_err(), "too long");
}

#[test]
fn durations_read_single_and_compound_forms() {
    let cases = [
        ("1h", 3_600_000_000),
        ("90s", 90_000_000),
        ("1.5h", 5_400_000_000),
        ("2d 6h 30m", ((2 * 24 + 6) * 60 + 30) * 60_000_000),
        ("2d6h30m", ((2 * 24 + 6) * 60 + 30) * 60_000_000),
        ("1w", 7 * 86_400_000_000),
        ("250MS", 250_000),
        ("0s", 0),
    ];
    for (text, micros) in cases {
        assert_eq!(parse_span(text).unwrap().as_micros(), micros, "{text}");
    }
}

#[test]
fn bad_durations_say_what_and_where() {
    let cases: [(&str, usize, &str); 6] = [
        ("", 0, "empty"),
        ("1x", 1, "unknown unit 'x'"),
        ("-1h", 0, "no sign"),
        ("1h 2", 4, "missing unit"),
        ("1mo", 1, "no fixed length"),
        ("h", 0, "expected a number"),
    ];
    for (text, position, problem) in cases {
        let err = parse_span(text).expect_err(text);
        assert_eq!(err.position, position, "{text}: {err}");
        assert!(err.problem.contains(problem), "{text}: {err}");
    }
}

#[test]
fn spans_print_canonically() {
    assert_eq!(Span::from_micros(0).to_string(), "0s");
    assert_eq!(parse_span("2d 6h 30m").unwrap().to_string(), "2d6h30m");
    assert_eq!(Span::from_micros(1_500).to_string(), "1.5ms");
    assert_eq!(Span::from_micros(-3_600_000_000).to_string(), "-1h");
}

#[test]
fn wire_form_is_the_text() {
    let expr = parse("*-1d+2h").unwrap();
    assert_eq!(serde_json::to_string(&expr).unwrap(), "\"*-1d+2h\"");
    let err = serde_json::from_str::<TimeExpr>("\"*-1q\"").unwrap_err();
    assert!(err.to_string().contains("unknown unit 'q'"), "{err}");
    assert_eq!(
        serde_json::from_str::<Span>("\"15m\"").unwrap(),
        Span::from_secs(900)
    );
}

fn anchor() -> impl Strategy<Value = Anchor> {
    proptest::sample::select(Anchor::ALL.to_vec())
}

fn offset() -> impl Strategy<Value = Offset> {
    (
        proptest::sample::select(Unit::ALL.to_vec()),
        0u32..100_000,
        0u32..1000,
        any::<bool>(),
    )
        .prop_map(|(unit, whole, thousandths, negative)| {
            let fraction = if unit.fixed_micros().is_some() {
                f64::from(thousandths) / 1000.0
            } else {
                0.0
            };
            let amount = f64::from(whole) + fraction;
            Offset {
                amount: if negative { -amount } else { amount },
                unit,
            }
        })
}

fn time_expr() -> impl Strategy<Value = TimeExpr> {
    prop_oneof![
        (-62_000_000_000i64..250_000_000_000, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
            TimeExpr::Absolute(DateTime::from_timestamp(secs, nanos).unwrap())
        }),
        (anchor(), proptest::collection::vec(offset(), 0..5))
            .prop_map(|(anchor, offsets)| TimeExpr::Relative { anchor, offsets }),
    ]
}

proptest! {
    #[test]
    fn format_then_parse_gives_the_same_expression(expr in time_expr()) {
        let text = expr.to_string();
        let back = parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, expr);
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,40}") {
        if let Ok(expr) = parse(&text) {
            let _ = expr.resolve(now());
        }
        let _ = parse_span(&text);
    }

    #[test]
    fn parse_never_panics_on_near_misses(text in "[*+\\-0-9.a-zA-Z :TZ]{0,24}") {
        match parse(&text) {
            Ok(expr) => { let _ = expr.resolve(now()); }
            Err(err) => prop_assert!(err.position <= text.chars().count()),
        }
        let _ = parse_span(&text);
    }

    #[test]
    fn span_format_then_parse_round_trips(micros in 0i64..10_000_000_000_000) {
        let span = Span::from_micros(micros);
        prop_assert_eq!(parse_span(&span.to_string()).unwrap(), span);
    }
}
