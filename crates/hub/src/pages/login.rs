//! `/account/login` and `/account/logout`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::fields::Fields;
use super::form_guard::{GuardedForm, SignOutForm, forged, same_origin};
use super::layout::{html_response, page};
use super::session;
use crate::hub::Hub;

/// Query of the login page: the consent transaction to continue, if any.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    request: Option<String>,
    /// `device`: continue to the device page after signing in.
    next: Option<String>,
}

/// Only transaction ids we made (`req_` + hex) are carried along, so the page cannot be used
/// to redirect anywhere else.
fn valid_request_id(id: &str) -> bool {
    id.strip_prefix("req_")
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn after_sign_in(request: Option<&str>, next: Option<&str>) -> String {
    match (request, next) {
        (Some(id), _) if valid_request_id(id) => format!("/account/consent?request={id}"),
        (_, Some("device")) => "/account/device".to_owned(),
        _ => "/account/settings".to_owned(),
    }
}

fn login_page(
    status: StatusCode,
    request: Option<&str>,
    next: Option<&str>,
    error: Option<&str>,
    username: &str,
) -> Response {
    let markup = page(
        "Sign in",
        None,
        html! {
            div.card {
                h1 { "Sign in" }
                p.lead {
                    @if request.is_some() { "Sign in to decide what the app may read." }
                    @else { "Sign in to manage which apps can read your data." }
                }
                @if let Some(error) = error {
                    div.error role="alert" id="login-error" { (error) }
                }
                form method="post" action="/account/login" {
                    @if let Some(request) = request {
                        input type="hidden" name="request" value=(request);
                    }
                    @if next == Some("device") {
                        input type="hidden" name="next" value="device";
                    }
                    label for="username" { "Username" }
                    input type="text" id="username" name="username" autocomplete="username"
                        required autofocus value=(username)
                        aria-describedby=[error.map(|_| "login-error")];
                    label for="password" { "Password" }
                    input type="password" id="password" name="password"
                        autocomplete="current-password" required;
                    div.actions {
                        button.primary type="submit" { "Sign in" }
                    }
                }
            }
        },
    );
    html_response(status, markup)
}

/// `GET /account/login`.
pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let request = query.request.as_deref().filter(|r| valid_request_id(r));
    let next = query.next.as_deref().filter(|n| *n == "device");
    if session::signed_in(&hub, &headers).await.is_some() {
        return Redirect::to(&after_sign_in(request, next)).into_response();
    }
    login_page(StatusCode::OK, request, next, None, "")
}

/// `POST /account/login`.
pub async fn submit(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers, &hub.config.issuer) {
        return forged();
    }
    let form = Fields::parse(&body);
    let request = form.one("request").filter(|r| valid_request_id(r));
    let next = form.one("next").filter(|n| *n == "device");
    let username = form.one("username").unwrap_or("").trim().to_owned();
    let password = form.one("password").unwrap_or("").to_owned();
    if username.is_empty() || password.is_empty() {
        return login_page(
            StatusCode::BAD_REQUEST,
            request,
            next,
            Some("Enter your username and password."),
            &username,
        );
    }
    // The attempt is charged to the caller's address only: nobody else's address, nor the
    // account, pays for it.
    if !hub.limiters.allow_attempt_from(peer.ip()) {
        tracing::warn!(peer = %peer.ip(), "sign-in rate limit reached for this address");
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            request,
            next,
            Some("Too many sign-in attempts. Wait a minute, then try again."),
            &username,
        );
    }
    // Someone is guessing this account's password: every attempt on it waits a little, the
    // owner's too, but nobody is refused.
    let backoff = hub.limiters.sign_in_backoff(&username);
    if !backoff.is_zero() {
        tracing::info!(peer = %peer.ip(), "sign-in on an account with many failures: backing off");
        tokio::time::sleep(backoff).await;
    }
    let credentials = match hub.store.user_credentials(&username).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let (user, stored) = match credentials {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matches = match hub.passwords.verify(password, stored).await {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let user = match (user, matches) {
        (Some(user), true) => user,
        (user, _) => {
            hub.limiters.sign_in_failed(&username);
            hub.audit(
                "sign_in_failed",
                user.as_ref().map(|u| u.id.as_str()),
                None,
                None,
                "",
            )
            .await;
            return login_page(
                StatusCode::UNAUTHORIZED,
                request,
                next,
                Some("Wrong username or password."),
                &username,
            );
        }
    };
    // Only someone who knows the password spends the account's own budget.
    if !hub.limiters.allow_verified_account(&user.username) {
        tracing::warn!(peer = %peer.ip(), "sign-in rate limit reached for this account");
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            request,
            next,
            Some("Too many sign-ins to this account. Wait a minute, then try again."),
            &username,
        );
    }
    let cookie = match session::start(&hub, &user).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    hub.audit("sign_in", Some(&user.id), None, None, "").await;
    let mut response = Redirect::to(&after_sign_in(request, next)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Query of a one-time sign-in link.
#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// `GET /account/login/link?token=…`: a one-time sign-in link minted in process
/// (`Hub::mint_sign_in_link`). A live link signs its user in and continues where it was
/// minted to lead; a spent, expired or unknown one shows the sign-in page saying so.
pub async fn link(State(hub): State<Arc<Hub>>, Query(query): Query<LinkQuery>) -> Response {
    let spent = query
        .token
        .as_deref()
        .and_then(|token| hub.sign_in_links.spend(token));
    let Some(link) = spent else {
        return login_page(
            StatusCode::GONE,
            None,
            None,
            Some("This sign-in link was already used or has expired: links from Uplink work once, for a minute. Open the page from Uplink again, or sign in here."),
            "",
        );
    };
    let user = match hub.store.user(&link.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return login_page(
                StatusCode::GONE,
                None,
                None,
                Some("The account this sign-in link was for no longer exists."),
                "",
            );
        }
        Err(e) => return e.into_response(),
    };
    let cookie = match session::start(&hub, &user).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    hub.audit("sign_in", Some(&user.id), None, None, "one-time link")
        .await;
    let mut response = Redirect::to(&link.next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    // The spent URL is worth nothing, but neither a cache nor the next page's Referer keeps it.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `POST /account/logout`.
pub async fn logout(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, .. }: GuardedForm<SignOutForm>,
) -> Response {
    if let Err(e) = hub.store.delete_session(&who.digest()).await {
        return e.into_response();
    }
    let mut response = Redirect::to("/account/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
