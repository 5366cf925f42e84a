//! `POST /oauth/token`: the authorization code grant (single use, PKCE verified), the
//! refresh token grant (rotated on every use; reuse revokes the family), the device code grant,
//! and the client credentials grant for administrator-registered connectors. Nothing else: the
//! implicit and password grants are refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::client_auth::authenticate;
use super::error::{OAuthError, OAuthErrorCode};
use super::params::{Params, parse_scope};
use crate::hub::Hub;
use crate::secret::{Secret, digest, equal, pkce_s256};
use crate::store::{App, CodeRedemption, DevicePoll, Rotation, TokenFamily};
use crate::token::TokenSubject;

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    /// Absent for client credentials: a connector asks again instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    /// OpenID Connect: present when the code's consent included scope `openid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

/// Reads a form body, refusing other content types and repeated parameters.
pub fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Params::parse(body).map_err(OAuthError::invalid_request)
}

/// Handler.
pub async fn token(
    State(hub): State<Arc<Hub>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match issue(&hub, peer, &headers, &body).await {
        Ok(tokens) => {
            // Shown to the owner beside the sign-in; a failure to note it fails nothing.
            if let Some(refresh) = &tokens.refresh_token
                && let Err(e) = hub
                    .store
                    .note_refresh_address(&digest(refresh), &peer.ip().to_string())
                    .await
            {
                tracing::warn!(error = %e, "the sign-in's address was not recorded");
            }
            let mut response = Json(tokens).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn issue(
    hub: &Hub,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let address = peer.ip();
    if !hub.limiters.allow_token_from(address) {
        return Err(OAuthError::slow_down());
    }
    let outcome = grant(hub, address, headers, body).await;
    hub.metrics
        .oauth_grants
        .get_or_create(&crate::metrics::GrantLabels {
            grant_type: grant_type_label(body).to_owned(),
            outcome: match &outcome {
                Ok(_) => "ok",
                Err(error) => error.error.as_str(),
            }
            .to_owned(),
        })
        .inc();
    if let Err(error) = &outcome
        && error.is_failed_attempt()
    {
        // A wrong credential or grant is charged to the address that sent it, and to nothing
        // another caller needs.
        hub.limiters.token_failed(address);
    }
    outcome
}

/// The request's grant type as a metric's label: one of the known ones, else `other`.
fn grant_type_label(body: &[u8]) -> &'static str {
    let grant_type = form_urlencoded::parse(body)
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value);
    match grant_type.as_deref() {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some("client_credentials") => "client_credentials",
        Some(super::device::GRANT_TYPE) => "device_code",
        Some(_) => "other",
        None => "missing",
    }
}

async fn grant(
    hub: &Hub,
    address: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    let params = form_params(headers, body)?;
    if params.get("grant_type") == Some("client_credentials") {
        return connector_credentials(hub, address, headers, &params).await;
    }
    let app = authenticate(hub, headers, &params).await?;
    // After the client is verified; a public client has no credential, so its budget is its
    // caller's address's.
    if !hub
        .limiters
        .allow_token_for(&app.client_id, app.confidential, address)
    {
        return Err(OAuthError::slow_down());
    }
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code(hub, &app, &params).await,
        Some("refresh_token") => refresh(hub, &app, &params).await,
        Some(super::device::GRANT_TYPE) => device_code(hub, &app, &params).await,
        Some(other) => Err(OAuthError::unsupported_grant_type(format!(
            "grant type '{other}' is not supported; use authorization_code (with PKCE) or refresh_token"
        ))),
        None => Err(OAuthError::invalid_request(
            "parameter 'grant_type' is missing",
        )),
    }
}

