//! The Uplink hub: accounts, the OAuth2 authorization server, consent with a per-data-source
//! choice, grants checked against the store on every request, revocation that takes effect for
//! the very next request, and the relay from apps to site connectors over their links.
//!
//! An app can read a connector's data source only if it is registered ([`oauth`]), the user
//! consented and ticked that data source ([`pages::consent`]), it presents a valid access token
//! ([`token`]) and the grant is live in the store at that moment ([`access`]). Its query then
//! goes through the [`relay::ConnectorRouter`] seam ([`Hub::relay`]) to the connector's link
//! ([`link`], SignalR at `/hubs/connector`, `docs/protocol.md`), and the answer streams back —
//! cut at once if the access it serves is revoked or expires on the way ([`in_flight`]).
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

pub mod access;
pub mod api;
pub mod body_limit;
pub mod clock;
pub mod data_dir;
pub mod error;
pub mod health;
pub mod hub;
pub mod in_flight;
pub mod link;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod password;
pub mod rate_limit;
pub mod relay;
pub mod revocation;
mod router;
pub mod scopes;
pub mod secret;
pub mod server;
pub mod store;
pub mod token;

pub use error::{HubError, Result};
pub use hub::{Hub, HubConfig, NewApp, RegisteredApp, RegisteredConnector};
pub use router::router;
pub use server::{serve, serve_tls};
