//! Uplink's site connector runtime: the data sources it reads (simulated, CSV, SQLite) behind
//! one streaming [`DataSource`] trait, the form schemas that describe and validate each kind's
//! settings, and the durable connector configuration.
//!
//! The link to the hub comes later and builds on this; nothing here opens a network socket.
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

pub mod activity;
pub mod answer;
pub mod config;
mod error;
pub mod form;
pub mod kinds;
pub mod policy;
mod source;
pub mod sources;

pub use config::{ConfigStore, ConnectorConfig, SourceConfig};
pub use error::SourceError;
pub use source::{CHUNK, DataSource, Health, HealthIssue, HealthState, RawStream, SnapshotStream};
