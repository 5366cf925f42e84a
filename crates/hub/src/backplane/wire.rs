//! What travels on NATS between hub replicas: subjects, and the headers that say what a
//! message is. Answer chunks travel as their raw bytes (the payload), never re-encoded.

use async_nats::HeaderMap;

/// Where a relayed query for `connector_id` is asked (request/reply): only the replica holding
/// its link subscribes, so nobody answering means the connector is offline.
pub fn query_subject(connector_id: &str) -> Option<String> {
    // A subject token must not hold NATS's separators or wildcards.
    let safe = !connector_id.is_empty()
        && connector_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    safe.then(|| format!("uplink.link.{connector_id}"))
}

/// "The store's change feed has news": every replica reads the feed at once.
pub const CHANGES: &str = "uplink.changes";
/// Which replica holds which connector's link (and a newer link evicting an older one).
pub const HELD: &str = "uplink.held";
/// "Say again which links you hold": sent by a replica that (re)joined.
pub const HELD_SYNC: &str = "uplink.held.sync";

/// The header naming what a message is (one of the `kind` constants).
pub const KIND: &str = "Uplink-Kind";
/// The header naming the replica that sent a message.
pub const NODE: &str = "Uplink-Node";
/// On a query request: the inbox the answer goes to.
pub const ANSWER: &str = "Uplink-Answer";
/// On the holder's acceptance, and on every answer message: the holder's control inbox for
/// this answer (acknowledgements and cancel go there; it also tells one holder from another).
pub const CONTROL: &str = "Uplink-Control";
/// A chunk's sequence number, from 0.
pub const SEQ: &str = "Uplink-Seq";
/// On a piece of a forwarded subscription's delta: more pieces of the same delta follow.
pub const MORE: &str = "Uplink-More";

/// The kinds of message.
pub mod kind {
    /// A relayed query (payload: JSON `RelayedQuery`), asked on the connector's subject.
    pub const QUERY: &str = "query";
    /// A live-values or events subscription (payload: JSON `SubscribeRequest`), asked on the
    /// connector's subject; the holder then forwards the subscription's news.
    pub const SUBSCRIBE: &str = "subscribe";
    /// A piece of a forwarded subscription's news (payload: a piece of JSON `LiveDelta`),
    /// numbered by `Uplink-Seq` like chunks; `Uplink-More` when the delta goes on.
    pub const LIVE: &str = "live";
    /// The forwarded subscription ended (payload: JSON `LiveEnd`).
    pub const ENDED: &str = "ended";
    /// The holder took the query.
    pub const ACCEPTED: &str = "accepted";
    /// Who computed the answer (payload: JSON `ComputedBy`), before the body.
    pub const INFO: &str = "info";
    /// The next bytes of the body (payload), numbered by `Uplink-Seq`.
    pub const CHUNK: &str = "chunk";
    /// The body is complete. Without it an answer is never complete.
    pub const END: &str = "end";
    /// The answer failed (payload: JSON `RelayError`).
    pub const FAILED: &str = "failed";
    /// The holder is alive and the answer still open; on a forwarded subscription's control
    /// inbox, the streaming replica is alive and still wants it.
    pub const BEAT: &str = "beat";
    /// The asking replica passed chunk `Uplink-Seq` on to the app.
    pub const ACK: &str = "ack";
    /// The asking replica no longer wants the answer.
    pub const CANCEL: &str = "cancel";
}

/// Headers of a message of `kind`.
pub fn headers(kind: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(KIND, kind);
    headers
}

/// A header's value, if present.
pub fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

/// A message's `Uplink-Seq`.
pub fn seq(headers: Option<&HeaderMap>) -> Option<u64> {
    header(headers, SEQ)?.parse().ok()
}

/// A link held by a replica, or let go: on [`HELD`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    /// The connector.
    pub connector_id: String,
    /// The replica.
    pub node: String,
    /// When its link connected (Unix nanoseconds); `None`: the link ended.
    pub since: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_make_subjects() {
        assert_eq!(
            query_subject("con_0123abc").as_deref(),
            Some("uplink.link.con_0123abc")
        );
        for bad in ["", "a.b", "a*", ">", "a b"] {
            assert_eq!(query_subject(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_round_trip() {
        let mut h = headers(kind::CHUNK);
        h.insert(SEQ, "7");
        assert_eq!(header(Some(&h), KIND), Some("chunk"));
        assert_eq!(seq(Some(&h)), Some(7));
        assert_eq!(seq(None), None);
    }
}
