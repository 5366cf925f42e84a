//! The last checks before a query is relayed: its limits (through the model's own validation),
//! its relative times resolved by the hub's clock into absolute ones, and — when the data
//! source's capabilities are known — whether the source answers it at all.

use chrono::{DateTime, Utc};
use uplink_link::operation_of;
use uplink_model::{
    AtTimesQuery, Capabilities, EventsQuery, ModelError, PlotQuery, ProcessedQuery, Query,
    RawQuery, TimeExpr,
};

use super::error::ApiError;

/// `query` validated, with every time absolute as of `now`.
pub fn resolve(query: Query, now: DateTime<Utc>) -> Result<Query, ApiError> {
    Ok(match query {
        Query::Search(search) => {
            search.validate().map_err(|e| match e {
                ModelError::CountOutOfRange { .. } => invalid("limit", e),
                e => invalid("pattern", e),
            })?;
            Query::Search(search)
        }
        Query::Snapshot(snapshot) => {
            snapshot.validate().map_err(|e| invalid("tags", e))?;
            if let Some(i) = snapshot.tags.iter().position(String::is_empty) {
                return Err(ApiError::invalid(
                    format!("tags[{i}]"),
                    "a tag name must not be empty",
                ));
            }
            Query::Snapshot(snapshot)
        }
        Query::Raw(raw) => {
            require_tag(&raw.tag)?;
            each_end(&raw.start, &raw.end, now)?;
            let request = raw.resolve(now).map_err(|e| match e {
                ModelError::CountOutOfRange { .. } => invalid("maxCount", e),
                e => range_error(e),
            })?;
            Query::Raw(RawQuery {
                tag: request.tag,
                start: request.range.start.into(),
                end: request.range.end.into(),
                max_count: request.max_count,
                boundary: request.boundary,
            })
        }
        Query::Plot(plot) => {
            require_tag(&plot.tag)?;
            each_end(&plot.start, &plot.end, now)?;
            let request = plot.resolve(now).map_err(|e| match e {
                ModelError::CountOutOfRange { .. } => invalid("intervals", e),
                e => range_error(e),
            })?;
            Query::Plot(PlotQuery {
                tag: request.tag,
                start: request.range.start.into(),
                end: request.range.end.into(),
                intervals: request.intervals,
            })
        }
        Query::AtTimes(at) => {
            require_tag(&at.tag)?;
            for (i, time) in at.times.iter().enumerate() {
                time.resolve(now)
                    .map_err(|e| invalid(&format!("times[{i}]"), e))?;
            }
            let request = at.resolve(now).map_err(|e| invalid("times", e))?;
            Query::AtTimes(AtTimesQuery {
                tag: request.tag,
                times: request.times.into_iter().map(TimeExpr::from).collect(),
            })
        }
        Query::Processed(processed) => {
            require_tag(&processed.tag)?;
            each_end(&processed.start, &processed.end, now)?;
            let request = processed.resolve(now).map_err(|e| match e {
                ModelError::NonPositiveInterval { .. } | ModelError::CountOutOfRange { .. } => {
                    invalid("interval", e)
                }
                ModelError::Empty { .. } => invalid("functions", e),
                e => range_error(e),
            })?;
            Query::Processed(ProcessedQuery {
                tag: request.tag,
                start: request.range.start.into(),
                end: request.range.end.into(),
                interval: request.interval,
                functions: request.functions,
            })
        }
        Query::Events(events) => {
            each_end(&events.start, &events.end, now)?;
            let request = events.resolve(now).map_err(|e| match e {
                ModelError::CountOutOfRange { what, .. } if what.starts_with("the cursor") => {
                    invalid("cursor", e)
                }
                ModelError::CountOutOfRange { .. } => invalid("limit", e),
                ModelError::Empty { .. } => invalid("cursor", e),
                e => range_error(e),
            })?;
            Query::Events(EventsQuery {
                start: request.range.start.into(),
                end: request.range.end.into(),
                limit: Some(request.limit),
                cursor: request.cursor,
            })
        }
    })
}

/// Refuses a query the data source says it does not answer, naming what it does offer.
pub fn check_supported(
    query: &Query,
    capabilities: &Capabilities,
    source: &str,
) -> Result<(), ApiError> {
    let operation = operation_of(query);
    let answers = match query {
        Query::Search(_) => capabilities.search,
        Query::Snapshot(_) => capabilities.snapshot,
        Query::Raw(_) => capabilities.raw,
        Query::Plot(_) => capabilities.plot,
        Query::AtTimes(_) => capabilities.at_times,
        Query::Processed(_) => !capabilities.processed.is_empty(),
        Query::Events(_) => capabilities.events,
    };
    if !answers {
        return Err(ApiError::Unsupported(format!(
            "the data source '{source}' does not answer {operation} queries"
        )));
    }
    if let Query::Processed(processed) = query {
        let missing: Vec<&str> = processed
            .functions
            .iter()
            .filter(|f| !capabilities.supports(**f))
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            let offered: Vec<&str> = capabilities
                .processed
                .iter()
                .map(|d| d.name.name())
                .collect();
            return Err(ApiError::Unsupported(format!(
                "functions: the data source '{source}' does not offer {} (it offers {})",
                missing.join(", "),
                offered.join(", ")
            )));
        }
    }
    Ok(())
}

