//! `POST /oauth/introspect` (RFC 7662): an authenticated confidential app asks whether a token
//! it holds is live. Only the app the token was issued to learns anything; everyone else gets
//! `{"active": false}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::token_endpoint::form_params;
use crate::hub::Hub;
use crate::secret::digest;

/// Handler.
pub async fn introspect(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match run(&hub, peer, &headers, &body).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn run(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, OAuthError> {
    if !hub.limiters.allow_token_from(peer.ip()) {
        return Err(OAuthError::slow_down());
    }
    let params = form_params(headers, body)?;
    let app = authenticate(hub, headers, &params).await?;
    if !app.confidential {
        return Err(OAuthError::invalid_client(
            "introspection needs client authentication with a secret",
        ));
    }
    let token = params
        .require("token")
        .map_err(OAuthError::invalid_request)?;
    let inactive = json!({"active": false});
    if token.starts_with("v4.local.") {
        let Ok(claims) = hub.keys.verify(token) else {
            return Ok(inactive);
        };
        let live = hub
            .store
            .family(&claims.family_id)
            .await?
            .is_some_and(|f| f.revoked_at.is_none());
        if !live || claims.app_id != app.client_id {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scopes.join(" "),
            "client_id": claims.app_id,
            "sub": claims.user_id,
            "exp": claims.expires_at,
            "iss": hub.config.issuer,
            "aud": hub.config.audience(),
            "jti": claims.token_id,
        }));
    }
    match hub
        .store
        .live_refresh_token(&digest(token), crate::clock::now())
        .await?
    {
        Some(f) if f.app_id == app.client_id => Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": f.scopes.join(" "),
            "client_id": f.app_id,
            "sub": f.user_id,
            "iss": hub.config.issuer,
        })),
        _ => Ok(inactive),
    }
}
