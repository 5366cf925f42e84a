//! Live values and events across replicas. The replica holding a connector's link keeps the one
//! connector subscription per (app, data source, kind, tags), exactly as a single hub does
//! (`LocalRouter::subscribe`), and forwards its news to every replica that has app streams on
//! it; each of those keeps a mirror ([`Live::mirror`]) that its streams read as they read a
//! local subscription.
//!
//! One forward is a request to the holder about the connector (kind `subscribe`, on the
//! holder's subject for it, as for a query: `super::router::ask`), accepted by the holder with
//! a control inbox, then [`LiveDelta`]s in numbered pieces with at most
//! [`uplink_link::CHUNK_WINDOW`] unacknowledged, beats both ways, and `ended` with the reason.
//! Nothing queues: the holder exports what changed since its last delta only when the window
//! has room, so a slow replica gets the latest value per tag (the rest counted in the holder's
//! `changes`) and the events still in the holder's bounded queue (the rest counted as missed).
//! A gap in the pieces, or [`SILENCE`] without a word, ends the mirror with `offline`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_nats::{Client, Message};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use tokio::time::Instant;
use uplink_link::{SubscribeRequest, SubscriptionKind};

use super::holder::BEAT;
use super::router::{ACCEPT_WITHIN, SILENCE, ask};
use super::wire::{self, kind};
use super::{Presence, lock};
use crate::link::LocalRouter;
use crate::live::{ExportCursor, Live, LiveDelta, LiveEnd, LiveHandle};
use crate::relay::{ConnectorRouter, RelayError};

/// The largest piece of a delta on NATS; a larger delta travels in several.
const PIECE: usize = 64 * 1024;
/// The most a mirror gathers of one delta (1 000 tags of long texts, 1 000 large events):
/// beyond it the forward is broken rather than the replica's memory.
const MAX_DELTA: usize = 32 * 1024 * 1024;

/// What one forwarded subscription is shared by on the streaming replica.
type MirrorKey = (String, String, String, SubscriptionKind, Vec<String>);

#[derive(Debug, Clone)]
struct Mirror {
    live: Arc<Live>,
    /// Why the holder refused it before the first delta, as it said.
    refused: Arc<OnceLock<RelayError>>,
}

/// The streaming replica's side: the mirrors of subscriptions held elsewhere, one per key,
/// shared by this replica's app streams.
#[derive(Debug)]
pub struct Mirrors {
    client: Client,
    local: Arc<LocalRouter>,
    presence: Arc<Presence>,
    all: Arc<Mutex<HashMap<MirrorKey, Mirror>>>,
}

impl Mirrors {
    /// Mirrors fed over `client`; `local` names offline connectors and bounds the waits.
    pub fn new(client: Client, local: Arc<LocalRouter>, presence: Arc<Presence>) -> Self {
        Self {
            client,
            local,
            presence,
            all: Arc::default(),
        }
    }

    /// Joins (or starts) the mirror of `request` on the replica holding `connector_id`'s link;
    /// returns once its first delta (the current values) arrived, like a local subscribe.
    pub async fn subscribe(
        &self,
        connector_id: &str,
        request: SubscribeRequest,
    ) -> Result<LiveHandle, RelayError> {
        // NATS away: nobody can be asked, and waiting for a reconnect would only hang the app.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(self.local.offline(connector_id).await);
        }
        let key: MirrorKey = (
            connector_id.to_owned(),
            request.app_id.clone(),
            request.source.clone(),
            request.kind,
            request.tags.clone(),
        );
        let (handle, refused) = {
            let mut all = lock(&self.all);
            match all.get(&key).filter(|m| m.live.ended().is_none()) {
                Some(mirror) => (mirror.live.join(), mirror.refused.clone()),
                None => {
                    let mirror = Mirror {
                        live: Live::mirror(request.tags.clone()),
                        refused: Arc::default(),
                    };
                    let handle = mirror.live.join();
                    all.insert(key.clone(), mirror.clone());
                    tokio::spawn(follow(
                        Follow {
                            client: self.client.clone(),
                            presence: self.presence.clone(),
                            connector_id: connector_id.to_owned(),
                            request,
                        },
                        mirror.clone(),
                        Arc::downgrade(&self.all),
                        key,
                    ));
                    (handle, mirror.refused)
                }
            }
        };
        let wait = self.local.query_timeout() + ACCEPT_WITHIN;
        match tokio::time::timeout(wait, handle.first()).await {
            Err(_) => Err(RelayError::Timeout {
                seconds: wait.as_secs(),
            }),
            Ok(Ok(())) => Ok(handle),
            Ok(Err(end)) => Err(match refused.get() {
                Some(error) => error.clone(),
                None => match end {
                    LiveEnd::Offline | LiveEnd::Closed => self.local.offline(connector_id).await,
                    other => crate::link::refusal_of(other),
                },
            }),
        }
    }
}

