//! TLS for every Uplink link: rustls server and client configurations, platform trust,
//! loopback certificates for the embedded hub, and HTTPS serving of axum routers.
//!
//! The workspace uses rustls with the *ring* provider only; [`install_crypto_provider`]
//! makes it the process default so every configuration built anywhere agrees.
//!
//! ```
//! uplink_tls::install_crypto_provider();
//! let ca = uplink_tls::LoopbackCa::generate(&["localhost", "127.0.0.1"]).unwrap();
//! let server = uplink_tls::server_config(&ca.cert_chain_pem(), ca.key_pem()).unwrap();
//! let client = uplink_tls::client_config(&uplink_tls::Trust::CustomCa(ca.ca_pem().to_owned())).unwrap();
//! assert_eq!(server.alpn_protocols, vec![b"http/1.1".to_vec()]);
//! # drop(client);
//! ```
#![warn(missing_docs)]

mod config;
mod error;
mod head_limit;
mod loopback;
mod reload;
mod serve;

pub use config::{Trust, client_config, server_config};
pub use error::TlsError;
/// The `code` of the JSON answer to a request head over the limits (431).
pub use head_limit::CODE as HEAD_TOO_LARGE_CODE;
pub use loopback::LoopbackCa;
pub use reload::CertificateSlot;
/// The server configuration every serving function takes.
pub use rustls::ServerConfig;
pub use serve::{ServeLimits, ServeLimitsSlot, serve, serve_with_limits, serve_with_live_limits};

/// Makes *ring* the process-wide rustls provider. Safe to call any number of times.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
