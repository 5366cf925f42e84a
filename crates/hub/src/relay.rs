//! The connector router seam: "deliver this query to connector X and stream its answer back".
//! The app data API talks only to [`ConnectorRouter`]; today `crate::link` implements it with an
//! in-process map of live links, later a backplane (NATS request/reply, Redis) can route to the
//! hub node that holds X's link.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use uplink_link::RelayedQuery;
use uplink_link::failure::FailureCode;
use uplink_model::ComputedBy;

use crate::api::ApiErrorCode;

/// The answer to a relayed query, as the bytes of the app's HTTP body.
///
/// Yields chunks in order; an `Err` item means the answer broke off after it began (the app's
/// body must then be cut short, never completed). Dropping it cancels the query on the
/// connector.
pub struct RelayStream {
    inner: BoxStream<'static, Result<Bytes, RelayError>>,
    computed_by: Option<ComputedBy>,
}

impl RelayStream {
    /// Wraps a stream of body chunks.
    pub fn new(inner: BoxStream<'static, Result<Bytes, RelayError>>) -> Self {
        Self {
            inner,
            computed_by: None,
        }
    }

    /// The same answer, with who computed it as the connector said (`None`: it did not say).
    pub fn computed_by(mut self, by: Option<ComputedBy>) -> Self {
        self.computed_by = by;
        self
    }

    /// Who computed the answer (plot, values at times, processed), when the connector said.
    pub fn computed(&self) -> Option<ComputedBy> {
        self.computed_by
    }
}

impl std::fmt::Debug for RelayStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayStream")
    }
}

impl Stream for RelayStream {
    type Item = Result<Bytes, RelayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Why a query could not be relayed, or broke off. Serializable: hub replicas pass it to each
/// other over the backplane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RelayError {
    /// The connector has no live link.
    #[error(
        "the connector '{connector}' serving this data source is offline; try again when it is back"
    )]
    Offline {
        /// Its display name.
        connector: String,
    },
    /// The connector did not answer in time.
    #[error("the connector did not answer within {seconds} s")]
    Timeout {
        /// The limit that passed.
        seconds: u64,
    },
    /// The link dropped while the answer was on its way.
    #[error("the link to the connector dropped during the answer")]
    LinkLost,
    /// The connector refused or failed the query (a code from `uplink_link::failure`).
    #[error("{message}")]
    Connector {
        /// The connector's stable code.
        code: String,
        /// Its explanation.
        message: String,
    },
    /// The answer exceeded the operator's limit on answer size.
    #[error(
        "the answer exceeds this hub's limit of {limit} bytes; ask for a shorter range or fewer values"
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The access the answer served was revoked while it was on its way (the grant, the
    /// token's family, the app or the connector).
    #[error("access to this data source was revoked; the answer was cut")]
    Revoked,
    /// The access token expired while the answer was on its way.
    #[error("the access token expired; the answer was cut (get a fresh token and ask again)")]
    TokenExpired,
}

impl RelayError {
    /// The data API's code for this, or `None` for a connector's code the hub does not know
    /// (a newer connector's: relayed as it is, with 502).
    pub fn api_code(&self) -> Option<ApiErrorCode> {
        self.known_code().ok()
    }

    /// The data API's code, or the connector's own when the hub does not know it.
    fn known_code(&self) -> Result<ApiErrorCode, &str> {
        Ok(match self {
            Self::Offline { .. } => ApiErrorCode::ConnectorOffline,
            Self::Timeout { .. } => ApiErrorCode::ConnectorTimeout,
            Self::LinkLost => ApiErrorCode::LinkLost,
            Self::Connector { code, .. } => {
                return FailureCode::from_wire(code)
                    .and_then(ApiErrorCode::of_failure)
                    .ok_or(code.as_str());
            }
            Self::TooLarge { .. } => ApiErrorCode::AnswerTooLarge,
            // The codes the grant check answers with, so an app handles both alike.
            Self::Revoked => ApiErrorCode::NoGrant,
            Self::TokenExpired => ApiErrorCode::InvalidToken,
        })
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &str {
        match self.known_code() {
            Ok(code) => code.as_str(),
            Err(connector_code) => connector_code,
        }
    }

    /// The code for metrics: one of a fixed set, whatever code a connector sent.
    pub fn metric_code(&self) -> &'static str {
        match self.known_code() {
            Ok(code) => code.as_str(),
            Err(_) => "connector_error",
        }
    }

