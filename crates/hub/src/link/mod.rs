//! The connector link at `/hubs/connector` (`docs/protocol.md`): a SignalR hub that connectors
//! open with their own access token (scope `connector`), register their data sources on, and
//! answer relayed queries over in acknowledged chunks; and [`LocalRouter`], the
//! [`crate::relay::ConnectorRouter`] over this node's live links that the app data API relays
//! through.
//!
//! - [`identity`]: who may open a link (token check on negotiate and every transport request).
//! - `methods`: the methods a connector calls (`Register`, `RenewToken`, `QueryChunk`, …).
//! - `session`: one connection's state, and the task that ends it when its token expires and
//!   pushes grant changes to it.
//! - [`limit`]: the cap on connector links (503 and `Retry-After` beyond it).
//! - `answer`: a relayed answer on its way to the app, with the bounded buffer whose room is
//!   the connector's backpressure.
//!
//! ```no_run
//! # async fn run(hub: std::sync::Arc<uplink_hub::Hub>) {
//! // `uplink_hub::router(hub)` serves the link; apps' queries go through the hub's router:
//! let relay = hub.relay();
//! assert!(!relay.is_online("con_offline0000000000000"));
//! # }
//! ```

mod answer;
pub mod identity;
pub mod limit;
mod local_router;
mod methods;
mod registration;
mod session;

use std::sync::Arc;

use axum::Router;
use uplink_signalr::server::{HubServer, ServerOptions};

#[cfg(feature = "testing")]
pub use local_router::LinkStatus;
pub use local_router::{LinkEvent, LocalRouter};
pub(crate) use local_router::refusal_of;

use crate::hub::Hub;
use crate::store::Connector;
use crate::token::TokenSubject;

/// The subject of a client-credentials token for `connector`: the connector is the app, its
/// owner the user, and the family is the connector itself (there is no refresh token to
/// rotate), which is how the link tells these tokens from sign-ins.
pub fn connector_token_subject(connector: &Connector) -> TokenSubject {
    TokenSubject {
        user_id: connector.owner_id.clone(),
        app_id: connector.id.clone(),
        scopes: vec![crate::scopes::CONNECTOR.to_owned()],
        family_id: connector.id.clone(),
    }
}

/// The SignalR server of the link, with its token check and the protocol's message limit.
/// Mount its [`HubServer::router`] at [`uplink_link::HUB_PATH`] (`crate::router` does).
pub fn server(hub: Arc<Hub>) -> HubServer {
    let options = ServerOptions {
        max_message_size: uplink_link::MAX_LINK_MESSAGE_BYTES,
        send_queue_capacity: send_queue_capacity(hub.config.max_live_streams_per_connector),
        authenticator: Some(identity::authenticator(hub.clone())),
        ..ServerOptions::default()
    };
    HubServer::new(methods::hub(hub), options)
}

/// Messages queued for one link before the connector counts as too slow to read: beside
/// queries and their chunk acknowledgements, an app opening many streams at once sends a
/// `Subscribe` for each, and every subscription may have one update's completion on its way,
/// so the queue has room for two messages per stream the connector may be asked to serve.
fn send_queue_capacity(max_live_streams: usize) -> usize {
    ServerOptions::default()
        .send_queue_capacity
        .saturating_add(max_live_streams.saturating_mul(2))
}

/// The link's routes: its SignalR server behind the cap on connector links
/// ([`crate::HubConfig::max_connectors`]). Mount at [`uplink_link::HUB_PATH`].
pub fn router(hub: Arc<Hub>) -> Router {
    let server = server(hub.clone());
    let cap = Arc::new(limit::ConnectorLimit::new(hub.limits.clone(), server.clone()));
    server
        .router()
        .layer(axum::middleware::from_fn_with_state(cap, limit::gate))
}

#[cfg(test)]
mod tests {
    use uplink_link::close_reason;

    /// The texts of the hub's `Close` messages are part of the protocol (docs/protocol.md §5
    /// tells a connector to stop or reconnect by them): each one the hub sends is the shared
    /// constant, word for word.
    #[test]
    fn the_hubs_close_reasons_are_the_documented_ones() {
        let sources = [
            include_str!("local_router.rs"),
            include_str!("session.rs"),
            include_str!("methods.rs"),
        ]
        .concat();
        assert!(sources.contains("close_reason::REPLACED"));
        for reason in [
            close_reason::REMOVED,
            close_reason::SIGN_IN_REVOKED,
            close_reason::TOKEN_EXPIRED,
            close_reason::NOT_REGISTERED,
        ] {
            let literal = format!("\"{reason}\"");
            let constant = reason_constant(reason);
            assert!(
                sources.contains(&literal) || sources.contains(constant),
                "the hub no longer closes links with '{reason}'; update uplink_link::close_reason and docs/protocol.md"
            );
        }
    }

    fn reason_constant(reason: &str) -> &'static str {
        match reason {
            r if r == close_reason::REMOVED => "close_reason::REMOVED",
            r if r == close_reason::SIGN_IN_REVOKED => "close_reason::SIGN_IN_REVOKED",
            r if r == close_reason::NOT_REGISTERED => "close_reason::NOT_REGISTERED",
            _ => "close_reason::TOKEN_EXPIRED",
        }
    }
}
