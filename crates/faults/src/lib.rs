//! Fault injection for Uplink's tests: what a site's network can do to the link between a
//! connector and its hub, switched on and off at run time from the test.
//!
//! - [`FaultProxy`] is a TCP proxy on 127.0.0.1. Through its [`Faults`] handle a test drops
//!   every open connection (with FIN or with RST), black-holes them (a half-open link: nothing
//!   is forwarded and nothing is closed), stalls all traffic, adds latency and loss, cuts each
//!   connection after a number of bytes (mid-message), or refuses new connections. The link's
//!   TLS passes through untouched.
//! - [`InterceptProxy`] terminates TLS with a certificate from its own test CA (which the
//!   connector must trust, as a site's inspecting proxy requires) and opens its own TLS to the
//!   hub, so it sees HTTP: through its [`HttpFaults`] handle it refuses WebSocket upgrades and
//!   buffers `text/event-stream` bodies until they end, as buffering corporate proxies do.
//!
//! ```no_run
//! # async fn run(hub: std::net::SocketAddr) -> Result<(), uplink_faults::FaultError> {
//! use uplink_faults::{Close, FaultProxy};
//!
//! let proxy = FaultProxy::start(hub).await?;
//! let faults = proxy.faults();
//! // point the connector at https://{proxy.addr()} …
//! faults.drop_connections(Close::Rst); // the link is cut
//! faults.stall_connections(); // or: it silently stops carrying anything
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod intercept;
mod tcp;

pub use intercept::{HttpFaults, InterceptProxy};
pub use tcp::{Close, FaultProxy, Faults};

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Listening failed.
    #[error("the fault proxy cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The test CA or a TLS configuration could not be made.
    #[error("the intercepting proxy's TLS: {0}")]
    Tls(#[from] uplink_tls::TlsError),
}
