//! The connector router seam: "deliver this query to connector X and stream its answer back".
//! The app data API talks only to [`ConnectorRouter`]; today [`crate::link`] implements it with an
//! in-process map of live links, later a backplane (NATS request/reply, Redis) can route to the
//! hub node that holds X's link.

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use uplink_link::RelayedQuery;

/// The answer to a relayed query, as the bytes of the app's HTTP body.
///
/// Yields chunks in order; an `Err` item means the answer broke off after it began (the app's
/// body must then be cut short, never completed). Dropping it cancels the query on the
/// connector.
pub struct RelayStream {
    inner: BoxStream<'static, Result<Bytes, RelayError>>,
}

impl RelayStream {
    /// Wraps a stream of body chunks.
    pub fn new(inner: BoxStream<'static, Result<Bytes, RelayError>>) -> Self {
        Self { inner }
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

/// Why a query could not be relayed, or broke off.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// A stable machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            Self::Offline { .. } => "connector_offline",
            Self::Timeout { .. } => "connector_timeout",
            Self::LinkLost => "link_lost",
            Self::Connector { code, .. } => code,
            Self::TooLarge { .. } => "answer_too_large",
            // The codes the grant check answers with, so an app handles both alike.
            Self::Revoked => "no_grant",
            Self::TokenExpired => "invalid_token",
        }
    }

    /// The HTTP status an app sees when this happens before the body began.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Offline { .. } | Self::LinkLost => 503,
            Self::Timeout { .. } => 504,
            Self::Connector { code, .. } => uplink_link::failure::http_status(code),
            Self::TooLarge { .. } => 413,
            Self::Revoked => 403,
            Self::TokenExpired => 401,
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
        let expired = RelayError::TokenExpired;
        assert_eq!(
            (expired.http_status(), expired.code()),
            (401, "invalid_token")
        );
    }
}