/// What a mirror asks of the holder.
struct Follow {
    client: Client,
    presence: Arc<Presence>,
    connector_id: String,
    request: SubscribeRequest,
}

/// Feeds `mirror` from the holder until either side ends it, then ends it with the reason
/// and lets it go.
async fn follow(
    asked: Follow,
    mirror: Mirror,
    all: Weak<Mutex<HashMap<MirrorKey, Mirror>>>,
    key: MirrorKey,
) {
    let end = forward(&asked, &mirror, &all, &key).await;
    mirror.live.end(end);
    if let Some(all) = all.upgrade() {
        let mut all = lock(&all);
        if all
            .get(&key)
            .is_some_and(|m| Arc::ptr_eq(&m.live, &mirror.live))
        {
            all.remove(&key);
        }
    }
}

async fn forward(
    asked: &Follow,
    mirror: &Mirror,
    all: &Weak<Mutex<HashMap<MirrorKey, Mirror>>>,
    key: &MirrorKey,
) -> LiveEnd {
    let client = &asked.client;
    let live = &mirror.live;
    let Ok(payload) = serde_json::to_vec(&asked.request) else {
        return LiveEnd::Offline;
    };
    let Some((accepted, mut answers)) = ask(
        client,
        &asked.presence,
        &asked.connector_id,
        kind::SUBSCRIBE,
        payload.into(),
    )
    .await
    else {
        return LiveEnd::Offline;
    };
    let Some(control) = wire::header(accepted.headers.as_ref(), wire::CONTROL).map(str::to_owned)
    else {
        return LiveEnd::Offline;
    };
    let mut holder = Holder {
        client: client.clone(),
        control,
        armed: true,
    };
    let mut next_seq = 0u64;
    let mut gathered = BytesMut::new();
    let mut heard = Instant::now();
    let mut beat = tokio::time::interval(BEAT);
    loop {
        tokio::select! {
            message = answers.next() => {
                let Some(message) = message else { return LiveEnd::Offline };
                let headers = message.headers.as_ref();
                if wire::header(headers, wire::CONTROL) != Some(holder.control.as_str()) {
                    continue;
                }
                heard = Instant::now();
                match wire::header(headers, wire::KIND) {
                    Some(kind::LIVE) => {
                        // A lost piece would leave the mirror wrong: the forward is broken.
                        if wire::seq(headers) != Some(next_seq) {
                            return LiveEnd::Offline;
                        }
                        holder.send(kind::ACK, Some(next_seq)).await;
                        next_seq += 1;
                        gathered.extend_from_slice(&message.payload);
                        if gathered.len() > MAX_DELTA {
                            return LiveEnd::Offline;
                        }
                        if wire::header(headers, wire::MORE).is_none() {
                            match serde_json::from_slice::<LiveDelta>(&gathered) {
                                Ok(delta) => live.import(delta),
                                Err(e) => {
                                    tracing::warn!(connector = %asked.connector_id, error = %e, "a forwarded delta could not be read");
                                    return LiveEnd::Offline;
                                }
                            }
                            gathered.clear();
                        }
                    }
                    Some(kind::ENDED) => {
                        holder.armed = false;
                        return serde_json::from_slice(&message.payload).unwrap_or(LiveEnd::Offline);
                    }
                    Some(kind::FAILED) => {
                        holder.armed = false;
                        let error = serde_json::from_slice(&message.payload).unwrap_or(RelayError::LinkLost);
                        let end = end_of(&error);
                        let _ = mirror.refused.set(error);
                        return end;
                    }
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(heard + SILENCE) => {
                tracing::debug!(connector = %asked.connector_id, "the holding replica went silent; the mirrored subscription ends");
                return LiveEnd::Offline;
            }
            _ = beat.tick() => holder.send(kind::BEAT, None).await,
            () = live.idle.notified() => {
                // Under the map's lock, so no stream joins what is ending.
                let Some(all) = all.upgrade() else { return LiveEnd::Closed };
                let mut all = lock(&all);
                if live.subscribers() == 0 {
                    live.end(LiveEnd::Closed);
                    if all.get(key).is_some_and(|m| Arc::ptr_eq(&m.live, live)) {
                        all.remove(key);
                    }
                    return LiveEnd::Closed;
                }
            }
        }
    }
}

/// The end a mirror has when the holder refused or failed its subscription.
fn end_of(error: &RelayError) -> LiveEnd {
    match error {
        RelayError::Offline { .. } | RelayError::LinkLost => LiveEnd::Offline,
        RelayError::Connector { code, message } => LiveEnd::of_failure(code, message.clone()),
        other => LiveEnd::Failed(other.code().to_owned(), other.to_string()),
    }
}

/// The holder's control inbox of one forward, from the streaming replica's side. Dropped
/// before the holder ended the forward, it cancels it there.
struct Holder {
    client: Client,
    control: String,
    armed: bool,
}

impl Holder {
    async fn send(&self, what: &str, seq: Option<u64>) {
        let mut headers = wire::headers(what);
        if let Some(seq) = seq {
            headers.insert(wire::SEQ, seq.to_string().as_str());
        }
        let _ = self
            .client
            .publish_with_headers(self.control.clone(), headers, Bytes::new())
            .await;
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if !std::mem::take(&mut self.armed) {
            return;
        }
        let (client, control) = (self.client.clone(), self.control.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client
                    .publish_with_headers(control, wire::headers(kind::CANCEL), Bytes::new())
                    .await;
            });
        }
    }
}