async fn authorization_code(
    hub: &Hub,
    app: &App,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .require("code")
        .map_err(OAuthError::invalid_request)?;
    let verifier = params
        .require("code_verifier")
        .map_err(|_| OAuthError::invalid_request("PKCE is required: code_verifier is missing"))?;
    let redirect_uri = params
        .require("redirect_uri")
        .map_err(OAuthError::invalid_request)?;
    if !(43..=128).contains(&verifier.len())
        || !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err(OAuthError::invalid_request(
            "code_verifier must be 43–128 characters of [A-Za-z0-9-._~]",
        ));
    }
    let now = crate::clock::now();
    let (grant, family_id) = match hub.store.redeem_code(&digest(code), now).await? {
        CodeRedemption::Fresh { grant, family_id } => (grant, family_id),
        CodeRedemption::Replayed => {
            tracing::warn!(client_id = %app.client_id, "authorization code replayed; its tokens are revoked");
            hub.audit("code_replayed", None, Some(&app.client_id), None, "")
                .await;
            hub.publish_changes().await;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is not valid",
            ));
        }
    };
    // The code is spent whatever happens next; if a check fails, close the family it opened.
    let refuse = async |why: &'static str| {
        let _ = hub.revoke_family(&family_id, why).await;
        Err(OAuthError::invalid_grant(why))
    };
    if !equal(grant.app_id.as_bytes(), app.client_id.as_bytes()) {
        tracing::warn!(client_id = %app.client_id, "authorization code presented by another client");
        return refuse("the authorization code was issued to another client").await;
    }
    if grant.expires_at <= now {
        return refuse("the authorization code has expired").await;
    }
    if !equal(grant.redirect_uri.as_bytes(), redirect_uri.as_bytes()) {
        return refuse("redirect_uri differs from the authorization request").await;
    }
    if !equal(
        pkce_s256(verifier).as_bytes(),
        grant.code_challenge.as_bytes(),
    ) {
        return refuse("the code_verifier does not match the code_challenge").await;
    }
    let (nonce, auth_time) = (grant.nonce.clone(), grant.auth_time);
    let family = TokenFamily {
        id: family_id.clone(),
        user_id: grant.user_id,
        app_id: grant.app_id,
        scopes: grant.scopes,
        revoked_at: None,
    };
    hub.audit(
        "tokens_issued",
        Some(&family.user_id),
        Some(&family.app_id),
        None,
        "authorization_code",
    )
    .await;
    let mut tokens = mint(hub, &family, family.scopes.clone(), now).await?;
    if family.scopes.iter().any(|s| s == crate::scopes::OPENID) {
        tokens.id_token = Some(hub.id_keys.issue(&crate::id_token::IdTokenSubject {
            subject: &family.user_id,
            audience: &family.app_id,
            auth_time,
            nonce: nonce.as_deref(),
            access_token: &tokens.access_token,
        })?);
    }
    Ok(tokens)
}

async fn refresh(hub: &Hub, app: &App, params: &Params) -> Result<TokenResponse, OAuthError> {
    let presented = Secret::from_received(
        params
            .require("refresh_token")
            .map_err(OAuthError::invalid_request)?,
    );
    let old_digest = presented.digest();
    // Check the owner before spending it, so another client cannot burn someone's token.
    let family = hub
        .store
        .refresh_token_family(&old_digest)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is not valid"))?;
    if !equal(family.app_id.as_bytes(), app.client_id.as_bytes()) {
        tracing::warn!(client_id = %app.client_id, "refresh token presented by another client");
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let scopes = match params.get("scope") {
        None => family.scopes.clone(),
        Some(s) => {
            let asked = parse_scope(s).map_err(OAuthError::invalid_scope)?;
            if let Some(extra) = asked.iter().find(|s| !family.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope '{extra}' was not granted; a refresh can only narrow scopes"
                )));
            }
            asked
        }
    };
    let now = crate::clock::now();
    let successor = Secret::generate();
    match hub
        .store
        .rotate_refresh_token(
            &old_digest,
            &successor.digest(),
            now,
            now + hub.config.refresh_token_ttl,
        )
        .await?
    {
        Rotation::Rotated(family) => {
            let access = issue_access(hub, &family, &scopes)?;
            Ok(TokenResponse {
                access_token: access.expose().to_owned(),
                token_type: "Bearer",
                expires_in: hub.config.access_token_ttl,
                refresh_token: Some(successor.expose().to_owned()),
                scope: scopes.join(" "),
                id_token: None,
            })
        }
        Rotation::Reused => {
            tracing::warn!(client_id = %app.client_id, family = %family.id, "refresh token reused; family revoked");
            hub.audit(
                "refresh_reused",
                Some(&family.user_id),
                Some(&family.app_id),
                None,
                family.id.clone(),
            )
            .await;
            // The store revoked the family and recorded it: links it opened close.
            hub.publish_changes().await;
            Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ))
        }
        Rotation::Invalid => Err(OAuthError::invalid_grant(
            "the refresh token is expired or revoked",
        )),
    }
}

