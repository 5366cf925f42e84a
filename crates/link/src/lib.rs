//! The connector link protocol: what a connector and the hub say to each other over SignalR at
//! [`HUB_PATH`], as plain serde types shared by both sides. `docs/protocol.md` is the normative
//! description (written so a connector can be built in any language with an official SignalR
//! client); this crate is its Rust form.
//!
//! The hub relays an app's query as a [`RelayedQuery`] (method [`to_connector::QUERY`]); the
//! connector answers with the exact bytes of the HTTP body the app will receive, in chunks
//! ([`to_hub::QUERY_CHUNK`], each acknowledged before the window moves on, which is the
//! backpressure) and ends with [`to_hub::QUERY_END`]. The hub forwards chunk bytes without parsing
//! them.
//!
//! ```
//! use uplink_link::{QueryOperation, RelayedQuery, ResultFormat};
//!
//! let json = r#"{"queryId":"q1","appId":"app_x","userId":"usr_y","source":"plant-a",
//!   "format":"json","query":{"type":"snapshot","tags":["FIC101.PV"]}}"#;
//! let query: RelayedQuery = serde_json::from_str(json).unwrap();
//! assert_eq!(query.operation(), QueryOperation::Snapshot);
//! assert_eq!(query.format, ResultFormat::Json);
//! ```
#![warn(missing_docs)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uplink_model::{ComputedBy, DataSourceDescriptor, Query};

mod chunk_data;
mod tag_update;

pub use chunk_data::ChunkData;

/// Where the hub serves the link (SignalR, JSON or MessagePack hub protocol, any of the three
/// transports; MessagePack over WebSockets and long polling only).
pub const HUB_PATH: &str = "/hubs/connector";
/// The header a connector sends on every link request (negotiate, polls, sends, the event
/// stream, the WebSocket upgrade) with its connector id, so a load balancer in front of
/// several hub replicas can hash it and keep each link's requests on one replica.
pub const CONNECTOR_HEADER: &str = "X-Uplink-Connector";
/// The OAuth scope an access token needs to open a link.
pub const CONNECTOR_SCOPE: &str = "connector";
/// The public OAuth client a connector signs in with through the device flow.
pub const CONNECTOR_CLIENT_ID: &str = "uplink-connector";
/// How many chunks of one query may await acknowledgement at once.
pub const CHUNK_WINDOW: usize = 4;
/// The most bytes of body one chunk may carry (before any JSON string escaping).
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// The largest SignalR message the hub accepts on the link.
pub const MAX_LINK_MESSAGE_BYTES: usize = 1024 * 1024;
/// The `tracing` target of the trace events that mark a live update at each hop — the
/// source's item on the connector (`hop = "source"`), the update sent on the link (`"sent"`),
/// applied on the hub (`"applied"`), written for an app stream (`"written"`) — each with
/// `stamp`, the first value's time in microseconds since the epoch, so that one update can be
/// followed end to end (`RUST_LOG=uplink::latency=trace`; the live benchmark's breakdown).
pub const LATENCY_TARGET: &str = "uplink::latency";

