//! `GET /api/v1/sources/{source}/subscribe?tags=a,b&interval=1s`: live values as
//! `text/event-stream` (docs/api.md, "Live values").
//!
//! The stream says, in order: `event: snapshot` (every tag's current value), then
//! `event: values` with the tags that changed (coalesced per tag to `interval`, with a
//! `dropped` count when values were coalesced away), `: heartbeat` comments while nothing
//! changes, and a final event naming why it ended (`revoked`, `expired`, `blocked`, `removed`,
//! `offline`, `failed`). Every data event has an `id:`; a reconnect sending it back as
//! `Last-Event-ID` gets the tags that changed since (`event: restarted` and a new snapshot
//! when the hub no longer holds that subscription).

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::mpsc;
use uplink_link::TagUpdate;

use crate::live::{Cursor, LiveEnd, LiveHandle};
use crate::relay::{RelayError, RelayStream};

use super::error::ApiError;

/// The `interval` when none is asked for.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest `interval`.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// A comment is written whenever the stream was quiet this long.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Reads `interval` (`0s`, `250ms`, `1s`, `1m`…; default 1 s).
pub fn interval(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_INTERVAL);
    };
    let invalid = || {
        ApiError::invalid(
            "interval",
            format!("expected a duration from 0s to 1h such as 250ms or 1s, got '{text}'"),
        )
    };
    let micros = if text == "0" || text == "0s" {
        0
    } else {
        uplink_model::time_expr::parse_span(text)
            .map_err(|_| invalid())?
            .as_micros()
    };
    let micros = u64::try_from(micros).map_err(|_| invalid())?;
    let interval = Duration::from_micros(micros);
    if interval > MAX_INTERVAL {
        return Err(invalid());
    }
    Ok(interval)
}

/// Reads `tags` (comma-separated or repeated): sorted, without repeats, 1 to
/// [`uplink_link::MAX_SUBSCRIBED_TAGS`].
pub fn tags<'a>(given: impl Iterator<Item = &'a str>) -> Result<Vec<String>, ApiError> {
    let mut tags: Vec<String> = given
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags.dedup();
    if tags.is_empty() {
        return Err(ApiError::invalid("tags", "required: tags=A,B or tag=A&tag=B"));
    }
    if tags.len() > uplink_link::MAX_SUBSCRIBED_TAGS {
        return Err(ApiError::invalid(
            "tags",
            format!(
                "at most {} tags per subscription, got {}",
                uplink_link::MAX_SUBSCRIBED_TAGS,
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

#[derive(Serialize)]
struct Values<'a> {
    values: &'a [TagUpdate],
    #[serde(skip_serializing_if = "is_zero")]
    dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct Ended<'a> {
    code: &'a str,
    message: &'a str,
}

fn event(name: &str, id: Option<String>, data: &impl Serialize) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".to_owned());
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("event: {name}\n{id}data: {data}\n\n"))
}

/// The final event of a stream cut by the hub's in-flight registry.
pub fn cut_event(error: &RelayError) -> Bytes {
    let name = match error {
        RelayError::Revoked => "revoked",
        RelayError::TokenExpired => "expired",
        RelayError::LinkLost | RelayError::Offline { .. } => "offline",
        _ => "failed",
    };
    event(
        name,
        None,
        &Ended {
            code: error.code(),
            message: &error.to_string(),
        },
    )
}

fn end_event(end: &LiveEnd) -> Bytes {
    let (name, code, message) = end.event();
    event(
        name,
        None,
        &Ended {
            code,
            message: &message,
        },
    )
}

/// The app's event stream over `handle`, resuming after `last_event_id` when it can.
pub fn stream(handle: LiveHandle, interval: Duration, last_event_id: Option<String>) -> RelayStream {
    // One frame in hand: a slow app holds the producer here while values coalesce in `Live`.
    let (frames, receiver) = mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(handle, interval, last_event_id, frames));
    RelayStream::new(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|frame| (Ok(frame), receiver))
        })
        .boxed(),
    )
}

async fn produce(
    live: LiveHandle,
    interval: Duration,
    last_event_id: Option<String>,
    frames: mpsc::Sender<Bytes>,
) {
    let id = |seq: u64| Some(format!("{}-{seq}", live.generation()));
    let mut cursor = Cursor::default();
    let asked = last_event_id.is_some();
    let resumed = last_event_id.is_some_and(|last| live.resume(&last, &mut cursor));
    if asked && !resumed {
        let restarted = event(
            "restarted",
            None,
            &Ended {
                code: "restarted",
                message: "the hub no longer holds the values after that event id; a new snapshot follows",
            },
        );
        if frames.send(restarted).await.is_err() {
            return;
        }
    }
    let first = if resumed {
        live.changes_since(&mut cursor).map(|(seq, values, dropped)| {
            event("values", id(seq), &Values { values: &values, dropped })
        })
    } else {
        let (seq, values) = live.snapshot(&mut cursor);
        Some(event("snapshot", id(seq), &Values { values: &values, dropped: 0 }))
    };
    if let Some(first) = first
        && frames.send(first).await.is_err()
    {
        return;
    }
    let mut changes = live.changes();
    loop {
        if !interval.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                // The app went away: let the subscription go now.
                () = frames.closed() => return,
            }
        }
        // Waits for a change or the end, with heartbeats while quiet.
        loop {
            if let Some((seq, values, dropped)) = live.changes_since(&mut cursor) {
                if !values.is_empty() || dropped > 0 {
                    let frame = event("values", id(seq), &Values { values: &values, dropped });
                    if frames.send(frame).await.is_err() {
                        return;
                    }
                }
                break;
            }
            if let Some(end) = live.ended() {
                let _ = frames.send(end_event(&end)).await;
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(HEARTBEAT) => {
                    if frames.send(Bytes::from_static(b": heartbeat\n\n")).await.is_err() {
                        return;
                    }
                }
                () = frames.closed() => return,
            }
        }
    }
}
