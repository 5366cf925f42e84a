//! A data source's recent alarms and events for its page: the newest first, read on this
//! machine from the open source (as an app's events read is), without the hub.
//!
//! Sources hand events out oldest first, a page at a time. To find the newest without reading
//! a busy source's whole hour, the read starts with the last few minutes and widens the window
//! only while it holds fewer events than asked for.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::Serialize;
use ts_rs::TS;
use uplink_connector::DataSource;
use uplink_model::time_expr;
use uplink_model::{EventMessage, EventsQuery, ModelError, TimeExpr};

use crate::{Control, ControlError, ControlErrorCode};

/// How far back the events are read when the page does not say.
pub const DEFAULT_EVENTS_SINCE: &str = "*-1h";
/// How many events are shown when the page does not say.
pub const DEFAULT_EVENTS_LIMIT: u32 = 200;
/// The most events one read answers.
pub const MAX_EVENTS_LIMIT: u32 = 1_000;
/// The source pages read per request (each of at most this many events).
const PAGE: u32 = 1_000;
/// The most source pages one read walks before it gives up on older events.
const MAX_PAGES: usize = 100;
/// The windows tried, in seconds back from now, before the whole range back to `since`.
const WINDOWS_SECONDS: [Option<i64>; 3] = [Some(5 * 60), Some(20 * 60), None];

/// One alarm or event as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct SourceEvent {
    /// Unique within its data source.
    pub id: String,
    /// When it happened (RFC 3339).
    pub time: String,
    /// What it is about: a tag, an area, a topic.
    pub topic: String,
    /// `low`, `medium`, `high` or `critical`.
    pub priority: String,
    /// The family of event (`process`, `system`…); may be empty.
    pub category: String,
    /// What happened (`alarm`, `returnToNormal`, `acknowledged`…).
    pub event_type: String,
    /// What happened, for people.
    pub message: String,
}

impl From<EventMessage> for SourceEvent {
    fn from(event: EventMessage) -> Self {
        Self {
            id: event.id,
            time: event.time.to_rfc3339(),
            topic: event.topic,
            priority: event.priority.as_str().to_owned(),
            category: event.category,
            event_type: event.event_type,
            message: event.message,
        }
    }
}

/// A data source's recent events.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct RecentEvents {
    /// The events, newest first.
    pub events: Vec<SourceEvent>,
    /// Whether older events in the range may have been left out (the limit was reached).
    pub truncated: bool,
}

fn model(error: ModelError) -> ControlError {
    ControlError::lower(error.code(), error.to_string())
}

impl Control {
    /// The newest events of `source` since `since` (a time expression, [`DEFAULT_EVENTS_SINCE`]
    /// when absent), at most `limit` ([`DEFAULT_EVENTS_LIMIT`] when absent), newest first.
    pub async fn source_events(
        &self,
        source: &str,
        since: Option<&str>,
        limit: Option<u32>,
    ) -> Result<RecentEvents, ControlError> {
        let limit = limit.unwrap_or(DEFAULT_EVENTS_LIMIT);
        if !(1..=MAX_EVENTS_LIMIT).contains(&limit) {
            return Err(ControlError::new(
                ControlErrorCode::CountOutOfRange,
                format!("limit: {limit} events; choose 1 to {MAX_EVENTS_LIMIT}"),
            ));
        }
        let since = since
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_EVENTS_SINCE);
        let since = time_expr::parse(since).map_err(|e| {
            ControlError::new(ControlErrorCode::BadTimeExpression, format!("since: {e}"))
        })?;
        let opened = self.opened_source(source).await?;
        // Events are kept to the microsecond, so "now" is too.
        let now = time_expr::from_micros(time_expr::to_micros(Utc::now()));
        let earliest = since.resolve(now).map_err(model)?;
        if earliest > now {
            return Err(ControlError::new(
                ControlErrorCode::StartAfterEnd,
                "since: the time is in the future",
            ));
        }

        newest(&*opened, earliest, now, limit).await
    }
}

