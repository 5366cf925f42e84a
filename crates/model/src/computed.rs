//! Where a computed answer (plot, values at times, processed) was worked out: by the data
//! source itself (a historian's own aggregation, pushed down) or by Uplink's model from a raw
//! read. Apps see it as the `Uplink-Computed-By` response header.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who computed an answer.
///
/// ```
/// use uplink_model::ComputedBy;
///
/// assert_eq!(serde_json::to_string(&ComputedBy::Source).unwrap(), r#""source""#);
/// assert_eq!("uplink".parse::<ComputedBy>(), Ok(ComputedBy::Uplink));
/// assert_eq!(ComputedBy::Uplink.to_string(), "uplink");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ComputedBy {
    /// The data source answered it itself (OPC UA HistoryRead processed or at-time, a
    /// database's own aggregation).
    Source,
    /// Uplink's model computed it from the source's raw values.
    Uplink,
}

impl ComputedBy {
    /// The wire name: `source` or `uplink`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Uplink => "uplink",
        }
    }

    /// `Source` when every part was, else `Uplink` (an answer of several series, some pushed
    /// down and some computed, counts as Uplink's).
    pub fn and(self, other: ComputedBy) -> ComputedBy {
        if self == Self::Source && other == Self::Source {
            Self::Source
        } else {
            Self::Uplink
        }
    }
}

impl fmt::Display for ComputedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is neither `source` nor `uplink`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not who computed an answer (source or uplink)")]
pub struct UnknownComputedBy(pub String);

impl FromStr for ComputedBy {
    type Err = UnknownComputedBy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("source") => Ok(Self::Source),
            t if t.eq_ignore_ascii_case("uplink") => Ok(Self::Uplink),
            other => Err(UnknownComputedBy(other.to_owned())),
        }
    }
}

/// A computed answer and who computed it.
///
/// ```
/// use uplink_model::{Computed, ComputedBy};
///
/// let answer = Computed::by_uplink(vec![1, 2, 3]);
/// assert_eq!(answer.by, ComputedBy::Uplink);
/// assert_eq!(answer.map(|v| v.len()).values, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Computed<T> {
    /// The answer.
    pub values: T,
    /// Who computed it.
    pub by: ComputedBy,
}

impl<T> Computed<T> {
    /// An answer the data source computed itself.
    pub fn by_source(values: T) -> Self {
        Self {
            values,
            by: ComputedBy::Source,
        }
    }

    /// An answer Uplink computed from raw values.
    pub fn by_uplink(values: T) -> Self {
        Self {
            values,
            by: ComputedBy::Uplink,
        }
    }

    /// The same provenance over a transformed answer.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Computed<U> {
        Computed {
            values: f(self.values),
            by: self.by,
        }
    }
}
