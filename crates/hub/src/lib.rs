//! The Uplink hub: accounts, the OAuth2 authorization server, consent with a per-data-source
//! choice, grants checked against the store on every request, revocation that takes effect for
//! the very next request, and the relay from apps to site connectors over their links.
//!
//! An app can read a connector's data source only if it is registered (`oauth`), the user
//! consented and ticked that data source (`pages::consent`), it presents a valid access token
//! ([`token`]) and the grant is live in the store at that moment (`access`). Its query then
//! goes through the [`relay::ConnectorRouter`] seam ([`Hub::relay`]) to the connector's link
//! (`link`, SignalR at `/hubs/connector`, `docs/protocol.md`), and the answer streams back —
//! cut at once if the access it serves is revoked or expires on the way (`in_flight`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use uplink_hub::{Hub, HubConfig};
//!
//! let hub = Arc::new(Hub::open("/var/lib/uplink-hub".as_ref(), HubConfig::new("https://hub.example.com")).await?);
//! let relay = hub.relay();                    // what the data API relays through
//! let app = uplink_hub::router(hub.clone());  // axum Router: pages, OAuth2, /api/v1/, /hubs/connector
//! # drop((app, relay)); Ok(()) }
//! ```
#![warn(missing_docs)]

// The public API: what the `uplink` binary, the embedded hub (`uplink-control`), the test kit
// and the connector-facing seam need. The hub and its configuration (`hub`, with the limits and
// scopes an administrator sets), its data folder, the store (administration and the test kit's
// seeding), access tokens, passwords and secrets as the hub hands them out, and `relay`, the seam
// between the data API and the connector links, and `metrics`, what an operator's Prometheus
// scrapes.
pub mod backplane;
pub mod billing;
pub mod body_limit;
pub mod data_dir;
pub mod hub;
pub mod id_token;
pub mod live;
pub mod live_limits;
pub mod live_streams;
pub mod metrics;
pub mod password;
pub mod relay;
pub mod scopes;
pub mod secret;
pub mod store;
pub mod token;

// Internals. The `testing` feature makes them public for the hub's own integration tests and
// benchmarks and for the fuzz targets (`fuzz/checks`); nothing else may reach them.
macro_rules! internal {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        $(#[$attr])*
        #[cfg(feature = "testing")]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "testing"))]
        pub(crate) mod $name;
    )*};
}

internal! {
    access;
    api;
    app_hub;
    clock;
    error;
    health;
    in_flight;
    link;
    oauth;
    pages;
    rate_limit;
    revocation;
    server;
    sign_in_links;
}
mod router;

pub use error::{HubError, Result};
pub use hub::{Hub, HubConfig, NewApp, RegisteredApp, RegisteredConnector};
pub use rate_limit::RateLimits;
pub use router::router;
pub use server::{serve, serve_tls};
