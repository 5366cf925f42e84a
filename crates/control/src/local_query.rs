//! "Try a query" and the trend chart: a raw, plot, processed or values-at-times query with the
//! fields the app API takes, run on this machine against the open data source (as `uplink
//! query` does), answered as a table.

use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;
use uplink_model::time_expr::{self, Span};
use uplink_model::{
    AtTimesQuery, Boundary, ComputedBy, Function, ModelError, PlotQuery, ProcessedQuery, RawQuery,
    Sample, TagValue, TimeExpr,
};

use crate::tags::LiveValue;
use crate::{Control, ControlError, ControlErrorCode};

/// The most rows a table holds; a raw read that has more stops there and says so.
pub const MAX_ROWS: usize = 10_000;

/// Which query to run (the app API's routes `raw`, `plot`, `processed`, `values-at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum QueryKind {
    /// Stored values in a range.
    Raw,
    /// Shape-preserving down-sampling into equal intervals (a chart's points).
    Plot,
    /// Functions (AVG, MIN, MAX…) over fixed intervals.
    Processed,
    /// Interpolated values at given times.
    AtTimes,
}

/// A query with the app API's field names; times are Uplink time expressions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalQuery {
    /// Which query.
    pub kind: QueryKind,
    /// The tag.
    pub tag: String,
    /// Range start (raw, plot, processed), such as `*-1h`.
    #[serde(default)]
    #[ts(optional)]
    pub start: Option<String>,
    /// Range end; `*` (now) when absent.
    #[serde(default)]
    #[ts(optional)]
    pub end: Option<String>,
    /// Raw: stop after this many values.
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub max_count: Option<u64>,
    /// Plot: how many equal intervals.
    #[serde(default)]
    #[ts(optional)]
    pub intervals: Option<u32>,
    /// Processed: the interval length, such as `10m`.
    #[serde(default)]
    #[ts(optional)]
    pub interval: Option<String>,
    /// Processed: the functions.
    #[serde(default)]
    #[ts(optional)]
    pub functions: Option<Vec<String>>,
    /// Values at times: the instants.
    #[serde(default)]
    #[ts(optional)]
    pub times: Option<Vec<String>>,
}

/// A query's answer as a table.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct QueryTable {
    /// Column headings.
    pub columns: Vec<String>,
    /// One row per value or interval: a time (RFC 3339) first, then numbers, texts or null.
    #[ts(type = "Array<Array<number | string | null>>")]
    pub rows: Vec<Vec<Value>>,
    /// Whether more rows exist than the table holds ([`MAX_ROWS`]).
    pub truncated: bool,
    /// `source` when the data source computed the answer itself, `uplink` when Uplink did.
    pub computed_by: Option<String>,
}

fn invalid(field: &str, error: impl std::fmt::Display) -> ControlError {
    ControlError::new(
        ControlErrorCode::BadTimeExpression,
        format!("{field}: {error}"),
    )
}

fn model(error: ModelError) -> ControlError {
    ControlError::lower(error.code(), error.to_string())
}

fn time(field: &str, text: Option<&str>, default: Option<&str>) -> Result<TimeExpr, ControlError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .or(default)
        .ok_or_else(|| {
            ControlError::new(
                ControlErrorCode::Empty,
                format!("{field}: a time is needed, such as *-1h or 2026-11-25T08:00:00Z"),
            )
        })?;
    time_expr::parse(text).map_err(|e| invalid(field, e))
}

fn value_row(value: &TagValue) -> Vec<Value> {
    let shown = LiveValue::from_tag_value("", value);
    vec![
        Value::String(shown.time),
        shown.value,
        Value::String(shown.quality),
    ]
}

fn value_table(samples: &[Sample], by: Option<ComputedBy>) -> QueryTable {
    QueryTable {
        columns: vec!["Time".into(), "Value".into(), "Quality".into()],
        rows: samples
            .iter()
            .map(|s| value_row(&TagValue::from(*s)))
            .collect(),
        truncated: false,
        computed_by: by.map(computed_by),
    }
}

fn computed_by(by: ComputedBy) -> String {
    match by {
        ComputedBy::Source => "source".into(),
        ComputedBy::Uplink => "uplink".into(),
    }
}

