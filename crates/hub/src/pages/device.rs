//! `/account/device`: the owner of a headless device (a connector) types the code it shows,
//! sees which app asks for what, and approves or denies (RFC 8628 §3.3).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::form_guard::{GuardedForm, forged};
use super::layout::{html_response, page};
use super::session::{self, SignedIn};
use crate::hub::Hub;
use crate::oauth::device::user_code_digest;

/// Query of the device page.
#[derive(Debug, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

fn respond(status: StatusCode, who: &SignedIn, body: Markup) -> Response {
    let csrf = who.csrf_token();
    html_response(
        status,
        page("Connect a device", Some((&who.user.username, &csrf)), body),
    )
}

/// The warning every approval step shows: a code someone else started is how a stranger's
/// device ends up connected to this account.
const ONLY_YOUR_OWN: &str = "Only approve a code you started yourself, on a device you own. If someone sent you this code or link, deny it.";

/// Where a code came from when the page was opened with one in its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefilled {
    /// Typed by the user (or empty).
    No,
    /// Filled in from the link that opened the page.
    FromLink,
}

fn code_form(who: &SignedIn, prefilled: &str, from: Prefilled, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Connect a device" }
            p.lead { "Enter the code your device (for example a site connector) shows." }
            @if let Some(error) = error { div.error role="alert" id="code-error" { (error) } }
            @if from == Prefilled::FromLink && !prefilled.is_empty() {
                div.notice role="note" id="code-from-link" {
                    "The code below was filled in from the link you opened, not typed by you. "
                    "Check that your device shows the same code. " (ONLY_YOUR_OWN)
                }
            }
            form method="post" action="/account/device" {
                input type="hidden" name="csrf" value=(who.csrf_token());
                label for="user_code" { "Code" }
                input type="text" id="user_code" name="user_code" value=(prefilled) required
                    autocomplete="off" autocapitalize="characters" spellcheck="false"
                    aria-describedby=[error.map(|_| "code-error").or((from == Prefilled::FromLink && !prefilled.is_empty()).then_some("code-from-link"))];
                div.actions { button.primary type="submit" { "Continue" } }
            }
        }
    }
}

/// `GET /account/device`.
pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<DeviceQuery>,
) -> Response {
    let Some(who) = session::signed_in(&hub, &headers).await else {
        return Redirect::to("/account/login?next=device").into_response();
    };
    let prefilled: String = query
        .user_code
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect();
    respond(
        StatusCode::OK,
        &who,
        code_form(&who, &prefilled, Prefilled::FromLink, None),
    )
}

/// `POST /account/device`: look up the code, then approve or deny it.
pub async fn submit(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    GuardedForm { who, form, .. }: GuardedForm,
) -> Response {
    let typed = form.one("user_code").unwrap_or_default().trim().to_owned();
    // Codes are short: guessing them is limited like guessing passwords.
    // The session proves the account, so both the address and the account pay.
    if !(hub.limiters.allow_attempt_from(peer.ip())
        && hub.limiters.allow_verified_account(&who.user.username))
    {
        return respond(
            StatusCode::TOO_MANY_REQUESTS,
            &who,
            code_form(
                &who,
                &typed,
                Prefilled::No,
                Some("Too many attempts. Wait a minute, then try again."),
            ),
        );
    }
    let code_digest = user_code_digest(&typed);
    let now = crate::clock::now();
    let pending = match hub
        .store
        .pending_device_authorization(&code_digest, now)
        .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(pending) = pending else {
        return respond(
            StatusCode::BAD_REQUEST,
            &who,
            code_form(
                &who,
                &typed,
                Prefilled::No,
                Some("That code is not valid or has expired. Check the device and try again."),
            ),
        );
    };
    let app = match hub.store.app(&pending.app_id).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return respond(
                StatusCode::BAD_REQUEST,
                &who,
                code_form(&who, "", Prefilled::No, Some("That app no longer exists.")),
            );
        }
        Err(e) => return e.into_response(),
    };
    match form.one("decision") {
        None => respond(
            StatusCode::OK,
            &who,
            html! {
                div.card {
                    @if pending.scopes.iter().all(|s| s == crate::scopes::CONNECTOR) {
                        h1 { "Connect a site connector to your account?" }
                        p.lead {
                            "The connector showing code " strong { (typed) } " will offer its data sources "
                            "through this hub under your account."
                        }
                        p.muted {
                            "No app can read them until you allow it on a consent page, and you can "
                            "revoke any app at any time."
                        }
                    } @else {
                        h1 { "Connect " strong { (app.name) } "?" }
                        p.lead { "The device showing code " strong { (typed) } " asks to:" }
                        ul { @for s in &pending.scopes { li { (crate::scopes::describe(s).unwrap_or(s)) } } }
                        p.muted { "It will not read any data source unless you grant one separately." }
                    }
                    dl.request {
                        dt { "Asked by" }
                        dd { (app.name) " " span.hint { code { (app.client_id) } } }
                        dt { "Asked at" }
                        dd { (asked_at(pending.created_at, now)) }
                        dt { "Asked from" }
                        dd {
                            @if pending.requested_from.is_empty() { "an address the hub did not record" }
                            @else { code { (pending.requested_from) } }
                        }
                    }
                    div.warning role="note" { (ONLY_YOUR_OWN) }
                    form method="post" action="/account/device" {
                        input type="hidden" name="csrf" value=(who.csrf_token());
                        input type="hidden" name="user_code" value=(typed);
                        div.actions {
                            button.primary type="submit" name="decision" value="approve" { "Connect" }
                            button type="submit" name="decision" value="deny" { "Deny" }
                        }
                    }
                }
            },
        ),
        Some(decision @ ("approve" | "deny")) => {
            let approve = decision == "approve";
            let user = approve.then_some(who.user.id.as_str());
            match hub
                .store
                .decide_device_authorization(&code_digest, user, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        &who,
                        code_form(
                            &who,
                            "",
                            Prefilled::No,
                            Some("That code was already used or has expired."),
                        ),
                    );
                }
                Err(e) => return e.into_response(),
            }
            let event = if approve {
                "device_approved"
            } else {
                "device_denied"
            };
            hub.audit(event, Some(&who.user.id), Some(&app.client_id), None, "")
                .await;
            respond(
                StatusCode::OK,
                &who,
                html! {
                    div.card role="status" {
                        @if approve {
                            h1 { "Device connected" }
                            p { (app.name) " is connected. You can close this page and return to the device." }
                        } @else {
                            h1 { "Request denied" }
                            p { "Nothing was shared. You can close this page." }
                        }
                    }
                },
            )
        }
        Some(_) => forged(),
    }
}

/// When a device asked, in UTC and how long ago.
fn asked_at(created_at: i64, now: i64) -> String {
    let when = chrono::DateTime::from_timestamp(created_at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let ago = (now - created_at).max(0);
    let ago = match ago {
        0..60 => "less than a minute ago".to_owned(),
        60..120 => "1 minute ago".to_owned(),
        _ => format!("{} minutes ago", ago / 60),
    };
    format!("{when} ({ago})")
}

#[cfg(test)]
mod tests {
    #[test]
    fn asked_at_says_when_and_how_long_ago() {
        let at = super::asked_at(1_700_000_000, 1_700_000_000 + 150);
        assert_eq!(at, "2023-11-14 22:13:20 UTC (2 minutes ago)");
        assert!(super::asked_at(10, 20).ends_with("(less than a minute ago)"));
    }
}
