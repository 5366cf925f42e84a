//! Uplink's site connector runtime: the data sources it reads (simulated, CSV, SQLite) behind
//! one streaming [`DataSource`] trait, the form schemas that describe and validate each kind's
//! settings, and the durable connector configuration.
//!
//! The [`runtime`] keeps the connector's link to its hub (SignalR at `/hubs/connector`, see
//! docs/protocol.md): it answers relayed queries ([`answer`]) after the site's own veto
//! ([`policy`]), records each in a bounded trail ([`activity`]), and shows its host a live
//! [`ConnectorStatus`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use chrono::{TimeZone, Utc};
//! use futures::StreamExt;
//! use uplink_connector::{config::ConnectorConfig, kinds};
//! use uplink_model::{RawQuery, time_expr};
//!
//! let config = ConnectorConfig::default(); // one simulated source
//! let source = kinds::open(&config.sources[0]).await.unwrap();
//! let query = RawQuery {
//!     tag: "sim.ramp.1".into(),
//!     start: time_expr::parse("*-1m").unwrap(),
//!     end: time_expr::parse("*").unwrap(),
//!     max_count: None,
//!     boundary: Default::default(),
//! };
//! let now = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
//! let mut stream = source.raw(&query.resolve(now).unwrap()).await.unwrap();
//! let chunk = stream.next().await.unwrap().unwrap();
//! assert_eq!(chunk.len(), 61); // one value a second, both ends included
//! # });
//! ```
#![warn(missing_docs)]

pub mod activity;
pub mod answer;
pub mod browser_sign_in;
pub mod config;
pub mod credentials;
pub mod diagnostics;
pub mod kinds;
pub mod oauth;
pub mod policy;
pub mod runtime;
pub mod sources;

pub use config::{ConfigStore, ConnectorConfig};
pub use runtime::{ConnectorRuntime, ConnectorStatus, LinkError, LinkState, RuntimeOptions};
/// The data source trait and its types, reached as `crate::source` inside the connector.
use uplink_source as source;
pub use uplink_source::{
    CHUNK, DataSource, Health, HealthIssue, HealthState, RawStream, SnapshotStream,
};
pub use uplink_source::{SourceConfig, SourceContext, SourceError, form, io_words};
