//! The hub's routes and the headers every response carries: the OAuth2 server and pages, the
//! app data API (relaying through [`Hub::relay`]) and the connector link at
//! [`uplink_link::HUB_PATH`].

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;

use crate::hub::Hub;
use crate::{access, api, link, oauth, pages};

/// Largest request body the hub reads (forms and token requests are small).
const MAX_BODY: usize = 64 * 1024;

/// Every route of the hub. The connector link is mounted outside the body limit: a long-polling
/// or SSE connector posts messages of up to [`uplink_link::MAX_LINK_MESSAGE_BYTES`], which the
/// link's own SignalR limit checks.
pub fn router(hub: Arc<Hub>) -> Router {
    let link = link::router(hub.clone());
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
        .merge(api::routes(hub.relay()))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .with_state(hub)
        .nest(uplink_link::HUB_PATH, link)
        .layer(middleware::from_fn(security_headers))
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
