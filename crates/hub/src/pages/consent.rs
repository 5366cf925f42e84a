//! `/account/consent`: the user sees which app asks, for what (each scope in plain words), and
//! their own data sources grouped by connector — none ticked — and approves or denies.
//! Approving records one grant per ticked data source and sends the browser back to the app
//! with a single-use code.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::fields::Fields;
use super::form_guard::{ConsentForm, GuardedForm, forged};
use super::layout::{error_page, html_response, human_time, page};
use super::session::{self, SignedIn};
use crate::hub::Hub;
use crate::oauth::authorize::redirect_to_app;
use crate::oauth::error::OAuthErrorCode;
use crate::secret::Secret;
use crate::store::{App, AuthorizationRequest, CodeGrant, Connector, DataSource, GrantView};

/// Query of the consent page.
#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    request: String,
}

fn expired() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This request is no longer open",
        "It was already answered or has expired. Go back to the app and start again.",
    )
}

/// The `form-action` the consent page needs: itself, and the app's redirect target (browsers
/// apply `form-action` to the redirect that follows the form).
fn consent_csp(redirect_uri: &str) -> String {
    let target = url::Url::parse(redirect_uri)
        .ok()
        .map(|u| match u.scheme() {
            "http" | "https" => u.origin().ascii_serialization(),
            scheme => format!("{scheme}:"),
        })
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {target}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Loads an open transaction bound to this user (binding it on first sight).
async fn open_request(
    hub: &Hub,
    id: &str,
    who: &SignedIn,
) -> Result<(AuthorizationRequest, App), Response> {
    let request = match hub.store.authorization_request(id).await {
        Ok(Some(r)) if r.finished_at.is_none() && r.expires_at > crate::clock::now() => r,
        Ok(_) => return Err(expired()),
        Err(e) => return Err(e.into_response()),
    };
    match hub.store.bind_authorization_request(id, &who.user.id).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "This request belongs to someone else",
                "It was opened by another account. Go back to the app and start again.",
            ));
        }
        Err(e) => return Err(e.into_response()),
    }
    match hub.store.app(&request.app_id).await {
        Ok(Some(app)) => Ok((request, app)),
        Ok(None) => Err(expired()),
        Err(e) => Err(e.into_response()),
    }
}

/// The grants this user already gave `app`: a consent that changes their permissions says so.
async fn existing_grants(hub: &Hub, who: &SignedIn, app: &App) -> Result<Vec<GrantView>, Response> {
    match hub.store.grants_of(&who.user.id).await {
        Ok(grants) => Ok(grants
            .into_iter()
            .filter(|g| g.app_id == app.client_id)
            .collect()),
        Err(e) => Err(e.into_response()),
    }
}