/// The holding replica's side: serves one `subscribe` request for a connector whose link is
/// held here, through this replica's own shared subscription, until the streaming replica
/// cancels or goes silent, or the subscription ends.
pub async fn serve<R: ConnectorRouter + ?Sized>(
    client: Client,
    local: Arc<R>,
    connector_id: String,
    request: Message,
) {
    let Some(reply) = request.reply.clone() else {
        return;
    };
    let Some(to) = wire::header(request.headers.as_ref(), wire::ANSWER).map(str::to_owned) else {
        tracing::debug!(connector = %connector_id, "a subscription request without an answer inbox");
        return;
    };
    let from = client.new_inbox();
    let Ok(mut control) = client.subscribe(from.clone()).await else {
        return;
    };
    let mut accepted = wire::headers(kind::ACCEPTED);
    accepted.insert(wire::CONTROL, from.as_str());
    if client
        .publish_with_headers(reply, accepted, Bytes::new())
        .await
        .is_err()
    {
        return;
    }
    let forward = Forward {
        client: &client,
        to,
        from,
    };
    let subscribe: SubscribeRequest = match serde_json::from_slice(&request.payload) {
        Ok(subscribe) => subscribe,
        Err(e) => {
            let error = RelayError::Connector {
                code: uplink_link::failure::INVALID_QUERY.to_owned(),
                message: format!("the subscription could not be read: {e}"),
            };
            forward.failed(&error).await;
            return;
        }
    };
    let mut heard = Instant::now();
    let mut beat = tokio::time::interval(BEAT);
    let subscribed = local.subscribe(&connector_id, subscribe);
    tokio::pin!(subscribed);
    let live = loop {
        tokio::select! {
            outcome = &mut subscribed => break outcome,
            _ = beat.tick() => forward.send(kind::BEAT, None, false, Bytes::new()).await,
            message = control.next() => match message {
                None => return,
                Some(m) if wire::header(m.headers.as_ref(), wire::KIND) == Some(kind::CANCEL) => return,
                Some(_) => heard = Instant::now(),
            },
        }
    };
    let live = match live {
        Ok(live) => live,
        Err(error) => {
            forward.failed(&error).await;
            return;
        }
    };
    let mut cursor = ExportCursor::default();
    let mut pieces: VecDeque<(Bytes, bool)> = VecDeque::new();
    let mut changes = live.changes();
    let window = uplink_link::CHUNK_WINDOW as u64;
    let (mut sent, mut acked) = (0u64, 0u64);
    loop {
        if pieces.is_empty() && sent - acked < window {
            // What changed since the last delta, exported only now that it can go: a slow
            // replica gets the latest values, never a queue (not even of one stale delta).
            if let Some(delta) = live.export(&mut cursor) {
                pieces = split(&delta);
            } else if let Some(end) = live.ended() {
                let json = serde_json::to_vec(&end).unwrap_or_default();
                forward.send(kind::ENDED, None, false, json.into()).await;
                return;
            }
        }
        while sent - acked < window {
            let Some((piece, more)) = pieces.pop_front() else {
                break;
            };
            forward.send(kind::LIVE, Some(sent), more, piece).await;
            sent += 1;
        }
        tokio::select! {
            biased;
            message = control.next() => {
                let Some(message) = message else { return };
                heard = Instant::now();
                match wire::header(message.headers.as_ref(), wire::KIND) {
                    Some(kind::ACK) => {
                        if let Some(seq) = wire::seq(message.headers.as_ref()) {
                            acked = acked.max(seq + 1).min(sent);
                        }
                    }
                    // Dropping the handle lets the subscription go here once no stream uses it.
                    Some(kind::CANCEL) => return,
                    _ => {}
                }
            }
            changed = changes.changed(), if pieces.is_empty() && sent - acked < window => if changed.is_err() { return },
            _ = beat.tick() => {
                if heard.elapsed() > SILENCE {
                    tracing::debug!(connector = %connector_id, "the streaming replica went silent; its forward ends");
                    return;
                }
                forward.send(kind::BEAT, None, false, Bytes::new()).await;
            }
        }
    }
}

