//! `GET /oauth/authorize`: validates the app's request, stores it as a consent transaction and
//! sends the browser to sign in or straight to the consent page.
//!
//! Until the client and its redirect URI are proven genuine, errors are shown to the user on a
//! hub page and never redirected (RFC 6749 §4.1.2.1): a bad redirect URI must not become an
//! open redirector. After that, errors go back to the app with `state` and `iss`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::OAuthErrorCode;
use super::params::{Params, parse_scope};
use super::redirect;
use crate::hub::Hub;
use crate::pages::layout::error_page;
use crate::pages::session;
use crate::secret::public_id;
use crate::store::AuthorizationRequest;

/// The redirect back to the app: `redirect_uri` plus `params`, `state` and `iss` (RFC 9207).
pub fn redirect_to_app(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The app's return address is not valid",
            "The app asked to return to an address that is not a URL.",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    Redirect::to(url.as_str()).into_response()
}

/// Why an app may not ask for `scope`: it was not registered for it. Scope `connector` says
/// whose it is.
pub(crate) fn not_registered_for(scope: &str) -> String {
    if scope == crate::scopes::CONNECTOR {
        format!(
            "scope '{scope}' is only for a site connector's own client; this app is not registered for it"
        )
    } else {
        format!("this app may not ask for scope '{scope}'")
    }
}

/// A valid PKCE S256 challenge: 43 base64url characters (a SHA-256 digest).
fn is_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Handler.
pub async fn authorize(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(problem) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in request is not valid",
                &problem,
            );
        }
    };
    let Some(client_id) = params.get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            "It does not say which app is asking (client_id is missing).",
        );
    };
    let app = match hub.store.app(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown app",
                "The app asking for access is not registered with this hub.",
            );
        }
        Err(e) => return e.into_response(),
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            "It does not say where to return (redirect_uri is missing).",
        );
    };
    if !redirect::matches(&app.redirect_uris, redirect_uri) {
        tracing::warn!(client_id = %app.client_id, "authorization request with an unregistered redirect URI");
        return error_page(
            StatusCode::BAD_REQUEST,
            "The app's return address does not match",
            "This request asks to return to an address the app did not register. It may not come from the app it names, so the hub will not continue.",
        );
    }
    let state = params.get("state");
    let issuer = hub.config.issuer.as_str();
    let fail = |error: OAuthErrorCode, description: &str| {
        redirect_to_app(
            redirect_uri,
            &[
                ("error", error.as_str()),
                ("error_description", description),
            ],
            state,
            issuer,
        )
    };
    if params.get("response_type") != Some("code") {
        return fail(
            OAuthErrorCode::UnsupportedResponseType,
            "only the authorization code flow (response_type=code) is supported",
        );
    }
    let Some(challenge) = params.get("code_challenge") else {
        return fail(
            OAuthErrorCode::InvalidRequest,
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        );
    };
    if params.get("code_challenge_method") != Some("S256") {
        return fail(
            OAuthErrorCode::InvalidRequest,
            "code_challenge_method must be S256",
        );
    }
    if !is_s256_challenge(challenge) {
        return fail(
            OAuthErrorCode::InvalidRequest,
            "code_challenge must be 43 base64url characters (S256)",
        );
    }
    let scopes = match params.get("scope").map(parse_scope) {
        None => {
            return fail(
                OAuthErrorCode::InvalidScope,
                "the request must name the scopes it needs",
            );
        }
        Some(Err(problem)) => return fail(OAuthErrorCode::InvalidScope, &problem),
        Some(Ok(scopes)) if scopes.is_empty() => {
            return fail(
                OAuthErrorCode::InvalidScope,
                "the request must name the scopes it needs",
            );
        }
        Some(Ok(scopes)) => scopes,
    };
    if let Some(bad) = scopes.iter().find(|s| !app.scopes.contains(s)) {
        return fail(OAuthErrorCode::InvalidScope, &not_registered_for(bad));
    }
    if let Some(problem) = crate::scopes::mixing_problem(&scopes) {
        return fail(OAuthErrorCode::InvalidScope, &problem);
    }
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.is_empty() || n.len() > 512) {
        return fail(
            OAuthErrorCode::InvalidRequest,
            "nonce must be 1–512 characters",
        );
    }
    let suggested_limit = match params.get("spending_limit").map(str::parse::<i64>) {
        None => None,
        Some(Ok(limit)) if (0..=crate::billing::MAX_AMOUNT).contains(&limit) => Some(limit),
        Some(_) => {
            return fail(
                OAuthErrorCode::InvalidRequest,
                "spending_limit must be a whole number of minor units (cents), 0 or more",
            );
        }
    };
    let now = crate::clock::now();
    let request = AuthorizationRequest {
        id: public_id("req"),
        app_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        nonce: nonce.map(str::to_owned),
        suggested_limit,
        user_id: None,
        created_at: now,
        expires_at: now + hub.config.authorization_request_ttl,
        finished_at: None,
    };
    if let Err(e) = hub.store.create_authorization_request(&request).await {
        return e.into_response();
    }
    let signed_in = session::signed_in(&hub, &headers).await.is_some();
    let next = if signed_in {
        format!("/account/consent?request={}", request.id)
    } else {
        format!("/account/login?request={}", request.id)
    };
    Redirect::to(&next).into_response()
}
