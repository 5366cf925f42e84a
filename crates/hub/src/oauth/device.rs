//! The device authorization grant (RFC 8628) for devices without a browser, such as a headless
//! connector (`uplink connector login`): the device asks for a code pair, shows the short user
//! code, and polls the token endpoint while its owner approves on `/account/device`.
//!
//! A device grant carries scopes only. Data sources are never granted this way: reading one
//! still needs a per-source grant made on the consent page.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde_json::json;

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::params::parse_scope;
use super::token_endpoint::form_params;
use crate::hub::Hub;
use crate::secret::{Secret, digest};
use crate::store::DeviceAuthorization;

/// The `grant_type` a polling device sends.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a user code stays valid (seconds).
const LIFETIME: i64 = 600;
/// Minimum seconds between polls.
const INTERVAL: i64 = 5;
/// Consonants only (RFC 8628 §6.1): no vowels, so no words; no look-alike characters.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A fresh user code, `XXXX-XXXX`.
fn user_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    code
}

/// The stored form of a user code as typed: upper case, without dashes or spaces.
pub fn user_code_digest(typed: &str) -> Vec<u8> {
    let normalised: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    digest(&normalised)
}

/// `POST /oauth/device_authorization`.
pub async fn device_authorization(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match start(&hub, peer, &headers, &body).await {
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

async fn start(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    if !hub.limiters.allow_token_from(peer.ip()) {
        return Err(OAuthError::slow_down());
    }
    let params = form_params(headers, body)?;
    let app = authenticate(hub, headers, &params).await?;
    let scopes =
        parse_scope(params.get("scope").unwrap_or_default()).map_err(OAuthError::invalid_scope)?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the request must name the scopes it needs",
        ));
    }
    if let Some(bad) = scopes.iter().find(|s| !app.scopes.contains(s)) {
        return Err(OAuthError::invalid_scope(
            super::authorize::not_registered_for(bad),
        ));
    }
    if let Some(problem) = crate::scopes::mixing_problem(&scopes) {
        return Err(OAuthError::invalid_scope(problem));
    }
    let device_code = Secret::generate();
    let code = user_code();
    let now = crate::clock::now();
    hub.store
        .create_device_authorization(
            &device_code.digest(),
            &user_code_digest(&code),
            &DeviceAuthorization {
                app_id: app.client_id.clone(),
                scopes,
                created_at: now,
                expires_at: now + LIFETIME,
                interval_secs: INTERVAL,
                requested_from: peer.ip().to_string(),
            },
        )
        .await?;
    let verification_uri = format!("{}/account/device", hub.config.issuer);
    Ok(json!({
        "device_code": device_code.expose(),
        "user_code": code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={code}"),
        "expires_in": LIFETIME,
        "interval": INTERVAL,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_consonants_and_normalise() {
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            code.chars()
                .filter(|c| *c != '-')
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(
            user_code_digest(&code),
            user_code_digest(&code.to_lowercase().replace('-', " "))
        );
    }
}
