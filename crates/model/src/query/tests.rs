use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::DataType;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 15, 12, 0, 0).unwrap()
}

fn expr(text: &str) -> TimeExpr {
    crate::time_expr::parse(text).unwrap()
}

fn raw(start: &str, end: &str, max_count: Option<u64>) -> RawQuery {
    RawQuery {
        tag: "T".into(),
        start: expr(start),
        end: expr(end),
        max_count,
        boundary: Boundary::Inside,
    }
}

fn processed(start: &str, end: &str, interval: Span, functions: Vec<Function>) -> ProcessedQuery {
    ProcessedQuery {
        tag: "T".into(),
        start: expr(start),
        end: expr(end),
        interval,
        functions,
    }
}

fn plot(start: &str, end: &str, intervals: u32) -> PlotQuery {
    PlotQuery {
        tag: "T".into(),
        start: expr(start),
        end: expr(end),
        intervals,
    }
}

#[test]
fn start_after_end_is_refused_everywhere() {
    let err = raw("*", "*-1h", None).resolve(now()).unwrap_err();
    assert_eq!(err.code(), "start_after_end");
    assert_eq!(
        err.to_string(),
        "the start time 2024-05-15T12:00:00Z is after the end time 2024-05-15T11:00:00Z"
    );
    assert_eq!(
        plot("*", "*-1h", 10).resolve(now()).unwrap_err().code(),
        "start_after_end"
    );
    let query = processed("*", "*-1d", Span::from_secs(60), vec![Function::Avg]);
    assert_eq!(query.resolve(now()).unwrap_err().code(), "start_after_end");
}

#[test]
fn raw_reads_of_one_instant_are_allowed_but_plots_need_a_range() {
    assert!(raw("*", "*", None).resolve(now()).is_ok());
    let err = plot("*", "*", 10).resolve(now()).unwrap_err();
    assert_eq!(err.code(), "empty_time_range");
    assert!(
        err.to_string()
            .contains("a plot needs a start before the end"),
        "{err}"
    );
    let query = processed("*", "*", Span::from_secs(60), vec![Function::Avg]);
    assert_eq!(query.resolve(now()).unwrap_err().code(), "empty_time_range");
}

#[test]
fn zero_and_negative_intervals_are_refused() {
    for micros in [0, -1, -3_600_000_000] {
        let query = processed("*-1d", "*", Span::from_micros(micros), vec![Function::Avg]);
        let err = query.resolve(now()).unwrap_err();
        assert_eq!(err.code(), "non_positive_interval", "{micros}");
        assert!(err.to_string().contains("longer than zero"), "{err}");
    }
    let err = serde_json::from_value::<ProcessedQuery>(json!({
        "tag": "T", "start": "*-1d", "end": "*", "interval": "-1h", "functions": ["AVG"]
    }))
    .unwrap_err();
    assert!(err.to_string().contains("no sign"), "{err}");
}

#[test]
fn absurd_counts_are_refused() {
    let err = raw("*-1h", "*", Some(0)).resolve(now()).unwrap_err();
    assert_eq!(err.code(), "count_out_of_range");
    assert!(
        err.to_string()
            .contains("the maximum count must be between 1 and"),
        "{err}"
    );
    assert!(
        raw("*-1h", "*", Some(MAX_RAW_COUNT + 1))
            .resolve(now())
            .is_err()
    );
    assert!(raw("*-1h", "*", Some(MAX_RAW_COUNT)).resolve(now()).is_ok());

    assert_eq!(
        plot("*-1h", "*", 0).resolve(now()).unwrap_err().code(),
        "count_out_of_range"
    );
    assert_eq!(
        plot("*-1h", "*", MAX_INTERVALS as u32 + 1)
            .resolve(now())
            .unwrap_err()
            .code(),
        "count_out_of_range"
    );

    // A year in one-second intervals is 31 million intervals.
    let query = processed("*-1y", "*", Span::from_secs(1), vec![Function::Avg]);
    let err = query.resolve(now()).unwrap_err();
    assert!(err.to_string().contains("the number of intervals"), "{err}");

    let search = TagSearch {
        limit: 0,
        ..TagSearch::new("*")
    };
    assert_eq!(search.validate().unwrap_err().code(), "count_out_of_range");
    let search = TagSearch {
        limit: MAX_PAGE_SIZE + 1,
        ..TagSearch::new("*")
    };
    assert!(search.validate().is_err());

    let at_times = AtTimesQuery {
        tag: "T".into(),
        times: vec![TimeExpr::NOW; MAX_TIMES + 1],
    };
    assert_eq!(
        at_times.resolve(now()).unwrap_err().code(),
        "count_out_of_range"
    );
    let snapshot = SnapshotQuery {
        tags: vec!["T".into(); MAX_SNAPSHOT_TAGS + 1],
    };
    assert_eq!(
        snapshot.validate().unwrap_err().code(),
        "count_out_of_range"
    );
}