/// Methods the connector invokes on the hub (all are invocations with a completion).
pub mod to_hub {
    /// `Register(Registration) -> Registered`: first call after connecting, and again whenever
    /// the connector's data sources change.
    pub const REGISTER: &str = "Register";
    /// `RenewToken(accessToken: string) -> TokenRenewed`: a fresh access token before the
    /// current one expires; the hub closes links whose token expired.
    pub const RENEW_TOKEN: &str = "RenewToken";
    /// `QueryChunk(queryId: string, seq: number, data: string | bin) -> null`: the next piece
    /// of the body ([`ChunkData`](crate::ChunkData): a string in JSON, `bin` in MessagePack);
    /// completes once the hub has room for more. An error completion means stop.
    pub const QUERY_CHUNK: &str = "QueryChunk";
    /// `QueryEnd(queryId: string, outcome: QueryOutcome) -> null`: the answer is complete, or
    /// failed.
    pub const QUERY_END: &str = "QueryEnd";
    /// `QueryInfo(queryId: string, info: QueryInfo)`, optional and sent without awaiting a
    /// completion, before the first `QueryChunk`: what the hub passes on to the app in response
    /// headers (who computed the answer). A connector that never sends it is answered without
    /// those headers; a hub that does not know it ignores it.
    pub const QUERY_INFO: &str = "QueryInfo";
    /// `RevokeGrant(RevokeRequest) -> null`: the data owner revoked an app on site.
    pub const REVOKE_GRANT: &str = "RevokeGrant";
    /// `Heartbeat() -> Heartbeat`: measures round-trip time and compares clocks.
    pub const HEARTBEAT: &str = "Heartbeat";
    /// `SubscriptionUpdate(subscriptionId: string, update: SubscriptionUpdate) -> null`: the
    /// latest values of a subscription's changed tags; at most one awaits its completion at a
    /// time (the completion is the flow control). An error completion means stop.
    pub const SUBSCRIPTION_UPDATE: &str = "SubscriptionUpdate";
    /// `SubscriptionEnd(subscriptionId: string, outcome: QueryOutcome) -> null`: the connector
    /// ended a subscription (its source failed or was removed, the site blocked it).
    pub const SUBSCRIPTION_END: &str = "SubscriptionEnd";
}

/// Methods the hub invokes on the connector (sent without awaiting a result).
pub mod to_connector {
    /// `Query(RelayedQuery)`: run this query and answer with chunks and an end.
    pub const QUERY: &str = "Query";
    /// `CancelQuery(queryId: string, reason: string)`: the app went away or the hub gave up.
    pub const CANCEL_QUERY: &str = "CancelQuery";
    /// `Grants(GrantList)`: every live grant on this connector's data sources, sent after
    /// registration and whenever one is given or revoked.
    pub const GRANTS: &str = "Grants";
    /// `Subscribe(SubscribeRequest)`: stream the current values of these tags, then their
    /// changes, as `SubscriptionUpdate`s until `Unsubscribe`.
    pub const SUBSCRIBE: &str = "Subscribe";
    /// `Unsubscribe(subscriptionId: string, reason: string)`: stop a subscription and send
    /// nothing more for it (no `SubscriptionEnd`).
    pub const UNSUBSCRIBE: &str = "Unsubscribe";
    /// `Write(WriteRequest) -> WriteAnswer`: set values on a data source. The one method the
    /// hub invokes with a client result: the connector answers when every item was tried.
    pub const WRITE: &str = "Write";
}

/// The most values one write may carry.
pub const MAX_WRITE_VALUES: usize = 100;

/// A value to set: a switch, a number or a text (a digital state's name), as JSON has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WriteValue {
    /// A boolean (a coil, a switch).
    Bool(bool),
    /// A number; the data source converts it to the tag's type or refuses it.
    Number(f64),
    /// A text or a digital state's name.
    Text(String),
}

impl std::fmt::Display for WriteValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// One value of a [`WriteRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteItem {
    /// The tag to set.
    pub tag: String,
    /// Its new value.
    pub value: WriteValue,
    /// The value's time, when the app gave one (a source that cannot stamp values ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
}

/// The argument of [`to_connector::WRITE`]: values an app sets on one data source, already
/// checked by the hub against the app's grant (scope `data.write` on that source). The
/// connector checks again what only the site decides: the source exists, its local policy
/// allows the app, each tag matches the source's writable patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRequest {
    /// Unique per link, for logs.
    pub write_id: String,
    /// The app writing (its client id).
    pub app_id: String,
    /// The user on whose grant it writes.
    pub user_id: String,
    /// The data source's name on the connector.
    pub source: String,
    /// The values, applied in order (1 to [`MAX_WRITE_VALUES`]).
    pub values: Vec<WriteItem>,
}

/// What became of one value of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteResult {
    /// The source took the value.
    Ok,
    /// The site refused it before it reached the source (writing off, tag not writable, a
    /// source that cannot write).
    Refused,
    /// The source tried and failed (unknown tag, value that does not fit, device error).
    Failed,
}