fn invalid(field: &str, error: ModelError) -> ApiError {
    ApiError::invalid(field, error.to_string())
}

fn require_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() {
        return Err(ApiError::invalid("tag", "must not be empty"));
    }
    Ok(())
}

/// Resolves each end alone first, so an end that cannot be resolved is named.
fn each_end(start: &TimeExpr, end: &TimeExpr, now: DateTime<Utc>) -> Result<(), ApiError> {
    start.resolve(now).map_err(|e| invalid("start", e))?;
    end.resolve(now).map_err(|e| invalid("end", e))?;
    Ok(())
}

/// A range that is reversed is the start's fault; one that is empty, the end's.
fn range_error(error: ModelError) -> ApiError {
    match error {
        ModelError::EmptyRange { .. } => invalid("end", error),
        e => invalid("start", e),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uplink_model::{Function, FunctionDescriptor};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn query(json: &str) -> Query {
        serde_json::from_str(json).unwrap()
    }

    fn error(json: &str) -> String {
        resolve(query(json), now()).unwrap_err().to_string()
    }

    #[test]
    fn relative_times_become_absolute() {
        let resolved = resolve(
            query(r#"{"type":"raw","tag":"T","start":"*-8h","end":"*"}"#),
            now(),
        )
        .unwrap();
        let json = serde_json::to_value(&resolved).unwrap();
        assert_eq!(json["start"], "2026-11-25T04:00:00Z");
        assert_eq!(json["end"], "2026-11-25T12:00:00Z");

        let Query::AtTimes(at) = resolve(
            query(r#"{"type":"atTimes","tag":"T","times":["*-1h","2026-01-01T00:00:00Z"]}"#),
            now(),
        )
        .unwrap() else {
            panic!("atTimes expected")
        };
        assert!(at.times.iter().all(|t| !t.is_relative()));
    }

    #[test]
    fn limits_are_named_by_field() {
        assert!(
            error(r#"{"type":"raw","tag":"T","start":"*","end":"*-1h"}"#)
                .starts_with("start: the start time")
        );
        assert!(
            error(r#"{"type":"plot","tag":"T","start":"*-1h","end":"*","intervals":0}"#)
                .starts_with("intervals: the number of intervals")
        );
        assert!(
            error(r#"{"type":"plot","tag":"T","start":"*","end":"*","intervals":5}"#)
                .starts_with("end: the time range is empty")
        );
        assert!(
            error(r#"{"type":"raw","tag":"T","start":"*-1h","end":"*","maxCount":0}"#)
                .starts_with("maxCount: ")
        );
        assert!(
            error(
                r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"0s","functions":["AVG"]}"#
            )
            .starts_with("interval: ")
        );
        assert!(
            error(
                r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":[]}"#
            )
            .starts_with("functions: ")
        );
        assert!(
            error(r#"{"type":"raw","tag":"T","start":"*-1000000y","end":"*"}"#)
                .starts_with("start: ")
        );
        assert!(error(r#"{"type":"snapshot","tags":[]}"#).starts_with("tags: "));
        assert!(error(r#"{"type":"search","pattern":"*","limit":0}"#).starts_with("limit: "));
        assert!(error(r#"{"type":"raw","tag":"","start":"*-1h","end":"*"}"#).starts_with("tag: "));
    }

    #[test]
    fn unsupported_queries_and_functions_are_refused() {
        let capabilities = Capabilities {
            search: true,
            snapshot: true,
            raw: true,
            plot: false,
            at_times: true,
            processed: vec![FunctionDescriptor {
                name: Function::Avg,
                description: "mean".into(),
                time_weighted: false,
            }],
            subscribe: false,
            events: false,
            write: false,
        };
        let plot = query(r#"{"type":"plot","tag":"T","start":"*-1h","end":"*","intervals":5}"#);
        let err = check_supported(&plot, &capabilities, "line-1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the data source 'line-1' does not answer plot queries"
        );
        let processed = query(
            r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":["AVG","MAX"]}"#,
        );
        let err = check_supported(&processed, &capabilities, "line-1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "functions: the data source 'line-1' does not offer MAX (it offers AVG)"
        );
        let avg = query(
            r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":["AVG"]}"#,
        );
        assert!(check_supported(&avg, &capabilities, "line-1").is_ok());
    }
}
