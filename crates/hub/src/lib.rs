//! The Uplink hub's security core: accounts, the OAuth2 authorization server, consent with a
//! per-data-source choice, grants checked against the store on every request, and revocation
//! that takes effect for the very next request.
//!
//! An app can read a connector's data source only if it is registered ([`oauth`]), the user
//! consented and ticked that data source ([`pages::consent`]), it presents a valid access token
//! ([`token`]) and the grant is live in the store at that moment ([`access`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use uplink_hub::{Hub, HubConfig};
//!
//! let hub = Arc::new(Hub::open("/var/lib/uplink-hub".as_ref(), HubConfig::new("https://hub.example.com")).await?);
//! let app = uplink_hub::router(hub);   // axum Router; serve it with uplink_tls::serve
//! # drop(app); Ok(()) }
//! ```

pub mod access;
pub mod api;
pub mod clock;
pub mod error;
pub mod hub;
pub mod link;
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
pub use server::serve;