/// A delta's JSON in pieces of at most [`PIECE`] bytes, each with whether more follow.
fn split(delta: &LiveDelta) -> VecDeque<(Bytes, bool)> {
    let json = Bytes::from(serde_json::to_vec(delta).unwrap_or_default());
    let mut pieces = VecDeque::new();
    let mut at = 0;
    loop {
        let end = (at + PIECE).min(json.len());
        pieces.push_back((json.slice(at..end), end < json.len()));
        at = end;
        if at >= json.len() {
            return pieces;
        }
    }
}

/// Where one forward goes.
struct Forward<'a> {
    client: &'a Client,
    to: String,
    from: String,
}

impl Forward<'_> {
    async fn send(&self, what: &str, seq: Option<u64>, more: bool, payload: Bytes) {
        let mut headers = wire::headers(what);
        headers.insert(wire::CONTROL, self.from.as_str());
        if let Some(seq) = seq {
            headers.insert(wire::SEQ, seq.to_string().as_str());
        }
        if more {
            headers.insert(wire::MORE, "1");
        }
        // A lost message shows on the streaming side as a gap or silence, which ends it.
        let _ = self
            .client
            .publish_with_headers(self.to.clone(), headers, payload)
            .await;
    }

    async fn failed(&self, error: &RelayError) {
        let json = serde_json::to_vec(error).unwrap_or_default();
        self.send(kind::FAILED, None, false, json.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backplane::test_nats::Nats;
    use std::time::Duration;

    /// A router whose one subscription is a `Live` the test feeds.
    #[derive(Debug, Default)]
    struct OneSubscription {
        live: Mutex<Option<Arc<Live>>>,
    }

    #[async_trait::async_trait]
    impl ConnectorRouter for OneSubscription {
        async fn relay(
            &self,
            _connector_id: &str,
            _query: uplink_link::RelayedQuery,
        ) -> Result<crate::relay::RelayStream, RelayError> {
            Err(RelayError::LinkLost)
        }

        async fn subscribe(
            &self,
            _connector_id: &str,
            request: SubscribeRequest,
        ) -> Result<LiveHandle, RelayError> {
            let live = Live::new(request.tags.clone());
            live.apply(values(&[("A", 0.0), ("B", 0.0)]));
            let handle = live.join();
            *lock(&self.live) = Some(live);
            Ok(handle)
        }

        fn is_online(&self, _connector_id: &str) -> bool {
            true
        }
    }

    fn values(values: &[(&str, f64)]) -> uplink_link::SubscriptionUpdate {
        uplink_link::SubscriptionUpdate {
            seq: 0,
            values: values
                .iter()
                .map(|(tag, v)| uplink_link::TagUpdate {
                    tag: (*tag).to_owned(),
                    value: uplink_model::TagValue::number(chrono::Utc::now(), *v),
                })
                .collect(),
            events: Vec::new(),
            dropped: 0,
        }
    }

    /// The next message of `kind` on `answers` (beats skipped), or `None` within `wait`.
    async fn next_of(
        answers: &mut async_nats::Subscriber,
        kind: &str,
        wait: Duration,
    ) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, answers.next())
                .await
                .ok()??;
            if wire::header(message.headers.as_ref(), wire::KIND) == Some(kind) {
                return Some(message);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_that_stops_acknowledging_holds_the_holder_at_its_window_then_gets_the_latest()
     {
        let nats = Nats::start();
        let client = async_nats::connect(&nats.url).await.unwrap();
        let router = Arc::new(OneSubscription::default());
        let mut requests = client.subscribe("uplink.node.n1.con_test").await.unwrap();
        tokio::spawn({
            let (client, router) = (client.clone(), router.clone());
            async move {
                while let Some(request) = requests.next().await {
                    tokio::spawn(serve(
                        client.clone(),
                        router.clone(),
                        "con_test".into(),
                        request,
                    ));
                }
            }
        });
        // The streaming replica's side, by hand.
        let inbox = client.new_inbox();
        let mut answers = client.subscribe(inbox.clone()).await.unwrap();
        let mut headers = wire::headers(kind::SUBSCRIBE);
        headers.insert(wire::ANSWER, inbox.as_str());
        let request = SubscribeRequest {
            subscription_id: String::new(),
            app_id: "app_test".into(),
            user_id: "usr_test".into(),
            source: "line-1".into(),
            kind: SubscriptionKind::Values,
            tags: vec!["A".into(), "B".into()],
        };
        let accepted = client
            .request_with_headers(
                "uplink.node.n1.con_test",
                headers,
                serde_json::to_vec(&request).unwrap().into(),
            )
            .await
            .unwrap();
        let control = wire::header(accepted.headers.as_ref(), wire::CONTROL)
            .unwrap()
            .to_owned();
        let first = next_of(&mut answers, kind::LIVE, Duration::from_secs(5))
            .await
            .expect("the snapshot");
        let snapshot: LiveDelta = serde_json::from_slice(&first.payload).unwrap();
        assert_eq!(snapshot.slots.len(), 2);
        let live = lock(&router.live).clone().unwrap();
        // Never acknowledged: a thousand updates, and the holder sends no more than its window.
        let mut pieces = 1;
        for n in 1..=1_000 {
            live.apply(values(&[("A", f64::from(n))]));
            if n % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while next_of(&mut answers, kind::LIVE, Duration::from_millis(700))
            .await
            .is_some()
        {
            pieces += 1;
        }
        assert_eq!(
            pieces,
            uplink_link::CHUNK_WINDOW,
            "at most the window unacknowledged"
        );
        // Acknowledged: the next delta holds A's latest value, the rest counted in `changes`.
        let mut ack = wire::headers(kind::ACK);
        ack.insert(wire::SEQ, (pieces - 1).to_string().as_str());
        client
            .publish_with_headers(control.clone(), ack, Bytes::new())
            .await
            .unwrap();
        let latest: LiveDelta = serde_json::from_slice(
            &next_of(&mut answers, kind::LIVE, Duration::from_secs(5))
                .await
                .expect("the next delta")
                .payload,
        )
        .unwrap();
        assert_eq!(latest.slots.len(), 1);
        assert_eq!(latest.slots[0].value.value, Some(1_000.0));
        assert_eq!(latest.slots[0].changes, 1_001);
        // Silent from now on (no beat): the holder lets its share of the subscription go.
        assert_eq!(live.subscribers(), 1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while live.subscribers() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the holder keeps a forward nobody beats for"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn a_large_delta_travels_in_pieces_that_join_back() {
        let live = Live::new((0..1_000).map(|n| format!("tag.{n:04}")).collect());
        let values = live
            .tags()
            .iter()
            .map(|tag| uplink_link::TagUpdate {
                tag: tag.clone(),
                value: uplink_model::TagValue::number(chrono::Utc::now(), 1.5),
            })
            .collect();
        live.apply(uplink_link::SubscriptionUpdate {
            seq: 0,
            values,
            events: Vec::new(),
            dropped: 0,
        });
        let delta = live.export(&mut ExportCursor::default()).unwrap();
        let pieces = split(&delta);
        assert!(pieces.len() > 1, "{} pieces", pieces.len());
        assert!(pieces.iter().all(|(p, _)| p.len() <= PIECE));
        assert!(pieces.iter().rev().skip(1).all(|(_, more)| *more));
        assert!(!pieces.back().unwrap().1, "the last piece says so");
        let joined: Vec<u8> = pieces.iter().flat_map(|(p, _)| p.to_vec()).collect();
        assert_eq!(serde_json::from_slice::<LiveDelta>(&joined).unwrap(), delta);
    }

    #[test]
    fn an_end_crosses_replicas_as_it_is() {
        for end in [
            LiveEnd::Offline,
            LiveEnd::Blocked("blocked on site".into()),
            LiveEnd::Failed("source_error".into(), "the source failed".into()),
        ] {
            let json = serde_json::to_vec(&end).unwrap();
            assert_eq!(serde_json::from_slice::<LiveEnd>(&json).unwrap(), end);
        }
        assert_eq!(
            end_of(&RelayError::Connector {
                code: uplink_link::failure::VETOED.into(),
                message: "no".into()
            }),
            LiveEnd::Blocked("no".into())
        );
    }

    #[test]
    fn the_protocol_guides_examples_are_what_replicas_read() {
        let guide = include_str!("../../../../docs/protocol.md");
        let mut seen = Vec::new();
        let mut lines = guide.lines();
        while let Some(line) = lines.next() {
            let Some(kind) = line.strip_prefix("```nats ") else {
                continue;
            };
            let text: String = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect::<Vec<_>>()
                .join("\n");
            match kind.trim() {
                "LiveDelta" => {
                    let delta: LiveDelta = serde_json::from_str(&text).unwrap();
                    let mirror = Live::mirror(vec!["FIC101.PV".into()]);
                    mirror.import(delta);
                    assert!(mirror.ready());
                }
                "LiveEnd" => {
                    serde_json::from_str::<LiveEnd>(&text).unwrap();
                }
                other => panic!("no backplane message '{other}' is known to this test"),
            }
            seen.push(kind.trim().to_owned());
        }
        assert_eq!(seen, ["LiveDelta", "LiveEnd"]);
    }
}
