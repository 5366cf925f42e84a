//! Queries as apps write them ([`Query`] and its parts, with time expressions), and the validated,
//! resolved requests data sources answer ([`RawRequest`], [`PlotRequest`]…).
//!
//! A query becomes a request by [`resolve`](RawQuery::resolve)-ing its time expressions against
//! one "now" and checking every limit, so a data source never sees a reversed range, a zero
//! interval or an absurd count.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use uplink_model::{Query, ModelError};
//!
//! let query: Query = serde_json::from_str(
//!     r#"{"type":"processed","tag":"FIC101.PV","start":"*-1d","end":"*","interval":"1h","functions":["AVG","MAX"]}"#,
//! ).unwrap();
//! let Query::Processed(processed) = query else { unreachable!() };
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
//! assert_eq!(processed.resolve(now).unwrap().intervals().count(), 24);
//!
//! let mut reversed = processed.clone();
//! std::mem::swap(&mut reversed.start, &mut reversed.end);
//! assert_eq!(reversed.resolve(now).unwrap_err().code(), "start_after_end");
//! ```

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Intervals;
use crate::time_expr::{Span, TimeExpr, to_micros};
use crate::{Function, ModelError, NamePattern, Tag};

/// The most tags a search returns in one page.
pub const MAX_PAGE_SIZE: u32 = 10_000;
/// The most tags one snapshot query reads.
pub const MAX_SNAPSHOT_TAGS: usize = 10_000;
/// The most values a raw query may ask for (reads stream; this guards against typing mistakes).
pub const MAX_RAW_COUNT: u64 = 1_000_000_000;
/// The most intervals a plot or processed query may divide its range into.
pub const MAX_INTERVALS: u64 = 1_000_000;
/// The most instants one values-at-times query may ask for.
pub const MAX_TIMES: usize = 100_000;

/// Any query, tagged by `type` on the wire (`"search"`, `"snapshot"`, `"raw"`, `"plot"`,
/// `"atTimes"`, `"processed"`, `"events"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Query {
    /// Find tags by name.
    Search(TagSearch),
    /// Current values.
    Snapshot(SnapshotQuery),
    /// Stored values in a range.
    Raw(RawQuery),
    /// Shape-preserving down-sampling.
    Plot(PlotQuery),
    /// Interpolated values at given instants.
    AtTimes(AtTimesQuery),
    /// Functions over fixed intervals.
    Processed(ProcessedQuery),
    /// Alarms and events in a range, a page at a time.
    Events(crate::EventsQuery),
}

/// A resolved time range, both ends inclusive for raw reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    /// The first instant.
    #[serde(with = "crate::value::rfc3339")]
    pub start: DateTime<Utc>,
    /// The last instant.
    #[serde(with = "crate::value::rfc3339")]
    pub end: DateTime<Utc>,
}

impl TimeRange {
    /// A range, refusing a start after the end.
    ///
    /// # Errors
    /// [`ModelError::StartAfterEnd`].
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, ModelError> {
        if start > end {
            return Err(ModelError::StartAfterEnd {
                start: rfc3339(start),
                end: rfc3339(end),
            });
        }
        Ok(Self { start, end })
    }

    /// Resolves two expressions against the same "now".
    ///
    /// # Errors
    /// As [`TimeExpr::resolve`] and [`TimeRange::new`].
    pub fn resolve(
        start: &TimeExpr,
        end: &TimeExpr,
        now: DateTime<Utc>,
    ) -> Result<Self, ModelError> {
        Self::new(start.resolve(now)?, end.resolve(now)?)
    }

    /// The start in microseconds since the epoch.
    pub fn start_us(&self) -> i64 {
        to_micros(self.start)
    }

    /// The end in microseconds since the epoch.
    pub fn end_us(&self) -> i64 {
        to_micros(self.end)
    }

    fn require_length(&self, what: &'static str) -> Result<(), ModelError> {
        if self.start == self.end {
            return Err(ModelError::EmptyRange {
                at: rfc3339(self.start),
                what,
            });
        }
        Ok(())
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) fn check_count(
    what: &'static str,
    value: u64,
    min: u64,
    max: u64,
) -> Result<(), ModelError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ModelError::CountOutOfRange {
            what,
            value,
            min,
            max,
        })
    }
}

/// Find tags whose name matches a pattern (`*` any run, `?` one character), a page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagSearch {
    /// The name pattern, case-insensitive.
    pub pattern: String,
    /// How many matches to skip (the previous page's `nextOffset`).
    #[serde(default)]
    pub offset: u64,
    /// The most tags in this page.
    #[serde(default = "TagSearch::default_limit")]
    pub limit: u32,
}

