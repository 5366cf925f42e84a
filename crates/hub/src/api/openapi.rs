//! `GET /api/v1/openapi.json`: the data API as an OpenAPI 3.1 document, served without a token
//! so tools and developers can read it first. The document is written by hand next to the code
//! (`openapi.json`); tests hold it to the routes. The hub fills in its own origin, so the
//! server and OAuth URLs in the served copy are the ones to call.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::hub::Hub;

/// The document as written, with relative URLs.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document for a hub whose public origin is `issuer`.
///
/// ```
/// let doc = uplink_hub::api::openapi::document("https://hub.example.com");
/// assert_eq!(doc["openapi"], "3.1.0");
/// assert_eq!(doc["servers"][0]["url"], "https://hub.example.com");
/// ```
pub fn document(issuer: &str) -> Value {
    let mut doc = for_origin(DOCUMENT, issuer);
    let flow = &mut doc["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"];
    for (field, path) in [
        ("authorizationUrl", "/oauth/authorize"),
        ("tokenUrl", "/oauth/token"),
        ("refreshUrl", "/oauth/token"),
    ] {
        flow[field] = Value::String(format!("{issuer}{path}"));
    }
    doc
}

/// A hand-written OpenAPI document (`text`) whose server is the hub at `issuer`.
pub(crate) fn for_origin(text: &str, issuer: &str) -> Value {
    let mut doc: Value =
        serde_json::from_str(text).expect("the OpenAPI documents are valid JSON (tests check)");
    doc["servers"] = json!([{ "url": issuer, "description": "This hub" }]);
    doc
}

/// Serves [`document`] for this hub.
pub async fn serve(State(hub): State<Arc<Hub>>) -> Json<Value> {
    Json(document(&hub.config.issuer))
}
