//! `POST /oauth/revoke` (RFC 7009): an app gives up a refresh or access token. Either revokes
//! the token's whole family. Answers 200 whether or not the token was known (§2.2), so the
//! endpoint cannot be used to test tokens.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::token_endpoint::form_params;
use crate::hub::Hub;
use crate::secret::digest;

/// Handler.
pub async fn revoke(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run(&hub, peer, &headers, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), OAuthError> {
    if !hub.limiters.allow_token_from(peer.ip()) {
        return Err(OAuthError::slow_down());
    }
    let params = form_params(headers, body)?;
    let app = authenticate(hub, headers, &params).await?;
    let token = params
        .require("token")
        .map_err(OAuthError::invalid_request)?;
    let family = if token.starts_with("v4.local.") {
        hub.keys
            .verify(token)
            .ok()
            .filter(|c| c.app_id == app.client_id)
            .map(|c| c.family_id)
    } else {
        hub.store
            .refresh_token_family(&digest(token))
            .await?
            .filter(|f| f.app_id == app.client_id)
            .map(|f| f.id)
    };
    if let Some(family) = family {
        hub.revoke_family(&family, "revoked by the app").await?;
        hub.audit("token_revoked", None, Some(&app.client_id), None, family)
            .await;
    }
    Ok(())
}