impl TagSearch {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;

    fn default_limit() -> u32 {
        Self::DEFAULT_LIMIT
    }

    /// A search for the first page of matches.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            offset: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }

    /// Checks the page size and compiles the pattern.
    ///
    /// # Errors
    /// [`ModelError::BadPattern`], or [`ModelError::CountOutOfRange`] for the page size.
    pub fn validate(&self) -> Result<NamePattern, ModelError> {
        check_count(
            "the page size",
            u64::from(self.limit),
            1,
            u64::from(MAX_PAGE_SIZE),
        )?;
        NamePattern::new(&self.pattern)
    }

    /// Pages through `tags` (in the source's order) with this search's pattern, offset and limit.
    ///
    /// # Errors
    /// As [`TagSearch::validate`].
    pub fn page<'a>(&self, tags: impl IntoIterator<Item = &'a Tag>) -> Result<TagPage, ModelError> {
        let pattern = self.validate()?;
        let mut matching = tags.into_iter().filter(|tag| pattern.matches(&tag.name));
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let page: Vec<Tag> = matching
            .by_ref()
            .skip(skip)
            .take(self.limit as usize)
            .cloned()
            .collect();
        let more = matching.next().is_some();
        Ok(TagPage {
            next_offset: more.then(|| self.offset + page.len() as u64),
            tags: page,
        })
    }
}

/// One page of a tag search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagPage {
    /// The matching tags in this page.
    pub tags: Vec<Tag>,
    /// The offset of the next page, absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// The current value of each tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotQuery {
    /// Tag names.
    pub tags: Vec<String>,
}

impl SnapshotQuery {
    /// Checks the tag list.
    ///
    /// # Errors
    /// [`ModelError::Empty`] or [`ModelError::CountOutOfRange`].
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.tags.is_empty() {
            return Err(ModelError::Empty {
                what: "the list of tags",
            });
        }
        check_count(
            "the number of tags",
            self.tags.len() as u64,
            1,
            MAX_SNAPSHOT_TAGS as u64,
        )
    }
}

/// Whether a raw read includes the values just outside its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Boundary {
    /// Only values with start ≤ time ≤ end.
    #[default]
    Inside,
    /// Also the last value before the start and the first after the end (when no value sits
    /// exactly on that end), so a client can interpolate at the edges.
    Outside,
}

/// Stored values of one tag in a range, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawQuery {
    /// Tag name.
    pub tag: String,
    /// Range start.
    pub start: TimeExpr,
    /// Range end.
    pub end: TimeExpr,
    /// The most values to return; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Edge handling.
    #[serde(default)]
    pub boundary: Boundary,
}

/// A validated raw read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRequest {
    /// Tag name.
    pub tag: String,
    /// The range.
    pub range: TimeRange,
    /// The most values to return; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
    /// Edge handling.
    #[serde(default)]
    pub boundary: Boundary,
}

impl RawQuery {
    /// Resolves the times and checks the count.
    ///
    /// # Errors
    /// Bad or reversed times, or a count of 0 or above [`MAX_RAW_COUNT`].
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<RawRequest, ModelError> {
        if let Some(max) = self.max_count {
            check_count("the maximum count", max, 1, MAX_RAW_COUNT)?;
        }
        Ok(RawRequest {
            tag: self.tag.clone(),
            range: TimeRange::resolve(&self.start, &self.end, now)?,
            max_count: self.max_count,
            boundary: self.boundary,
        })
    }
}

/// Shape-preserving down-sampling of one tag: per interval the first, last, smallest and
/// largest values, so a chart of the result looks like a chart of everything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlotQuery {
    /// Tag name.
    pub tag: String,
    /// Range start.
    pub start: TimeExpr,
    /// Range end.
    pub end: TimeExpr,
    /// How many equal intervals (often the chart's width in pixels).
    pub intervals: u32,
}

/// A validated plot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlotRequest {
    /// Tag name.
    pub tag: String,
    /// The range, of some length.
    pub range: TimeRange,
    /// Number of equal intervals.
    pub intervals: u32,
}

impl PlotQuery {
    /// Resolves the times and checks the interval count.
    ///
    /// # Errors
    /// Bad, reversed or equal times; 0 or more than [`MAX_INTERVALS`] intervals.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<PlotRequest, ModelError> {
        check_count(
            "the number of intervals",
            u64::from(self.intervals),
            1,
            MAX_INTERVALS,
        )?;
        let range = TimeRange::resolve(&self.start, &self.end, now)?;
        range.require_length("a plot")?;
        Ok(PlotRequest {
            tag: self.tag.clone(),
            range,
            intervals: self.intervals,
        })
    }
}

