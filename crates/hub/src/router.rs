//! The hub's routes and the headers every response carries.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

use crate::hub::Hub;
use crate::{access, oauth, pages};

/// Largest request body the hub reads (forms and token requests are small).
const MAX_BODY: usize = 64 * 1024;

/// Every route of the hub's security core.
pub fn router(hub: Arc<Hub>) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata::metadata),
        )
        .route("/oauth/authorize", get(oauth::authorize::authorize))
        .route("/oauth/token", post(oauth::token_endpoint::token))
        .route("/oauth/revoke", post(oauth::revoke::revoke))
        .route(
            "/oauth/device_authorization",
            post(oauth::device::device_authorization),
        )
        .route(
            "/account/device",
            get(pages::device::show).post(pages::device::submit),
        )
        .route("/oauth/introspect", post(oauth::introspect::introspect))
        .route(
            "/account/login",
            get(pages::login::show).post(pages::login::submit),
        )
        .route("/account/logout", post(pages::login::logout))
        .route(
            "/account/consent",
            get(pages::consent::show).post(pages::consent::submit),
        )
        .route("/account/settings", get(pages::settings::show))
        .route("/account/settings/revoke", post(pages::settings::revoke))
        .route(
            "/account",
            get(|| async { Redirect::to("/account/settings") }),
        )
        .route("/", get(|| async { Redirect::to("/account/settings") }))
        .route("/assets/hub.css", get(pages::layout::stylesheet))
        .route(
            "/api/v1/sources/{source}/access",
            get(access::source_access),
        )
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(hub)
}

/// Headers that make every page unframeable, unsniffable and referrer-free; pages that need a
/// wider `form-action` set their own CSP.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: with no-referrer, browsers send `Origin: null` on form
    // posts and the hub could no longer tell its own forms from forged ones.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}
