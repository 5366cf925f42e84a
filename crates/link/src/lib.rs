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

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uplink_model::{ComputedBy, DataSourceDescriptor, Query};

mod chunk_data;

pub use chunk_data::ChunkData;

/// Where the hub serves the link (SignalR, JSON or MessagePack hub protocol, any of the three
/// transports; MessagePack over WebSockets and long polling only).
pub const HUB_PATH: &str = "/hubs/connector";
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
}

/// What a subscription streams. Values today; events (alarms) will use the same messages with
/// `kind: "events"` and [`SubscriptionUpdate::events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubscriptionKind {
    /// Current values of tags, coalesced to the latest per tag.
    #[default]
    Values,
}

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
    /// The tags, sorted and without repeats (1 to [`MAX_SUBSCRIBED_TAGS`]).
    pub tags: Vec<String>,
}

/// The most tags one subscription may name.
pub const MAX_SUBSCRIBED_TAGS: usize = 1_000;

/// One tag's latest value in a [`SubscriptionUpdate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagUpdate {
    /// The tag's name.
    pub tag: String,
    /// Its latest value.
    #[serde(flatten)]
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
    /// Values the connector replaced by a newer one of the same tag before it could send them
    /// (the hub or the app was slower than the source) since the previous update; optional,
    /// default 0.
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

/// The argument of [`to_connector::GRANTS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    /// Every live grant on the connector's data sources.
    pub grants: Vec<Grant>,
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
                source: "sim".into(),
                scopes: vec!["data.read".into(), "tags.read".into()],
                granted_at: Utc::now(),
                last_used_at: None,
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