impl Control {
    /// Runs `query` against the data source `source` on this machine.
    pub async fn run_query(
        &self,
        source: &str,
        query: LocalQuery,
    ) -> Result<QueryTable, ControlError> {
        if query.tag.trim().is_empty() {
            return Err(ControlError::new(
                ControlErrorCode::Empty,
                "tag: choose the tag to query",
            ));
        }
        let opened = self.opened_source(source).await?;
        // Samples are kept to the microsecond, so "now" is too.
        let now = time_expr::from_micros(time_expr::to_micros(Utc::now()));
        let tag = query.tag.trim().to_owned();
        let start = || time("start", query.start.as_deref(), None);
        let end = || time("end", query.end.as_deref(), Some("*"));
        match query.kind {
            QueryKind::Raw => {
                let request = RawQuery {
                    tag,
                    start: start()?,
                    end: end()?,
                    max_count: query.max_count,
                    boundary: Boundary::Inside,
                }
                .resolve(now)
                .map_err(model)?;
                let mut stream = opened.raw(&request).await?;
                let mut table = value_table(&[], None);
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    let room = MAX_ROWS - table.rows.len();
                    if chunk.len() > room {
                        table
                            .rows
                            .extend(chunk[..room].iter().map(|s| value_row(&TagValue::from(*s))));
                        table.truncated = true;
                        break;
                    }
                    table
                        .rows
                        .extend(chunk.iter().map(|s| value_row(&TagValue::from(*s))));
                }
                Ok(table)
            }
            QueryKind::Plot => {
                let request = PlotQuery {
                    tag,
                    start: start()?,
                    end: end()?,
                    intervals: query.intervals.unwrap_or(600),
                }
                .resolve(now)
                .map_err(model)?;
                let answer = opened.plot(&request).await?;
                Ok(value_table(&answer.values, Some(answer.by)))
            }
            QueryKind::AtTimes => {
                let texts = query.times.unwrap_or_default();
                let times = texts
                    .iter()
                    .filter(|t| !t.trim().is_empty())
                    .map(|t| time_expr::parse(t.trim()).map_err(|e| invalid("times", e)))
                    .collect::<Result<Vec<_>, _>>()?;
                let request = AtTimesQuery { tag, times }.resolve(now).map_err(model)?;
                let answer = opened.at_times(&request).await?;
                Ok(value_table(&answer.values, Some(answer.by)))
            }
            QueryKind::Processed => {
                let interval_text = query.interval.as_deref().unwrap_or("1h").trim();
                let interval: Span = interval_text.parse().map_err(|e| invalid("interval", e))?;
                let functions = query
                    .functions
                    .unwrap_or_else(|| vec!["AVG".into()])
                    .iter()
                    .filter(|f| !f.trim().is_empty())
                    .map(|f| f.trim().parse::<Function>().map_err(model))
                    .collect::<Result<Vec<_>, _>>()?;
                let request = ProcessedQuery {
                    tag,
                    start: start()?,
                    end: end()?,
                    interval,
                    functions,
                }
                .resolve(now)
                .map_err(model)?;
                let answer = opened.processed(&request).await?;
                let series = answer.values;
                let mut columns = vec!["Interval start".to_owned()];
                columns.extend(series.iter().map(|(f, _)| f.name().to_owned()));
                let count = series.first().map_or(0, |(_, s)| s.len());
                let truncated = count > MAX_ROWS;
                let rows = (0..count.min(MAX_ROWS))
                    .map(|row| {
                        let first = TagValue::from(series[0].1[row]);
                        let mut cells = vec![Value::String(first.time.to_rfc3339())];
                        cells.extend(series.iter().map(|(_, samples)| {
                            LiveValue::from_tag_value("", &TagValue::from(samples[row])).value
                        }));
                        cells
                    })
                    .collect();
                Ok(QueryTable {
                    columns,
                    rows,
                    truncated,
                    computed_by: Some(computed_by(answer.by)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_time_names_its_field() {
        let error = time("start", Some("*-8x"), None).unwrap_err();
        assert_eq!(error.code, ControlErrorCode::BadTimeExpression);
        assert!(error.message.starts_with("start: "), "{}", error.message);
        let missing = time("start", Some("  "), None).unwrap_err();
        assert_eq!(missing.code, ControlErrorCode::Empty);
        assert!(time("end", None, Some("*")).is_ok());
    }
}