async fn device_code(hub: &Hub, app: &App, params: &Params) -> Result<TokenResponse, OAuthError> {
    let device_code = Secret::from_received(
        params
            .require("device_code")
            .map_err(OAuthError::invalid_request)?,
    );
    let now = crate::clock::now();
    let error = OAuthError::new;
    let bad = axum::http::StatusCode::BAD_REQUEST;
    match hub
        .store
        .poll_device_authorization(&device_code.digest(), &app.client_id, now)
        .await?
    {
        DevicePoll::Pending { too_fast: false } => Err(error(
            bad,
            OAuthErrorCode::AuthorizationPending,
            "the user has not approved yet; keep polling",
        )),
        DevicePoll::Pending { too_fast: true } => Err(error(
            bad,
            OAuthErrorCode::SlowDown,
            "polling too often; add 5 seconds to the interval",
        )),
        DevicePoll::Denied => Err(error(
            bad,
            OAuthErrorCode::AccessDenied,
            "the user denied the request",
        )),
        DevicePoll::Invalid => Err(error(
            bad,
            OAuthErrorCode::ExpiredToken,
            "the device code is expired, unknown or already used; start again",
        )),
        DevicePoll::Approved(family) => {
            hub.audit(
                "tokens_issued",
                Some(&family.user_id),
                Some(&family.app_id),
                None,
                "device_code",
            )
            .await;
            let scopes = family.scopes.clone();
            mint(hub, &family, scopes, now).await
        }
    }
}

/// `grant_type=client_credentials`: a connector registered by an administrator proves itself
/// with the credential it was given and gets an access token for its link (scope `connector`
/// only, no refresh token). The token's app is the connector and its user the owner.
async fn connector_credentials(
    hub: &Hub,
    address: std::net::IpAddr,
    headers: &HeaderMap,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let (client_id, secret) = super::client_auth::presented(headers, params)?;
    let Some(secret) = secret else {
        return Err(OAuthError::invalid_client(
            "client credentials need the connector's credential",
        ));
    };
    let Some((connector, expected)) = hub.store.connector_credential(&client_id).await? else {
        if hub.store.app(&client_id).await?.is_some() {
            return Err(OAuthError::unauthorized_client(
                "client credentials are only for connectors registered by an administrator; apps use authorization_code with PKCE",
            ));
        }
        return Err(OAuthError::invalid_client("unknown client"));
    };
    // A connector that registered itself has no credential (empty digest): nothing matches.
    if expected.is_empty() || !equal(&expected, &digest(&secret)) {
        tracing::info!(connector = %connector.id, "connector authentication failed");
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    if !hub.limiters.allow_token_for(&connector.id, true, address) {
        return Err(OAuthError::slow_down());
    }
    let scopes = parse_scope(params.get("scope").unwrap_or(crate::scopes::CONNECTOR))
        .map_err(OAuthError::invalid_scope)?;
    if let Some(bad) = scopes.iter().find(|s| *s != crate::scopes::CONNECTOR) {
        return Err(OAuthError::invalid_scope(format!(
            "a connector may only ask for scope '{}', not '{bad}'",
            crate::scopes::CONNECTOR
        )));
    }
    let access = hub.keys.issue(
        &crate::link::connector_token_subject(&connector),
        hub.config.access_token_ttl,
    )?;
    Ok(TokenResponse {
        access_token: access.expose().to_owned(),
        token_type: "Bearer",
        expires_in: hub.config.access_token_ttl,
        refresh_token: None,
        scope: crate::scopes::CONNECTOR.to_owned(),
        id_token: None,
    })
}

fn issue_access(hub: &Hub, family: &TokenFamily, scopes: &[String]) -> Result<Secret, OAuthError> {
    let subject = TokenSubject {
        user_id: family.user_id.clone(),
        app_id: family.app_id.clone(),
        scopes: scopes.to_vec(),
        family_id: family.id.clone(),
    };
    Ok(hub.keys.issue(&subject, hub.config.access_token_ttl)?)
}

async fn mint(
    hub: &Hub,
    family: &TokenFamily,
    scopes: Vec<String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let access = issue_access(hub, family, &scopes)?;
    let refresh = Secret::generate();
    hub.store
        .create_refresh_token(
            &refresh.digest(),
            &family.id,
            now,
            now + hub.config.refresh_token_ttl,
        )
        .await?;
    Ok(TokenResponse {
        access_token: access.expose().to_owned(),
        token_type: "Bearer",
        expires_in: hub.config.access_token_ttl,
        refresh_token: Some(refresh.expose().to_owned()),
        scope: scopes.join(" "),
        id_token: None,
    })
}
