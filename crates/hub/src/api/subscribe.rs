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

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::mpsc;
use uplink_link::TagUpdate;
use uplink_signalr::protocol::ValueEncoding;

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

/// The values of an update as the [`crate::live::Live`] lends them, written as a list.
#[derive(Clone, Copy)]
struct Updates<'a>(&'a [Arc<TagUpdate>]);

impl Serialize for Updates<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|update| &**update))
    }
}

#[derive(Serialize)]
struct Values<'a> {
    values: Updates<'a>,
    #[serde(skip_serializing_if = "is_zero")]
    dropped: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
pub(crate) struct Ended<'a> {
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
}

pub(crate) fn event(name: &str, id: Option<String>, data: &impl Serialize) -> Bytes {
    event_sized(name, id, data, 128)
}

/// About how many bytes a value takes in an app's stream (a tag's name, an RFC 3339 time, a
/// number and a status), so that a frame's buffer is the right size once.
const VALUE_BYTES: usize = 96;

/// [`event`], written into a buffer of `capacity` bytes to begin with.
fn event_sized(name: &str, id: Option<String>, data: &impl Serialize, capacity: usize) -> Bytes {
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b"\nid: ");
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
    // The data is written once, straight into the event.
    let start = out.len();
    if serde_json::to_writer(&mut out, data).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The end a cut stream says it had: `revoked`, `expired`, `offline` or `failed`.
pub fn cut_name(error: &RelayError) -> &'static str {
    match error {
        RelayError::Revoked => "revoked",
        RelayError::TokenExpired => "expired",
        RelayError::LinkLost | RelayError::Offline { .. } => "offline",
        _ => "failed",
    }
}

/// The final event of a stream cut by the hub's in-flight registry.
pub fn cut_event(error: &RelayError) -> Bytes {
    event(
        cut_name(error),
        None,
        &Ended {
            code: error.code(),
            message: &error.to_string(),
        },
    )
}

pub(crate) fn end_event(end: &LiveEnd) -> Bytes {
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

/// How a stream's frames are written for the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `text/event-stream` (the `GET …/subscribe` route).
    EventStream,
    /// SignalR stream items for the app hub, in its connection's value encoding (JSON text or
    /// MessagePack), so that the SignalR server copies each into its frame as it is: every
    /// frame is [`ITEM`] and one item (`{"event", "id", "values", "dropped"}`, or
    /// `{"event", "code", "message"}` for `restarted`), or [`END`] and the text the stream's
    /// completion error says (`revoked: …`). Heartbeats are left to the SignalR pings.
    Items(ValueEncoding),
}

/// The first byte of an [`Encoding::Items`] frame that carries an item.
pub const ITEM: u8 = b'i';
/// The first byte of an [`Encoding::Items`] frame that ends the stream, followed by the
/// completion's error text.
pub const END: u8 = b'e';

/// One thing the producer says to an app stream.
enum Frame<'a> {
    Data {
        event: &'static str,
        id: String,
        values: &'a [Arc<TagUpdate>],
        dropped: u64,
    },
    Restarted,
    Heartbeat,
    End(&'a LiveEnd),
}

#[derive(Serialize)]
struct Item<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Updates<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// The event (and item) that says a resume could not be honoured and a new snapshot follows.
pub const RESTARTED: &str = "restarted";

const RESTARTED_MESSAGE: &str =
    "the hub no longer holds the values after that event id; a new snapshot follows";

impl Encoding {
    fn encode(self, frame: Frame<'_>) -> Option<Bytes> {
        match self {
            Self::EventStream => Some(match frame {
                Frame::Data {
                    event: name,
                    id,
                    values,
                    dropped,
                } => event_sized(
                    name,
                    Some(id),
                    &Values {
                        values: Updates(values),
                        dropped,
                    },
                    128 + values.len() * VALUE_BYTES,
                ),
                Frame::Restarted => event(
                    RESTARTED,
                    None,
                    &Ended {
                        code: RESTARTED,
                        message: RESTARTED_MESSAGE,
                    },
                ),
                Frame::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
                Frame::End(end) => end_event(end),
            }),
            Self::Items(encoding) => {
                let capacity = match &frame {
                    Frame::Data { values, .. } => 128 + values.len() * VALUE_BYTES,
                    _ => 256,
                };
                let item = match frame {
                    Frame::Data {
                        event,
                        ref id,
                        values,
                        dropped,
                    } => Item {
                        event,
                        id: Some(id),
                        values: Some(Updates(values)),
                        dropped,
                        code: None,
                        message: None,
                    },
                    Frame::Restarted => Item {
                        event: RESTARTED,
                        id: None,
                        values: None,
                        dropped: 0,
                        code: Some(RESTARTED),
                        message: Some(RESTARTED_MESSAGE),
                    },
                    Frame::Heartbeat => return None,
                    Frame::End(end) => {
                        let (event, _, message) = end.event();
                        let mut out = vec![END];
                        out.extend_from_slice(format!("{event}: {message}").as_bytes());
                        return Some(Bytes::from(out));
                    }
                };
                Some(item_bytes(encoding, &item, capacity))
            }
        }
    }
}

