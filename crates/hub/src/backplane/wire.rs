//! What travels on NATS between hub replicas: subjects, and the headers that say what a
//! message is. Answer chunks travel as their raw bytes (the payload), never re-encoded.

use async_nats::HeaderMap;

/// Whether `token` can be one token of a subject: not empty, and none of NATS's separators or
/// wildcards (a connector id is checked before it names a subject).
fn plain_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where the replica `node` is asked about `connector_id`'s link (request/reply): each replica
/// subscribes once, to [`node_requests`] of its own node, whatever the number of links it
/// holds, so a link costs no subscription. The asking replica names the holder its presence
/// says; NATS's "no responders" means that replica is gone, and a replica that does not hold
/// the link (any more) answers `failed` at once.
pub fn query_subject(node: &str, connector_id: &str) -> Option<String> {
    (plain_token(node) && plain_token(connector_id))
        .then(|| format!("uplink.node.{node}.{connector_id}"))
}

/// The one subscription through which the replica `node` is asked about all the links it holds.
pub fn node_requests(node: &str) -> String {
    format!("uplink.node.{node}.*")
}

/// The connector a request on `subject` (one of [`node_requests`] of `node`) is about.
pub fn connector_of<'a>(subject: &'a str, node: &str) -> Option<&'a str> {
    let connector_id = subject
        .strip_prefix("uplink.node.")?
        .strip_prefix(node)?
        .strip_prefix('.')?;
    plain_token(connector_id).then_some(connector_id)
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
    /// A relayed query (payload: JSON `RelayedQuery`), asked on the holder's subject for the
    /// connector ([`super::query_subject`]).
    pub const QUERY: &str = "query";
    /// A live-values or events subscription (payload: JSON `SubscribeRequest`), asked on the
    /// holder's subject for the connector; the holder then forwards the subscription's news.
    pub const SUBSCRIBE: &str = "subscribe";
    /// A piece of a forwarded subscription's news (payload: a piece of JSON `LiveDelta`),
    /// numbered by `Uplink-Seq` like chunks; `Uplink-More` when the delta goes on.
    pub const LIVE: &str = "live";
    /// The forwarded subscription ended (payload: JSON `LiveEnd`).
    pub const ENDED: &str = "ended";
    /// The holder took the query.
    pub const ACCEPTED: &str = "accepted";
    /// The reply, instead of `accepted`, of a replica asked about a link it does not hold (any
    /// more): the connector is offline as far as it knows, said at once.
    pub const NOT_HELD: &str = "not-held";
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
            query_subject("00ff", "con_0123abc").as_deref(),
            Some("uplink.node.00ff.con_0123abc")
        );
        for bad in ["", "a.b", "a*", ">", "a b"] {
            assert_eq!(query_subject("00ff", bad), None, "{bad:?}");
            assert_eq!(query_subject(bad, "con_1"), None, "{bad:?}");
        }
    }

    #[test]
    fn a_replica_reads_the_connector_from_the_subject_of_its_own_requests() {
        let subject = query_subject("00ff", "con_0123abc").unwrap();
        assert_eq!(connector_of(&subject, "00ff"), Some("con_0123abc"));
        assert_eq!(
            connector_of(&subject, "00f"),
            None,
            "another node's request"
        );
        assert_eq!(connector_of("uplink.node.00ff.a.b", "00ff"), None);
        assert_eq!(connector_of("uplink.node.00ff.", "00ff"), None);
        assert_eq!(node_requests("00ff"), "uplink.node.00ff.*");
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
