//! The hub's routes and the headers every response carries: the OAuth2 server and pages, the
//! app data API (relaying through [`Hub::relay`]), the app hub at [`crate::app_hub::PATH`]
//! (live values over one SignalR connection) and the connector link at
//! [`uplink_link::HUB_PATH`].

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::ApiErrorCode;
use crate::body_limit::{BodyGroup, RouteLimit, read_whole_body};
use crate::hub::Hub;
use crate::{access, api, billing, health, link, oauth, pages};

/// Every route of the hub. Request bodies are read whole within [`Hub::config`]'s limits
/// before a handler runs: forms and OAuth requests have one limit, the data API another. The
/// connector link is mounted outside them: a long-polling or SSE connector posts messages of
/// up to [`uplink_link::MAX_LINK_MESSAGE_BYTES`], which the link's own SignalR limit checks.
pub fn router(hub: Arc<Hub>) -> Router {
    let link = link::router(hub.clone());
    let app_hub = crate::app_hub::router(hub.clone(), hub.relay());
    let limit = |group| {
        middleware::from_fn_with_state(
            RouteLimit {
                group,
                limits: hub.limits.clone(),
            },
            read_whole_body,
        )
    };
    let data_api = api::routes(hub.relay()).layer(limit(BodyGroup::Api));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::oidc::configuration),
        )
        .route("/oauth/jwks", get(oauth::oidc::jwks))
        .route(
            "/oauth/userinfo",
            get(oauth::oidc::userinfo).post(oauth::oidc::userinfo),
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
        .route("/oauth/openapi.json", get(oauth::openapi::serve))
        .route(
            "/account/login",
            get(pages::login::show).post(pages::login::submit),
        )
        .route(
            crate::sign_in_links::SIGN_IN_LINK_PATH,
            get(pages::login::link),
        )
        .route("/account/logout", post(pages::login::logout))
        .route(
            "/account/consent",
            get(pages::consent::show).post(pages::consent::submit),
        )
        .route(pages::returned::RETURNED_PATH, get(pages::returned::show))
        .route("/account/settings", get(pages::settings::show))
        .route("/account/settings/revoke", post(pages::settings::revoke))
        .route("/account/settings/billing", post(pages::settings::billing))
        .route("/account/settings/profile", post(pages::settings::profile))
        .route(
            "/account/settings/ledger.csv",
            get(pages::settings::ledger_csv),
        )
        .route(
            "/account/settings/revoke-sign-in",
            post(pages::settings::revoke_sign_in),
        )
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
        .route("/api/v1/account/debits", post(billing::post_debit))
        .route(
            "/api/v1/account/debits/{id}/refund",
            post(billing::post_refund),
        )
        .route("/api/v1/account/balance", get(billing::get_balance))
        .route(
            "/api/v1/account/transactions",
            get(billing::get_transactions),
        )
        .route("/api/resource/debit", post(billing::compat_debit))
        .route("/api/resource/refund", post(billing::compat_refund))
        .route("/api/resource/userbalance", get(billing::compat_balance))
        .layer(limit(BodyGroup::Form))
        .merge(data_api)
        // The limits above bound every body; axum's own default must not cut one shorter.
        .layer(DefaultBodyLimit::disable())
        .with_state(hub)
        .nest(uplink_link::HUB_PATH, link)
        .nest(crate::app_hub::PATH, app_hub)
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
}

/// A path no route serves. Under the APIs (`/api/`) the answer is the `{code, message}` JSON
/// every API error has, so an app's error handling needs no special case for a mistyped path;
/// a browser's page request gets a page in the hub's style that leads back to the account;
/// anything else (an asset, a script) an empty 404.
async fn not_found(method: Method, headers: HeaderMap, uri: Uri) -> Response {
    let path = uri.path();
    let shown: String = path.chars().take(200).collect();
    if !path.starts_with("/api/") {
        let wants_page = method == Method::GET
            && headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|accept| accept.contains("text/html"));
        return if wants_page {
            pages::layout::not_found_page(&shown)
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    ApiErrorCode::NotFound.response(format!(
        "no route {method} {shown}{}; the data API's routes are listed in /api/v1/openapi.json",
        if shown.len() < path.len() { "…" } else { "" }
    ))
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