#[allow(clippy::too_many_arguments)]
fn consent_page(
    status: StatusCode,
    billing: &crate::billing::BillingConfig,
    who: &SignedIn,
    request: &AuthorizationRequest,
    app: &App,
    sources: &[DataSource],
    connectors: &[Connector],
    existing: &[GrantView],
    error: Option<&str>,
) -> Response {
    let mut asked = request.scopes.clone();
    asked.sort();
    let changes_scopes = existing.iter().any(|g| {
        let mut had = g.scopes.clone();
        had.sort();
        had != asked
    });
    // Grouped by connector, never merged by name: two sites may share one.
    let mut by_connector: BTreeMap<(&str, &str), Vec<&DataSource>> = BTreeMap::new();
    for s in sources {
        by_connector
            .entry((s.connector_name.as_str(), s.connector_id.as_str()))
            .or_default()
            .push(s);
    }
    let named_alike = |name: &str| {
        by_connector
            .keys()
            .filter(|(other, _)| *other == name)
            .count()
    };
    let added_at = |connector_id: &str| {
        connectors
            .iter()
            .find(|c| c.id == connector_id)
            .map(|c| human_time(c.created_at))
    };
    let csrf = who.csrf_token();
    let connector_only = only_connects_a_connector(request);
    let reads_data = request.scopes.iter().any(|s| crate::scopes::reads_data(s));
    let asks_write = asks_to_write(request);
    // Alarms and events are ticked per source, apart from reading values.
    let asks_events = request
        .scopes
        .iter()
        .any(|s| s == crate::scopes::EVENTS_READ);
    // Profile first, then the data scopes, in the order the hub lists them.
    let mut shown: Vec<&String> = request
        .scopes
        .iter()
        .filter(|s| connector_only || *s != crate::scopes::CONNECTOR)
        .collect();
    shown.sort_by_key(|s| crate::scopes::order(s));
    let markup = page(
        "Allow access",
        Some((&who.user.username, &csrf)),
        html! {
            div.card {
                @if connector_only {
                    h1 { "Connect a site connector to your account?" }
                    p.lead {
                        (app.name) " will run a site connector that offers its data sources through this "
                        "hub under your account. No app can read them until you allow it, and you can "
                        "revoke any app at any time in your settings."
                    }
                } @else if reads_data {
                    h1 { "Allow " strong { (app.name) } " to read your data?" }
                    p.lead {
                        (app.name) " will only reach the data sources you tick below. "
                        "You can revoke access at any time in your settings."
                    }
                } @else {
                    h1 { "Allow " strong { (app.name) } " to use your account?" }
                    p.lead {
                        (app.name) " will only get what you tick below. "
                        "You can revoke access at any time in your settings."
                    }
                }
                @if !existing.is_empty() && !connector_only {
                    div.notice role="note" id="existing-grants" {
                        @if changes_scopes {
                            p { strong { "This changes what " (app.name) " may do." } }
                        }
                        p { (app.name) " already has your permission for:" }
                        ul {
                            @for g in existing {
                                li {
                                    (g.source_name) " (" (g.connector_name) "): "
                                    @for s in &g.scopes { code { (s) } " " }
                                }
                            }
                        }
                        p {
                            "Each data source you tick below gets exactly the permissions ticked here, "
                            "replacing what it had; the others keep theirs. Your settings show every "
                            "app's permissions."
                        }
                    }
                }
                @if let Some(error) = error {
                    div.error role="alert" { (error) }
                }
                form method="post" action="/account/consent" {
                    input type="hidden" name="request" value=(request.id);
                    input type="hidden" name="csrf" value=(who.consent_token(&request.id));
                    fieldset {
                        legend { "What " (app.name) " asks to do" }
                        // `connector` is offered only on a connector's own sign-in, never
                        // beside an app's data access (authorize refuses mixing it in).
                        @for scope in &shown {
                            div.choice {
                                input type="checkbox" name="scope" value=(scope) id={"scope-" (scope)} checked;
                                label for={"scope-" (scope)} {
                                    (crate::scopes::describe(scope).unwrap_or(scope))
                                    span.hint { code { (scope) } }
                                }
                            }
                            @if scope.as_str() == crate::scopes::ACCOUNT_DEBIT {
                                div.limit {
                                    label for="spending-limit" {
                                        "Monthly spending limit for " (app.name) " (" (billing.currency) ")"
                                    }
                                    input type="text" inputmode="decimal" name="spending_limit" id="spending-limit"
                                        value=(billing.format(request.suggested_limit.unwrap_or(billing.default_monthly_limit)));
                                    div.choice {
                                        input type="checkbox" name="spending_unlimited" value="yes" id="spending-unlimited";
                                        label for="spending-unlimited" { "No monthly limit: let " (app.name) " charge any amount my balance covers" }
                                    }
                                }
                            }
                        }
                    }
                    @if !connector_only && reads_data { fieldset {
                        legend { "Which data sources it may read" }
                        @if sources.is_empty() {
                            p.muted { "You have no data sources yet. Connect a site connector first." }
                        }
                        @for ((connector, connector_id), list) in &by_connector {
                            h2 { (connector) }
                            @if named_alike(connector) > 1 {
                                p.muted.connector-apart {
                                    "One of " (named_alike(connector)) " connectors named " (connector)
                                    @if let Some(added) = added_at(connector_id) { ": this one was added " (added) }
                                    ", offering " (list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")) "."
                                }
                            }
                            @for source in list {
                                div.choice {
                                    input type="checkbox" name="source" value=(source.id) id={"source-" (source.id)};
                                    label for={"source-" (source.id)} {
                                        (source.name)
                                        @if !source.description.is_empty() {
                                            span.hint { (source.description) }
                                        }
                                    }
                                }
                                @if asks_events && has_events(source) {
                                    div.choice {
                                        input type="checkbox" name="events_source" value=(source.id) id={"events-source-" (source.id)};
                                        label for={"events-source-" (source.id)} {
                                            "Alarms and events from " (source.name)
                                        }
                                    }
                                }
                                // Writing is ticked per source, apart from reading, and only
                                // where the source's site turned writing on.
                                @if asks_write && site_allows_writing(source) {
                                    div.choice.write {
                                        input type="checkbox" name="write_source" value=(source.id) id={"write-" (source.id)};
                                        label for={"write-" (source.id)} {
                                            "Change values in " (source.name)
                                        }
                                    }
                                }
                            }
                        }
                    } }
                    div.actions {
                        button.primary type="submit" name="decision" value="approve" { "Allow access" }
                        button type="submit" name="decision" value="deny" { "Deny" }
                    }
                }
            }
        },
    );
    let mut response = html_response(status, markup);
    if let Ok(csp) = HeaderValue::from_str(&consent_csp(&request.redirect_uri)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// `GET /account/consent`.
pub async fn show(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<ConsentQuery>,
) -> Response {
    let Some(who) = session::signed_in(&hub, &headers).await else {
        return Redirect::to(&format!(
            "/account/login?request={}",
            form_urlencoded::byte_serialize(query.request.as_bytes()).collect::<String>()
        ))
        .into_response();
    };
    let (request, app) = match open_request(&hub, &query.request, &who).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let (sources, connectors) = match tokio::try_join!(
        hub.store.sources_owned_by(&who.user.id),
        hub.store.connectors(Some(&who.user.id)),
    ) {
        Ok(both) => both,
        Err(e) => return e.into_response(),
    };
    let existing = match existing_grants(&hub, &who, &app).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    consent_page(
        StatusCode::OK,
        &hub.config.billing,
        &who,
        &request,
        &app,
        &sources,
        &connectors,
        &existing,
        None,
    )
}

/// `POST /account/consent`.
pub async fn submit(
    State(hub): State<Arc<Hub>>,
    GuardedForm { who, form, .. }: GuardedForm<ConsentForm>,
) -> Response {
    // The guard checked the token against this very field.
    let Some(request_id) = form.one("request") else {
        return forged();
    };
    let (request, app) = match open_request(&hub, request_id, &who).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let issuer = hub.config.issuer.as_str();
    match form.one("decision") {
        Some("deny") => {
            if !matches!(
                hub.store
                    .finish_authorization_request(&request.id, crate::clock::now())
                    .await,
                Ok(true)
            ) {
                return expired();
            }
            hub.audit(
                "consent_denied",
                Some(&who.user.id),
                Some(&app.client_id),
                None,
                "",
            )
            .await;
            redirect_to_app(
                &request.redirect_uri,
                &[
                    ("error", OAuthErrorCode::AccessDenied.as_str()),
                    ("error_description", "the user denied access"),
                ],
                request.state.as_deref(),
                issuer,
            )
        }
        Some("approve") => approve(&hub, &who, &request, &app, &form).await,
        _ => forged(),
    }
}

async fn approve(
    hub: &Hub,
    who: &SignedIn,
    request: &AuthorizationRequest,
    app: &App,
    form: &Fields,
) -> Response {
    let (owned, connectors) = match tokio::try_join!(
        hub.store.sources_owned_by(&who.user.id),
        hub.store.connectors(Some(&who.user.id)),
    ) {
        Ok(both) => both,
        Err(e) => return e.into_response(),
    };
    let existing = match existing_grants(hub, who, app).await {
        Ok(g) => g,
        Err(response) => return response,
    };
    let again = |error: &str| {
        consent_page(
            StatusCode::BAD_REQUEST,
            &hub.config.billing,
            who,
            request,
            app,
            &owned,
            &connectors,
            &existing,
            Some(error),
        )
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in form.all("scope") {
        if !request.scopes.iter().any(|s| s == scope) {
            return again("That permission was not part of the app's request.");
        }
        if scope == crate::scopes::CONNECTOR && !only_connects_a_connector(request) {
            return again("Connecting a site connector is not something an app can be given.");
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if scopes.is_empty() {
        return again("Tick at least one permission, or deny the request.");
    }
    let mut sources: Vec<String> = Vec::new();
    for source in form.all("source") {
        if !owned.iter().any(|s| s.id == source) {
            return again("You can only share data sources of your own connectors.");
        }
        if !sources.iter().any(|s| s == source) {
            sources.push(source.to_owned());
        }
    }
    let writable = match write_sources(form, &owned, &sources, &scopes) {
        Ok(writable) => writable,
        Err(error) => return again(&error),
    };
    let mut events_sources: Vec<String> = Vec::new();
    for source in form.all("events_source") {
        let Some(owned) = owned.iter().find(|s| s.id == source) else {
            return again("You can only share data sources of your own connectors.");
        };
        if !has_events(owned) {
            return again(&format!("{} has no alarms and events to share.", owned.name));
        }
        if !scopes.iter().any(|s| s == crate::scopes::EVENTS_READ) {
            return again("Alarms and events are shared only with permission to see them.");
        }
        if !events_sources.iter().any(|s| s == source) {
            events_sources.push(source.to_owned());
        }
    }
    // What each source gets: the ticked permissions, with alarms and events, and writing,
    // only where that source's own box was ticked.
    let per_source = scopes_per_source(&scopes, &sources, &events_sources, &writable);
    let sources: Vec<String> = per_source.iter().map(|(s, _)| s.clone()).collect();
    if only_connects_a_connector(request) {
        // Connecting a connector reads no data source: nothing to tick, nothing granted.
        if !sources.is_empty() {
            return again("A connector sign-in does not share data sources.");
        }
    } else if scopes.iter().any(|s| crate::scopes::reads_data(s)) {
        if sources.is_empty() {
            return again("Tick at least one data source, or deny the request.");
        }
    } else if !sources.is_empty() {
        return again("Data sources are shared only with permission to read them.");
    }
    // The spending limit: what the user typed, or no limit only if they ticked so.
    let billing = &hub.config.billing;
    let monthly_limit = if !scopes.iter().any(|s| s == crate::scopes::ACCOUNT_DEBIT) {
        None
    } else if form.one("spending_unlimited") == Some("yes") {
        Some(None)
    } else {
        match form.one("spending_limit").and_then(|t| billing.parse(t)) {
            Some(limit) => Some(Some(limit)),
            None => {
                return again(&format!(
                    "Enter a monthly spending limit in {}, like {}, or tick \"No monthly limit\".",
                    billing.currency,
                    billing.format(billing.default_monthly_limit)
                ));
            }
        }
    };
    let now = crate::clock::now();
    match hub
        .store
        .finish_authorization_request(&request.id, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return expired(),
        Err(e) => return e.into_response(),
    }
    for (granted, source_ids) in group_by_scopes(per_source) {
        if let Err(e) = hub
            .grant(&who.user.id, &app.client_id, &source_ids, &granted)
            .await
        {
            return e.into_response();
        }
    }
    if let Some(limit) = monthly_limit
        && let Err(e) = hub
            .grant_billing(&who.user.id, &app.client_id, limit)
            .await
    {
        return e.into_response();
    }
    let code = Secret::generate();
    let grant = CodeGrant {
        app_id: app.client_id.clone(),
        user_id: who.user.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes,
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        auth_time: who.signed_in_at,
        created_at: now,
        expires_at: now + hub.config.code_ttl,
    };
    if let Err(e) = hub.store.create_code(&code.digest(), &grant).await {
        return e.into_response();
    }
    redirect_to_app(
        &request.redirect_uri,
        &[("code", code.expose())],
        request.state.as_deref(),
        &hub.config.issuer,
    )
}

/// Whether the app asks to change values (scope `data.write`).
fn asks_to_write(request: &AuthorizationRequest) -> bool {
    request
        .scopes
        .iter()
        .any(|s| s == crate::scopes::DATA_WRITE)
}

/// Whether the source's site lets apps write to it (as its connector last announced).
fn site_allows_writing(source: &DataSource) -> bool {
    source.capabilities.as_ref().is_some_and(|c| c.write)
}

/// The sources ticked for writing (`write_source`), each checked: `data.write` is asked for
/// and ticked, the source is the user's, shared, and its site allows writing. A shared source
/// left without any permission (an app asking only to write) is refused too.
fn write_sources(
    form: &Fields,
    owned: &[DataSource],
    shared: &[String],
    scopes: &[String],
) -> Result<Vec<String>, String> {
    let mut writable: Vec<String> = Vec::new();
    for id in form.all("write_source") {
        if !scopes.iter().any(|s| s == crate::scopes::DATA_WRITE) {
            return Err(
                "Changing values needs the permission to change values ticked above.".into(),
            );
        }
        let Some(source) = owned.iter().find(|s| s.id == id) else {
            return Err("You can only share data sources of your own connectors.".into());
        };
        if !site_allows_writing(source) {
            return Err(format!(
                "The site of {} does not let apps change its values; its owner turns writing on in the connector.",
                source.name
            ));
        }
        if !shared.iter().any(|s| s == id) {
            return Err(format!(
                "To let the app change values in {}, tick {} as a data source too.",
                source.name, source.name
            ));
        }
        if !writable.iter().any(|s| s == id) {
            writable.push(id.to_owned());
        }
    }
    let only_write = scopes.iter().all(|s| s == crate::scopes::DATA_WRITE);
    if only_write
        && let Some(id) = shared.iter().find(|id| !writable.contains(id))
    {
        let name = owned
            .iter()
            .find(|s| &s.id == id)
            .map_or(id.as_str(), |s| s.name.as_str());
        return Err(format!(
            "The app only asks to change values: tick \"Change values in {name}\" or untick {name}."
        ));
    }
    Ok(writable)
}

/// Whether a data source says it has alarms and events.
fn has_events(source: &DataSource) -> bool {
    source.capabilities.as_ref().is_some_and(|c| c.events)
}

/// Each shared source with the scopes its grant gets: `events.read` only for the sources in
/// `events_sources`, `data.write` only for those in `write_sources` (each also in `sources`),
/// the other ticked scopes for those in `sources`. A source ends up without scopes (and
/// unshared) only when nothing applies to it.
fn scopes_per_source(
    scopes: &[String],
    sources: &[String],
    events_sources: &[String],
    write_sources: &[String],
) -> Vec<(String, Vec<String>)> {
    let base: Vec<String> = scopes
        .iter()
        .filter(|s| *s != crate::scopes::EVENTS_READ && *s != crate::scopes::DATA_WRITE)
        .cloned()
        .collect();
    let mut all: Vec<&String> = sources.iter().chain(events_sources).collect();
    all.dedup();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for source in all {
        if seen.contains(&source) {
            continue;
        }
        seen.push(source);
        let mut granted = if sources.contains(source) {
            base.clone()
        } else {
            Vec::new()
        };
        if events_sources.contains(source) {
            granted.push(crate::scopes::EVENTS_READ.to_owned());
        }
        if write_sources.contains(source) && scopes.iter().any(|s| s == crate::scopes::DATA_WRITE) {
            granted.push(crate::scopes::DATA_WRITE.to_owned());
        }
        if !granted.is_empty() {
            out.push((source.clone(), granted));
        }
    }
    out
}

/// The sources that get the same scopes, together (one grant call each).
fn group_by_scopes(per_source: Vec<(String, Vec<String>)>) -> Vec<(Vec<String>, Vec<String>)> {
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (source, scopes) in per_source {
        match groups.iter_mut().find(|(s, _)| *s == scopes) {
            Some((_, sources)) => sources.push(source),
            None => groups.push((scopes, vec![source])),
        }
    }
    groups
}

/// Whether the request asks only to connect a site connector (scope `connector`), which
/// reads no data source.
fn only_connects_a_connector(request: &AuthorizationRequest) -> bool {
    request.scopes.iter().all(|s| s == crate::scopes::CONNECTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_go_only_to_the_sources_ticked_for_them() {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let scopes = strings(&["data.read", "events.read", "tags.read"]);
        let per_source = scopes_per_source(
            &scopes,
            &strings(&["src_a", "src_b"]),
            &strings(&["src_b", "src_c"]),
            &[],
        );
        assert_eq!(
            per_source,
            vec![
                ("src_a".to_owned(), strings(&["data.read", "tags.read"])),
                (
                    "src_b".to_owned(),
                    strings(&["data.read", "tags.read", "events.read"])
                ),
                ("src_c".to_owned(), strings(&["events.read"])),
            ]
        );
        assert_eq!(group_by_scopes(per_source).len(), 3);
        // Without an events tick, no source gets events.read, even if the scope was ticked.
        let none = scopes_per_source(&scopes, &strings(&["src_a"]), &[], &[]);
        assert_eq!(none, vec![("src_a".to_owned(), strings(&["data.read", "tags.read"]))]);
    }

    #[test]
    fn csp_allows_the_redirect_target_only() {
        let csp = consent_csp("http://127.0.0.1:5555/cb?x=1");
        assert!(csp.contains("form-action 'self' http://127.0.0.1:5555;"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(
            consent_csp("com.example.app:/cb").contains("form-action 'self' com.example.app:;")
        );
    }
}