impl WriteResult {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// The result of one value of a write, in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteItemResult {
    /// The tag.
    pub tag: String,
    /// What became of the value.
    pub result: WriteResult,
    /// A stable code when not `ok` (see [`write_code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why, for people, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The tag's value read just before the write, where the source could read it (for the
    /// hub's audit trail; never passed on to the app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_value: Option<uplink_model::TagValue>,
}

/// The answer to [`to_connector::WRITE`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteAnswer {
    /// Set when the whole write was refused (unknown source, the site's veto): no value was
    /// tried and `results` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<QueryFailure>,
    /// One result per value, in the order asked.
    #[serde(default)]
    pub results: Vec<WriteItemResult>,
}

/// The stable codes of a refused or failed value in a [`WriteItemResult`].
pub mod write_code {
    /// The site has writing off for this data source (no writable tag pattern).
    pub const WRITING_OFF: &str = "writing_off";
    /// The tag matches none of the data source's writable patterns.
    pub const TAG_NOT_WRITABLE: &str = "tag_not_writable";
    /// The data source's kind cannot write.
    pub const UNSUPPORTED: &str = "unsupported";
    /// The data source has no such tag.
    pub const UNKNOWN_TAG: &str = "unknown_tag";
    /// The source refused the value (read-only tag, value that does not fit its type).
    pub const WRITE_REFUSED: &str = "write_refused";
    /// The source or its device failed.
    pub const SOURCE_ERROR: &str = "source_error";
}

/// What a subscription streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionKind {
    /// Current values of tags, coalesced to the latest per tag.
    #[default]
    Values,
    /// The data source's alarms and events ([`SubscriptionUpdate::events`]), never coalesced:
    /// queued up to [`MAX_QUEUED_EVENTS`], the oldest dropped (and counted) beyond.
    Events,
}

/// The most events a connector queues for one events subscription while an update awaits its
/// completion; beyond it the oldest are dropped and counted in `dropped`.
pub const MAX_QUEUED_EVENTS: usize = 1_000;
/// The most events one [`SubscriptionUpdate`] carries.
pub const MAX_EVENTS_PER_UPDATE: usize = 500;

/// The argument of [`to_connector::SUBSCRIBE`]: one subscription per (app, data source, tag
/// set), however many app streams share it on the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeRequest {
    /// Unique per link; names the updates, the end and `Unsubscribe`.
    pub subscription_id: String,
    /// The app (its client id), for the connector's local policy and audit trail.
    pub app_id: String,
    /// The user whose grant the first app stream used.
    pub user_id: String,
    /// The data source's name on the connector.
    pub source: String,
    /// What to stream; optional, default `values`.
    #[serde(default)]
    pub kind: SubscriptionKind,
    /// The tags, sorted and without repeats (1 to [`MAX_SUBSCRIBED_TAGS`]); empty for
    /// `events`.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The most tags one subscription may name.
pub const MAX_SUBSCRIBED_TAGS: usize = 1_000;

/// One tag's latest value in a [`SubscriptionUpdate`]: on the wire one map, the tag's name
/// (`tag`) beside the value's fields (`time`, `value`, `text`, `status`, `units`,
/// `sourceStatusCode`, as [`uplink_model::TagValue`] has them); fields it does not know are
/// skipped. Its serde is written out (`tag_update.rs`) rather than derived with
/// `#[serde(flatten)]`, which copies every field of every value aside before reading it.
#[derive(Debug, Clone, PartialEq)]
pub struct TagUpdate {
    /// The tag's name.
    pub tag: String,
    /// Its latest value.
    pub value: uplink_model::TagValue,
}

/// The second argument of [`to_hub::SUBSCRIPTION_UPDATE`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionUpdate {
    /// Counts from 0 per subscription; the first update (`seq` 0) is the current snapshot of
    /// every tag.
    pub seq: u64,
    /// The latest value of each tag that changed since the previous update (each tag once).
    #[serde(default)]
    pub values: Vec<TagUpdate>,
    /// New alarms and events, oldest first (an `events` subscription; at most
    /// [`MAX_EVENTS_PER_UPDATE`]); optional, default empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<uplink_model::EventMessage>,
    /// Values the connector replaced by a newer one of the same tag before it could send them
    /// (the hub or the app was slower than the source), or events it dropped from a full queue,
    /// since the previous update; optional, default 0.
    #[serde(default)]
    pub dropped: u64,
}

