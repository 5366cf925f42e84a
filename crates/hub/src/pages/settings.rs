//! `/account/settings`: the apps that hold grants (per data source, with scopes, when granted
//! and when last used) with revoke buttons, the account's sign-ins (connectors and devices:
//! when signed in, last used, from where) each with a revoke button, and the connectors the
//! user owns.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::form_guard::{GuardedForm, forged};
use super::layout::{html_response, human_time, page};
use super::session;
use crate::error::HubError;
use crate::hub::Hub;
use crate::store::{GrantView, SignInView};

/// Query of the settings page.
#[derive(Debug, Deserialize)]
pub struct SettingsQuery {
    revoked: Option<String>,
    signed_out: Option<String>,
    billing: Option<String>,
    profile: Option<String>,
}

/// `GET /account/settings`.
pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<SettingsQuery>,
) -> Response {
    let Some(who) = session::signed_in(&hub, &headers).await else {
        return Redirect::to("/account/login").into_response();
    };
    let (grants, revoked_apps, connectors, sources, sign_ins) = match tokio::try_join!(
        hub.store.grants_of(&who.user.id),
        hub.store.revoked_apps_of(&who.user.id),
        hub.store.connectors(Some(&who.user.id)),
        hub.store.sources_owned_by(&who.user.id),
        hub.store.sign_ins_of(&who.user.id, crate::clock::now()),
    ) {
        Ok(all) => all,
        Err(e) => return e.into_response(),
    };
    let period = crate::billing::period_start(crate::clock::now());
    let (allowances, ledger, apps, balance) = match tokio::try_join!(
        hub.store.allowances_of(&who.user.id, period),
        hub.store.transactions(&who.user.id, None),
        hub.store.apps(),
        hub.store.balance(&who.user.id),
    ) {
        Ok(all) => all,
        Err(e) => return e.into_response(),
    };
    let billing = &hub.config.billing;
    let money = |minor: i64| format!("{} {}", billing.format(minor), billing.currency);
    let app_name = |id: &str| {
        apps.iter()
            .find(|a| a.client_id == id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    };
    let mut by_app: BTreeMap<(&str, &str), Vec<&GrantView>> = BTreeMap::new();
    for g in &grants {
        by_app
            .entry((g.app_name.as_str(), g.app_id.as_str()))
            .or_default()
            .push(g);
    }
    let csrf = who.csrf_token();
    let markup = page(
        "Settings",
        Some((&who.user.username, &csrf)),
        html! {
            h1 { "Your settings" }
            @if query.revoked.is_some() {
                div.notice role="status" { "Access revoked. The app's next request is refused." }
            }
            @if query.signed_out.is_some() {
                div.notice role="status" { "Sign-in revoked. Its link is closed and its tokens are refused." }
            }
            section.card aria-labelledby="apps-heading" {
                h2 id="apps-heading" { "Apps with access" }
                @if by_app.is_empty() {
                    p.muted { "No app can read your data." }
                }
                @for ((app_name, app_id), list) in &by_app {
                    div.app-head {
                        h2 { (app_name) }
                        form.inline method="post" action="/account/settings/revoke" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="app" value=(app_id);
                            button.danger type="submit" aria-label={"Revoke all access of " (app_name)} {
                                "Revoke all access"
                            }
                        }
                    }
                    table {
                        caption.muted { "Data sources " (app_name) " may read" }
                        thead { tr { th scope="col" { "Data source" } th scope="col" { "Permissions" }
                            th scope="col" { "Granted" } th scope="col" { "Last used" } th scope="col" { span.muted { "Action" } } } }
                        tbody {
                            @for g in list {
                                tr {
                                    td { strong { (g.source_name) } br; span.muted { (g.connector_name) } }
                                    td {
                                        @for s in &g.scopes { code { (s) } " " }
                                        br;
                                        @if g.scopes.iter().any(|s| s == crate::scopes::DATA_WRITE) {
                                            strong.writes { "May change values in " (g.source_name) }
                                        } @else {
                                            span.muted { "Cannot change values" }
                                        }
                                    }
                                    td { (human_time(g.granted_at)) }
                                    td { @match g.last_used_at { Some(t) => (human_time(t)), None => span.muted { "never" } } }
                                    td {
                                        form.inline method="post" action="/account/settings/revoke" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="app" value=(app_id);
                                            input type="hidden" name="source" value=(g.source_id);
                                            button.danger.small type="submit"
                                                aria-label={"Revoke " (app_name) "'s access to " (g.source_name)} { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !revoked_apps.is_empty() {
                section.card aria-labelledby="revoked-heading" {
                    h2 id="revoked-heading" { "Revoked apps" }
                    p.muted {
                        "These apps can no longer read your data through this hub. To refuse one on a site "
                        "as well, whatever the hub says, block it there: in Uplink's window, Apps, "
                        "“Block on this site”."
                    }
                    ul aria-label="Revoked apps" {
                        @for a in &revoked_apps {
                            li { strong { (a.app_name) } " — " span.revoked { "revoked " (human_time(a.revoked_at)) } }
                        }
                    }
                }
            }
            @if query.profile.is_some() {
                div.notice role="status" { "Profile saved. Apps you allowed to see it get the new one." }
            }
            section.card aria-labelledby="profile-heading" {
                h2 id="profile-heading" { "Your profile" }
                p.muted { "Apps see these only if you allow them to (“See your name”, “See your email address”)." }
                form method="post" action="/account/settings/profile" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="display-name" { "Display name" }
                    input type="text" name="display_name" id="display-name" maxlength="100"
                        value=(who.user.display_name.as_deref().unwrap_or(""));
                    label for="email" { "Email" }
                    input type="email" name="email" id="email" maxlength="254"
                        value=(who.user.email.as_deref().unwrap_or(""));
                    button type="submit" { "Save profile" }
                }
            }
            @if let Some(what) = &query.billing {
                div.notice role="status" {
                    @if what == "revoked" { "Billing revoked. The app can no longer charge your account." }
                    @else { "Spending limit saved." }
                }
            }
            section.card aria-labelledby="billing-heading" {
                h2 id="billing-heading" { "Billing" }
                p { "Your balance: " strong { (money(balance)) } }
                @if allowances.is_empty() {
                    p.muted { "No app may charge your account." }
                }
                @for a in &allowances {
                    @let name = app_name(&a.grant.app_id);
                    div.app-head {
                        h2 { (name) " may charge your account" }
                        form.inline method="post" action="/account/settings/billing" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="app" value=(a.grant.app_id);
                            button.danger type="submit" name="action" value="revoke"
                                aria-label={"Revoke billing of " (name)} { "Revoke billing" }
                        }
                    }
                    p {
                        "Spent this month: " strong { (money(a.spent)) }
                        @match a.grant.monthly_limit {
                            Some(limit) => { " of your " (money(limit)) " monthly limit." }
                            None => { " (no monthly limit)." }
                        }
                    }
                    form method="post" action="/account/settings/billing" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="app" value=(a.grant.app_id);
                        label for={"limit-" (a.grant.app_id)} { "Monthly spending limit for " (name) " (" (billing.currency) ")" }
                        input type="text" inputmode="decimal" name="spending_limit" id={"limit-" (a.grant.app_id)}
                            value=(a.grant.monthly_limit.map(|l| billing.format(l)).unwrap_or_default());
                        div.choice {
                            input type="checkbox" name="spending_unlimited" value="yes" id={"unlimited-" (a.grant.app_id)}
                                checked[a.grant.monthly_limit.is_none()];
                            label for={"unlimited-" (a.grant.app_id)} { "No monthly limit" }
                        }
                        button type="submit" name="action" value="limit" { "Save limit for " (name) }
                    }
                }
                @if !ledger.is_empty() {
                    table {
                        caption.muted { "Every movement of your account " a href="/account/settings/ledger.csv" { "(download as CSV)" } }
                        thead { tr { th scope="col" { "When" } th scope="col" { "App" } th scope="col" { "What" } th scope="col" { "Amount" } } }
                        tbody {
                            @for e in ledger.iter().rev() {
                                tr {
                                    td { (human_time(e.at)) }
                                    td { @match &e.app_id { Some(id) => (app_name(id)), None => span.muted { "the hub's operator" } } }
                                    td { (e.description) " " span.muted { code { (e.id) } } }
                                    td { @match e.kind {
                                        crate::store::TxKind::Debit => { "−" (money(e.amount)) }
                                        _ => { "+" (money(e.amount)) }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="sign-ins-heading" {
                h2 id="sign-ins-heading" { "Signed-in connectors and devices" }
                @if sign_ins.is_empty() {
                    p.muted { "Nothing is signed in to your account." }
                } @else {
                    table {
                        caption.muted { "Each sign-in can obtain tokens until you revoke it" }
                        thead { tr { th scope="col" { "Signed in" } th scope="col" { "When" }
                            th scope="col" { "Last used" } th scope="col" { "From" } th scope="col" { span.muted { "Action" } } } }
                        tbody {
                            @for s in &sign_ins {
                                @let what = sign_in_name(s);
                                tr {
                                    td { strong { (what) } br; span.muted { (s.app_name.as_deref().unwrap_or(&s.app_id)) " · " @for scope in &s.scopes { code { (scope) } " " } } }
                                    td { (human_time(s.signed_in_at)) }
                                    td { (human_time(s.last_used_at)) }
                                    td { @match &s.last_address { Some(a) => code { (a) }, None => span.muted { "unknown" } } }
                                    td {
                                        form.inline method="post" action="/account/settings/revoke-sign-in" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="family" value=(s.family_id);
                                            button.danger.small type="submit" aria-label={"Revoke the sign-in of " (what)} { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card aria-labelledby="connectors-heading" {
                h2 id="connectors-heading" { "Your connectors" }
                @if connectors.is_empty() {
                    p.muted { "You own no connectors." }
                }
                @for c in &connectors {
                    h2 {
                        (c.name) " " span.muted { "added " (human_time(c.created_at)) } " "
                        @if hub.relay().is_online(&c.id) { span.status { "online" } } @else { span.muted { "offline" } }
                    }
                    ul {
                        @for s in sources.iter().filter(|s| s.connector_id == c.id) {
                            li {
                                (s.name)
                                @if !s.description.is_empty() { " — " span.muted { (s.description) } }
                                @if !s.available { " " span.muted { "(no longer offered by the connector)" } }
                            }
                        }
                    }
                }
            }
        },
    );
    html_response(StatusCode::OK, markup)
}

/// What a sign-in is called on the page: the connector it signed in, else its client.
fn sign_in_name(s: &SignInView) -> String {
    match (&s.connector_name, &s.app_name) {
        (Some(connector), _) => format!("Connector {connector}"),
        (None, Some(app)) => app.clone(),
        (None, None) => s.app_id.clone(),
    }
}

/// `POST /account/settings/revoke-sign-in`: ends one of the user's sign-ins (`family`) —
/// its tokens are refused and the links it opened close at once.
pub async fn revoke_sign_in(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, form, .. }: GuardedForm,
) -> Response {
    let Some(family_id) = form.one("family") else {
        return forged();
    };
    // Only the user's own sign-ins; another's is answered as if it did not exist.
    match hub.store.family(family_id).await {
        Ok(Some(family)) if family.user_id == who.user.id => {}
        Ok(_) => {
            return HubError::NotFound("no such sign-in on your account".into()).into_response();
        }
        Err(e) => return e.into_response(),
    }
    match hub
        .revoke_family(family_id, "revoked by the owner in settings")
        .await
    {
        Ok(_) => {
            hub.audit(
                "sign_in_revoked",
                Some(&who.user.id),
                None,
                None,
                family_id.to_owned(),
            )
            .await;
            Redirect::to("/account/settings?signed_out=1").into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /account/settings/revoke`: one data source (`source`) or the whole app. Without
/// `confirm=yes` nothing is revoked: the answer is a page naming the app (and the data source)
/// that asks to confirm or cancel.
pub async fn revoke(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, form, .. }: GuardedForm,
) -> Response {
    let Some(app) = form.one("app") else {
        return forged();
    };
    let source = form.one("source");
    if form.one("confirm") != Some("yes") {
        return confirm_revoke(&hub, &who, app, source).await;
    }
    match hub.revoke(&who.user.id, app, source).await {
        Ok(_) => Redirect::to("/account/settings?revoked=1").into_response(),
        Err(e) => e.into_response(),
    }
}

/// The confirm step of a revoke: names what is revoked, with Revoke and Cancel.
async fn confirm_revoke(
    hub: &Hub,
    who: &session::SignedIn,
    app_id: &str,
    source_id: Option<&str>,
) -> Response {
    let grants = match hub.store.grants_of(&who.user.id).await {
        Ok(grants) => grants,
        Err(e) => return e.into_response(),
    };
    let of_app: Vec<&GrantView> = grants
        .iter()
        .filter(|g| g.app_id == app_id && source_id.is_none_or(|s| g.source_id == s))
        .collect();
    let Some(first) = of_app.first() else {
        return HubError::NotFound("this app holds no such access of yours".into())
            .into_response();
    };
    let app_name = &first.app_name;
    let title = match source_id {
        Some(_) => format!("Revoke {app_name}'s access to {}?", first.source_name),
        None => format!("Revoke all of {app_name}'s access?"),
    };
    let csrf = who.csrf_token();
    let markup = page(
        "Revoke access",
        Some((&who.user.username, &csrf)),
        html! {
            section.card aria-labelledby="confirm-heading" {
                h1 id="confirm-heading" { (title) }
                @if source_id.is_some() {
                    p { (app_name) " loses access to " strong { (first.source_name) } " ("
                        (first.connector_name) ") at once: requests it has running stop." }
                } @else {
                    p { (app_name) " loses access to every data source you shared with it at once:" }
                    ul { @for g in &of_app { li { strong { (g.source_name) } " (" (g.connector_name) ")" } } }
                    p { "Requests it has running stop, and its sign-in to your account ends." }
                }
                p.muted { "To let it read again, you approve it once more when the app asks." }
                form method="post" action="/account/settings/revoke" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="app" value=(app_id);
                    @if let Some(source) = source_id {
                        input type="hidden" name="source" value=(source);
                    }
                    input type="hidden" name="confirm" value="yes";
                    div.actions {
                        button.danger type="submit" { "Revoke" }
                        a.button href="/account/settings" { "Cancel" }
                    }
                }
            }
        },
    );
    html_response(StatusCode::OK, markup)
}

/// `POST /account/settings/billing`: revoke an app's billing (`action=revoke`), or change its
/// monthly limit (`action=limit`, `spending_limit`, or `spending_unlimited=yes`).
pub async fn billing(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, form, .. }: GuardedForm,
) -> Response {
    let Some(app) = form.one("app") else {
        return forged();
    };
    match form.one("action") {
        Some("revoke") => match hub.revoke_billing(&who.user.id, app).await {
            Ok(_) => Redirect::to("/account/settings?billing=revoked").into_response(),
            Err(e) => e.into_response(),
        },
        Some("limit") => {
            let config = &hub.config.billing;
            let limit = if form.one("spending_unlimited") == Some("yes") {
                None
            } else {
                match form.one("spending_limit").and_then(|t| config.parse(t)) {
                    Some(limit) => Some(limit),
                    None => {
                        return HubError::Invalid(format!(
                            "enter a monthly limit in {}, like {}, or tick \"No monthly limit\"",
                            config.currency,
                            config.format(config.default_monthly_limit)
                        ))
                        .into_response();
                    }
                }
            };
            match hub.store.set_billing_limit(&who.user.id, app, limit).await {
                Ok(true) => {
                    hub.audit(
                        "billing_limit_changed",
                        Some(&who.user.id),
                        Some(app),
                        None,
                        limit.map_or("no limit".to_owned(), |l| format!("limit {l}")),
                    )
                    .await;
                    Redirect::to("/account/settings?billing=limit").into_response()
                }
                Ok(false) => {
                    HubError::NotFound("this app may not charge your account".into()).into_response()
                }
                Err(e) => e.into_response(),
            }
        }
        _ => forged(),
    }
}

/// `GET /account/settings/ledger.csv`: the signed-in user's whole ledger as CSV.
pub async fn ledger_csv(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    let Some(who) = session::signed_in(&hub, &headers).await else {
        return Redirect::to("/account/login").into_response();
    };
    match hub.store.transactions(&who.user.id, None).await {
        Ok(entries) => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    axum::http::header::CONTENT_DISPOSITION,
                    "attachment; filename=\"ledger.csv\"",
                ),
                (axum::http::header::CACHE_CONTROL, "no-store"),
            ],
            crate::billing::ledger_csv(&entries, &hub.config.billing.currency),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/settings/profile`: the signed-in user's display name and email (empty
/// clears one).
pub async fn profile(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, form, .. }: GuardedForm,
) -> Response {
    let (Some(name), Some(email)) = (form.one("display_name"), form.one("email")) else {
        return forged();
    };
    match hub
        .set_profile(&who.user.username, Some(name), Some(email.trim()))
        .await
    {
        Ok(_) => Redirect::to("/account/settings?profile=1").into_response(),
        Err(e) => e.into_response(),
    }
}