/// [`ITEM`] and `item`, encoded once in `encoding`.
fn item_bytes(encoding: ValueEncoding, item: &Item<'_>, capacity: usize) -> Bytes {
    let mut out = Vec::with_capacity(capacity);
    out.push(ITEM);
    let written = match encoding {
        ValueEncoding::Json => serde_json::to_writer(&mut out, item).map_err(|e| e.to_string()),
        ValueEncoding::MessagePack => item
            .serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map())
            .map_err(|e| e.to_string()),
    };
    if let Err(error) = written {
        // Unreachable for these types; the app is told rather than sent half an item.
        tracing::error!(%error, "a live-values item could not be encoded");
        out.clear();
        out.push(END);
        out.extend_from_slice(b"failed: the hub could not encode an item");
    }
    Bytes::from(out)
}

/// The app's stream over `handle` in `encoding`, resuming after `last_event_id` when it can.
pub fn stream(
    handle: LiveHandle,
    interval: Duration,
    last_event_id: Option<String>,
    encoding: Encoding,
) -> RelayStream {
    // One frame in hand: a slow app holds the producer here while values coalesce in `Live`.
    let (frames, receiver) = mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(
        handle,
        interval,
        last_event_id,
        Sender { frames, encoding },
    ));
    RelayStream::new(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|frame| (Ok(frame), receiver))
        })
        .boxed(),
    )
}

/// Where the producer's frames go, encoded for the app.
struct Sender {
    frames: mpsc::Sender<Bytes>,
    encoding: Encoding,
}

impl Sender {
    /// Sends `frame` (nothing when the encoding leaves it out); `false` once the app left.
    async fn send(&self, frame: Frame<'_>) -> bool {
        let stamp = match &frame {
            Frame::Data { values, .. } => values.first().map(|v| v.value.time.timestamp_micros()),
            _ => None,
        };
        let encoded = self.encoding.encode(frame);
        if let Some(stamp) = stamp {
            tracing::trace!(target: uplink_link::LATENCY_TARGET, hop = "written", stamp);
        }
        match encoded {
            Some(bytes) => self.frames.send(bytes).await.is_ok(),
            None => !self.frames.is_closed(),
        }
    }

    async fn closed(&self) {
        self.frames.closed().await;
    }
}

async fn produce(
    live: LiveHandle,
    interval: Duration,
    last_event_id: Option<String>,
    frames: Sender,
) {
    let mut cursor = Cursor::default();
    let asked = last_event_id.is_some();
    let resumed = last_event_id.is_some_and(|last| live.resume(&last, &mut cursor));
    if asked && !resumed && !frames.send(Frame::Restarted).await {
        return;
    }
    let sent = if resumed {
        match live.changes_since(&mut cursor) {
            Some((_, values, dropped)) => {
                frames
                    .send(Frame::Data {
                        event: "values",
                        id: live.event_id(&cursor),
                        values: &values,
                        dropped,
                    })
                    .await
            }
            None => true,
        }
    } else {
        let (_, values) = live.snapshot(&mut cursor);
        frames
            .send(Frame::Data {
                event: "snapshot",
                id: live.event_id(&cursor),
                values: &values,
                dropped: 0,
            })
            .await
    };
    if !sent {
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
            if let Some((_, values, dropped)) = live.changes_since(&mut cursor) {
                if (!values.is_empty() || dropped > 0)
                    && !frames
                        .send(Frame::Data {
                            event: "values",
                            id: live.event_id(&cursor),
                            values: &values,
                            dropped,
                        })
                        .await
                {
                    return;
                }
                break;
            }
            if let Some(end) = live.ended() {
                frames.send(Frame::End(&end)).await;
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(HEARTBEAT) => {
                    if !frames.send(Frame::Heartbeat).await {
                        return;
                    }
                }
                () = frames.closed() => return,
            }
        }
    }
}