/// The `error` texts of the SignalR `Close` messages with which the hub ends a link, and what a
/// connector must do on each (`docs/protocol.md` §5). The hub never sets `allowReconnect`.
pub mod close_reason {
    /// A newer link registered with this connector's id: **do not reconnect**, or the two links
    /// would replace each other for ever.
    pub const REPLACED: &str = "replaced by a newer link of the same connector";
    /// The connector was removed from the hub: stop.
    pub const REMOVED: &str = "the connector was removed from the hub";
    /// The signed-in connector's sign-in was revoked: stop until signed in again.
    pub const SIGN_IN_REVOKED: &str = "the connector's sign-in was revoked; sign it in again";
    /// The access token expired without `RenewToken`: reconnect with a fresh token.
    pub const TOKEN_EXPIRED: &str =
        "the access token expired without renewal; reconnect with a fresh token";
    /// The link stayed open without a successful `Register` for longer than the hub allows:
    /// reconnect and register at once.
    pub const NOT_REGISTERED: &str =
        "the link did not register in time; reconnect and register at once";
}

/// What a connector announces about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The connector's id. A connector registered by an administrator (client-credentials
    /// token) must send its own id; one signed in through the device flow sends the id it
    /// generated on first start (`con_` followed by 20 to 64 characters of `[A-Za-z0-9_-]`).
    pub connector_id: String,
    /// Display name (usually the machine's name).
    pub name: String,
    /// Software and version, e.g. `uplink-connector 0.1.0`.
    #[serde(default)]
    pub software: String,
    /// Every data source it serves now; sources missing from the list become unavailable.
    pub sources: Vec<DataSourceDescriptor>,
    /// Each source's stable key, by its name: chosen by the connector when the source is
    /// added and kept when it is renamed, so the hub keeps the source's id, and every grant on
    /// it, across a rename. A source without one is known by its name alone (a rename is then
    /// a removal and an addition).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_keys: BTreeMap<String, String>,
}

/// The hub's answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    /// The connector's id, as the hub knows it.
    pub connector_id: String,
    /// The hub's ids for the announced data sources (used in app API paths).
    pub sources: Vec<RegisteredSource>,
    /// Every live grant on this connector's data sources.
    pub grants: Vec<Grant>,
    /// As in [`GrantList`]: the apps whose every grant here was revoked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_apps: Vec<RevokedApp>,
}

/// A data source's hub id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredSource {
    /// Its name on the connector.
    pub name: String,
    /// Its id on the hub (`src_…`).
    pub id: String,
}

/// One app's live grant on one data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The app's client id.
    pub app_id: String,
    /// The app's display name.
    pub app_name: String,
    /// The user who consented.
    pub user_id: String,
    /// Their name for people (display name, else sign-in name), so a window never shows an
    /// internal id; absent from a hub that does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The data source's name on the connector.
    pub source: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When consent was given.
    pub granted_at: DateTime<Utc>,
    /// When the app last used it, if ever.
    #[serde(default)]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An app that held grants on the connector's data sources and holds none now: the site still
/// lists it, so its owner can block it there whatever the hub says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokedApp {
    /// The app's client id.
    pub app_id: String,
    /// The app's display name.
    pub app_name: String,
    /// When its last grant here was revoked.
    pub revoked_at: DateTime<Utc>,
}

/// The argument of [`to_connector::GRANTS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    /// Every live grant on the connector's data sources.
    pub grants: Vec<Grant>,
    /// The apps whose every grant here was revoked, most recently revoked first; absent from
    /// a hub that does not send them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked_apps: Vec<RevokedApp>,
}

/// The answer to [`to_hub::RENEW_TOKEN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRenewed {
    /// When the new token expires; renew before then.
    pub expires_at: DateTime<Utc>,
}

/// The answer to [`to_hub::HEARTBEAT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    /// The hub's clock when it answered.
    pub server_time: DateTime<Utc>,
}

/// The argument of [`to_hub::REVOKE_GRANT`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeRequest {
    /// The app to revoke.
    pub app_id: String,
    /// One data source by name, or every source of this connector when absent.
    #[serde(default)]
    pub source: Option<String>,
}