/// The newest `limit` events of `source` from `earliest` to `now`, newest first.
async fn newest(
    source: &dyn DataSource,
    earliest: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<RecentEvents, ControlError> {
    let mut pages = 0;
    for seconds in WINDOWS_SECONDS {
        let start = seconds
            .and_then(|s| now.checked_sub_signed(chrono::Duration::seconds(s)))
            .map_or(earliest, |start| start.max(earliest));
        let widest = start == earliest;
        let (newest, dropped) = read_window(source, start, now, limit, &mut pages).await?;
        if newest.len() == limit as usize || widest {
            return Ok(RecentEvents {
                truncated: dropped || !widest,
                events: newest.into_iter().rev().map(SourceEvent::from).collect(),
            });
        }
    }
    unreachable!("the last window reaches `earliest`")
}

/// The newest `limit` events from `start` to `end`, oldest first, and whether older ones in the
/// window were dropped (or left unread after [`MAX_PAGES`] pages).
async fn read_window(
    source: &dyn DataSource,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    limit: u32,
    pages: &mut usize,
) -> Result<(VecDeque<EventMessage>, bool), ControlError> {
    let mut newest = VecDeque::with_capacity(limit as usize);
    let mut dropped = false;
    let mut cursor = None;
    loop {
        let request = EventsQuery {
            start: TimeExpr::Absolute(start),
            end: TimeExpr::Absolute(end),
            limit: Some(PAGE),
            cursor: cursor.take(),
        }
        .resolve(end)
        .map_err(model)?;
        let page = source.events(&request).await?;
        *pages += 1;
        for event in page.events {
            if newest.len() == limit as usize {
                newest.pop_front();
                dropped = true;
            }
            newest.push_back(event);
        }
        match page.next {
            Some(next) if *pages < MAX_PAGES => cursor = Some(next),
            Some(_) => return Ok((newest, true)),
            None => return Ok((newest, dropped)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use uplink_connector::{Health, RawStream, SourceError};
    use uplink_model::{
        Capabilities, DataSourceDescriptor, EventPage, EventPriority, EventsRequest, RawRequest,
        TagPage, TagSearch, TagValue,
    };

    use super::*;

    /// Events at fixed times, paged by index, counting the pages read.
    #[derive(Debug)]
    struct Events {
        times: Vec<DateTime<Utc>>,
        pages: Mutex<usize>,
    }

    #[async_trait]
    impl DataSource for Events {
        fn descriptor(&self) -> DataSourceDescriptor {
            DataSourceDescriptor {
                name: "events".into(),
                kind: "test".into(),
                description: String::new(),
                capabilities: Capabilities::default(),
            }
        }
        fn health(&self) -> Health {
            Health::ok()
        }
        async fn search(&self, _: &TagSearch) -> Result<TagPage, SourceError> {
            Err(SourceError::UnknownSource("not used".into()))
        }
        async fn snapshot(&self, _: &[String]) -> Result<Vec<TagValue>, SourceError> {
            Err(SourceError::UnknownSource("not used".into()))
        }
        async fn raw(&self, _: &RawRequest) -> Result<RawStream, SourceError> {
            Err(SourceError::UnknownSource("not used".into()))
        }
        async fn events(&self, request: &EventsRequest) -> Result<EventPage, SourceError> {
            *self.pages.lock().unwrap() += 1;
            let after = request.cursor.as_ref().map_or(0, |c| c.parse().unwrap());
            let inside: Vec<usize> = (after..self.times.len())
                .filter(|&i| {
                    let t = to_micros(self.times[i]);
                    request.range.start_us() <= t && t <= request.range.end_us()
                })
                .collect();
            let page = &inside[..inside.len().min(request.limit as usize)];
            Ok(EventPage {
                events: page.iter().map(|&i| self.event(i)).collect(),
                next: (page.len() < inside.len()).then(|| (page[page.len() - 1] + 1).to_string()),
            })
        }
    }

    impl Events {
        fn new(times: Vec<DateTime<Utc>>) -> Self {
            Self {
                times,
                pages: Mutex::new(0),
            }
        }

        fn event(&self, i: usize) -> EventMessage {
            EventMessage {
                id: i.to_string(),
                source: "events".into(),
                time: self.times[i],
                topic: "TI100".into(),
                priority: EventPriority::High,
                category: "process".into(),
                event_type: "alarm".into(),
                message: format!("event {i}"),
                properties: Default::default(),
            }
        }
    }

    use uplink_model::time_expr::to_micros;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
    }

    fn ago(seconds: i64) -> DateTime<Utc> {
        now() - chrono::Duration::seconds(seconds)
    }

    fn ids(recent: &RecentEvents) -> Vec<&str> {
        recent.events.iter().map(|e| e.id.as_str()).collect()
    }

    #[tokio::test]
    async fn older_events_are_found_by_widening_the_window_newest_first() {
        let source = Events::new(vec![ago(7200), ago(1800), ago(1500), ago(60), ago(10)]);
        let recent = newest(&source, ago(3600), now(), 200).await.unwrap();
        assert_eq!(ids(&recent), ["4", "3", "2", "1"]);
        assert!(!recent.truncated);

        let two = newest(&source, ago(3600), now(), 2).await.unwrap();
        assert_eq!(ids(&two), ["4", "3"]);
        assert!(two.truncated, "older events exist");
    }

    #[tokio::test]
    async fn a_busy_window_keeps_only_the_newest_across_pages() {
        let times: Vec<_> = (0..2_500).map(|i| ago(250 - i / 10)).collect();
        let source = Events::new(times);
        let recent = newest(&source, ago(3600), now(), 3).await.unwrap();
        assert_eq!(ids(&recent), ["2499", "2498", "2497"]);
        assert!(recent.truncated);
        assert_eq!(
            *source.pages.lock().unwrap(),
            3,
            "the first window held enough: no wider read"
        );
    }
}
