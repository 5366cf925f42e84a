//! `GET /api/v1/sources/{source}/events/subscribe`: alarms and events as `text/event-stream`
//! (docs/api.md, "Alarms and events").
//!
//! The stream says `event: events` with the new events, oldest first (never coalesced; a
//! `dropped` count when a slow app or hub lost some), `: heartbeat` comments while nothing
//! happens, and a final event naming why it ended (`revoked`, `expired`, `blocked`, `removed`,
//! `offline`, `failed`), like the live-values stream. Every `events` event has an `id:`; a
//! reconnect sending it back as `Last-Event-ID` gets the events since, when the hub still holds
//! them (else `event: restarted`, and events from then on).

use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::mpsc;
use uplink_model::EventMessage;

use super::subscribe::{Ended, HEARTBEAT, end_event, event, is_zero};
use crate::live::{Cursor, LiveHandle};
use crate::relay::RelayStream;

#[derive(Serialize)]
struct Events<'a> {
    events: &'a [EventMessage],
    #[serde(skip_serializing_if = "is_zero")]
    dropped: u64,
}

/// The app's event stream over `handle`, resuming after `last_event_id` when it can.
pub fn stream(handle: LiveHandle, last_event_id: Option<String>) -> RelayStream {
    // One frame in hand: a slow app holds the producer while events wait in `Live`'s queue.
    let (frames, receiver) = mpsc::channel::<Bytes>(1);
    tokio::spawn(produce(handle, last_event_id, frames));
    RelayStream::new(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|frame| (Ok(frame), receiver))
        })
        .boxed(),
    )
}

async fn produce(live: LiveHandle, last_event_id: Option<String>, frames: mpsc::Sender<Bytes>) {
    let mut cursor = Cursor::default();
    let asked = last_event_id.is_some();
    let resumed = last_event_id.is_some_and(|last| live.resume_events(&last, &mut cursor));
    if !resumed {
        live.events_from_now(&mut cursor);
    }
    if asked && !resumed {
        let restarted = event(
            "restarted",
            None,
            &Ended {
                code: "restarted",
                message: "the hub no longer holds the events after that event id; new events follow",
            },
        );
        if frames.send(restarted).await.is_err() {
            return;
        }
    }
    let mut changes = live.changes();
    loop {
        if let Some((_, events, dropped)) = live.events_since(&mut cursor) {
            if !events.is_empty() || dropped > 0 {
                let frame = event(
                    "events",
                    Some(live.event_id(&cursor)),
                    &Events {
                        events: &events,
                        dropped,
                    },
                );
                if frames.send(frame).await.is_err() {
                    return;
                }
            }
            continue;
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