/// How the app asked for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultFormat {
    /// One JSON document (`application/json`).
    #[default]
    Json,
    /// One JSON value per line (`application/x-ndjson`).
    Ndjson,
}

impl ResultFormat {
    /// The HTTP media type of the format.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
        }
    }
}

/// A query the hub relays: already checked against the grant and validated, with relative
/// times resolved to absolute ones by the hub's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayedQuery {
    /// Unique per link; names the chunks and the end.
    pub query_id: String,
    /// The app asking (its client id), for the connector's local policy and audit trail.
    pub app_id: String,
    /// The user on whose grant the app reads.
    pub user_id: String,
    /// The data source's name on the connector.
    pub source: String,
    /// The body format the app asked for.
    #[serde(default)]
    pub format: ResultFormat,
    /// The query, in the data model's JSON form.
    pub query: Query,
}

/// Which kind of query, for policy, audit and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum QueryOperation {
    /// Tag search.
    Search,
    /// Current values.
    Snapshot,
    /// Stored values.
    Raw,
    /// Down-sampled values.
    Plot,
    /// Values at given times.
    AtTimes,
    /// Functions over intervals.
    Processed,
    /// Alarms and events in a range.
    Events,
}

impl QueryOperation {
    /// The wire name (`"search"`, `"atTimes"`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Search => "search",
            Self::Snapshot => "snapshot",
            Self::Raw => "raw",
            Self::Plot => "plot",
            Self::AtTimes => "atTimes",
            Self::Processed => "processed",
            Self::Events => "events",
        }
    }
}

impl std::fmt::Display for QueryOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RelayedQuery {
    /// The kind of query.
    pub fn operation(&self) -> QueryOperation {
        operation_of(&self.query)
    }
}

/// The kind of a query.
pub fn operation_of(query: &Query) -> QueryOperation {
    match query {
        Query::Search(_) => QueryOperation::Search,
        Query::Snapshot(_) => QueryOperation::Snapshot,
        Query::Raw(_) => QueryOperation::Raw,
        Query::Plot(_) => QueryOperation::Plot,
        Query::AtTimes(_) => QueryOperation::AtTimes,
        Query::Processed(_) => QueryOperation::Processed,
        Query::Events(_) => QueryOperation::Events,
    }
}

/// What a connector says about its answer before the body (argument of
/// [`to_hub::QUERY_INFO`]); every field is optional, and unknown fields are ignored.
///
/// ```
/// use uplink_link::QueryInfo;
/// use uplink_model::ComputedBy;
///
/// let info = QueryInfo { computed_by: Some(ComputedBy::Source) };
/// assert_eq!(serde_json::to_string(&info).unwrap(), r#"{"computedBy":"source"}"#);
/// let empty: QueryInfo = serde_json::from_str(r#"{"later":1}"#).unwrap();
/// assert_eq!(empty.computed_by, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryInfo {
    /// Who computed a plot, values-at-times or processed answer: the data source itself
    /// (pushed down) or Uplink's model from raw values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_by: Option<ComputedBy>,
}

/// How a query ended (argument of [`to_hub::QUERY_END`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOutcome {
    /// Absent when the body is complete; the reason when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<QueryFailure>,
}

/// Why the connector could not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryFailure {
    /// A stable code from [`failure`].
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// The stable failure codes a connector reports, and the HTTP status the app then sees (when
/// no byte of the body was sent yet; later failures cut the body short).
///
/// [`FailureCode`] is the list; the `&str` constants name the same codes for code that builds
/// a [`QueryFailure`]. On the wire a code stays a string, so a newer connector's code that this
/// list does not know still reaches the app (as a 502).
pub mod failure {
    use serde::{Deserialize, Serialize};

