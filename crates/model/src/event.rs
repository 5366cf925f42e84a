//! Alarms and events: what a data source says happened (a limit crossed, an alarm acknowledged,
//! a value back to normal), read by time range a page at a time or pushed to subscribers.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use uplink_model::{EventPriority, EventsQuery};
//!
//! let query: EventsQuery = serde_json::from_str(r#"{"start":"*-1h","end":"*","limit":50}"#).unwrap();
//! let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
//! let request = query.resolve(now).unwrap();
//! assert_eq!(request.limit, 50);
//! assert!(EventPriority::Critical > EventPriority::High);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::time_expr::TimeExpr;
use crate::{ModelError, TimeRange};

/// The most events one page may hold.
pub const MAX_EVENT_PAGE: u32 = 10_000;
/// The longest cursor a source may hand out (and an app send back).
pub const MAX_CURSOR_LEN: usize = 256;

/// How urgent an event is, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventPriority {
    /// For the record (a value back to normal, an acknowledgement).
    Low,
    /// Worth a look.
    Medium,
    /// Needs attention soon.
    High,
    /// Needs attention now.
    Critical,
}

impl EventPriority {
    /// The wire name (`low`, `medium`, `high`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The priority of a severity from 0 to 1000, as OPC UA rates events: up to 250 low, up
    /// to 500 medium, up to 750 high, above that critical. `None` outside 0 to 1000 (and for
    /// NaN). Every source that reads severities maps them with this one function.
    pub fn from_severity(severity: f64) -> Option<Self> {
        if !(0.0..=1000.0).contains(&severity) {
            return None;
        }
        Some(if severity <= 250.0 {
            Self::Low
        } else if severity <= 500.0 {
            Self::Medium
        } else if severity <= 750.0 {
            Self::High
        } else {
            Self::Critical
        })
    }
}

impl fmt::Display for EventPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alarm or event, as a data source reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMessage {
    /// Unique within its data source; also where a time-range read can resume after it.
    pub id: String,
    /// The data source's name.
    pub source: String,
    /// When it happened.
    #[serde(with = "crate::value::rfc3339")]
    pub time: DateTime<Utc>,
    /// What it is about: a tag, an area, an MQTT topic, an OPC UA node.
    pub topic: String,
    /// How urgent it is.
    pub priority: EventPriority,
    /// The family of event (`process`, `system`, …).
    #[serde(default)]
    pub category: String,
    /// What happened (`alarm`, `returnToNormal`, `acknowledged`, …).
    #[serde(rename = "type")]
    pub event_type: String,
    /// What happened, for people.
    pub message: String,
    /// Anything else the source knows (limit, value, condition…).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Events of a data source in a time range, oldest first, a page at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    /// Range start.
    pub start: TimeExpr,
    /// Range end.
    pub end: TimeExpr,
    /// The most events in this page (default [`EventsQuery::DEFAULT_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// The previous page's `next`: this page starts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A validated events read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsRequest {
    /// Events with start ≤ time ≤ end.
    pub range: TimeRange,
    /// The most events in the page (1 to [`MAX_EVENT_PAGE`]).
    pub limit: u32,
    /// Where the page starts (after this event), as the source handed it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl EventsQuery {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: u32 = 100;

    /// Resolves the times and checks the page size and cursor.
    ///
    /// # Errors
    /// Bad or reversed times, a page size of 0 or above [`MAX_EVENT_PAGE`], an empty cursor or
    /// one longer than [`MAX_CURSOR_LEN`].
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<EventsRequest, ModelError> {
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        crate::query::check_count(
            "the page size",
            u64::from(limit),
            1,
            u64::from(MAX_EVENT_PAGE),
        )?;
        if let Some(cursor) = &self.cursor {
            if cursor.is_empty() {
                return Err(ModelError::Empty { what: "the cursor" });
            }
            crate::query::check_count(
                "the cursor's length",
                cursor.len() as u64,
                1,
                MAX_CURSOR_LEN as u64,
            )?;
        }
        Ok(EventsRequest {
            range: TimeRange::resolve(&self.start, &self.end, now)?,
            limit,
            cursor: self.cursor.clone(),
        })
    }
}

/// One page of an events read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPage {
    /// The events, oldest first.
    pub events: Vec<EventMessage>,
    /// The cursor of the next page, absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn an_event_is_camel_case_json_with_its_type() {
        let event = EventMessage {
            id: "e1".into(),
            source: "line-1".into(),
            time: Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
            topic: "TI100".into(),
            priority: EventPriority::High,
            category: "process".into(),
            event_type: "alarm".into(),
            message: "TI100 high".into(),
            properties: BTreeMap::from([("limit".into(), "58".into())]),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "alarm");
        assert_eq!(json["priority"], "high");
        assert_eq!(json["time"], "2026-05-01T12:00:00Z");
        assert_eq!(json["properties"]["limit"], "58");
        let back: EventMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn severities_map_to_priorities_by_quarters() {
        for (severity, priority) in [
            (0.0, EventPriority::Low),
            (1.0, EventPriority::Low),
            (250.0, EventPriority::Low),
            (250.5, EventPriority::Medium),
            (500.0, EventPriority::Medium),
            (501.0, EventPriority::High),
            (750.0, EventPriority::High),
            (751.0, EventPriority::Critical),
            (1000.0, EventPriority::Critical),
        ] {
            assert_eq!(
                EventPriority::from_severity(severity),
                Some(priority),
                "{severity}"
            );
        }
        for bad in [-1.0, 1000.5, f64::NAN, f64::INFINITY] {
            assert_eq!(EventPriority::from_severity(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_query_checks_its_page_size_and_cursor() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
        let mut query: EventsQuery = serde_json::from_str(r#"{"start":"*-1h","end":"*"}"#).unwrap();
        assert_eq!(
            query.resolve(now).unwrap().limit,
            EventsQuery::DEFAULT_LIMIT
        );
        query.limit = Some(0);
        assert_eq!(query.resolve(now).unwrap_err().code(), "count_out_of_range");
        query.limit = Some(MAX_EVENT_PAGE + 1);
        assert!(query.resolve(now).is_err());
        query.limit = Some(10);
        query.cursor = Some("x".repeat(MAX_CURSOR_LEN + 1));
        assert!(query.resolve(now).is_err());
        query.cursor = Some(String::new());
        assert!(query.resolve(now).is_err());
        std::mem::swap(&mut query.start, &mut query.end);
        query.cursor = None;
        assert_eq!(query.resolve(now).unwrap_err().code(), "start_after_end");
    }
}
