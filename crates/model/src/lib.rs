//! Uplink's data-access model: data sources, tags, values, queries, time expressions and the
//! aggregation every data source shares.
//!
//! Connectors, the hub and the app API all speak these types; their JSON form (camelCase, times
//! in RFC 3339 UTC) is the wire format of the app API and of the connector link.
//!
//! - [`DataSourceDescriptor`], [`Capabilities`], [`Tag`], [`TagValue`], [`Status`]: what there is.
//! - [`Query`] and its parts: what an app asks, with [`time_expr`] times; each resolves into a
//!   validated request (`RawRequest`, `PlotRequest`…) that a data source answers.
//! - [`EventMessage`] and [`EventsQuery`]: alarms and events, read by time range a page at a
//!   time.
//! - [`Computed`] / [`ComputedBy`]: whether a computed answer came from the source itself or
//!   from Uplink's model.
//! - [`aggregate`]: plot, processed functions and interpolation as pure functions over
//!   [`Sample`]s, so a source that can read raw values answers everything else for free.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use uplink_model::{aggregate, Function, PlotQuery, Sample};
//!
//! let query: PlotQuery = serde_json::from_str(
//!     r#"{"tag":"TI100","start":"*-1h","end":"*","intervals":2}"#,
//! ).unwrap();
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! let request = query.resolve(now).unwrap();
//!
//! let start = request.range.start_us();
//! let samples: Vec<Sample> = (0..3600).map(|s| Sample::good(start + s * 1_000_000, s as f64)).collect();
//! let points = aggregate::plot(&samples, &request.intervals());
//! assert_eq!(points.len(), 4); // first and last of each half: a ramp's extremes
//! ```
#![warn(missing_docs)]

pub mod aggregate;
mod computed;
mod error;
mod event;
mod function;
mod pattern;
mod query;
mod source;
mod status;
mod tag;
pub mod time_expr;
mod value;

pub use computed::{Computed, ComputedBy, UnknownComputedBy};
pub use error::ModelError;
pub use event::{
    EventMessage, EventPage, EventPriority, EventsQuery, EventsRequest, MAX_CURSOR_LEN,
    MAX_EVENT_PAGE,
};
pub use function::{Function, FunctionDescriptor};
pub use pattern::{MAX_PATTERN_LEN, NamePattern};
pub use query::{
    AtTimesQuery, AtTimesRequest, Boundary, MAX_INTERVALS, MAX_PAGE_SIZE, MAX_RAW_COUNT,
    MAX_SNAPSHOT_TAGS, MAX_TIMES, PlotQuery, PlotRequest, ProcessedQuery, ProcessedRequest,
    ProcessedSeries, Query, RawQuery, RawRequest, SnapshotQuery, TagPage, TagSearch, TimeRange,
};
pub use source::{Capabilities, DataSourceDescriptor};
pub use status::{Status, UnknownStatus};
pub use tag::{DataType, Tag};
pub use time_expr::{Span, TimeExpr};
pub use value::{Sample, TagValue, rfc3339};