    /// Makes [`FailureCode`] from its variants, wire names and HTTP statuses.
    macro_rules! codes {
        ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal => $status:literal, )*) => {
            /// A stable failure code a connector reports; snake_case on the wire.
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
            #[non_exhaustive]
            pub enum FailureCode {
                $( $(#[doc = $doc])* #[serde(rename = $wire)] $variant, )*
            }

            impl FailureCode {
                /// Every code, in the order they are declared.
                pub const ALL: &[FailureCode] = &[$(FailureCode::$variant),*];

                /// The code as it appears on the wire, e.g. `vetoed`.
                pub const fn as_str(self) -> &'static str {
                    match self {
                        $( FailureCode::$variant => $wire, )*
                    }
                }

                /// The code of this wire name, if it is one.
                pub fn from_wire(code: &str) -> Option<Self> {
                    match code {
                        $( $wire => Some(FailureCode::$variant), )*
                        _ => None,
                    }
                }

                /// The HTTP status an app sees for this failure.
                pub const fn http_status(self) -> u16 {
                    match self {
                        $( FailureCode::$variant => $status, )*
                    }
                }
            }
        };
    }

    codes! {
        /// The data source is not on this connector (404).
        UnknownSource = "unknown_source" => 404,
        /// The tag does not exist (404).
        UnknownTag = "unknown_tag" => 404,
        /// The connector's local policy refuses this app or data source (403).
        Vetoed = "vetoed" => 403,
        /// The query is malformed or out of limits (400).
        InvalidQuery = "invalid_query" => 400,
        /// The data source does not answer this kind of query (400).
        Unsupported = "unsupported" => 400,
        /// The data source failed (502).
        SourceError = "source_error" => 502,
        /// The connector is running too many queries (503).
        Busy = "busy" => 503,
        /// The query was cancelled (499, never seen by the app).
        Cancelled = "cancelled" => 499,
    }

    impl std::fmt::Display for FailureCode {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.as_str())
        }
    }

    /// The data source is not on this connector (404).
    pub const UNKNOWN_SOURCE: &str = FailureCode::UnknownSource.as_str();
    /// The tag does not exist (404).
    pub const UNKNOWN_TAG: &str = FailureCode::UnknownTag.as_str();
    /// The connector's local policy refuses this app or data source (403).
    pub const VETOED: &str = FailureCode::Vetoed.as_str();
    /// The query is malformed or out of limits (400).
    pub const INVALID_QUERY: &str = FailureCode::InvalidQuery.as_str();
    /// The data source does not answer this kind of query (400).
    pub const UNSUPPORTED: &str = FailureCode::Unsupported.as_str();
    /// The data source failed (502).
    pub const SOURCE_ERROR: &str = FailureCode::SourceError.as_str();
    /// The connector is running too many queries (503).
    pub const BUSY: &str = FailureCode::Busy.as_str();
    /// The query was cancelled (499, never seen by the app).
    pub const CANCELLED: &str = FailureCode::Cancelled.as_str();

    /// The HTTP status an app sees for a failure `code`; unknown codes are 502.
    pub fn http_status(code: &str) -> u16 {
        FailureCode::from_wire(code).map_or(502, FailureCode::http_status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_query_round_trips_in_camel_case() {
        let query: Query = serde_json::from_str(
            r#"{"type":"raw","tag":"T1","start":"2024-05-01T00:00:00Z","end":"2024-05-02T00:00:00Z"}"#,
        )
        .unwrap();
        let relayed = RelayedQuery {
            query_id: "q7".into(),
            app_id: "app_1".into(),
            user_id: "usr_1".into(),
            source: "plant".into(),
            format: ResultFormat::Ndjson,
            query,
        };
        let json = serde_json::to_value(&relayed).unwrap();
        assert_eq!(json["queryId"], "q7");
        assert_eq!(json["format"], "ndjson");
        assert_eq!(json["query"]["type"], "raw");
        let back: RelayedQuery = serde_json::from_value(json).unwrap();
        assert_eq!(back, relayed);
        assert_eq!(back.operation(), QueryOperation::Raw);
    }

    #[test]
    fn outcome_without_error_is_an_empty_object() {
        assert_eq!(
            serde_json::to_string(&QueryOutcome::default()).unwrap(),
            "{}"
        );
        let failed: QueryOutcome =
            serde_json::from_str(r#"{"error":{"code":"vetoed","message":"blocked on site"}}"#)
                .unwrap();
        assert_eq!(failed.error.unwrap().code, failure::VETOED);
    }

    #[test]
    fn failure_codes_map_to_http_statuses() {
        assert_eq!(failure::http_status(failure::VETOED), 403);
        assert_eq!(failure::http_status(failure::UNKNOWN_TAG), 404);
        assert_eq!(failure::http_status(failure::INVALID_QUERY), 400);
        assert_eq!(failure::http_status("something_new"), 502);
    }

    #[test]
    fn failure_codes_round_trip_through_their_wire_names() {
        for &code in failure::FailureCode::ALL {
            assert_eq!(failure::FailureCode::from_wire(code.as_str()), Some(code));
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
            assert_eq!(failure::http_status(code.as_str()), code.http_status());
        }
        assert_eq!(failure::FailureCode::from_wire("something_new"), None);
        assert_eq!(failure::VETOED, "vetoed");
        assert_eq!(failure::CANCELLED, "cancelled");
    }

    #[test]
    fn registration_reads_the_documented_shape() {
        let r: Registration = serde_json::from_str(
            r#"{"connectorId":"con_abcdefghijklmnopqrst","name":"site-pc","sources":[
                {"name":"sim","kind":"simulated","description":"","capabilities":{
                 "search":true,"snapshot":true,"raw":true,"plot":true,"atTimes":true,
                 "processed":[],"subscribe":false}}]}"#,
        )
        .unwrap();
        assert_eq!(r.sources[0].name, "sim");
        assert!(r.software.is_empty());
    }

    /// The link's messages as the MessagePack hub protocol carries them: structs as maps keyed
    /// by field name (what the SignalR library sends), read back to the same values.
    fn through_messagepack<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        let mut bytes = Vec::new();
        value
            .serialize(&mut rmp_serde::Serializer::new(&mut bytes).with_struct_map())
            .unwrap();
        rmp_serde::from_slice(&bytes).unwrap()
    }

    #[test]
    fn subscription_messages_survive_json_and_messagepack() {
        let request: SubscribeRequest = serde_json::from_str(
            r#"{"subscriptionId":"s1","appId":"app_1","userId":"usr_1","source":"line-1","tags":["A","B"]}"#,
        )
        .unwrap();
        assert_eq!(request.kind, SubscriptionKind::Values);
        assert_eq!(through_messagepack(&request), request);
        let update: SubscriptionUpdate = serde_json::from_str(
            r#"{"seq":3,"values":[{"tag":"A","time":"2026-11-25T08:00:00.1Z","value":42.5,"status":"good"}],"dropped":7}"#,
        )
        .unwrap();
        assert_eq!(update.values[0].tag, "A");
        assert_eq!(update.values[0].value.value, Some(42.5));
        let json = serde_json::to_value(&update).unwrap();
        assert_eq!(json["values"][0]["tag"], "A");
        assert_eq!(json["values"][0]["value"], 42.5);
        assert_eq!(through_messagepack(&update), update);
        let events: SubscriptionUpdate = serde_json::from_str(
            r#"{"seq":1,"events":[{"id":"e1","source":"line-1","time":"2026-11-25T08:00:00Z","topic":"A","priority":"high","category":"process","type":"alarm","message":"A high","properties":{"limit":"58"}}],"dropped":2}"#,
        )
        .unwrap();
        assert_eq!(events.events[0].priority, uplink_model::EventPriority::High);
        assert_eq!(through_messagepack(&events), events);
        let request: SubscribeRequest = serde_json::from_str(
            r#"{"subscriptionId":"s2","appId":"app_1","userId":"usr_1","source":"line-1","kind":"events"}"#,
        )
        .unwrap();
        assert_eq!(request.kind, SubscriptionKind::Events);
        assert!(request.tags.is_empty());
    }

    #[test]
    fn write_messages_survive_json_and_messagepack() {
        let request: WriteRequest = serde_json::from_str(
            r#"{"writeId":"w1","appId":"app_1","userId":"usr_1","source":"line-1","values":[
                {"tag":"SP1","value":42.5},{"tag":"Run","value":true},
                {"tag":"Mode","value":"auto","time":"2026-11-25T08:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(request.values[0].value, WriteValue::Number(42.5));
        assert_eq!(request.values[1].value, WriteValue::Bool(true));
        assert_eq!(request.values[2].value, WriteValue::Text("auto".into()));
        assert!(request.values[2].time.is_some());
        assert_eq!(through_messagepack(&request), request);
        let answer = WriteAnswer {
            error: None,
            results: vec![
                WriteItemResult {
                    tag: "SP1".into(),
                    result: WriteResult::Ok,
                    code: None,
                    message: None,
                    old_value: Some(uplink_model::TagValue::number(Utc::now(), 1.0)),
                },
                WriteItemResult {
                    tag: "Run".into(),
                    result: WriteResult::Refused,
                    code: Some(write_code::TAG_NOT_WRITABLE.into()),
                    message: Some("not writable".into()),
                    old_value: None,
                },
            ],
        };
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["results"][1]["result"], "refused");
        assert_eq!(json["results"][0]["oldValue"]["value"], 1.0);
        assert_eq!(through_messagepack(&answer), answer);
    }

    #[test]
    fn every_message_survives_messagepack() {
        for query in [
            r#"{"type":"search","pattern":"FIC*"}"#,
            r#"{"type":"snapshot","tags":["FIC101.PV","T2"]}"#,
            r#"{"type":"raw","tag":"T","start":"*-8h","end":"*","maxCount":1000}"#,
            r#"{"type":"plot","tag":"T","start":"*-1d","end":"*","intervals":100}"#,
            r#"{"type":"atTimes","tag":"T","times":["*","2024-05-01T00:00:00Z"]}"#,
            r#"{"type":"processed","tag":"T","start":"*-1d","end":"*","interval":"1h","functions":["AVG","MAX"]}"#,
            r#"{"type":"events","start":"*-1d","end":"*","limit":10,"cursor":"c1"}"#,
        ] {
            let relayed = RelayedQuery {
                query_id: "q1".into(),
                app_id: "app_1".into(),
                user_id: "usr_1".into(),
                source: "plant".into(),
                format: ResultFormat::Ndjson,
                query: serde_json::from_str(query).unwrap(),
            };
            assert_eq!(through_messagepack(&relayed), relayed, "{query}");
        }
        let registration: Registration = serde_json::from_str(
            r#"{"connectorId":"con_abcdefghijklmnopqrst","name":"site-pc","software":"x","sources":[
                {"name":"sim","kind":"simulated","description":"d","capabilities":{
                 "search":true,"snapshot":true,"raw":true,"plot":true,"atTimes":true,
                 "processed":[],"subscribe":false}}]}"#,
        )
        .unwrap();
        assert_eq!(through_messagepack(&registration), registration);
        let grants = GrantList {
            grants: vec![Grant {
                app_id: "app_1".into(),
                app_name: "App".into(),
                user_id: "usr_1".into(),
                user_name: Some("Ada Lovelace".into()),
                source: "sim".into(),
                scopes: vec!["data.read".into(), "tags.read".into()],
                granted_at: Utc::now(),
                last_used_at: None,
            }],
            revoked_apps: vec![RevokedApp {
                app_id: "app_2".into(),
                app_name: "Old app".into(),
                revoked_at: Utc::now(),
            }],
        };
        assert_eq!(through_messagepack(&grants), grants);
        let failed = QueryOutcome {
            error: Some(QueryFailure {
                code: failure::VETOED.into(),
                message: "blocked".into(),
            }),
        };
        assert_eq!(through_messagepack(&failed), failed);
        assert_eq!(
            through_messagepack(&QueryOutcome::default()),
            QueryOutcome::default()
        );
        // Chunk data is `bin`: its bytes follow the marker and length as they are.
        let chunk = ChunkData::from(String::from("{\"v\":\"\u{1e}\"}"));
        let mut bytes = Vec::new();
        chunk
            .serialize(&mut rmp_serde::Serializer::new(&mut bytes))
            .unwrap();
        assert_eq!(bytes[0], 0xc4, "bin 8");
        assert_eq!(&bytes[2..], &chunk.0[..]);
        assert_eq!(through_messagepack(&chunk), chunk);
    }
}
