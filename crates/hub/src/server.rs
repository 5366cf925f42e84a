//! Serving the hub over HTTPS.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::error::Result;
use crate::hub::Hub;

/// Serves `hub` on `listener` with TLS from PEM text until `shutdown` resolves.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    cert_chain_pem: &str,
    key_pem: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    uplink_tls::install_crypto_provider();
    let tls = uplink_tls::server_config(cert_chain_pem, key_pem)?;
    serve_tls(hub, listener, tls, shutdown).await
}

/// [`serve`] with a TLS configuration of the caller's: one whose certificate a
/// [`uplink_tls::CertificateSlot`] replaces while serving, for instance.
pub async fn serve_tls(
    hub: Arc<Hub>,
    listener: TcpListener,
    tls: Arc<uplink_tls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let sweeper = {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                hub.forget_idle_rate_limits();
            }
        })
    };
    // Revokes made by admin commands or other processes reach live links at once.
    let follower = tokio::spawn(hub.clone().follow_changes());
    let limits = hub.limits.serving();
    let app = crate::router::router(hub);
    let result = uplink_tls::serve_with_live_limits(listener, tls, app, shutdown, limits).await;
    sweeper.abort();
    follower.abort();
    result.map_err(|source| crate::error::HubError::Io {
        context: "the HTTPS server stopped".into(),
        source,
    })
}