    /// The HTTP status an app sees when this happens before the body began.
    pub fn http_status(&self) -> u16 {
        match self.known_code() {
            Ok(code) => code.status().as_u16(),
            Err(connector_code) => uplink_link::failure::http_status(connector_code),
        }
    }
}

/// Delivers queries to connectors and streams their answers back.
#[async_trait]
pub trait ConnectorRouter: Send + Sync + std::fmt::Debug {
    /// Relays `query` to `connector_id`. Returns once the connector began answering (its first
    /// chunk, or a successful end with an empty body), so a refusal becomes an HTTP error
    /// status; the stream then carries the rest.
    async fn relay(
        &self,
        connector_id: &str,
        query: RelayedQuery,
    ) -> Result<RelayStream, RelayError>;

    /// Subscribes to live values (docs/protocol.md, `Subscribe`): one subscription on the
    /// connector per (app, data source, tag set), shared by every caller asking for the same
    /// (`request.subscription_id` is the router's own). Returns once the first update (the
    /// current values) arrived, so a refusal becomes an HTTP error status.
    async fn subscribe(
        &self,
        connector_id: &str,
        request: uplink_link::SubscribeRequest,
    ) -> Result<crate::live::LiveHandle, RelayError> {
        let _ = (connector_id, request);
        Err(RelayError::Connector {
            code: uplink_link::failure::UNSUPPORTED.to_owned(),
            message: "this hub does not relay subscriptions".to_owned(),
        })
    }

    /// Sets values on a connector's data source (docs/protocol.md, `Write`) and waits for the
    /// connector's per-value results. The connector decides what the site allows; an error
    /// here means nothing was tried (offline, timeout, the link dropped).
    async fn write(
        &self,
        connector_id: &str,
        request: uplink_link::WriteRequest,
    ) -> Result<uplink_link::WriteAnswer, RelayError> {
        let _ = (connector_id, request);
        Err(RelayError::Connector {
            code: uplink_link::failure::UNSUPPORTED.to_owned(),
            message: "this hub does not relay writes".to_owned(),
        })
    }

    /// Whether `connector_id` has a live, registered link right now.
    fn is_online(&self, connector_id: &str) -> bool;

    /// The data sources `connector_id` announced on its live link (None when offline, or
    /// when this router cannot know, as a backplane may not).
    fn describe(&self, connector_id: &str) -> Option<Vec<uplink_model::DataSourceDescriptor>> {
        let _ = connector_id;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses_and_codes() {
        let offline = RelayError::Offline {
            connector: "press-shop".into(),
        };
        assert_eq!(offline.http_status(), 503);
        assert_eq!(offline.code(), "connector_offline");
        assert!(offline.to_string().contains("press-shop"));
        assert_eq!(RelayError::Timeout { seconds: 30 }.http_status(), 504);
        let vetoed = RelayError::Connector {
            code: "vetoed".into(),
            message: "blocked on site".into(),
        };
        assert_eq!((vetoed.http_status(), vetoed.code()), (403, "vetoed"));
        assert_eq!(
            (
                RelayError::Revoked.http_status(),
                RelayError::Revoked.code()
            ),
            (403, "no_grant")
        );
        let newer = RelayError::Connector {
            code: "something_new".into(),
            message: "a newer connector's failure".into(),
        };
        assert_eq!((newer.http_status(), newer.code()), (502, "something_new"));
        assert_eq!(newer.api_code(), None);
        let busy = RelayError::Connector {
            code: "busy".into(),
            message: "too many queries".into(),
        };
        assert_eq!(busy.api_code(), Some(ApiErrorCode::Busy));
        let expired = RelayError::TokenExpired;
        assert_eq!(
            (expired.http_status(), expired.code()),
            (401, "invalid_token")
        );
    }
}
