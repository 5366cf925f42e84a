//! `GET /oauth/openapi.json`: the OAuth endpoints (token with each grant type, authorize,
//! revoke, introspect, device authorization, metadata, and OpenID Connect's discovery, JWKS
//! and userinfo) as an OpenAPI 3.1 document, served
//! without a token. Written by hand next to the code (`openapi.json`); tests hold it to the
//! routes, and the HTTP fuzz (`tests/http/`) to what the endpoints answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::hub::Hub;

/// The document as written, with relative URLs.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document for a hub whose public origin is `issuer`.
///
/// ```
/// let doc = uplink_hub::oauth::openapi::document("https://hub.example.com");
/// assert_eq!(doc["servers"][0]["url"], "https://hub.example.com");
/// assert!(doc["paths"]["/oauth/token"]["post"].is_object());
/// ```
pub fn document(issuer: &str) -> Value {
    crate::api::openapi::for_origin(DOCUMENT, issuer)
}

/// Serves [`document`] for this hub.
pub async fn serve(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(document(&hub.config.issuer))
}