#[test]
fn empty_lists_are_refused() {
    let query = processed("*-1d", "*", Span::from_secs(3600), vec![]);
    let err = query.resolve(now()).unwrap_err();
    assert_eq!(err.to_string(), "the list of functions must not be empty");
    let err = SnapshotQuery { tags: vec![] }.validate().unwrap_err();
    assert_eq!(err.code(), "empty");
    let err = AtTimesQuery {
        tag: "T".into(),
        times: vec![],
    }
    .resolve(now())
    .unwrap_err();
    assert_eq!(err.code(), "empty");
}

#[test]
fn unknown_functions_are_refused_on_the_wire() {
    let err = serde_json::from_value::<Query>(json!({
        "type": "processed", "tag": "T", "start": "*-1d", "end": "*", "interval": "1h",
        "functions": ["AVG", "MEDIAN"]
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown function 'MEDIAN'"),
        "{err}"
    );
}

#[test]
fn bad_time_expressions_are_refused_on_the_wire() {
    let err = serde_json::from_value::<Query>(json!({
        "type": "raw", "tag": "T", "start": "*-8q", "end": "*"
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("character 4: unknown unit 'q'"),
        "{err}"
    );
}

#[test]
fn repeated_functions_are_computed_once() {
    let query = processed(
        "*-1d",
        "*",
        Span::from_secs(3600),
        vec![Function::Avg, Function::Max, Function::Avg],
    );
    let request = query.resolve(now()).unwrap();
    assert_eq!(request.functions, [Function::Avg, Function::Max]);
}

#[test]
fn processed_intervals_cut_the_last_one_short() {
    let query = processed("*-150m", "*", Span::from_secs(3600), vec![Function::Avg]);
    let request = query.resolve(now()).unwrap();
    let intervals: Vec<_> = request.intervals().iter().collect();
    assert_eq!(intervals.len(), 3);
    assert_eq!(intervals[2].1, request.range.end_us());
    assert_eq!(intervals[2].1 - intervals[2].0, 30 * 60 * 1_000_000);
}

#[test]
fn wire_shapes_are_stable() {
    let query: Query = serde_json::from_value(json!({
        "type": "raw", "tag": "FIC101.PV", "start": "*-8h", "end": "*",
        "maxCount": 1000, "boundary": "outside"
    }))
    .unwrap();
    let Query::Raw(raw) = &query else {
        panic!("{query:?}")
    };
    assert_eq!(raw.max_count, Some(1000));
    assert_eq!(raw.boundary, Boundary::Outside);
    assert_eq!(
        serde_json::to_value(&query).unwrap(),
        json!({"type": "raw", "tag": "FIC101.PV", "start": "*-8h", "end": "*",
               "maxCount": 1000, "boundary": "outside"})
    );
    let request = raw.resolve(now()).unwrap();
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"tag": "FIC101.PV",
               "range": {"start": "2024-05-15T04:00:00Z", "end": "2024-05-15T12:00:00Z"},
               "maxCount": 1000, "boundary": "outside"})
    );

    let at: Query = serde_json::from_value(json!({
        "type": "atTimes", "tag": "T", "times": ["*", "2024-05-01T00:00:00Z"]
    }))
    .unwrap();
    let Query::AtTimes(at) = at else { panic!() };
    let request = at.resolve(now()).unwrap();
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"tag": "T", "times": ["2024-05-15T12:00:00Z", "2024-05-01T00:00:00Z"]})
    );

    let search: Query =
        serde_json::from_value(json!({"type": "search", "pattern": "FIC*"})).unwrap();
    assert_eq!(search, Query::Search(TagSearch::new("FIC*")));
}

#[test]
fn search_pages_through_matches() {
    let tags: Vec<Tag> = (0..25)
        .map(|i| Tag::new(format!("FIC{i:03}.PV"), DataType::Float))
        .chain([Tag::new("TI100", DataType::Float)])
        .collect();
    let mut search = TagSearch {
        limit: 10,
        ..TagSearch::new("fic*")
    };
    let mut seen = Vec::new();
    loop {
        let page = search.page(&tags).unwrap();
        seen.extend(page.tags.iter().map(|t| t.name.clone()));
        match page.next_offset {
            Some(next) => search.offset = next,
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[24], "FIC024.PV");
    let page = TagSearch::new("FIC00?.PV").page(&tags).unwrap();
    assert_eq!(page.tags.len(), 10);
    assert_eq!(page.next_offset, None);
    assert_eq!(
        serde_json::to_value(&page).unwrap()["tags"][0]["dataType"],
        "float"
    );
}
