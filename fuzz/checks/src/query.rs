//! The query validators: a `POST …/query` body as the hub checks it before relaying
//! ([`uplink_hub::api::checked_query`]), and the model's resolution every connector runs again
//! on what it receives.

use chrono::{DateTime, Duration, Utc};
use uplink_model::aggregate::Intervals;
use uplink_model::{MAX_INTERVALS, MAX_RAW_COUNT, MAX_TIMES};
use uplink_model::{ModelError, Query, TimeRange};

use crate::time_expr::assert_absolute_round_trips;

/// What a data source would be asked for, as text (the requests' own `Debug`).
fn resolve(query: &Query, now: DateTime<Utc>) -> Result<String, ModelError> {
    Ok(match query {
        Query::Search(search) => format!("{:?}", search.validate()?),
        Query::Snapshot(snapshot) => {
            snapshot.validate()?;
            format!("{snapshot:?}")
        }
        Query::Raw(raw) => {
            let request = raw.resolve(now)?;
            assert!(request.range.start <= request.range.end);
            if let Some(max) = request.max_count {
                assert!((1..=MAX_RAW_COUNT).contains(&max));
            }
            format!("{request:?}")
        }
        Query::Plot(plot) => {
            let request = plot.resolve(now)?;
            assert_cut(&request.range, request.intervals());
            format!("{request:?}")
        }
        Query::AtTimes(at) => {
            let request = at.resolve(now)?;
            assert!((1..=MAX_TIMES).contains(&request.times.len()));
            format!("{request:?}")
        }
        Query::Processed(processed) => {
            let request = processed.resolve(now)?;
            assert!(request.interval.as_micros() > 0);
            assert!(!request.functions.is_empty());
            assert_cut(&request.range, request.intervals());
            format!("{request:?}")
        }
        Query::Events(events) => {
            let request = events.resolve(now)?;
            assert!(request.range.start <= request.range.end);
            assert!((1..=uplink_model::MAX_EVENT_PAGE).contains(&request.limit));
            format!("{request:?}")
        }
    })
}

/// A resolved range cut into intervals: the range is not empty, and 1 to [`MAX_INTERVALS`]
/// intervals cover it from its start to its end.
fn assert_cut(range: &TimeRange, intervals: Intervals) {
    assert!(range.start < range.end);
    let count = intervals.count();
    assert!((1..=MAX_INTERVALS as usize).contains(&count));
    assert_eq!(intervals.bounds(0).0, range.start_us());
    assert_eq!(intervals.bounds(count - 1).1, range.end_us());
}

/// Every instant a checked query names.
fn instants(query: &Query) -> Vec<DateTime<Utc>> {
    let now = crate::time_expr::nows()[0];
    let at = |t: &uplink_model::TimeExpr| {
        assert!(!t.is_relative(), "a relayed time is relative: {t}");
        t.resolve(now).expect("an absolute time resolves")
    };
    match query {
        Query::Search(_) | Query::Snapshot(_) => Vec::new(),
        Query::Raw(q) => vec![at(&q.start), at(&q.end)],
        Query::Plot(q) => vec![at(&q.start), at(&q.end)],
        Query::Processed(q) => vec![at(&q.start), at(&q.end)],
        Query::Events(q) => vec![at(&q.start), at(&q.end)],
        Query::AtTimes(q) => q.times.iter().map(at).collect(),
    }
}

/// `query`. The input is a `POST …/query` body:
///
/// - the model's own resolution of it (what a connector runs) never panics;
/// - a body the hub accepts has only absolute times, ordered, within the limits; its relayed
///   JSON reads back as the same query; and a connector resolving it later gets exactly the
///   request the hub checked, so no query passes the hub and fails on site.
pub fn query(data: &[u8]) {
    let [now, ..] = crate::time_expr::nows();
    if let Ok(query) = serde_json::from_slice::<Query>(data) {
        for now in crate::time_expr::nows() {
            let _ = resolve(&query, now);
        }
    }
    let Ok(checked) = uplink_hub::api::checked_query(data, now) else {
        return;
    };
    for at in instants(&checked) {
        assert_absolute_round_trips(at);
    }
    let relayed = serde_json::to_vec(&checked).expect("serialise");
    let received: Query = serde_json::from_slice(&relayed).unwrap_or_else(|e| {
        panic!(
            "the connector cannot read the relayed query {}: {e}",
            String::from_utf8_lossy(&relayed)
        )
    });
    assert_eq!(received, checked);
    let at_hub = resolve(&checked, now).expect("the hub's check passed");
    let on_site = resolve(&received, now + Duration::days(400))
        .unwrap_or_else(|e| panic!("the connector refuses what the hub accepted: {e}"));
    assert_eq!(on_site, at_hub);
}