impl PlotRequest {
    /// The equal intervals the range is divided into.
    pub fn intervals(&self) -> Intervals {
        Intervals::split(self.range.start_us(), self.range.end_us(), self.intervals)
    }
}

/// Values of one tag at given instants, interpolated between stored values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtTimesQuery {
    /// Tag name.
    pub tag: String,
    /// The instants, in any order; answers keep that order.
    pub times: Vec<TimeExpr>,
}

/// A validated values-at-times read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtTimesRequest {
    /// Tag name.
    pub tag: String,
    /// The instants, in the order asked.
    #[serde(with = "rfc3339_list")]
    pub times: Vec<DateTime<Utc>>,
}

impl AtTimesQuery {
    /// Resolves every instant and checks how many there are.
    ///
    /// # Errors
    /// An empty list, more than [`MAX_TIMES`] instants, or a bad time.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<AtTimesRequest, ModelError> {
        if self.times.is_empty() {
            return Err(ModelError::Empty {
                what: "the list of times",
            });
        }
        check_count(
            "the number of times",
            self.times.len() as u64,
            1,
            MAX_TIMES as u64,
        )?;
        let times = self
            .times
            .iter()
            .map(|time| time.resolve(now))
            .collect::<Result<_, _>>()?;
        Ok(AtTimesRequest {
            tag: self.tag.clone(),
            times,
        })
    }
}

impl AtTimesRequest {
    /// The instants in microseconds since the epoch.
    pub fn times_us(&self) -> Vec<i64> {
        self.times.iter().copied().map(to_micros).collect()
    }
}

/// Functions of one tag over fixed intervals (hourly averages, daily maxima…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessedQuery {
    /// Tag name.
    pub tag: String,
    /// Range start.
    pub start: TimeExpr,
    /// Range end.
    pub end: TimeExpr,
    /// Interval length (`1h`, `15m`, `1d`).
    pub interval: Span,
    /// The functions to compute, each over every interval.
    pub functions: Vec<Function>,
}

/// A validated processed read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessedRequest {
    /// Tag name.
    pub tag: String,
    /// The range, of some length.
    pub range: TimeRange,
    /// Interval length, above zero.
    pub interval: Span,
    /// The functions, without repeats, in the order first asked.
    pub functions: Vec<Function>,
}

impl ProcessedQuery {
    /// Resolves the times and checks the interval and functions.
    ///
    /// # Errors
    /// Bad, reversed or equal times; a zero or negative interval; more than [`MAX_INTERVALS`]
    /// intervals; no functions.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<ProcessedRequest, ModelError> {
        if self.interval.as_micros() <= 0 {
            return Err(ModelError::NonPositiveInterval {
                interval: self.interval.to_string(),
            });
        }
        if self.functions.is_empty() {
            return Err(ModelError::Empty {
                what: "the list of functions",
            });
        }
        let range = TimeRange::resolve(&self.start, &self.end, now)?;
        range.require_length("a processed query")?;
        let length = u64::try_from(range.end_us() - range.start_us()).unwrap_or(u64::MAX);
        let step = self.interval.as_micros() as u64;
        check_count(
            "the number of intervals",
            length.div_ceil(step),
            1,
            MAX_INTERVALS,
        )?;
        let mut functions = Vec::with_capacity(self.functions.len());
        for function in &self.functions {
            if !functions.contains(function) {
                functions.push(*function);
            }
        }
        Ok(ProcessedRequest {
            tag: self.tag.clone(),
            range,
            interval: self.interval,
            functions,
        })
    }
}

impl ProcessedRequest {
    /// The intervals: `interval` long from the start, the last one cut at the end.
    pub fn intervals(&self) -> Intervals {
        Intervals::every(
            self.range.start_us(),
            self.range.end_us(),
            self.interval.as_micros(),
        )
    }
}

/// One function's results, one value per interval stamped with the interval's start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessedSeries {
    /// The function.
    pub function: Function,
    /// One value per interval.
    pub values: Vec<crate::TagValue>,
}

mod rfc3339_list {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(transparent)]
    struct Wire(#[serde(with = "crate::value::rfc3339")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(
        times: &[DateTime<Utc>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(times.iter().map(|&t| Wire(t)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<DateTime<Utc>>, D::Error> {
        Ok(Vec::<Wire>::deserialize(deserializer)?
            .into_iter()
            .map(|Wire(t)| t)
            .collect())
    }
}

#[cfg(test)]
mod tests;
